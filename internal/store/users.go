package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
)

// CreateUser adds a local user with an already-hashed password.
func (s *Store) CreateUser(ctx context.Context, username, passwordHash string, admin bool) (model.User, error) {
	u := model.User{ID: NewID("usr"), Username: username, Admin: admin, PasswordHash: passwordHash, CreatedAt: time.Now().UTC()}
	_, err := s.exec(ctx, s.db, `INSERT INTO users (id, username, password_hash, admin, disabled, created_at) VALUES (?, ?, ?, ?, 0, ?)`,
		u.ID, u.Username, u.PasswordHash, b2i(admin), ts(u.CreatedAt))
	if err != nil {
		return model.User{}, fmt.Errorf("create user %q: %w", username, err)
	}
	return u, nil
}

const userCols = `id, username, password_hash, admin, disabled, created_at`

func scanUser(row interface{ Scan(...any) error }) (model.User, error) {
	var u model.User
	var admin, disabled int
	var created string
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &admin, &disabled, &created); err != nil {
		return u, classify(err)
	}
	u.Admin, u.Disabled, u.CreatedAt = admin == 1, disabled == 1, parseTS(created)
	return u, nil
}

// UserByName looks a user up by login name.
func (s *Store) UserByName(ctx context.Context, username string) (model.User, error) {
	return scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userCols+` FROM users WHERE username = ?`), username))
}

// User looks a user up by id.
func (s *Store) User(ctx context.Context, id string) (model.User, error) {
	return scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userCols+` FROM users WHERE id = ?`), id))
}

// Users lists every user.
func (s *Store) Users(ctx context.Context) ([]model.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY username`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// SetUserPassword replaces a user's password hash.
func (s *Store) SetUserPassword(ctx context.Context, id, hash string) error {
	return s.mustAffect(s.exec(ctx, s.db, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, id))
}

// SetUserDisabled disables or re-enables a user. Disabling ends the user's sessions and revokes
// their API tokens, so re-enabling revives none of them.
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	if err := s.mustAffect(s.exec(ctx, s.db, `UPDATE users SET disabled = ? WHERE id = ?`, b2i(disabled), id)); err != nil {
		return err
	}
	if disabled {
		return s.EndCredentials(ctx, id, "", "")
	}
	return nil
}

// EndCredentials ends a user's console sessions and revokes their API tokens, all but the session
// and token given (the caller's own, when users change their own password).
func (s *Store) EndCredentials(ctx context.Context, userID, keepSessionID, keepTokenID string) error {
	if _, err := s.exec(ctx, s.db, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, userID, keepSessionID); err != nil {
		return err
	}
	_, err := s.exec(ctx, s.db, `UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND id <> ? AND revoked_at IS NULL`, ts(time.Now()), userID, keepTokenID)
	return err
}

func (s *Store) mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// CreateWorkgroup adds a workgroup.
func (s *Store) CreateWorkgroup(ctx context.Context, name string, sharing bool) (model.Workgroup, error) {
	w := model.Workgroup{ID: NewID("wg"), Name: name, ProjectSharing: sharing, CreatedAt: time.Now().UTC()}
	_, err := s.exec(ctx, s.db, `INSERT INTO workgroups (id, name, project_sharing, created_at) VALUES (?, ?, ?, ?)`,
		w.ID, w.Name, b2i(sharing), ts(w.CreatedAt))
	if err != nil {
		return model.Workgroup{}, fmt.Errorf("create workgroup %q: %w", name, err)
	}
	return w, nil
}

func scanWorkgroup(row interface{ Scan(...any) error }) (model.Workgroup, error) {
	var w model.Workgroup
	var sharing int
	var created string
	if err := row.Scan(&w.ID, &w.Name, &sharing, &created); err != nil {
		return w, classify(err)
	}
	w.ProjectSharing, w.CreatedAt = sharing == 1, parseTS(created)
	return w, nil
}

// Workgroup looks a workgroup up by id or name.
func (s *Store) Workgroup(ctx context.Context, idOrName string) (model.Workgroup, error) {
	// Ids first: a workgroup named after another's id must not stand in for it.
	wg, err := scanWorkgroup(s.db.QueryRowContext(ctx, s.q(`SELECT id, name, project_sharing, created_at FROM workgroups WHERE id = ?`), idOrName))
	if IsNotFound(err) {
		wg, err = scanWorkgroup(s.db.QueryRowContext(ctx, s.q(`SELECT id, name, project_sharing, created_at FROM workgroups WHERE name = ?`), idOrName))
	}
	return wg, err
}

// Workgroups lists all workgroups, or those userID is an active member of.
func (s *Store) Workgroups(ctx context.Context, userID string) ([]model.Workgroup, error) {
	query, args := `SELECT id, name, project_sharing, created_at FROM workgroups ORDER BY name`, []any{}
	if userID != "" {
		query = `SELECT w.id, w.name, w.project_sharing, w.created_at FROM workgroups w JOIN members m ON m.workgroup_id = w.id
			WHERE m.user_id = ? AND m.active = 1 ORDER BY w.name`
		args = append(args, userID)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Workgroup
	for rows.Next() {
		w, err := scanWorkgroup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// SetProjectSharing turns project sharing on or off for a workgroup.
func (s *Store) SetProjectSharing(ctx context.Context, workgroupID string, on bool) error {
	return s.mustAffect(s.exec(ctx, s.db, `UPDATE workgroups SET project_sharing = ? WHERE id = ?`, b2i(on), workgroupID))
}

// SetMember adds a user to a workgroup or changes their role and activity.
func (s *Store) SetMember(ctx context.Context, workgroupID, userID string, role model.Role, active bool) error {
	res, err := s.exec(ctx, s.db, `UPDATE members SET role = ?, active = ? WHERE workgroup_id = ? AND user_id = ?`, string(role), b2i(active), workgroupID, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	_, err = s.exec(ctx, s.db, `INSERT INTO members (workgroup_id, user_id, role, active) VALUES (?, ?, ?, ?)`, workgroupID, userID, string(role), b2i(active))
	return err
}

// Members lists a workgroup's members.
func (s *Store) Members(ctx context.Context, workgroupID string) ([]model.Member, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT m.workgroup_id, m.user_id, u.username, m.role, m.active FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.workgroup_id = ? ORDER BY u.username`), workgroupID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Member
	for rows.Next() {
		var m model.Member
		var role string
		var active int
		if err := rows.Scan(&m.WorkgroupID, &m.UserID, &m.Username, &role, &active); err != nil {
			return nil, err
		}
		m.Role, m.Active = model.Role(role), active == 1
		out = append(out, m)
	}
	return out, rows.Err()
}

// MemberRole returns the user's active role in a workgroup, or ErrNotFound.
func (s *Store) MemberRole(ctx context.Context, workgroupID, userID string) (model.Role, error) {
	var role string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT role FROM members WHERE workgroup_id = ? AND user_id = ? AND active = 1`), workgroupID, userID).Scan(&role)
	if err != nil {
		return "", classify(err)
	}
	return model.Role(role), nil
}

// CreateToken stores an API token's hash.
func (s *Store) CreateToken(ctx context.Context, userID, name, hash string, expires *time.Time) (model.Token, error) {
	t := model.Token{ID: NewID("tok"), UserID: userID, Name: name, Hash: hash, CreatedAt: time.Now().UTC(), ExpiresAt: expires}
	_, err := s.exec(ctx, s.db, `INSERT INTO tokens (id, user_id, name, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, t.UserID, t.Name, t.Hash, ts(t.CreatedAt), tsPtr(expires))
	return t, err
}

const tokenCols = `id, user_id, name, hash, created_at, expires_at, revoked_at, last_used_at`

func scanToken(row interface{ Scan(...any) error }) (model.Token, error) {
	var t model.Token
	var created string
	var exp, rev, used sql.NullString
	if err := row.Scan(&t.ID, &t.UserID, &t.Name, &t.Hash, &created, &exp, &rev, &used); err != nil {
		return t, classify(err)
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.LastUsedAt = parseTS(created), parseTSPtr(exp), parseTSPtr(rev), parseTSPtr(used)
	return t, nil
}

// TokenByHash finds a token by the hash of its value.
func (s *Store) TokenByHash(ctx context.Context, hash string) (model.Token, error) {
	return scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenCols+` FROM tokens WHERE hash = ?`), hash))
}

// Tokens lists a user's tokens (all users' if userID is empty).
func (s *Store) Tokens(ctx context.Context, userID string) ([]model.Token, error) {
	query, args := `SELECT `+tokenCols+` FROM tokens ORDER BY created_at`, []any{}
	if userID != "" {
		query, args = `SELECT `+tokenCols+` FROM tokens WHERE user_id = ? ORDER BY created_at`, []any{userID}
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Token looks a token up by id.
func (s *Store) Token(ctx context.Context, id string) (model.Token, error) {
	return scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenCols+` FROM tokens WHERE id = ?`), id))
}

// RevokeToken marks a token revoked; it stops working at once.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	return s.mustAffect(s.exec(ctx, s.db, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, ts(time.Now()), id))
}

// TouchToken records a token's use; at most once a minute to spare writes.
func (s *Store) TouchToken(ctx context.Context, id string, now time.Time) error {
	_, err := s.exec(ctx, s.db, `UPDATE tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
		ts(now), id, ts(now.Add(-time.Minute)))
	return err
}

// CreateSession stores a console session keyed by the hash of its cookie.
func (s *Store) CreateSession(ctx context.Context, sess model.Session) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO sessions (id, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		sess.ID, sess.UserID, sess.CSRF, ts(sess.CreatedAt), ts(sess.ExpiresAt))
	return err
}

// Session finds a live session by id.
func (s *Store) Session(ctx context.Context, id string) (model.Session, error) {
	var sess model.Session
	var created, expires string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, user_id, csrf, created_at, expires_at FROM sessions WHERE id = ?`), id).
		Scan(&sess.ID, &sess.UserID, &sess.CSRF, &created, &expires)
	if err != nil {
		return sess, classify(err)
	}
	sess.CreatedAt, sess.ExpiresAt = parseTS(created), parseTS(expires)
	if time.Now().After(sess.ExpiresAt) {
		return model.Session{}, ErrNotFound
	}
	return sess, nil
}

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.exec(ctx, s.db, `DELETE FROM sessions WHERE id = ?`, id)
	return err
}

// CountUsers reports how many users exist; zero means first start.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, err
}

// IsNotFound reports whether err means a missing row.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
