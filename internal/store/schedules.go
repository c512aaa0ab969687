package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
)

// CreateSchedule stores a scheduled (and possibly repeating) pass.
func (s *Store) CreateSchedule(ctx context.Context, sc model.Schedule) (model.Schedule, error) {
	sc.ID, sc.Active = NewID("sch"), true
	ids, _ := json.Marshal(nonNil(sc.ItemIDs))
	_, err := s.exec(ctx, s.db, `INSERT INTO schedules (id, project_id, pass_type, item_ids, older_than, next_at, every_ns, until_at, active, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
		sc.ID, sc.ProjectID, string(sc.PassType), string(ids), sc.OlderThan, ts(sc.NextAt), int64(sc.Every), tsPtr(sc.Until), sc.CreatedBy)
	if err == nil {
		err = s.Event(ctx, model.Event{Actor: sc.CreatedBy, Object: "project/" + sc.ProjectID, Action: "schedule.create", Outcome: "ok",
			Detail: string(sc.PassType) + " at " + ts(sc.NextAt)})
	}
	return sc, err
}

// Schedules lists a project's schedules (all projects' if projectID is empty), active ones only if asked.
func (s *Store) Schedules(ctx context.Context, projectID string, activeOnly bool) ([]model.Schedule, error) {
	query, args := `SELECT id, project_id, pass_type, item_ids, older_than, next_at, every_ns, until_at, active, created_by FROM schedules WHERE 1 = 1`, []any{}
	if projectID != "" {
		query, args = query+` AND project_id = ?`, append(args, projectID)
	}
	if activeOnly {
		query += ` AND active = 1`
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+` ORDER BY next_at`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Schedule
	for rows.Next() {
		var sc model.Schedule
		var typ, ids, next string
		var every int64
		var until sql.NullString
		var active int
		if err := rows.Scan(&sc.ID, &sc.ProjectID, &typ, &ids, &sc.OlderThan, &next, &every, &until, &active, &sc.CreatedBy); err != nil {
			return nil, err
		}
		sc.PassType, sc.NextAt, sc.Every, sc.Until, sc.Active = model.PassType(typ), parseTS(next), time.Duration(every), parseTSPtr(until), active == 1
		json.Unmarshal([]byte(ids), &sc.ItemIDs)
		out = append(out, sc)
	}
	return out, rows.Err()
}

// DueSchedules lists active schedules whose time has come.
func (s *Store) DueSchedules(ctx context.Context, now time.Time) ([]model.Schedule, error) {
	all, err := s.Schedules(ctx, "", true)
	if err != nil {
		return nil, err
	}
	var due []model.Schedule
	for _, sc := range all {
		if !sc.NextAt.After(now) {
			due = append(due, sc)
		}
	}
	return due, nil
}

// AdvanceSchedule moves a fired schedule to its next time, or ends it. The update is conditional on
// the time it fired for, so two processes cannot both fire the same occurrence.
func (s *Store) AdvanceSchedule(ctx context.Context, sc model.Schedule, now time.Time) (fired bool, err error) {
	next, active := sc.NextAt, false
	if sc.Every > 0 {
		for !next.After(now) {
			next = next.Add(sc.Every)
		}
		active = sc.Until == nil || !next.After(*sc.Until)
	}
	res, err := s.exec(ctx, s.db, `UPDATE schedules SET next_at = ?, active = ? WHERE id = ? AND next_at = ? AND active = 1`,
		ts(next), b2i(active), sc.ID, ts(sc.NextAt))
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// CancelSchedules deactivates a project's schedules.
func (s *Store) CancelSchedules(ctx context.Context, projectID, actor string) (int, error) {
	res, err := s.exec(ctx, s.db, `UPDATE schedules SET active = 0 WHERE project_id = ? AND active = 1`, projectID)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		s.Event(ctx, model.Event{Actor: actor, Object: "project/" + projectID, Action: "schedule.cancel", Outcome: "ok"})
	}
	return int(n), nil
}
