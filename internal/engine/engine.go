// Package engine runs passes: it queues one job per item on River, bounds how many items of a
// project run at once, copies through the connectors, and records outcomes, watermarks and events.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

// sliceLimit bounds one job's run; longer work checkpoints and continues in a new slice, so that no
// job looks stuck to the queue and other items get their turn.
const sliceLimit = 30 * time.Minute

// Config tunes an Engine.
type Config struct {
	Workers       int           // item jobs a process runs at once, across projects (default 50)
	Lease         time.Duration // how long a claimed slot lasts without renewal (default 30s)
	ScheduleEvery time.Duration // how often due schedules are checked (default 5s)
	ProgressEvery time.Duration // how often a running item's totals are published (default 3s)
	SliceLimit    time.Duration // the longest one job runs before it continues in a new one (default 30m)
	Log           *slog.Logger
}

// Engine runs passes on one process; several processes may share a PostgreSQL database.
type Engine struct {
	st    *store.Store
	cfg   Config
	log   *slog.Logger
	q     queue
	close func()
	owner string // this process's name on leases

	mu      sync.Mutex
	freed   chan struct{}                      // closed and replaced whenever a slot is released
	running map[string]context.CancelCauseFunc // item id -> cancel, for items this process runs

	stopSched chan struct{}
	schedDone chan struct{}
	shutdown  sync.Once
	claimed   atomic.Int64 // items this process has run, for tests and logs
}

// Claimed reports how many item runs this process has carried (including resumed slices).
func (e *Engine) Claimed() int64 { return e.claimed.Load() }

// ItemArgs is the job that carries one item through one pass.
type ItemArgs struct {
	PassID string `json:"pass_id"`
	ItemID string `json:"item_id"`
}

func (ItemArgs) Kind() string { return "ferry_item" }

func (ItemArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: itemQueue, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type itemWorker struct {
	river.WorkerDefaults[ItemArgs]
	e *Engine
}

func (w *itemWorker) Work(ctx context.Context, job *river.Job[ItemArgs]) error {
	return w.e.work(ctx, job.Args, job.Attempt, job.MaxAttempts)
}

// New opens the job queue on the store's database. Call Start to begin working.
func New(ctx context.Context, st *store.Store, cfg Config) (*Engine, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 50
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.SliceLimit <= 0 {
		cfg.SliceLimit = sliceLimit
	}
	if cfg.ScheduleEvery <= 0 {
		cfg.ScheduleEvery = 5 * time.Second
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 3 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	host, _ := os.Hostname()
	e := &Engine{st: st, cfg: cfg, log: cfg.Log, owner: fmt.Sprintf("%s/%d/%x", host, os.Getpid(), rand.Uint32()),
		freed: make(chan struct{}), running: map[string]context.CancelCauseFunc{}}
	workers := river.NewWorkers()
	river.AddWorker(workers, &itemWorker{e: e})
	if st.Dialect() == store.SQLite {
		// One process owns a SQLite database: whatever held a slot before this start is gone.
		n, err := st.ReleaseAllLeases(ctx)
		if err != nil {
			return nil, fmt.Errorf("release stale leases: %w", err)
		}
		if n > 0 {
			e.log.Info("requeued items left running by the previous process", "items", n)
		}
	}
	q, closeQ, err := openQueue(ctx, st, workers, cfg.Workers, cfg.Log)
	if err != nil {
		return nil, err
	}
	e.q, e.close = q, closeQ
	return e, nil
}

// Start begins working jobs and firing schedules, and re-queues runs whose jobs were lost.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.q.Start(ctx); err != nil {
		return fmt.Errorf("start job queue: %w", err)
	}
	if err := e.requeueLost(ctx); err != nil {
		return err
	}
	e.stopSched, e.schedDone = make(chan struct{}), make(chan struct{})
	go e.scheduleLoop()
	return nil
}

// rescue gives the queue back the jobs of nodes that died (kill -9, a lost machine): their leases
// stop being renewed, and after twice a lease their jobs run again on whichever node is alive.
// It also queues the runs whose jobs were never queued (queueing failed after the pass was
// committed, say on a busy SQLite database), so no run waits for the next start.
func (e *Engine) rescue(ctx context.Context, now time.Time) {
	n, err := e.st.RescueOrphanJobs(ctx, ItemArgs{}.Kind(), now.Add(-2*e.cfg.Lease))
	if err != nil {
		e.log.Warn("rescue the jobs of dead nodes", "err", err)
	} else if n > 0 {
		e.log.Info("rescued the jobs of a dead node", "jobs", n)
	}
	runs, err := e.st.UnqueuedRuns(ctx, 5000)
	if err == nil && len(runs) > 0 {
		err = e.enqueue(ctx, runs)
		if err == nil {
			e.log.Info("queued runs that had no job", "runs", len(runs))
		}
	}
	if err != nil {
		e.log.Warn("queue runs that have no job", "err", err)
	}
}

// Shutdown stops taking work; running items checkpoint and go back to the queue for the next start.
// Calling it again does nothing.
func (e *Engine) Shutdown(ctx context.Context) (err error) {
	e.shutdown.Do(func() {
		if e.stopSched != nil {
			close(e.stopSched)
			<-e.schedDone
		}
		err = e.q.StopAndCancel(ctx)
		e.close()
	})
	return err
}

// requeueLost inserts a job for every active run. Unique job arguments make this a no-op for runs
// whose job is still queued, and a repair for runs whose insert was lost after their commit.
func (e *Engine) requeueLost(ctx context.Context) error {
	runs, err := e.st.ActiveRuns(ctx, "", nil)
	if err != nil {
		return err
	}
	return e.enqueue(ctx, runs)
}

func (e *Engine) enqueue(ctx context.Context, runs []store.ActiveRun) error {
	const chunk = 500
	for i := 0; i < len(runs); i += chunk {
		part := runs[i:min(i+chunk, len(runs))]
		params := make([]river.InsertManyParams, len(part))
		for j, r := range part {
			params[j] = river.InsertManyParams{Args: ItemArgs{PassID: r.PassID, ItemID: r.ItemID}}
		}
		res, err := e.q.InsertMany(ctx, params)
		if err != nil {
			return fmt.Errorf("queue item jobs: %w", err)
		}
		for j, r := range res {
			if r.Job != nil && r.Job.ID != part[j].JobID {
				if err := e.st.SetRunJob(ctx, part[j].PassID, part[j].ItemID, r.Job.ID); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// StartPass starts a pass now: one job per item.
func (e *Engine) StartPass(ctx context.Context, r store.PassRequest) (model.Pass, []string, error) {
	p, runs, skipped, err := e.st.StartPass(ctx, r)
	if err != nil {
		return p, skipped, err
	}
	active := make([]store.ActiveRun, len(runs))
	for i, run := range runs {
		active[i] = store.ActiveRun{PassID: run.PassID, ItemID: run.ItemID}
	}
	if err := e.enqueue(ctx, active); err != nil {
		// The pass is committed; rescue queues what failed here within a lease.
		e.log.Error("queue pass jobs; they are queued again within a lease", "pass", p.ID, "err", err)
	}
	return p, skipped, nil
}

// Stop stops the active runs of a project (or of some items): queued ones at once, running ones
// after they checkpoint. It returns how many runs it stopped.
func (e *Engine) Stop(ctx context.Context, projectID string, itemIDs []string, actor string) (int, error) {
	runs, err := e.st.RequestStop(ctx, projectID, itemIDs, actor)
	if err != nil {
		return 0, err
	}
	for _, r := range runs {
		if r.Status == model.StatusRunning {
			e.mu.Lock()
			cancel := e.running[r.ItemID]
			e.mu.Unlock()
			if cancel != nil {
				cancel(errStopRequested)
			}
			continue
		}
		if r.JobID != 0 {
			if _, err := e.q.JobCancel(ctx, r.JobID); err != nil && !errors.Is(err, river.ErrNotFound) {
				e.log.Warn("cancel job", "job", r.JobID, "err", err)
			}
		}
	}
	return len(runs), nil
}

// work carries one item through its pass, in at most one slice.
func (e *Engine) work(ctx context.Context, a ItemArgs, attempt, maxAttempts int) error {
	claim, err := e.claim(ctx, a)
	if err != nil {
		return err
	}
	switch claim {
	case store.Gone:
		return nil
	case store.NoSlot:
		// Let other projects' jobs through; a short jittered snooze keeps the queue moving.
		return river.JobSnooze(time.Second + rand.N(time.Second))
	}
	defer e.release()
	e.claimed.Add(1)
	// The run's work so far, from earlier slices and attempts, to which this one's adds: its
	// statistics count everything the run did, not only its last slice.
	base, err := e.st.RunStats(ctx, a.PassID, a.ItemID)
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	e.mu.Lock()
	e.running[a.ItemID] = cancel
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.running, a.ItemID)
		e.mu.Unlock()
	}()
	var live atomic.Pointer[model.ItemStats] // the running totals, for the heartbeat to publish
	var hb sync.WaitGroup
	hb.Add(1)
	go func() {
		defer hb.Done()
		e.heartbeat(runCtx, cancel, a.ItemID, &live)
	}()
	carry := func(s model.ItemStats) model.ItemStats {
		t := base
		// A later slice lists every folder again, and reconciles them all: those are its own.
		t.Folders, t.Matched, t.Missing, t.Extra = 0, 0, 0, 0
		t.Add(s)
		return t
	}
	sliceCtx, cancelSlice := context.WithTimeoutCause(runCtx, e.cfg.SliceLimit, errSliceOver)
	stats, folders, runErr := e.runItem(sliceCtx, a, func(p Progress) { s := carry(p.Stats); live.Store(&s) })
	stats = carry(stats)
	cancelSlice()
	cause := context.Cause(sliceCtx)
	cancel(nil)
	hb.Wait()

	// The outcome must be recorded even when the job's context is cancelled by shutdown.
	rec, done := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer done()
	switch {
	case errors.Is(cause, errStopRequested):
		return e.st.FinishRun(rec, a.PassID, a.ItemID, model.StatusStopped, stats, folders, "stopped by request")
	case errors.Is(cause, errSliceOver):
		if err := e.st.RequeueRun(rec, a.PassID, a.ItemID, "continues in a new slice", stats); err != nil {
			return err
		}
		return river.JobSnooze(0)
	case errors.Is(cause, errLeaseLost):
		return fmt.Errorf("item %s: %w", a.ItemID, errLeaseLost)
	case ctx.Err() != nil:
		// Shutdown: checkpointed already; the item resumes at the next start.
		if err := e.st.RequeueRun(rec, a.PassID, a.ItemID, "server shutting down", stats); err != nil {
			return err
		}
		return river.JobSnooze(0)
	case runErr == nil:
		return e.st.FinishRun(rec, a.PassID, a.ItemID, model.OutcomeStatus(stats), stats, folders, "")
	case connector.ClassOf(runErr) == connector.Fatal || attempt >= maxAttempts:
		e.log.Warn("item failed", "item", a.ItemID, "pass", a.PassID, "err", runErr)
		return e.st.FinishRun(rec, a.PassID, a.ItemID, model.StatusFailed, stats, folders, runErr.Error())
	default:
		// Transient: back to the queue; River retries with backoff.
		if err := e.st.RequeueRun(rec, a.PassID, a.ItemID, "retrying after: "+runErr.Error(), stats); err != nil {
			return err
		}
		return runErr
	}
}

var (
	errSliceOver = errors.New("slice over")
	errLeaseLost = store.ErrLeaseLost
)

// claim asks for a slot, waiting briefly for one to free up in this process before giving up.
func (e *Engine) claim(ctx context.Context, a ItemArgs) (store.Claim, error) {
	deadline := time.NewTimer(2 * time.Second)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		freed := e.freed
		e.mu.Unlock()
		c, err := e.st.ClaimItem(ctx, a.PassID, a.ItemID, e.owner, e.cfg.Lease)
		if err != nil || c != store.NoSlot {
			return c, err
		}
		select {
		case <-freed:
		case <-time.After(250 * time.Millisecond): // a slot may free up on another node
		case <-deadline.C:
			return store.NoSlot, nil
		case <-ctx.Done():
			return store.NoSlot, ctx.Err()
		}
	}
}

func (e *Engine) release() {
	e.mu.Lock()
	close(e.freed)
	e.freed = make(chan struct{})
	e.mu.Unlock()
}

// heartbeat renews the item's lease and turns a stop request into a cancellation. A worker that
// could not renew for a whole lease stops itself: another may have taken its slot by then. In
// between it publishes the item's running totals, so the console shows a long item's progress.
func (e *Engine) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, itemID string, live *atomic.Pointer[model.ItemStats]) {
	t := time.NewTicker(e.cfg.Lease / 3)
	defer t.Stop()
	pt := time.NewTicker(e.cfg.ProgressEvery)
	defer pt.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pt.C:
			if st := live.Swap(nil); st != nil {
				if err := e.st.SetProgress(ctx, itemID, e.owner, *st); err != nil && ctx.Err() == nil {
					e.log.Warn("publish progress", "item", itemID, "err", err)
				}
			}
			continue
		case <-t.C:
		}
		if time.Since(renewed) > e.cfg.Lease {
			cancel(errLeaseLost)
			return
		}
		stop, err := e.st.RenewLease(ctx, itemID, e.owner, e.cfg.Lease)
		if err == nil {
			renewed = time.Now()
		}
		switch {
		case errors.Is(err, store.ErrLeaseLost):
			cancel(errLeaseLost)
			return
		case err != nil:
			e.log.Warn("renew lease", "item", itemID, "err", err)
		case stop:
			cancel(errStopRequested)
			return
		}
	}
}
