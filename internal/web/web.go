// Package web is Ferry's console: server-rendered pages at /, with a little JavaScript for live
// progress over server-sent events. The console is a client of the REST API, in-process: every
// read and every action is an API request carrying the browser's session cookie and the form's
// CSRF token, so the API's role checks and CSRF check are the only ones there are.
package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferry-migrate/ferry/internal/api/client"
	"github.com/ferry-migrate/ferry/internal/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console serves the pages.
type Console struct {
	api   http.Handler
	auth  *auth.Service
	log   *slog.Logger
	pages map[string]*template.Template
}

// New builds a console over the API handler.
func New(apiHandler http.Handler, au *auth.Service, log *slog.Logger) (*Console, error) {
	c := &Console{api: apiHandler, auth: au, log: log, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", base, err)
		}
		c.pages[base] = t
	}
	return c, nil
}

// Register adds the console's routes to mux, beside the API's.
func (c *Console) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(http.FileServerFS(static))))
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("POST /logout", c.handle(c.logout))
	mux.HandleFunc("GET /{$}", c.handle(c.dashboard))
	mux.HandleFunc("GET /projects/new", c.handle(c.newProject))
	mux.HandleFunc("POST /projects", c.handle(c.createProject))
	mux.HandleFunc("GET /projects/{id}", c.handle(c.project))
	mux.HandleFunc("POST /projects/{id}/passes", c.handle(c.startPass))
	mux.HandleFunc("POST /projects/{id}/stop", c.handle(c.stop))
	mux.HandleFunc("POST /projects/{id}/import", c.handle(c.importCSV))
	mux.HandleFunc("POST /projects/{id}/schedules/cancel", c.handle(c.cancelSchedules))
	mux.HandleFunc("POST /projects/{id}/agent-package", c.handle(c.agentPackage))
	mux.HandleFunc("GET /items/{id}", c.handle(c.item))
	mux.HandleFunc("GET /endpoints", c.handle(c.endpoints))
	mux.HandleFunc("POST /endpoints", c.handle(c.createEndpoint))
	mux.HandleFunc("POST /endpoints/{id}/verify", c.handle(c.verifyEndpoint))
	mux.HandleFunc("GET /organisation", c.handle(c.organisation))
	mux.HandleFunc("POST /customers", c.handle(c.createCustomer))
	mux.HandleFunc("POST /workgroups", c.handle(c.createWorkgroup))
	mux.HandleFunc("POST /workgroups/{id}/sharing", c.handle(c.setSharing))
	mux.HandleFunc("POST /workgroups/{id}/members", c.handle(c.setMember))
	mux.HandleFunc("GET /settings", c.handle(c.settings))
	mux.HandleFunc("POST /settings/tokens", c.handle(c.createToken))
	mux.HandleFunc("POST /settings/tokens/{id}/revoke", c.handle(c.revokeToken))
	mux.HandleFunc("POST /users", c.handle(c.createUser))
	mux.HandleFunc("POST /users/{id}/disabled", c.handle(c.setDisabled))
	mux.HandleFunc("/", c.handle(func(pg *page) error {
		return &client.Problem{Status: http.StatusNotFound, Title: "Not Found", Detail: "there is no page " + pg.r.URL.Path}
	}))
}

func cacheFor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// page is one request to a signed-in page.
type page struct {
	c    *Console
	w    http.ResponseWriter
	r    *http.Request
	p    auth.Principal
	csrf string
}

// handle signs the caller in from the session cookie, or sends them to the sign-in page.
func (c *Console) handle(fn func(pg *page) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := c.auth.Authenticate(r)
		if err != nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.renderError(w, r, &client.Problem{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: "your session has ended; sign in again"})
			return
		}
		pg := &page{c: c, w: w, r: r, p: p}
		if p.Session != nil {
			pg.csrf = p.Session.CSRF
		}
		w.Header().Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, 64<<20)
		if err := fn(pg); err != nil {
			c.renderError(w, r, err)
		}
	}
}

// call sends one API request in-process as the signed-in browser. Writes carry the CSRF token the
// browser posted, never one the console looks up, so a forged form fails the API's CSRF check.
func (pg *page) call(method, path string, body, out any) error {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd, ctype = b, "text/csv" // the one raw upload the console makes: an items file
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd, ctype = bytes.NewReader(data), "application/json"
	}
	return pg.c.do(pg.r.Context(), pg.r, method, path, rd, ctype, pg.r.PostFormValue("csrf_token"), out, nil)
}

// do runs the API handler on an in-memory request and decodes the answer: JSON into out, a
// problem document into a *client.Problem. Cookies the API sets (sign-in, sign-out) are passed on
// to w when it is given.
func (c *Console) do(ctx context.Context, from *http.Request, method, path string, body io.Reader, ctype, csrf string, out any, w http.ResponseWriter) error {
	req, err := http.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return err
	}
	req.RemoteAddr = from.RemoteAddr
	req.Host = from.Host
	for _, h := range []string{"Cookie", "Authorization", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto"} {
		for _, v := range from.Header.Values(h) {
			req.Header.Add(h, v)
		}
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if csrf != "" && method != http.MethodGet {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	c.api.ServeHTTP(rec, req)
	if w != nil {
		for _, ck := range rec.header.Values("Set-Cookie") {
			w.Header().Add("Set-Cookie", ck)
		}
	}
	if rec.status >= 400 {
		p := &client.Problem{Status: rec.status, Title: http.StatusText(rec.status)}
		if json.Unmarshal(rec.body.Bytes(), p) != nil {
			p.Detail = strings.TrimSpace(rec.body.String())
		}
		return p
	}
	if out == nil || rec.status == http.StatusNoContent {
		return nil
	}
	if raw, ok := out.(*rawAnswer); ok {
		raw.header, raw.body = rec.header, rec.body.Bytes()
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

// rawAnswer takes an API answer that is not JSON (a download) as it is.
type rawAnswer struct {
	header http.Header
	body   []byte
}

// recorder is the in-memory response of an in-process API call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// view is what every template gets.
type view struct {
	Title  string
	Nav    string
	User   string
	Admin  bool
	CSRF   string
	Flash  *flash
	Data   any
	Status int
}

type flash struct {
	Error bool
	Text  string
}

// render writes a page. The layout shows the flash message left by the previous action.
func (pg *page) render(status int, name, nav, title string, data any) error {
	v := view{Title: title, Nav: nav, User: pg.p.User.Username, Admin: pg.p.User.Admin, CSRF: pg.csrf, Data: data, Status: status}
	v.Flash = takeFlash(pg.w, pg.r)
	return pg.c.render(pg.w, status, name, v)
}

func (c *Console) render(w http.ResponseWriter, status int, name string, v view) error {
	t, ok := c.pages[name]
	if !ok {
		return fmt.Errorf("no console template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// renderError shows an API problem (or any error) as a page with the same status.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, err error) {
	p, ok := err.(*client.Problem)
	if !ok {
		c.log.Error("console", "path", r.URL.Path, "err", err)
		p = &client.Problem{Status: http.StatusInternalServerError, Title: "Internal Server Error", Detail: "the server log has details"}
	}
	v := view{Title: p.Title, Data: p, Status: p.Status}
	if rerr := c.render(w, p.Status, "error", v); rerr != nil {
		http.Error(w, p.Detail, p.Status)
	}
}

// redirect ends an action: the flash says what happened, and the browser loads to.
func (pg *page) redirect(to string, isErr bool, format string, args ...any) error {
	setFlash(pg.w, flash{Error: isErr, Text: fmt.Sprintf(format, args...)})
	http.Redirect(pg.w, pg.r, to, http.StatusSeeOther)
	return nil
}

// fail turns an API refusal of an action (bad input, a conflict) into a flash on the page the
// action came from. A refused caller (401, 403) and server errors get an error page with the
// API's status, so a forged or unauthorised post is answered 403, as the API answers it.
func (pg *page) fail(to string, err error) error {
	if p, ok := err.(*client.Problem); ok && p.Status < 500 && p.Status != http.StatusUnauthorized && p.Status != http.StatusForbidden {
		return pg.redirect(to, true, "%s", p.Detail)
	}
	return err
}

const flashCookie = "ferry_flash"

func setFlash(w http.ResponseWriter, f flash) {
	v := "ok:"
	if f.Error {
		v = "error:"
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(v + f.Text), Path: "/", MaxAge: 60, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	v, err := url.QueryUnescape(ck.Value)
	if err != nil {
		return nil
	}
	if text, ok := strings.CutPrefix(v, "error:"); ok {
		return &flash{Error: true, Text: text}
	}
	text, _ := strings.CutPrefix(v, "ok:")
	return &flash{Text: text}
}
