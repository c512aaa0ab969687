// Package store is the only package that speaks SQL. It runs on embedded SQLite or on PostgreSQL;
// the queries are written once with '?' placeholders and rebound for PostgreSQL.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/ferry-migrate/ferry/internal/secret"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect names the database engine behind a Store.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is Ferry's persistent state.
type Store struct {
	db      *sql.DB
	dialect Dialect
	dsn     string // for Postgres: the URL; for SQLite: the file path
	keys    *secret.Keyring
}

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// ErrBadFilter is returned when a listing's filter or sort is not one the store knows.
var ErrBadFilter = errors.New("bad filter")

// ErrAmbiguous is returned when a name matches more than one object the caller may see.
var ErrAmbiguous = errors.New("ambiguous name")

// ErrConflict is returned when a unique name or key is already taken.
var ErrConflict = errors.New("already exists")

// Open connects to the database named by url (postgres://… or empty for SQLite in dataDir) and runs
// the schema migrations.
func Open(ctx context.Context, dataDir, url string, keys *secret.Keyring) (*Store, error) {
	s := &Store{keys: keys}
	var err error
	switch {
	case url == "" || strings.HasPrefix(url, "sqlite:") || strings.HasPrefix(url, "file:"):
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "file:")
		if path == "" {
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return nil, fmt.Errorf("create data dir: %w", err)
			}
			path = filepath.Join(dataDir, "ferry.db")
		}
		s.dialect, s.dsn = SQLite, path
		// SQLite gives its WAL and shared-memory files the database file's mode: make that 0600.
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600); err == nil {
			f.Close()
		}
		// Immediate transactions avoid SQLite's read-to-write upgrade deadlock; busy_timeout lets
		// writers queue behind each other instead of failing.
		s.db, err = sql.Open("sqlite", SQLiteDSN(path))
	case strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://"):
		s.dialect, s.dsn = Postgres, url
		s.db, err = sql.Open("pgx", url)
		if err == nil {
			s.db.SetMaxOpenConns(20)
		}
	default:
		return nil, fmt.Errorf("unsupported --database %q: use postgres://… or leave empty for embedded SQLite", redactURL(url))
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("connect to %s database: %w", s.dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// SQLiteDSN is the connection string Ferry uses for a SQLite file.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
}

func (s *Store) migrate(ctx context.Context) error {
	d := goose.DialectSQLite3
	if s.dialect == Postgres {
		d = goose.DialectPostgres
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(d, s.db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("schema migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply schema migrations: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dialect reports the engine in use.
func (s *Store) Dialect() Dialect { return s.dialect }

// DSN is the database location (a file path for SQLite, the URL for PostgreSQL).
func (s *Store) DSN() string { return s.dsn }

// DB exposes the pool for the job queue, which shares the database.
func (s *Store) DB() *sql.DB { return s.db }

// Ping checks the database answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Keys returns the keyring that seals credentials.
func (s *Store) Keys() *secret.Keyring { return s.keys }

// q rebinds '?' placeholders to $n for PostgreSQL. Queries hold no '?' inside literals.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Tx is a store transaction; its methods mirror the Store's for the operations that must be atomic.
type Tx struct {
	s  *Store
	tx *sql.Tx
}

// InTx runs fn in one transaction, committing if fn returns nil.
func (s *Store) InTx(ctx context.Context, fn func(*Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(&Tx{s: s, tx: tx}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	res, err := q.ExecContext(ctx, s.q(query), args...)
	return res, classify(err)
}

// classify maps driver errors to the store's sentinel errors.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	msg := err.Error()
	if strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505") {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}

// NewID returns a random id with a readable prefix, e.g. "prj_3f9a…".
func NewID(prefix string) string {
	var b [10]byte
	rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// timeID is time-ordered so that sorting by id sorts by creation.
func timeID(prefix string, t time.Time) string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s_%016x%s", prefix, t.UnixNano(), hex.EncodeToString(b[:]))
}

const timeLayout = "2006-01-02T15:04:05.000000Z"

// ts formats a time the way the store keeps it: UTC, fixed width, so text order is time order.
func ts(t time.Time) string { return t.UTC().Format(timeLayout) }

func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

func parseTS(s string) time.Time {
	t, _ := time.Parse(timeLayout, s)
	return t
}

func parseTSPtr(ns sql.NullString) *time.Time {
	if !ns.Valid || ns.String == "" {
		return nil
	}
	t := parseTS(ns.String)
	return &t
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}
