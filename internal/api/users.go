package api

import (
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/age"
	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// maxSignInBody is the most a sign-in request may send: a name and a password, with room to spare.
const maxSignInBody = 4 << 10

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxSignInBody)
	var req loginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return badRequest("username and password are required")
	}
	u, err := s.auth.Login(r.Context(), req.Username, req.Password, s.clientAddr(r))
	if err != nil {
		return err
	}
	cookie, sess, err := s.auth.NewSession(r.Context(), u)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: cookie, Path: "/", HttpOnly: true, Secure: secureCookie(r),
		SameSite: http.SameSiteLaxMode, Expires: sess.ExpiresAt})
	return writeJSON(w, http.StatusOK, map[string]any{"user": u, "csrf_token": sess.CSRF, "expires_at": sess.ExpiresAt})
}

// secureCookie says whether the session cookie is marked Secure: over TLS (direct or through a
// proxy that says so) and on loopback, where browsers accept Secure cookies over plain http. A
// console reached over plain http on another address could not sign in at all with a Secure
// cookie; there, the transport is what needs fixing (serve --tls-cert, or a TLS proxy).
func secureCookie(r *http.Request) bool {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if c, err := r.Cookie(auth.SessionCookie); err == nil {
		if err := s.auth.Logout(r.Context(), c.Value); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secureCookie(r)})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	wgs, err := s.st.Workgroups(r.Context(), p.User.ID)
	if err != nil {
		return err
	}
	type membership struct {
		model.Workgroup
		Role model.Role `json:"role"`
	}
	out := []membership{}
	for _, wg := range wgs {
		role, err := s.auth.Role(r.Context(), p, wg.ID)
		if err != nil {
			return err
		}
		out = append(out, membership{wg, role})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"user": p.User, "workgroups": out})
}

type tokenRequest struct {
	Name    string `json:"name"`
	Expires string `json:"expires,omitempty"` // "30d", "12h"; empty = never
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req tokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validName("name", req.Name); err != nil {
		return err
	}
	ttl, err := lifetime(req.Expires, auth.MaxTokenLifetime, auth.MaxTokenLifetime)
	if err != nil {
		return err
	}
	plain, t, err := s.auth.CreateToken(r.Context(), p.User, req.Name, ttl)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"token": plain, "info": t})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	ts, err := s.st.Tokens(r.Context(), p.User.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(ts))
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	t, err := s.st.Token(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if t.UserID != p.User.ID && !p.User.Admin {
		return store.ErrNotFound
	}
	if err := s.st.RevokeToken(r.Context(), t.ID); err != nil {
		return err
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "token/" + t.ID, Action: "token.revoke", Outcome: "ok"})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	us, err := s.st.Users(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(us))
}

type userRequest struct {
	Username  string `json:"username"`
	Password  string `json:"password"`
	Admin     bool   `json:"admin"`
	Workgroup string `json:"workgroup,omitempty"`
	Role      string `json:"role,omitempty"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req userRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validName("username", req.Username); err != nil {
		return err
	}
	if err := auth.CheckPasswordPolicy(req.Password); err != nil {
		return badRequest("password: %v", err)
	}
	hash, err := auth.HashPassword(req.Password)
	if err != nil {
		return err
	}
	u, err := s.st.CreateUser(r.Context(), req.Username, hash, req.Admin)
	if err != nil {
		return err
	}
	if req.Workgroup != "" {
		role, err := model.ParseRole(req.Role)
		if err != nil {
			return badRequest("%v", err)
		}
		wg, err := s.st.Workgroup(r.Context(), req.Workgroup)
		if err != nil {
			return err
		}
		if err := s.st.SetMember(r.Context(), wg.ID, u.ID, role, true); err != nil {
			return err
		}
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "user/" + u.ID, Action: "user.create", Outcome: "ok", Detail: u.Username})
	return writeJSON(w, http.StatusCreated, u)
}

type userUpdate struct {
	Password *string `json:"password,omitempty"`
	Disabled *bool   `json:"disabled,omitempty"`
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req userUpdate
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := s.st.User(r.Context(), r.PathValue("id"))
	if store.IsNotFound(err) {
		u, err = s.st.UserByName(r.Context(), r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	if req.Password != nil {
		if err := auth.CheckPasswordPolicy(*req.Password); err != nil {
			return badRequest("password: %v", err)
		}
		hash, err := auth.HashPassword(*req.Password)
		if err != nil {
			return err
		}
		if err := s.st.SetUserPassword(r.Context(), u.ID, hash); err != nil {
			return err
		}
		// A new password ends every session and token made with the old one, but the caller's own.
		keepSession := ""
		if p.Session != nil {
			keepSession = p.Session.ID
		}
		if err := s.st.EndCredentials(r.Context(), u.ID, keepSession, p.TokenID); err != nil {
			return err
		}
	}
	if req.Disabled != nil {
		if err := s.st.SetUserDisabled(r.Context(), u.ID, *req.Disabled); err != nil {
			return err
		}
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "user/" + u.ID, Action: "user.update", Outcome: "ok"})
	u, err = s.st.User(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) listWorkgroups(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	uid := p.User.ID
	if p.User.Admin {
		uid = ""
	}
	wgs, err := s.st.Workgroups(r.Context(), uid)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(wgs))
}

type workgroupRequest struct {
	Name           string `json:"name"`
	ProjectSharing *bool  `json:"project_sharing,omitempty"`
}

func (s *Server) createWorkgroup(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req workgroupRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validName("name", req.Name); err != nil {
		return err
	}
	sharing := req.ProjectSharing == nil || *req.ProjectSharing
	wg, err := s.st.CreateWorkgroup(r.Context(), req.Name, sharing)
	if err != nil {
		return err
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "workgroup/" + wg.ID, Action: "workgroup.create", Outcome: "ok"})
	return writeJSON(w, http.StatusCreated, wg)
}

func (s *Server) workgroupFor(r *http.Request, p auth.Principal, min model.Role) (model.Workgroup, error) {
	wg, err := s.st.Workgroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return wg, err
	}
	if _, err := s.auth.Role(r.Context(), p, wg.ID); err != nil {
		return wg, store.ErrNotFound // do not reveal workgroups the caller is not in
	}
	return wg, s.auth.Require(r.Context(), p, wg.ID, min)
}

func (s *Server) updateWorkgroup(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req workgroupRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	wg, err := s.workgroupFor(r, p, model.RoleOwner)
	if err != nil {
		return err
	}
	if req.Name != "" && req.Name != wg.Name {
		return badRequest("renaming a workgroup is not supported")
	}
	if req.ProjectSharing != nil {
		if err := s.st.SetProjectSharing(r.Context(), wg.ID, *req.ProjectSharing); err != nil {
			return err
		}
		wg.ProjectSharing = *req.ProjectSharing
		s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "workgroup/" + wg.ID, Action: "workgroup.sharing", Outcome: "ok"})
	}
	return writeJSON(w, http.StatusOK, wg)
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	wg, err := s.workgroupFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	ms, err := s.st.Members(r.Context(), wg.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(ms))
}

type memberRequest struct {
	Role   string `json:"role"`
	Active *bool  `json:"active,omitempty"`
}

func (s *Server) setMember(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req memberRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	wg, err := s.workgroupFor(r, p, model.RoleOwner)
	if err != nil {
		return err
	}
	role, err := model.ParseRole(req.Role)
	if err != nil {
		return badRequest("%v", err)
	}
	u, err := s.st.UserByName(r.Context(), r.PathValue("user"))
	if store.IsNotFound(err) {
		u, err = s.st.User(r.Context(), r.PathValue("user"))
	}
	if err != nil {
		return err
	}
	active := req.Active == nil || *req.Active
	if err := s.st.SetMember(r.Context(), wg.ID, u.ID, role, active); err != nil {
		return err
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "workgroup/" + wg.ID, Action: "member.set", Outcome: "ok", Detail: u.Username + "=" + string(role)})
	return writeJSON(w, http.StatusOK, model.Member{WorkgroupID: wg.ID, UserID: u.ID, Username: u.Username, Role: role, Active: active})
}

func validName(field, v string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return badRequest("%s is required", field)
	}
	if len(v) > 200 {
		return badRequest("%s is longer than 200 characters", field)
	}
	return noControl(field, v)
}

// noControl refuses control characters (a CR/LF stored in a name or setting would end up in a
// log line or a protocol command).
func noControl(field, v string) error {
	for _, c := range v {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return badRequest("%s contains a control character", field)
		}
	}
	return nil
}

// lifetime parses a token's "expires" ("30d", "12h"): empty is def; zero, negative and more than
// most are refused.
func lifetime(expires string, def, most time.Duration) (time.Duration, error) {
	if strings.TrimSpace(expires) == "" {
		return def, nil
	}
	d, err := age.Parse(expires)
	if err != nil || d <= 0 {
		return 0, badRequest("expires: want a duration like 30d or 12h, got %q", expires)
	}
	if d > most {
		return 0, badRequest("expires: %q is longer than the %dd a token may live", expires, most/(24*time.Hour))
	}
	return d, nil
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
