// Package storetest opens throw-away stores for tests: SQLite in a temp dir, and PostgreSQL in a
// fresh database on the server scripts/test starts (FERRY_TEST_POSTGRES).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/ferry-migrate/ferry/internal/secret"
	"github.com/ferry-migrate/ferry/internal/store"
)

// DB describes one database a test can open (and reopen, to simulate a restart).
type DB struct {
	Name    string // "sqlite" or "postgres"
	DataDir string
	URL     string // "" for SQLite
	Key     []byte // the master key
	Keys    *secret.Keyring
}

// Open opens (or reopens) the database.
func (d DB) Open(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), d.DataDir, d.URL, d.Keys)
	if err != nil {
		t.Fatalf("open %s store: %v", d.Name, err)
	}
	return st
}

// Each runs fn once against SQLite and once against PostgreSQL.
func Each(t *testing.T, fn func(t *testing.T, db DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns a fresh SQLite database in a temp dir.
func SQLite(t testing.TB) DB {
	k, kr := keys(t)
	return DB{Name: "sqlite", DataDir: t.TempDir(), Key: k, Keys: kr}
}

// Postgres returns a fresh database on the test PostgreSQL server. Without FERRY_TEST_POSTGRES the
// test is skipped locally and fails in CI, so the PostgreSQL half is never silently missing there.
func Postgres(t testing.TB) DB {
	base := os.Getenv("FERRY_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("FERRY_TEST_POSTGRES is not set: run the tests through scripts/test")
		}
		t.Skip("FERRY_TEST_POSTGRES not set; scripts/test starts a PostgreSQL server and sets it")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var b [6]byte
	rand.Read(b[:])
	name := "ferry_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err == nil {
			a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			a.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	k, kr := keys(t)
	return DB{Name: "postgres", DataDir: t.TempDir(), URL: u.String(), Key: k, Keys: kr}
}

func keys(t testing.TB) ([]byte, *secret.Keyring) {
	raw := secret.GenerateKey()
	k, err := secret.NewKeyring(raw)
	if err != nil {
		t.Fatal(err)
	}
	return raw, k
}
