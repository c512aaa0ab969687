package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
)

// ErrLeaseLost means another worker now owns the item (this one's lease expired).
var ErrLeaseLost = errors.New("item lease lost")

// PassRequest describes a pass to start.
type PassRequest struct {
	ProjectID string
	Type      model.PassType
	Actor     string
	ItemIDs   []string // empty: every item the pass type applies to
	OlderThan int      // days, prestage only
}

// StartPass creates a pass and queues a run for each chosen item, in one transaction. Items already
// queued or running are left alone (listed in skipped) so one item never runs twice at once.
func (s *Store) StartPass(ctx context.Context, r PassRequest) (p model.Pass, runs []model.Run, skipped []string, err error) {
	now := time.Now().UTC()
	p = model.Pass{ID: timeID("pas", now), ProjectID: r.ProjectID, Type: r.Type, StartedBy: r.Actor, CreatedAt: now, OlderThan: r.OlderThan}
	err = s.InTx(ctx, func(tx *Tx) error {
		where, args := `project_id = ?`, []any{r.ProjectID}
		if len(r.ItemIDs) > 0 {
			where += ` AND id IN (` + placeholders(len(r.ItemIDs)) + `)`
			args = append(args, anys(r.ItemIDs)...)
		} else if r.Type == model.PassRetry {
			where += ` AND status IN (?, ?, ?)`
			args = append(args, string(model.StatusFailed), string(model.StatusCompletedWithErrors), string(model.StatusStopped))
		}
		rows, err := tx.tx.QueryContext(ctx, s.q(`SELECT id, source_email, status FROM items WHERE `+where+` ORDER BY source_key`), args...)
		if err != nil {
			return err
		}
		type cand struct{ id, email, status string }
		var cands []cand
		for rows.Next() {
			var c cand
			if err := rows.Scan(&c.id, &c.email, &c.status); err != nil {
				rows.Close()
				return err
			}
			cands = append(cands, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(r.ItemIDs) > 0 && len(cands) != len(r.ItemIDs) {
			return fmt.Errorf("%w: %d of the %d chosen items are not in this project", ErrNotFound, len(r.ItemIDs)-len(cands), len(r.ItemIDs))
		}
		for _, c := range cands {
			if model.ItemStatus(c.status).Active() {
				skipped = append(skipped, c.email)
				continue
			}
			runs = append(runs, model.Run{PassID: p.ID, ItemID: c.id, PassType: r.Type, Status: model.StatusQueued})
		}
		p.Items = len(runs)
		if p.Items == 0 {
			return fmt.Errorf("%w: no items to run (%d already queued or running)", ErrNothingToDo, len(skipped))
		}
		if _, err := s.exec(ctx, tx.tx, `INSERT INTO passes (id, project_id, type, started_by, created_at, older_than, items) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.ProjectID, string(p.Type), p.StartedBy, ts(now), p.OlderThan, p.Items); err != nil {
			return err
		}
		insRun, err := tx.tx.PrepareContext(ctx, s.q(`INSERT INTO runs (pass_id, item_id, status) VALUES (?, ?, ?)`))
		if err != nil {
			return err
		}
		defer insRun.Close()
		upd, err := tx.tx.PrepareContext(ctx, s.q(`UPDATE items SET status = ?, last_pass_id = ?, stop_requested = 0, last_error = '', updated_at = ? WHERE id = ?`))
		if err != nil {
			return err
		}
		defer upd.Close()
		for _, run := range runs {
			if _, err := insRun.ExecContext(ctx, p.ID, run.ItemID, string(model.StatusQueued)); err != nil {
				return err
			}
			if _, err := upd.ExecContext(ctx, string(model.StatusQueued), p.ID, ts(now), run.ItemID); err != nil {
				return err
			}
			if err := s.event(ctx, tx.tx, model.Event{At: now, Actor: r.Actor, Object: "item/" + run.ItemID, Action: "status.Queued", Outcome: "ok", Detail: string(r.Type) + " pass " + p.ID}); err != nil {
				return err
			}
		}
		return s.event(ctx, tx.tx, model.Event{At: now, Actor: r.Actor, Object: "project/" + r.ProjectID, Action: "pass.start", Outcome: "ok",
			Detail: fmt.Sprintf("%s pass %s over %d items", r.Type, p.ID, p.Items)})
	})
	return p, runs, skipped, err
}

// ErrNothingToDo means a request selected nothing to act on.
var ErrNothingToDo = errors.New("nothing to do")

// SetRunJob remembers the queue job that carries a run, so a stop can cancel it.
func (s *Store) SetRunJob(ctx context.Context, passID, itemID string, jobID int64) error {
	_, err := s.exec(ctx, s.db, `UPDATE runs SET job_id = ? WHERE pass_id = ? AND item_id = ?`, jobID, passID, itemID)
	return err
}

// ActiveRun is a run not yet finished, with what a worker needs to carry it.
type ActiveRun struct {
	PassID, ItemID, ProjectID string
	PassType                  model.PassType
	OlderThan                 int
	JobID                     int64
	Status                    model.ItemStatus
}

// ActiveRuns lists queued and running runs, optionally of one project and items.
func (s *Store) ActiveRuns(ctx context.Context, projectID string, itemIDs []string) ([]ActiveRun, error) {
	query := `SELECT r.pass_id, r.item_id, p.project_id, p.type, p.older_than, r.job_id, r.status FROM runs r JOIN passes p ON p.id = r.pass_id
		WHERE r.status IN (?, ?)`
	args := []any{string(model.StatusQueued), string(model.StatusRunning)}
	if projectID != "" {
		query, args = query+` AND p.project_id = ?`, append(args, projectID)
	}
	if len(itemIDs) > 0 {
		query, args = query+` AND r.item_id IN (`+placeholders(len(itemIDs))+`)`, append(args, anys(itemIDs)...)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+` ORDER BY r.pass_id, r.item_id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ActiveRun
	for rows.Next() {
		var a ActiveRun
		var typ, st string
		if err := rows.Scan(&a.PassID, &a.ItemID, &a.ProjectID, &typ, &a.OlderThan, &a.JobID, &st); err != nil {
			return nil, err
		}
		a.PassType, a.Status = model.PassType(typ), model.ItemStatus(st)
		out = append(out, a)
	}
	return out, rows.Err()
}

// UnqueuedRuns lists active runs that have no job yet (their pass was committed but queueing its
// jobs failed), at most limit of them.
func (s *Store) UnqueuedRuns(ctx context.Context, limit int) ([]ActiveRun, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT pass_id, item_id FROM runs WHERE job_id = 0 AND status IN (?, ?) ORDER BY pass_id, item_id LIMIT ?`),
		string(model.StatusQueued), string(model.StatusRunning), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ActiveRun
	for rows.Next() {
		var a ActiveRun
		if err := rows.Scan(&a.PassID, &a.ItemID); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Claim is the answer to a worker asking to run an item.
type Claim int

const (
	Claimed Claim = iota // the worker owns the item until its lease expires
	NoSlot               // the project already runs its maximum; try again later
	Gone                 // the run was stopped or finished meanwhile; drop the job
)

// ClaimItem takes one of the project's concurrency slots for the item, if one is free. Slots are
// leases in the database so the bound holds across processes and recovers when a process dies.
func (s *Store) ClaimItem(ctx context.Context, passID, itemID, owner string, lease time.Duration) (Claim, error) {
	claim := NoSlot
	err := s.InTx(ctx, func(tx *Tx) error {
		var projectID, runStatus string
		var stop, max int
		var opts string
		err := tx.tx.QueryRowContext(ctx, s.q(`SELECT i.project_id, r.status, i.stop_requested, p.options FROM runs r JOIN items i ON i.id = r.item_id
			JOIN projects p ON p.id = i.project_id WHERE r.pass_id = ? AND r.item_id = ?`+s.forUpdate()), passID, itemID).Scan(&projectID, &runStatus, &stop, &opts)
		if err != nil {
			return classify(err)
		}
		if !model.ItemStatus(runStatus).Active() {
			claim = Gone
			return nil
		}
		var holder, until string
		if err := tx.tx.QueryRowContext(ctx, s.q(`SELECT lease_owner, lease_expires FROM items WHERE id = ?`), itemID).Scan(&holder, &until); err != nil {
			return err
		}
		live := holder != "" && holder != owner && until > ts(time.Now())
		if stop == 1 {
			claim = Gone
			if live {
				return nil // its worker stops it at the next renewal
			}
			// Asked to stop while its worker was dying: nobody else will.
			return s.stopRun(ctx, tx, passID, itemID, "engine", time.Now().UTC())
		}
		if live {
			return nil // another worker still runs this item (a rescued duplicate job): wait
		}
		var o model.ProjectOptions
		json.Unmarshal([]byte(opts), &o)
		if max = o.MaxConcurrent; max <= 0 {
			max = model.DefaultMaxConcurrent
		}
		if s.dialect == Postgres {
			// Serialise claims per project across nodes; SQLite transactions are serial already.
			if _, err := tx.tx.ExecContext(ctx, `SELECT 1 FROM projects WHERE id = $1 FOR UPDATE`, projectID); err != nil {
				return err
			}
		}
		now := time.Now()
		var busy int
		if err := tx.tx.QueryRowContext(ctx, s.q(`SELECT count(*) FROM items WHERE project_id = ? AND lease_expires > ? AND id <> ?`),
			projectID, ts(now), itemID).Scan(&busy); err != nil {
			return err
		}
		if busy >= max {
			return nil
		}
		if _, err := s.exec(ctx, tx.tx, `UPDATE items SET status = ?, lease_owner = ?, lease_expires = ?, updated_at = ? WHERE id = ?`,
			string(model.StatusRunning), owner, ts(now.Add(lease)), ts(now), itemID); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx.tx, `UPDATE runs SET status = ?, started_at = COALESCE(started_at, ?) WHERE pass_id = ? AND item_id = ?`,
			string(model.StatusRunning), ts(now), passID, itemID); err != nil {
			return err
		}
		claim = Claimed
		return s.event(ctx, tx.tx, model.Event{At: now, Actor: "engine", Object: "item/" + itemID, Action: "status.Running", Outcome: "ok", Detail: "pass " + passID})
	})
	return claim, err
}

func (s *Store) forUpdate() string {
	if s.dialect == Postgres {
		return ` FOR UPDATE OF i`
	}
	return ""
}

// RenewLease extends the worker's lease and reports whether a stop was requested.
func (s *Store) RenewLease(ctx context.Context, itemID, owner string, lease time.Duration) (stop bool, err error) {
	res, err := s.exec(ctx, s.db, `UPDATE items SET lease_expires = ? WHERE id = ? AND lease_owner = ?`, ts(time.Now().Add(lease)), itemID, owner)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, ErrLeaseLost
	}
	var st int
	err = s.db.QueryRowContext(ctx, s.q(`SELECT stop_requested FROM items WHERE id = ?`), itemID).Scan(&st)
	return st == 1, err
}

// SetProgress publishes a running item's statistics, while its owner still holds the lease: the
// totals of its finished runs plus the running one's so far, as FinishRun will store them.
func (s *Store) SetProgress(ctx context.Context, itemID, owner string, running model.ItemStats) error {
	total, err := s.itemTotals(ctx, s.db, itemID)
	if err != nil {
		return err
	}
	total.Add(running)
	st, _ := json.Marshal(total)
	_, err = s.exec(ctx, s.db, `UPDATE items SET stats = ?, updated_at = ? WHERE id = ? AND lease_owner = ? AND status = ?`,
		string(st), ts(time.Now()), itemID, owner, string(model.StatusRunning))
	return err
}

// FinishRun records a run's outcome on the run and its item, releases the slot, and closes the pass
// when its last run ends.
// folders is the per-folder result (statistics and reconciliation), stored as given.
func (s *Store) FinishRun(ctx context.Context, passID, itemID string, status model.ItemStatus, stats model.ItemStats, folders any, errText string) error {
	now := time.Now().UTC()
	st, _ := json.Marshal(stats)
	fj, err := json.Marshal(folders)
	if err != nil || string(fj) == "null" {
		fj = []byte("[]")
	}
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := s.exec(ctx, tx.tx, `UPDATE runs SET status = ?, stats = ?, folders = ?, error = ?, finished_at = ? WHERE pass_id = ? AND item_id = ?`,
			string(status), string(st), string(fj), errText, ts(now), passID, itemID); err != nil {
			return err
		}
		// The item's cumulative statistics are the sum over its runs.
		total, err := s.itemTotals(ctx, tx.tx, itemID)
		if err != nil {
			return err
		}
		tt, _ := json.Marshal(total)
		if _, err := s.exec(ctx, tx.tx, `UPDATE items SET status = ?, stats = ?, last_error = ?, lease_owner = '', lease_expires = '', stop_requested = 0, updated_at = ? WHERE id = ?`,
			string(status), string(tt), errText, ts(now), itemID); err != nil {
			return err
		}
		outcome := "ok"
		if errText != "" {
			outcome = "error"
		}
		if err := s.event(ctx, tx.tx, model.Event{At: now, Actor: "engine", Object: "item/" + itemID, Action: "status." + string(status), Outcome: outcome, Detail: errText}); err != nil {
			return err
		}
		return s.closePassIfDone(ctx, tx.tx, passID, now)
	})
}

func (s *Store) itemTotals(ctx context.Context, q querier, itemID string) (model.ItemStats, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT stats FROM runs WHERE item_id = ? AND finished_at IS NOT NULL ORDER BY finished_at`), itemID)
	if err != nil {
		return model.ItemStats{}, err
	}
	defer rows.Close()
	var total, latest model.ItemStats
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return total, err
		}
		var st model.ItemStats
		json.Unmarshal([]byte(raw), &st)
		total.Add(st)
		if st.Checked() {
			latest = st
		}
	}
	// Work adds up over passes; a reconciliation is what the latest check found.
	total.Matched, total.Missing, total.Extra = latest.Matched, latest.Missing, latest.Extra
	return total, rows.Err()
}

func (s *Store) closePassIfDone(ctx context.Context, q querier, passID string, now time.Time) error {
	var open int
	if err := q.QueryRowContext(ctx, s.q(`SELECT count(*) FROM runs WHERE pass_id = ? AND status IN (?, ?)`),
		passID, string(model.StatusQueued), string(model.StatusRunning)).Scan(&open); err != nil {
		return err
	}
	if open > 0 {
		return nil
	}
	_, err := s.exec(ctx, q, `UPDATE passes SET finished_at = ? WHERE id = ? AND finished_at IS NULL`, ts(now), passID)
	return err
}

// RequeueRun hands a run back to the queue (shutdown, lost connection): the item is Queued again and
// its slot is free.
func (s *Store) RequeueRun(ctx context.Context, passID, itemID, reason string, done model.ItemStats) error {
	now := time.Now().UTC()
	st, _ := json.Marshal(done)
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := s.exec(ctx, tx.tx, `UPDATE runs SET status = ?, stats = ? WHERE pass_id = ? AND item_id = ? AND status IN (?, ?)`,
			string(model.StatusQueued), string(st), passID, itemID, string(model.StatusQueued), string(model.StatusRunning)); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx.tx, `UPDATE items SET status = ?, lease_owner = '', lease_expires = '', updated_at = ? WHERE id = ? AND status = ?`,
			string(model.StatusQueued), ts(now), itemID, string(model.StatusRunning)); err != nil {
			return err
		}
		return s.event(ctx, tx.tx, model.Event{At: now, Actor: "engine", Object: "item/" + itemID, Action: "status.Queued", Outcome: "ok", Detail: reason})
	})
}

// RunStats is what a run not yet finished has done in its earlier slices and attempts, as
// RequeueRun recorded it.
func (s *Store) RunStats(ctx context.Context, passID, itemID string) (model.ItemStats, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT stats FROM runs WHERE pass_id = ? AND item_id = ?`), passID, itemID).Scan(&raw)
	if err != nil {
		return model.ItemStats{}, classify(err)
	}
	var st model.ItemStats
	json.Unmarshal([]byte(raw), &st)
	return st, nil
}

// RequestStop asks the active runs of a project (or of some items) to stop. Queued runs stop at
// once; running ones stop at their worker's next lease renewal. It returns the runs it touched.
func (s *Store) RequestStop(ctx context.Context, projectID string, itemIDs []string, actor string) ([]ActiveRun, error) {
	active, err := s.ActiveRuns(ctx, projectID, itemIDs)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	err = s.InTx(ctx, func(tx *Tx) error {
		for _, a := range active {
			if a.Status == model.StatusRunning {
				// A live worker stops it at its next lease renewal; one whose lease ran out has
				// no worker (its node died), so it stops here.
				var until string
				if err := tx.tx.QueryRowContext(ctx, s.q(`SELECT lease_expires FROM items WHERE id = ?`), a.ItemID).Scan(&until); err != nil {
					return err
				}
				if until > ts(now) {
					if _, err := s.exec(ctx, tx.tx, `UPDATE items SET stop_requested = 1 WHERE id = ?`, a.ItemID); err != nil {
						return err
					}
					if err := s.event(ctx, tx.tx, model.Event{At: now, Actor: actor, Object: "item/" + a.ItemID, Action: "stop.requested", Outcome: "ok", Detail: "pass " + a.PassID}); err != nil {
						return err
					}
					continue
				}
			}
			if err := s.stopRun(ctx, tx, a.PassID, a.ItemID, actor, now); err != nil {
				return err
			}
		}
		return nil
	})
	return active, err
}

// RescueOrphanJobs makes the job queue run again the item jobs that a node fetched and then died
// with (PostgreSQL; a SQLite database has one process, which releases everything at start). A job
// is an orphan when River still has it running since before staleBefore while its item's run is
// active and no live lease holds the item: a live node renews its lease, or gives a job it cannot
// claim back within seconds. It returns how many jobs it made available.
func (s *Store) RescueOrphanJobs(ctx context.Context, kind string, staleBefore time.Time) (int64, error) {
	if s.dialect != Postgres {
		return 0, nil
	}
	res, err := s.db.ExecContext(ctx, `UPDATE river_job j SET state = 'available', scheduled_at = now()
		FROM runs r JOIN items i ON i.id = r.item_id
		WHERE j.id = r.job_id AND j.state = 'running' AND j.kind = $1 AND j.attempted_at < $2
		AND r.status IN ($3, $4) AND (i.lease_expires = '' OR i.lease_expires < $5)`,
		kind, staleBefore, string(model.StatusQueued), string(model.StatusRunning), ts(time.Now()))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// stopRun ends an active run that no worker holds as Stopped.
func (s *Store) stopRun(ctx context.Context, tx *Tx, passID, itemID, actor string, now time.Time) error {
	active := []any{string(model.StatusQueued), string(model.StatusRunning)}
	if _, err := s.exec(ctx, tx.tx, `UPDATE runs SET status = ?, finished_at = ? WHERE pass_id = ? AND item_id = ? AND status IN (?, ?)`,
		append([]any{string(model.StatusStopped), ts(now), passID, itemID}, active...)...); err != nil {
		return err
	}
	if _, err := s.exec(ctx, tx.tx, `UPDATE items SET status = ?, lease_owner = '', lease_expires = '', stop_requested = 0, updated_at = ? WHERE id = ? AND status IN (?, ?)`,
		append([]any{string(model.StatusStopped), ts(now), itemID}, active...)...); err != nil {
		return err
	}
	if err := s.event(ctx, tx.tx, model.Event{At: now, Actor: actor, Object: "item/" + itemID, Action: "status.Stopped", Outcome: "ok", Detail: "pass " + passID}); err != nil {
		return err
	}
	return s.closePassIfDone(ctx, tx.tx, passID, now)
}

// ReleaseRunningJobs makes every job the queue has running available again. Only for a
// single-process (SQLite) database at start, when no other worker can be running one.
func (s *Store) ReleaseRunningJobs(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `UPDATE river_job SET state = 'available' WHERE state = 'running'`)
	return err
}

// ReleaseAllLeases frees every slot. Only for a single-process database at start, when no other
// worker can hold one: items left Running by a crash go back to Queued.
func (s *Store) ReleaseAllLeases(ctx context.Context) (int, error) {
	var n int64
	err := s.InTx(ctx, func(tx *Tx) error {
		now := ts(time.Now())
		if _, err := s.exec(ctx, tx.tx, `UPDATE runs SET status = ? WHERE status = ?`, string(model.StatusQueued), string(model.StatusRunning)); err != nil {
			return err
		}
		res, err := s.exec(ctx, tx.tx, `UPDATE items SET status = ?, lease_owner = '', lease_expires = '', updated_at = ? WHERE status = ?`,
			string(model.StatusQueued), now, string(model.StatusRunning))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		_, err = s.exec(ctx, tx.tx, `UPDATE items SET lease_owner = '', lease_expires = '' WHERE lease_owner <> ''`)
		return err
	})
	return int(n), err
}

// Passes lists a project's passes, newest first.
func (s *Store) Passes(ctx context.Context, projectID string, limit int) ([]model.Pass, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, project_id, type, started_by, created_at, finished_at, older_than, items FROM passes WHERE project_id = ? ORDER BY created_at DESC LIMIT ?`), projectID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Pass
	for rows.Next() {
		var p model.Pass
		var typ, created string
		var fin sql.NullString
		if err := rows.Scan(&p.ID, &p.ProjectID, &typ, &p.StartedBy, &created, &fin, &p.OlderThan, &p.Items); err != nil {
			return nil, err
		}
		p.Type, p.CreatedAt, p.FinishedAt = model.PassType(typ), parseTS(created), parseTSPtr(fin)
		out = append(out, p)
	}
	return out, rows.Err()
}

// Runs lists an item's runs, newest first: its pass history.
func (s *Store) Runs(ctx context.Context, itemID string) ([]model.Run, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT r.pass_id, r.item_id, p.type, r.status, r.stats, r.folders, r.error, r.started_at, r.finished_at FROM runs r JOIN passes p ON p.id = r.pass_id
		WHERE r.item_id = ? ORDER BY r.pass_id DESC`), itemID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Run
	for rows.Next() {
		var r model.Run
		var typ, st, stats, folders string
		var started, fin sql.NullString
		if err := rows.Scan(&r.PassID, &r.ItemID, &typ, &st, &stats, &folders, &r.Error, &started, &fin); err != nil {
			return nil, err
		}
		r.PassType, r.Status, r.StartedAt, r.FinishedAt = model.PassType(typ), model.ItemStatus(st), parseTSPtr(started), parseTSPtr(fin)
		json.Unmarshal([]byte(stats), &r.Stats)
		r.Folders = json.RawMessage(folders)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Totals sums the statistics of every item, for metrics.
func (s *Store) Totals(ctx context.Context) (model.ItemStats, int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT stats FROM items`)
	if err != nil {
		return model.ItemStats{}, 0, err
	}
	defer rows.Close()
	var total model.ItemStats
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return total, 0, err
		}
		var st model.ItemStats
		json.Unmarshal([]byte(raw), &st)
		total.Add(st)
	}
	var passes int
	if err := rows.Err(); err != nil {
		return total, 0, err
	}
	err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM passes`).Scan(&passes)
	return total, passes, err
}
