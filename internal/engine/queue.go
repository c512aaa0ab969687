package engine

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/ferry-migrate/ferry/internal/store"
)

// queue is the part of a River client the engine uses. River's client is generic over the driver's
// transaction type (pgx for PostgreSQL, database/sql for SQLite); this interface hides the difference.
type queue interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	JobCancel(ctx context.Context, jobID int64) (*rivertype.JobRow, error)
}

const itemQueue = "items"

// openQueue starts River on the store's database: the same SQLite file (through a one-connection
// pool, as River's SQLite driver asks) or the same PostgreSQL server.
func openQueue(ctx context.Context, st *store.Store, workers *river.Workers, maxWorkers int, log *slog.Logger) (queue, func(), error) {
	cfg := &river.Config{
		Queues:            map[string]river.QueueConfig{itemQueue: {MaxWorkers: maxWorkers}},
		Workers:           workers,
		FetchPollInterval: 200 * time.Millisecond,
		FetchCooldown:     50 * time.Millisecond,
		// Item jobs run in slices of at most sliceLimit, so a job running longer than this is stuck.
		RescueStuckJobsAfter: sliceLimit + 30*time.Minute,
		JobTimeout:           -1,
		Logger:               log,
		MaxAttempts:          10,
	}
	switch st.Dialect() {
	case store.SQLite:
		db, err := sql.Open("sqlite", store.SQLiteDSN(st.DSN()))
		if err != nil {
			return nil, nil, err
		}
		db.SetMaxOpenConns(1)
		cfg.PollOnly = true
		q, err := newClient(ctx, riversqlite.New(db), cfg)
		if err != nil {
			db.Close()
			return nil, nil, err
		}
		// SQLite mode is one process (the data dir is locked), so jobs left running by a crash have
		// no owner: make them available now rather than after the rescuer's hour.
		if err := st.ReleaseRunningJobs(ctx); err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("recover jobs: %w", err)
		}
		return q, func() { db.Close() }, nil
	default:
		pool, err := pgxpool.New(ctx, st.DSN())
		if err != nil {
			return nil, nil, fmt.Errorf("connect job queue: %w", err)
		}
		q, err := newClient(ctx, riverpgxv5.New(pool), cfg)
		if err != nil {
			pool.Close()
			return nil, nil, err
		}
		return q, pool.Close, nil
	}
}

func newClient[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], cfg *river.Config) (*river.Client[TTx], error) {
	m, err := rivermigrate.New(driver, nil)
	if err != nil {
		return nil, fmt.Errorf("job queue migrations: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("apply job queue migrations: %w", err)
	}
	c, err := river.NewClient(driver, cfg)
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	return c, nil
}
