// Package api serves Ferry's REST API under /api/v1/, plus health, readiness and metrics. Every
// route declares who may call it; the route table is also what the OpenAPI test checks.
package api

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/store"
)

// Server holds what the handlers need.
type Server struct {
	st   *store.Store
	auth *auth.Service
	eng  *engine.Engine
	log  *slog.Logger
	mux  *http.ServeMux
	// agentDir holds agent binaries for packages; certSHA256 pins the server's certificate.
	agentDir, certSHA256 string
	updateKey            ed25519.PublicKey
	// trusted are the reverse proxies whose X-Forwarded-For names the client.
	trusted []netip.Prefix
}

// SetTrustedProxies names the reverse proxies whose X-Forwarded-For and X-Forwarded-Proto headers
// are believed. From any other peer they are ignored, so a client cannot pick the address the
// sign-in limiter counts it under.
func (s *Server) SetTrustedProxies(prefixes []netip.Prefix) { s.trusted = prefixes }

// access says who may call a route. Role checks on workgroup and project objects happen in the
// handler, against the object's workgroup, because only the handler knows which object it is.
type access int

const (
	public access = iota // anyone, e.g. health checks and sign-in
	member               // any signed-in user; the handler checks the role on the object
	admin                // Ferry administrators only
)

type route struct {
	method, pattern string
	access          access
	handle          func(w http.ResponseWriter, r *http.Request, p auth.Principal) error
}

// New builds the API server.
func New(st *store.Store, au *auth.Service, eng *engine.Engine, log *slog.Logger) *Server {
	s := &Server{st: st, auth: au, eng: eng, log: log, mux: http.NewServeMux()}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.method+" "+rt.pattern, s.wrap(rt))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(engine.NewCollector(st), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path), nil)
	})
	return s
}

// Handler returns the HTTP handler; other packages (the console) may mount beside it.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if r.TLS != nil || s.forwardedHTTPS(r) {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		s.mux.ServeHTTP(w, r)
	})
}

// Mux exposes the mux so the console can add its pages.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// RouteInfo describes a route for tests: the OpenAPI check and the authentication sweep.
type RouteInfo struct {
	Method, Pattern string
	Public          bool
}

// Routes lists every API route.
func (s *Server) Routes() []RouteInfo {
	var out []RouteInfo
	for _, rt := range s.routes() {
		out = append(out, RouteInfo{rt.method, rt.pattern, rt.access == public})
	}
	return out
}

type principalKey struct{}

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var p auth.Principal
		if rt.access != public {
			var err error
			p, err = s.auth.Authenticate(r)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			if rt.access == admin && !p.User.Admin {
				problem(w, http.StatusForbidden, "only Ferry administrators may do this", nil)
				return
			}
			// Cookie-authenticated writes must carry the session's CSRF token; bearer tokens
			// cannot be sent by a foreign page, so they need none.
			if p.Session != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
				if r.Header.Get("X-CSRF-Token") != p.Session.CSRF && r.FormValue("csrf_token") != p.Session.CSRF {
					problem(w, http.StatusForbidden, "missing or wrong CSRF token", nil)
					return
				}
			}
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<20)
		if err := rt.handle(w, r, p); err != nil {
			s.fail(w, r, err)
		}
		s.log.Debug("api", "method", r.Method, "path", r.URL.Path, "user", p.User.Username, "ms", time.Since(start).Milliseconds())
	})
}

// PrincipalFrom returns the caller of a request handled by the API.
func PrincipalFrom(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(auth.Principal)
	return p, ok
}

// httpError carries a status and optional extension members for the problem document.
type httpError struct {
	status int
	detail string
	ext    map[string]any
}

func (e *httpError) Error() string { return e.detail }

func errStatus(status int, format string, args ...any) error {
	return &httpError{status: status, detail: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return errStatus(http.StatusBadRequest, format, args...)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var rl *auth.RateLimitError
	var busy *auth.BusyError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		problem(w, he.status, he.detail, he.ext)
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", fmt.Sprint(int(rl.RetryAfter.Seconds())+1))
		problem(w, http.StatusTooManyRequests, err.Error(), nil)
	case errors.As(err, &busy):
		w.Header().Set("Retry-After", fmt.Sprint(int(busy.RetryAfter.Seconds())))
		problem(w, http.StatusServiceUnavailable, err.Error(), nil)
	case errors.Is(err, auth.ErrUnauthenticated), errors.Is(err, auth.ErrBadCredentials):
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
		problem(w, http.StatusUnauthorized, err.Error(), nil)
	case errors.Is(err, auth.ErrForbidden):
		problem(w, http.StatusForbidden, err.Error(), nil)
	case errors.Is(err, store.ErrNotFound):
		problem(w, http.StatusNotFound, err.Error(), nil)
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrAmbiguous):
		problem(w, http.StatusConflict, err.Error(), nil)
	case errors.Is(err, store.ErrNothingToDo):
		problem(w, http.StatusConflict, err.Error(), nil)
	case errors.As(err, &mbe):
		problem(w, http.StatusRequestEntityTooLarge, "request body too large", nil)
	default:
		s.log.Error("api error", "method", r.Method, "path", r.URL.Path, "err", err)
		problem(w, http.StatusInternalServerError, "internal error; the server log has details", nil)
	}
}

// problem writes an RFC 9457 problem details document.
func problem(w http.ResponseWriter, status int, detail string, ext map[string]any) {
	body := map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail}
	for k, v := range ext {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body strictly: one value, and unknown fields are an error naming them, so
// typos do not pass silently.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			return nil
		} else if err == nil {
			return badRequest("invalid JSON body: data after the first JSON value")
		}
	}
	if errors.Is(err, io.EOF) {
		return badRequest("request body is empty; expected JSON")
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return badRequest("invalid JSON body: %v", err)
}

// clientAddr is the address of the client: the peer, or, when the peer is a trusted proxy, the
// nearest address in X-Forwarded-For that is not one of the trusted proxies.
func (s *Server) clientAddr(r *http.Request) string {
	peer := peerAddr(r)
	if !s.isTrusted(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a garbled hop: trust nothing to its left
		}
		if !s.isTrusted(a) {
			return a.Unmap().String()
		}
	}
	return peer.String()
}

// forwardedHTTPS says whether a trusted proxy says the client reached it over HTTPS.
func (s *Server) forwardedHTTPS(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") && s.isTrusted(peerAddr(r))
}

func (s *Server) isTrusted(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		a, _ := netip.ParseAddr(host)
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
