// Package auth authenticates callers (console sessions, API tokens) and answers what their role
// allows. Passwords are argon2id hashes; tokens and session ids are stored only as hashes.
package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

// Principal is an authenticated caller.
type Principal struct {
	User    model.User
	TokenID string         // set when authenticated by API token
	Session *model.Session // set when authenticated by console cookie
}

// Name is how the principal appears in the audit trail.
func (p Principal) Name() string { return p.User.Username }

// Service authenticates against the store.
type Service struct {
	st *store.Store
	// Failed sign-ins are limited per user and address together, per user from any address (many
	// addresses guessing one password) and per address for any user (one address trying many).
	pairs, users, addrs *LoginLimiter
	// hashing bounds the password checks running at once: each takes 19 MiB, so without a bound
	// a flood of sign-ins, unknown users included, is a flood of memory.
	hashing  chan struct{}
	hashWait time.Duration
	now      func() time.Time
}

// SessionCookie is the console's session cookie.
const SessionCookie = "ferry_session"

// SessionLifetime is how long a console session lasts.
const SessionLifetime = 12 * time.Hour

// Errors callers map to HTTP statuses.
var (
	ErrUnauthenticated = errors.New("authentication required")
	ErrBadCredentials  = errors.New("wrong username or password")
	ErrRateLimited     = errors.New("too many failed sign-ins")
	ErrForbidden       = errors.New("your role does not allow this")
)

// BusyError means every password-check slot stayed taken for as long as a sign-in may wait.
type BusyError struct{ RetryAfter time.Duration }

func (e *BusyError) Error() string {
	return "too many sign-ins at once; try again in a moment"
}

// RateLimitError says how long to wait.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: try again in %s", ErrRateLimited, e.RetryAfter.Round(time.Second))
}
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// Sign-in limits: failures allowed in LoginWindow per user and address, per user, and per
// address, before further attempts wait for the oldest failure to age out.
const (
	LoginWindow      = 15 * time.Minute
	MaxFailsUserAddr = 5
	MaxFailsUser     = 20
	MaxFailsAddr     = 50
)

// A sign-in waits at most hashWait for a password-check slot; there are as many slots as CPUs,
// at least two.
const hashWait = 3 * time.Second

// MaxTokenLifetime is the longest an API token may live, and the lifetime of one created without
// an expiry.
const MaxTokenLifetime = 365 * 24 * time.Hour

// New returns a Service.
func New(st *store.Store) *Service {
	return &Service{st: st,
		pairs:    NewLoginLimiter(MaxFailsUserAddr, LoginWindow, nil),
		users:    NewLoginLimiter(MaxFailsUser, LoginWindow, nil),
		addrs:    NewLoginLimiter(MaxFailsAddr, LoginWindow, nil),
		hashing:  make(chan struct{}, max(2, runtime.NumCPU())),
		hashWait: hashWait,
		now:      time.Now}
}

// Bootstrap creates the admin user and the default workgroup on first start. It returns the
// generated password, if one was generated, so it can be printed once.
func (s *Service) Bootstrap(ctx context.Context, envPassword string) (generated string, err error) {
	n, err := s.st.CountUsers(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	pw := envPassword
	if pw == "" {
		pw = GeneratePassword()
		generated = pw
	}
	hash, err := HashPassword(pw)
	if err != nil {
		return "", err
	}
	u, err := s.st.CreateUser(ctx, "admin", hash, true)
	if err != nil {
		return "", err
	}
	wg, err := s.st.CreateWorkgroup(ctx, "Default", true)
	if err != nil {
		return "", err
	}
	if err := s.st.SetMember(ctx, wg.ID, u.ID, model.RoleOwner, true); err != nil {
		return "", err
	}
	return generated, s.st.Event(ctx, model.Event{Actor: "system", Object: "user/" + u.ID, Action: "user.bootstrap", Outcome: "ok"})
}

// Login checks a password, rate-limited per user name and client address. The attempt is counted
// before the password is hashed, and the hash waits for one of a bounded number of slots.
func (s *Service) Login(ctx context.Context, username, password, clientAddr string) (model.User, error) {
	user := strings.ToLower(username)
	keys := []struct {
		l   *LoginLimiter
		key string
	}{{s.pairs, user + "|" + clientAddr}, {s.users, user}, {s.addrs, clientAddr}}
	for i, k := range keys {
		if ok, wait := k.l.Reserve(k.key); !ok {
			for _, r := range keys[:i] {
				r.l.Release(r.key, false)
			}
			return model.User{}, &RateLimitError{RetryAfter: wait}
		}
	}
	ok, u, err := s.checkPassword(ctx, username, password)
	for _, k := range keys {
		k.l.Release(k.key, err == nil && !ok)
	}
	if err != nil {
		return model.User{}, err
	}
	outcome := "ok"
	if ok {
		s.pairs.Succeed(keys[0].key)
		s.users.Succeed(keys[1].key) // not the address: one good account must not reset a spray
	} else {
		outcome = "denied"
	}
	s.st.Event(ctx, model.Event{Actor: username, Object: "user/" + u.ID, Action: "login", Outcome: outcome, Detail: clientAddr})
	if !ok {
		return model.User{}, ErrBadCredentials
	}
	return u, nil
}

// checkPassword looks the user up and checks the password in a hashing slot.
func (s *Service) checkPassword(ctx context.Context, username, password string) (bool, model.User, error) {
	u, err := s.st.UserByName(ctx, username)
	if err != nil && !store.IsNotFound(err) {
		return false, model.User{}, err
	}
	wait := time.NewTimer(s.hashWait)
	defer wait.Stop()
	select {
	case s.hashing <- struct{}{}:
		defer func() { <-s.hashing }()
	case <-wait.C:
		return false, model.User{}, &BusyError{RetryAfter: time.Second}
	case <-ctx.Done():
		return false, model.User{}, ctx.Err()
	}
	if err == nil && !u.Disabled {
		ok, err := VerifyPassword(u.PasswordHash, password)
		return ok, u, err
	}
	// Spend the same time on unknown users so timing does not reveal which names exist.
	VerifyPassword(dummyHash(), password)
	return false, u, nil
}

// dummyHash is made on first use: as a package variable it cost every ferry process, even a
// one-shot copy, an argon2id run (19 MiB, tens of milliseconds) at start.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("ferry-timing-equaliser")
	return h
})

// NewSession creates a console session; the returned cookie value is shown only to the browser.
func (s *Service) NewSession(ctx context.Context, u model.User) (cookie string, sess model.Session, err error) {
	cookie = randomString(32)
	now := s.now().UTC()
	sess = model.Session{ID: HashToken(cookie), UserID: u.ID, CSRF: randomString(24), CreatedAt: now, ExpiresAt: now.Add(SessionLifetime)}
	return cookie, sess, s.st.CreateSession(ctx, sess)
}

// Logout ends the session of a cookie value.
func (s *Service) Logout(ctx context.Context, cookie string) error {
	return s.st.DeleteSession(ctx, HashToken(cookie))
}

// CreateToken issues an API token for a user; the plaintext is returned once and never stored.
func (s *Service) CreateToken(ctx context.Context, u model.User, name string, ttl time.Duration) (string, model.Token, error) {
	plain, hash := NewToken("fy")
	var exp *time.Time
	if ttl > 0 {
		t := s.now().UTC().Add(ttl)
		exp = &t
	}
	t, err := s.st.CreateToken(ctx, u.ID, name, hash, exp)
	if err != nil {
		return "", model.Token{}, err
	}
	s.st.Event(ctx, model.Event{Actor: u.Username, Object: "token/" + t.ID, Action: "token.create", Outcome: "ok", Detail: name})
	return plain, t, nil
}

// Authenticate resolves the caller of a request from its bearer token or session cookie.
func (s *Service) Authenticate(r *http.Request) (Principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return Principal{}, fmt.Errorf("%w: Authorization must be \"Bearer <token>\"", ErrUnauthenticated)
		}
		t, err := s.st.TokenByHash(ctx, HashToken(strings.TrimSpace(tok)))
		if store.IsNotFound(err) {
			return Principal{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
		} else if err != nil {
			return Principal{}, err
		}
		now := s.now()
		if !t.Usable(now) {
			return Principal{}, fmt.Errorf("%w: token revoked or expired", ErrUnauthenticated)
		}
		u, err := s.activeUser(ctx, t.UserID)
		if err != nil {
			return Principal{}, err
		}
		s.st.TouchToken(ctx, t.ID, now)
		return Principal{User: u, TokenID: t.ID}, nil
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		sess, err := s.st.Session(ctx, HashToken(c.Value))
		if store.IsNotFound(err) {
			return Principal{}, fmt.Errorf("%w: session expired", ErrUnauthenticated)
		} else if err != nil {
			return Principal{}, err
		}
		u, err := s.activeUser(ctx, sess.UserID)
		if err != nil {
			return Principal{}, err
		}
		return Principal{User: u, Session: &sess}, nil
	}
	return Principal{}, ErrUnauthenticated
}

func (s *Service) activeUser(ctx context.Context, id string) (model.User, error) {
	u, err := s.st.User(ctx, id)
	if store.IsNotFound(err) || (err == nil && u.Disabled) {
		return model.User{}, fmt.Errorf("%w: user disabled or removed", ErrUnauthenticated)
	}
	return u, err
}

// Role returns the principal's role in a workgroup; admins are Owners everywhere.
func (s *Service) Role(ctx context.Context, p Principal, workgroupID string) (model.Role, error) {
	if p.User.Admin {
		return model.RoleOwner, nil
	}
	r, err := s.st.MemberRole(ctx, workgroupID, p.User.ID)
	if store.IsNotFound(err) {
		return "", ErrForbidden
	}
	return r, err
}

// Require checks the principal holds at least min in the workgroup.
func (s *Service) Require(ctx context.Context, p Principal, workgroupID string, min model.Role) error {
	r, err := s.Role(ctx, p, workgroupID)
	if err != nil {
		return err
	}
	if !r.AtLeast(min) {
		return fmt.Errorf("%w: needs %s, you are %s", ErrForbidden, min, r)
	}
	return nil
}

// ProjectRole returns the principal's role on a project, or ErrForbidden when they may not see it:
// with project sharing off, members see only the projects they created; Owners see all.
func (s *Service) ProjectRole(ctx context.Context, p Principal, prj model.Project) (model.Role, error) {
	r, err := s.Role(ctx, p, prj.WorkgroupID)
	if err != nil {
		return "", err
	}
	if r == model.RoleOwner || prj.CreatedBy == p.User.ID {
		return r, nil
	}
	wg, err := s.st.Workgroup(ctx, prj.WorkgroupID)
	if err != nil {
		return "", err
	}
	if !wg.ProjectSharing {
		return "", ErrForbidden
	}
	return r, nil
}

// Workgroups lists the ids of the workgroups the principal may act in.
func (s *Service) Workgroups(ctx context.Context, p Principal) ([]string, error) {
	uid := p.User.ID
	if p.User.Admin {
		uid = ""
	}
	wgs, err := s.st.Workgroups(ctx, uid)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(wgs))
	for i, w := range wgs {
		ids[i] = w.ID
	}
	return ids, nil
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
