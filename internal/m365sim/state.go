package m365sim

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite"
)

// snapshot is the emulator's persistent state: tenants with their apps, users and mailboxes.
// Access tokens are not kept; clients sign in again after a restart, as they would after expiry.
type snapshot struct {
	Tenants []*Tenant `json:"tenants"`
}

// Store keeps the emulator's state in a SQLite file, so a demo survives a restart.
type Store struct {
	db *sql.DB
}

// OpenStore opens (creating) the state file.
func OpenStore(path string) (*Store, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS sim_state (id INTEGER PRIMARY KEY CHECK (id = 1), saved_at TEXT NOT NULL, data BLOB NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("sim state %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the state file.
func (st *Store) Close() error { return st.db.Close() }

// Load restores the saved state into s; found is false for a new file.
func (st *Store) Load(s *Server) (found bool, err error) {
	var data []byte
	err = st.db.QueryRow(`SELECT data FROM sim_state WHERE id = 1`).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return false, fmt.Errorf("sim state: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenants = map[string]*Tenant{}
	for _, t := range snap.Tenants {
		if t.Apps == nil {
			t.Apps = map[string]*App{}
		}
		s.tenants[t.ID] = t
		for _, d := range t.Domains {
			s.tenants[strings.ToLower(d)] = t
		}
	}
	s.dirty = false
	return true, nil
}

// Save writes the state if it changed since the last save.
func (st *Store) Save(s *Server) error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	seen := map[*Tenant]bool{}
	var snap snapshot
	for _, t := range s.tenants {
		if !seen[t] {
			seen[t] = true
			snap.Tenants = append(snap.Tenants, t)
		}
	}
	data, err := json.Marshal(snap)
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = st.db.Exec(`INSERT INTO sim_state (id, saved_at, data) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET saved_at = excluded.saved_at, data = excluded.data`,
		time.Now().UTC().Format(time.RFC3339), data)
	return err
}

// SaveEvery saves changed state every interval until ctx ends, then once more.
func (st *Store) SaveEvery(ctx context.Context, s *Server, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return st.Save(s)
		case <-t.C:
			if err := st.Save(s); err != nil {
				return err
			}
		}
	}
}
