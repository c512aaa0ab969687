package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
)

// CompanyKey returns a project's company key, the value every agent package of the project
// carries, creating it the first time.
func (s *Store) CompanyKey(ctx context.Context, projectID string) (string, error) {
	var key string
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT company_key FROM projects WHERE id = ?`), projectID).Scan(&key); err != nil {
		return "", classify(err)
	}
	if key != "" {
		return key, nil
	}
	var b [16]byte
	rand.Read(b[:])
	// Only the first writer's key sticks, so two concurrent callers agree.
	if _, err := s.exec(ctx, s.db, `UPDATE projects SET company_key = ? WHERE id = ? AND company_key = ''`, hex.EncodeToString(b[:]), projectID); err != nil {
		return "", err
	}
	err := s.db.QueryRowContext(ctx, s.q(`SELECT company_key FROM projects WHERE id = ?`), projectID).Scan(&key)
	return key, classify(err)
}

// CreateAgentToken stores a new enrolment token (its hash).
func (s *Store) CreateAgentToken(ctx context.Context, t model.AgentToken) (model.AgentToken, error) {
	t.ID, t.CreatedAt = NewID("atk"), time.Now().UTC()
	_, err := s.exec(ctx, s.db, `INSERT INTO agent_tokens (id, project_id, name, hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.ProjectID, t.Name, t.Hash, t.CreatedBy, ts(t.CreatedAt), ts(t.ExpiresAt))
	return t, err
}

const agentTokenCols = `id, project_id, name, hash, created_by, created_at, expires_at, revoked_at`

func scanAgentToken(row interface{ Scan(...any) error }) (model.AgentToken, error) {
	var t model.AgentToken
	var created, expires string
	var revoked sql.NullString
	if err := row.Scan(&t.ID, &t.ProjectID, &t.Name, &t.Hash, &t.CreatedBy, &created, &expires, &revoked); err != nil {
		return t, classify(err)
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = parseTS(created), parseTS(expires), parseTSPtr(revoked)
	return t, nil
}

// AgentTokenByHash finds an enrolment token by the hash of its value.
func (s *Store) AgentTokenByHash(ctx context.Context, hash string) (model.AgentToken, error) {
	return scanAgentToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+agentTokenCols+` FROM agent_tokens WHERE hash = ?`), hash))
}

// AgentTokens lists a project's enrolment tokens, oldest first.
func (s *Store) AgentTokens(ctx context.Context, projectID string) ([]model.AgentToken, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+agentTokenCols+` FROM agent_tokens WHERE project_id = ? ORDER BY created_at, id`), projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []model.AgentToken{}
	for rows.Next() {
		t, err := scanAgentToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeAgentToken stops a project's enrolment token from enrolling more devices.
func (s *Store) RevokeAgentToken(ctx context.Context, projectID, id string) error {
	return s.mustAffect(s.exec(ctx, s.db, `UPDATE agent_tokens SET revoked_at = ? WHERE id = ? AND project_id = ? AND revoked_at IS NULL`, ts(time.Now()), id, projectID))
}

// CreateDevice enrols a device with its own credential (hash).
func (s *Store) CreateDevice(ctx context.Context, d model.Device) (model.Device, error) {
	now := time.Now().UTC()
	d.ID, d.EnrolledAt, d.LastSeenAt = NewID("dev"), now, now
	sw, _ := json.Marshal(d.Software)
	_, err := s.exec(ctx, s.db, `INSERT INTO devices (id, project_id, token_id, credential_hash, hostname, os_version, user_name, user_email, software, agent_version, enrolled_at, last_seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.ProjectID, d.TokenID, d.CredentialHash, d.Hostname, d.OSVersion, d.UserName, d.UserEmail, string(sw), d.AgentVersion, ts(now), ts(now))
	return d, err
}

const deviceCols = `id, project_id, token_id, credential_hash, hostname, os_version, user_name, user_email, software, agent_version, enrolled_at, last_seen_at, revoked_at`

func scanDevice(row interface{ Scan(...any) error }) (model.Device, error) {
	var d model.Device
	var sw, enrolled, seen string
	var revoked sql.NullString
	if err := row.Scan(&d.ID, &d.ProjectID, &d.TokenID, &d.CredentialHash, &d.Hostname, &d.OSVersion, &d.UserName, &d.UserEmail, &sw, &d.AgentVersion,
		&enrolled, &seen, &revoked); err != nil {
		return d, classify(err)
	}
	json.Unmarshal([]byte(sw), &d.Software)
	d.EnrolledAt, d.LastSeenAt, d.RevokedAt = parseTS(enrolled), parseTS(seen), parseTSPtr(revoked)
	return d, nil
}

// DeviceByCredential finds a device by the hash of its credential.
func (s *Store) DeviceByCredential(ctx context.Context, hash string) (model.Device, error) {
	return scanDevice(s.db.QueryRowContext(ctx, s.q(`SELECT `+deviceCols+` FROM devices WHERE credential_hash = ?`), hash))
}

// Device finds a device by id.
func (s *Store) Device(ctx context.Context, id string) (model.Device, error) {
	return scanDevice(s.db.QueryRowContext(ctx, s.q(`SELECT `+deviceCols+` FROM devices WHERE id = ?`), id))
}

// ReportDevice records what a device reported and when.
func (s *Store) ReportDevice(ctx context.Context, id string, f model.DeviceFacts) error {
	sw, _ := json.Marshal(f.Software)
	return s.mustAffect(s.exec(ctx, s.db, `UPDATE devices SET hostname = ?, os_version = ?, user_name = ?, user_email = ?, software = ?, agent_version = ?, last_seen_at = ? WHERE id = ?`,
		f.Hostname, f.OSVersion, f.UserName, f.UserEmail, string(sw), f.AgentVersion, ts(time.Now()), id))
}

// Devices lists a project's devices by host name.
func (s *Store) Devices(ctx context.Context, projectID string) ([]model.Device, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+deviceCols+` FROM devices WHERE project_id = ? ORDER BY hostname, id`), projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []model.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// RevokeDevice refuses a device's credential from now on.
func (s *Store) RevokeDevice(ctx context.Context, id string) error {
	return s.mustAffect(s.exec(ctx, s.db, `UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, ts(time.Now()), id))
}
