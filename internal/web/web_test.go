package web_test

import (
	"archive/zip"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/api/client"
	"github.com/ferry-migrate/ferry/internal/auth"
	_ "github.com/ferry-migrate/ferry/internal/connector/exo"
	_ "github.com/ferry-migrate/ferry/internal/connector/memory"
	"github.com/ferry-migrate/ferry/internal/m365sim"
	"github.com/ferry-migrate/ferry/internal/store"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
	"github.com/ferry-migrate/ferry/internal/testenv/server"
	"github.com/ferry-migrate/ferry/internal/web"
)

const adminPassword = server.AdminPassword

type env struct {
	srv   *httptest.Server
	st    *store.Store
	admin *client.Client // an API client with an admin token
}

func newEnv(t testing.TB) *env { return newEnvOn(t, storetest.SQLite(t)) }

func newEnvOn(t testing.TB, db storetest.DB) *env {
	t.Helper()
	s := server.Start(t, db, func(a *api.Server, au *auth.Service, log *slog.Logger) error {
		con, err := web.New(a.Handler(), au, log)
		if err != nil {
			return err
		}
		con.Register(a.Mux())
		return nil
	})
	return &env{srv: s.Srv, st: s.Store, admin: s.Admin}
}

// memoryProject makes two test-connector endpoints and a project named name.
func (e *env) memoryProject(t testing.TB, name string) {
	t.Helper()
	ctx := context.Background()
	for _, ep := range []string{name + "-src", name + "-dst"} {
		if err := e.admin.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": ep, "kind": "memory", "settings": map[string]any{"host": ep}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.admin.Do(ctx, "POST", "/api/v1/projects", map[string]any{"name": name, "workload": "mailbox", "source": name + "-src", "target": name + "-dst"}, nil); err != nil {
		t.Fatal(err)
	}
}

func (e *env) user(t testing.TB, name, role string) {
	t.Helper()
	if err := e.admin.Do(context.Background(), "POST", "/api/v1/users", map[string]any{"username": name, "password": adminPassword + name, "workgroup": "Default", "role": role}, nil); err != nil {
		t.Fatal(err)
	}
}

// browser is a signed-in console session without a browser: the session cookie is Secure, which
// Go's cookie jar keeps off plain http, so it is carried by hand.
type browser struct {
	t      testing.TB
	base   string
	cookie string
	csrf   string
	http   *http.Client
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (e *env) signIn(t testing.TB, user, pw string) *browser {
	t.Helper()
	b := &browser{t: t, base: e.srv.URL, http: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	resp, err := b.http.PostForm(e.srv.URL+"/login", url.Values{"username": {user}, "password": {pw}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in as %s: status %d", user, resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == auth.SessionCookie {
			b.cookie = ck.Name + "=" + ck.Value
		}
	}
	status, body := b.get("/")
	m := csrfRE.FindStringSubmatch(body)
	if status != 200 || m == nil {
		t.Fatalf("dashboard after sign in: %d, csrf found %v", status, m != nil)
	}
	b.csrf = m[1]
	return b
}

func (b *browser) do(req *http.Request) (int, string, http.Header) {
	b.t.Helper()
	if b.cookie != "" {
		req.Header.Set("Cookie", b.cookie)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header
}

func (b *browser) get(path string) (int, string) {
	req, _ := http.NewRequest("GET", b.base+path, nil)
	status, body, _ := b.do(req)
	return status, body
}

// post sends a form; the session's CSRF token is added unless the form sets csrf_token itself.
func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	if _, ok := form["csrf_token"]; !ok {
		form.Set("csrf_token", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// flash follows a redirect's flash cookie to the message the next page shows.
func flashOf(t testing.TB, h http.Header) string {
	t.Helper()
	for _, line := range h.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(line, "ferry_flash="); ok {
			v, _, _ = strings.Cut(v, ";")
			s, err := url.QueryUnescape(v)
			if err != nil {
				t.Fatal(err)
			}
			if text, ok := strings.CutPrefix(s, "error:"); ok {
				return "error: " + text
			}
			return strings.TrimPrefix(s, "ok:")
		}
	}
	return ""
}

func TestPagesNeedSignIn(t *testing.T) {
	e := newEnv(t)
	b := &browser{t: t, base: e.srv.URL, http: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, path := range []string{"/", "/endpoints", "/settings", "/organisation", "/projects/x", "/items/y"} {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		status, _, h := b.do(req)
		if status != http.StatusSeeOther || h.Get("Location") != "/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s signed out: %d to %q, want 303 to the sign-in page", path, status, h.Get("Location"))
		}
	}
	status, body, _ := b.post("/endpoints", url.Values{"name": {"x"}, "csrf_token": {""}})
	if status != http.StatusUnauthorized || !strings.Contains(body, "sign in again") {
		t.Errorf("signed-out POST: %d, want 401 with a reason", status)
	}
	status, body, _ = b.post("/login", url.Values{"username": {"admin"}, "password": {"wrong"}})
	if status != http.StatusUnauthorized || !strings.Contains(body, "username or password") {
		t.Errorf("wrong password: %d %q", status, body)
	}
	// A next outside this site is ignored.
	status, _, h := b.post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "next": {"//evil.example/"}})
	if status != http.StatusSeeOther || h.Get("Location") != "/" {
		t.Errorf("sign in with a foreign next: %d to %q, want /", status, h.Get("Location"))
	}
}

func TestActionsNeedTheCSRFTokenAndTheRole(t *testing.T) {
	e := newEnv(t)
	e.memoryProject(t, "acme")
	if err := e.admin.Upload(context.Background(), "POST", "/api/v1/projects/acme/items/import", "text/csv",
		strings.NewReader("source_email,target_email\na@src.example,a@dst.example\n"), &api.ImportResponse{}); err != nil {
		t.Fatal(err)
	}
	e.user(t, "rita", "Reader")
	e.user(t, "otto", "Operator")

	admin := e.signIn(t, "admin", adminPassword)
	status, body, _ := admin.post("/projects/acme/passes", url.Values{"type": {"verify"}, "csrf_token": {"forged"}})
	if status != http.StatusForbidden || !strings.Contains(body, "CSRF") {
		t.Errorf("POST with a wrong CSRF token: %d, want 403 naming CSRF", status)
	}

	rita := e.signIn(t, "rita", adminPassword+"rita")
	_, page := rita.get("/projects/acme")
	if !strings.Contains(page, "a@src.example") {
		t.Fatal("a Reader cannot see the project's items")
	}
	for _, id := range []string{`id="pass-full"`, `id="stop"`, `id="import"`, `name="items"`} {
		if strings.Contains(page, id) {
			t.Errorf("a Reader's project page has %s", id)
		}
	}
	// The Reader forges the form the page does not show: the API layer refuses it.
	status, body, _ = rita.post("/projects/acme/passes", url.Values{"type": {"full"}})
	if status != http.StatusForbidden || !strings.Contains(body, "needs Operator") {
		t.Errorf("Reader POST start: %d, want 403 needs Operator; body %q", status, body)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/projects/acme/passes", strings.NewReader(`{"type":"full"}`))
	req.Header.Set("X-CSRF-Token", rita.csrf)
	req.Header.Set("Content-Type", "application/json")
	if status, _, _ := rita.do(req); status != http.StatusForbidden {
		t.Errorf("Reader POST to the API: %d, want 403", status)
	}

	otto := e.signIn(t, "otto", adminPassword+"otto")
	_, page = otto.get("/projects/acme")
	if !strings.Contains(page, `id="pass-full"`) || strings.Contains(page, `id="import"`) {
		t.Error("an Operator should see the pass buttons and not the import form")
	}
	status, _, h := otto.post("/projects/acme/passes", url.Values{"type": {"verify"}})
	if msg := flashOf(t, h); status != http.StatusSeeOther || msg != "Verify pass started for 1 item." {
		t.Errorf("Operator verify: %d %q", status, msg)
	}
	// Bad input is answered on the page it came from, with the API's reason.
	status, _, h = otto.post("/projects/acme/passes", url.Values{"type": {"sideways"}})
	if msg := flashOf(t, h); status != http.StatusSeeOther || !strings.Contains(msg, "sideways") {
		t.Errorf("unknown pass type: %d %q", status, msg)
	}
}

func TestItemsTableFiltersSortsAndPages(t *testing.T) {
	e := newEnv(t)
	e.memoryProject(t, "big")
	var csv strings.Builder
	csv.WriteString("source_email,target_email\n")
	for i := 0; i < 120; i++ {
		fmt.Fprintf(&csv, "user%03d@src.example,user%03d@dst.example\n", i, i)
	}
	if err := e.admin.Upload(context.Background(), "POST", "/api/v1/projects/big/items/import", "text/csv", strings.NewReader(csv.String()), &api.ImportResponse{}); err != nil {
		t.Fatal(err)
	}
	b := e.signIn(t, "admin", adminPassword)
	rows := regexp.MustCompile(`<tr id="item-[^"]+">\s*<td><input type="checkbox" name="items" value="([^"]+)"`)
	emails := func(page string) []string {
		var out []string
		for _, m := range rows.FindAllStringSubmatch(page, -1) {
			out = append(out, m[1])
		}
		return out
	}
	_, page := b.get("/projects/big")
	got := emails(page)
	if len(got) != 50 || got[0] != "user000@src.example" || !strings.Contains(page, "120 items match; page 1 of 3.") {
		t.Fatalf("first page: %d rows from %v", len(got), got[:min(1, len(got))])
	}
	_, page = b.get("/projects/big?page=3")
	if got = emails(page); len(got) != 20 || got[19] != "user119@src.example" {
		t.Errorf("last page: %d rows, want 20 ending user119", len(got))
	}
	_, page = b.get("/projects/big?sort=-source&per=25")
	if got = emails(page); len(got) != 25 || got[0] != "user119@src.example" || !strings.Contains(page, `aria-sort="descending"`) {
		t.Errorf("descending sort: %d rows, first %v", len(got), got[:min(1, len(got))])
	}
	_, page = b.get("/projects/big?q=user11")
	if got = emails(page); len(got) != 10 || !strings.Contains(page, "10 items match.") {
		t.Errorf("text filter user11: %d rows, want 10", len(got))
	}
	_, page = b.get("/projects/big?status=Completed")
	if got = emails(page); len(got) != 0 || !strings.Contains(page, "No items match the filter.") {
		t.Errorf("status filter Completed: %d rows, want none", len(got))
	}
	// "All matching the filter" resolves the filter to the items on the server.
	status, _, h := b.post("/projects/big/passes", url.Values{"type": {"verify"}, "scope": {"filter"}, "q": {"user10"}})
	if msg := flashOf(t, h); status != http.StatusSeeOther || msg != "Verify pass started for 10 items." {
		t.Errorf("verify on the filter: %d %q", status, msg)
	}
}

func TestCSVImportShowsBadLines(t *testing.T) {
	e := newEnv(t)
	e.memoryProject(t, "imp")
	b := e.signIn(t, "admin", adminPassword)
	status, body := b.upload(t, "/projects/imp/import", "users.csv", "source_email,target_email\nok@src.example,ok@dst.example\nnot-an-address,x@dst.example\nb@src.example,\n")
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("bad CSV: status %d", status)
	}
	for _, want := range []string{"users.csv: CSV rejected, nothing imported: 2 bad lines", `<td class="num">3</td>`, `<td class="num">4</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("bad CSV page lacks %q", want)
		}
	}
	var page api.ItemPage
	if err := e.admin.Do(context.Background(), "GET", "/api/v1/projects/imp/items", nil, &page); err != nil || page.Total != 0 {
		t.Fatalf("after a rejected CSV the project has %d items (%v), want 0", page.Total, err)
	}
}

func (b *browser) upload(t testing.TB, path, filename, content string) (int, string) {
	t.Helper()
	var buf strings.Builder
	const boundary = "ferryboundary"
	fmt.Fprintf(&buf, "--%s\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n%s\r\n", boundary, b.csrf)
	fmt.Fprintf(&buf, "--%s\r\nContent-Disposition: form-data; name=\"csv\"; filename=%q\r\nContent-Type: text/csv\r\n\r\n%s\r\n--%s--\r\n", boundary, filename, content, boundary)
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(buf.String()))
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	status, body, _ := b.do(req)
	return status, body
}

func TestSettingsOrganisationAndEndpointForms(t *testing.T) {
	e := newEnv(t)
	b := e.signIn(t, "admin", adminPassword)
	ctx := context.Background()

	// A token is shown on the answer to its creation, and not on the next page.
	status, body, _ := b.post("/settings/tokens", url.Values{"name": {"laptop"}, "expires": {"30d"}})
	tok := regexp.MustCompile(`<code>(fy_[^<]+)</code>`).FindStringSubmatch(body)
	if status != http.StatusOK || tok == nil {
		t.Fatalf("create token: %d, token shown %v", status, tok != nil)
	}
	if err := client.New(e.srv.URL, tok[1]).Do(ctx, "GET", "/api/v1/me", nil, nil); err != nil {
		t.Errorf("the token shown does not work: %v", err)
	}
	if _, page := b.get("/settings"); strings.Contains(page, tok[1]) || !strings.Contains(page, "laptop") {
		t.Error("the settings page shows the token again, or does not list it")
	}

	// Users, roles and sharing.
	_, _, h := b.post("/users", url.Values{"username": {"una"}, "password": {"Una-Password-12345"}, "workgroup": {"Default"}, "role": {"Reader"}})
	if msg := flashOf(t, h); msg != "User una created." {
		t.Errorf("add user: %q", msg)
	}
	_, _, h = b.post("/users", url.Values{"username": {"weak"}, "password": {"short"}})
	if msg := flashOf(t, h); !strings.HasPrefix(msg, "error: password:") {
		t.Errorf("weak password: %q", msg)
	}
	var wgs []struct{ ID, Name string }
	if err := e.admin.Do(ctx, "GET", "/api/v1/workgroups", nil, &wgs); err != nil || len(wgs) != 1 {
		t.Fatal(wgs, err)
	}
	_, _, h = b.post("/workgroups/"+wgs[0].ID+"/members", url.Values{"user": {"una"}, "role": {"Manager"}})
	if msg := flashOf(t, h); msg != "una is now Manager." {
		t.Errorf("set role: %q", msg)
	}
	_, _, h = b.post("/workgroups/"+wgs[0].ID+"/sharing", url.Values{})
	if msg := flashOf(t, h); !strings.HasPrefix(msg, "Project sharing in Default is off") {
		t.Errorf("sharing off: %q", msg)
	}
	una := e.signIn(t, "una", "Una-Password-12345")
	if _, page := una.get("/settings"); strings.Contains(page, `id="add-user"`) || strings.Contains(page, "/sharing") {
		t.Error("a Manager sees the user or sharing forms")
	}
	status, _, _ = una.post("/workgroups/"+wgs[0].ID+"/sharing", url.Values{"project_sharing": {"on"}})
	if status != http.StatusForbidden {
		t.Errorf("a Manager changing sharing: %d, want 403", status)
	}

	// Customers and endpoints, with the API's reasons for bad input.
	_, _, h = b.post("/customers", url.Values{"name": {"Contoso"}, "domain": {"contoso.com"}})
	if msg := flashOf(t, h); msg != "Customer Contoso added." {
		t.Errorf("add customer: %q", msg)
	}
	_, _, h = b.post("/customers", url.Values{"name": {"Bad"}, "domain": {"not a domain"}})
	if msg := flashOf(t, h); !strings.Contains(msg, "not a valid email domain") {
		t.Errorf("bad domain: %q", msg)
	}
	if _, page := b.get("/organisation"); !strings.Contains(page, "contoso.com") {
		t.Error("the customer is not listed")
	}
	_, _, h = b.post("/endpoints", url.Values{"name": {"ex"}, "kind": {"imap"}, "host": {"imap.example.com"}, "port": {"99999"}})
	if msg := flashOf(t, h); !strings.Contains(msg, "port must be a number from 1 to 65535") {
		t.Errorf("bad port: %q", msg)
	}
	_, _, h = b.post("/endpoints", url.Values{"name": {"tenant"}, "kind": {"m365"}, "tenant": {"contoso.onmicrosoft.com"}, "client_id": {"abc"}, "client_secret": {"s3cret-value"}, "security": {"tls"}, "host": {"ignored"}})
	if msg := flashOf(t, h); msg != "Endpoint tenant added. Verify it to check its credentials." {
		t.Errorf("add m365 endpoint: %q", msg)
	}
	_, page := b.get("/endpoints")
	if !strings.Contains(page, "contoso.onmicrosoft.com") || !strings.Contains(page, "stored, encrypted") || strings.Contains(page, "s3cret-value") {
		t.Error("the endpoints page does not show the tenant with stored credentials, or shows the secret")
	}
}

func TestScheduleFromTheProjectPage(t *testing.T) {
	e := newEnv(t)
	e.memoryProject(t, "sch")
	if err := e.admin.Upload(context.Background(), "POST", "/api/v1/projects/sch/items/import", "text/csv",
		strings.NewReader("source_email,target_email\na@src.example,a@dst.example\n"), &api.ImportResponse{}); err != nil {
		t.Fatal(err)
	}
	b := e.signIn(t, "admin", adminPassword)
	// 22:00 in a browser at UTC+1 (getTimezoneOffset -60) is 21:00 UTC.
	_, _, h := b.post("/projects/sch/passes", url.Values{"schedule": {"1"}, "schedule_type": {"full"}, "at": {"2031-12-05T22:00"},
		"repeat": {"24h"}, "until": {"2031-12-09T22:00"}, "tz_offset": {"-60"}})
	if msg := flashOf(t, h); msg != "Full pass scheduled for 2031-12-05 21:00:00 UTC for every applicable item." {
		t.Errorf("schedule: %q", msg)
	}
	_, _, h = b.post("/projects/sch/passes", url.Values{"schedule": {"1"}, "schedule_type": {"full"}})
	if msg := flashOf(t, h); msg != "error: choose when the scheduled pass starts" {
		t.Errorf("schedule without a time: %q", msg)
	}
	_, page := b.get("/projects/sch")
	if !strings.Contains(page, "2031-12-05 21:00:00 UTC") || !strings.Contains(page, "24h0m0s") {
		t.Error("the project page does not list the schedule")
	}
	_, _, h = b.post("/projects/sch/schedules/cancel", url.Values{})
	if msg := flashOf(t, h); msg != "1 schedule cancelled." {
		t.Errorf("cancel: %q", msg)
	}
}

// TestM365EndpointFromTheForm adds an m365 endpoint pointing at the emulator and verifies it.
func TestM365EndpointFromTheForm(t *testing.T) {
	e := newEnv(t)
	sim := m365sim.New()
	srv := httptest.NewTLSServer(sim)
	defer srv.Close()
	sim.SetBaseURL(srv.URL)
	sim.Apply(m365sim.Seed{Tenants: []string{"contoso"}, Users: 1})
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	b := e.signIn(t, "admin", adminPassword)
	_, _, h := b.post("/endpoints", url.Values{"name": {"contoso"}, "kind": {"m365"}, "tenant": {"contoso.onmicrosoft.com"}, "client_id": {m365sim.SeedClientID},
		"client_secret": {m365sim.SeedSecret("contoso")}, "graph_host": {srv.URL}, "ca_cert": {ca}})
	if msg := flashOf(t, h); !strings.HasPrefix(msg, "Endpoint contoso added.") {
		t.Fatalf("add: %q", msg)
	}
	var eps []struct{ ID, Name string }
	if err := e.admin.Do(context.Background(), "GET", "/api/v1/endpoints", nil, &eps); err != nil || len(eps) != 1 {
		t.Fatal(eps, err)
	}
	_, _, h = b.post("/endpoints/"+eps[0].ID+"/verify", url.Values{"name": {"contoso"}})
	if msg := flashOf(t, h); msg != "Verify contoso: credentials accepted" {
		t.Errorf("verify: %q", msg)
	}
}

// TestAgentPackageFromTheProjectPage: a Manager downloads the agent package from the project
// page; a Reader sees no such form and a forged post is refused.
func TestAgentPackageFromTheProjectPage(t *testing.T) {
	agents := t.TempDir()
	if err := os.WriteFile(filepath.Join(agents, "ferry-agent-windows-amd64.exe"), []byte("MZ agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := server.Start(t, storetest.SQLite(t), func(a *api.Server, au *auth.Service, log *slog.Logger) error {
		a.SetAgentPackaging(agents, "", nil)
		con, err := web.New(a.Handler(), au, log)
		if err != nil {
			return err
		}
		con.Register(a.Mux())
		return nil
	})
	e := &env{srv: s.Srv, st: s.Store, admin: s.Admin}
	e.memoryProject(t, "acme")
	admin := e.signIn(t, "admin", adminPassword)
	if _, body := admin.get("/projects/acme"); !strings.Contains(body, `id="agent-package"`) {
		t.Fatal("the project page has no agent package form for the admin")
	}
	status, body, h := admin.post("/projects/acme/agent-package", url.Values{"os": {"windows"}})
	if status != 200 || h.Get("Content-Type") != "application/zip" || !strings.Contains(h.Get("Content-Disposition"), "ferry-agent-acme-windows.zip") {
		t.Fatalf("download: %d %v", status, h)
	}
	zr, err := zip.NewReader(strings.NewReader(body), int64(len(body)))
	if err != nil || len(zr.File) != 2 || zr.File[0].Name != "ferry-agent.exe" || zr.File[1].Name != "agent.json" {
		t.Fatalf("the package: %v %v", zr, err)
	}
	e.user(t, "rita", "Reader")
	rita := e.signIn(t, "rita", adminPassword+"rita")
	if _, body := rita.get("/projects/acme"); strings.Contains(body, `id="agent-package"`) {
		t.Error("a Reader is offered the agent package")
	}
	if status, _, _ := rita.post("/projects/acme/agent-package", url.Values{"os": {"windows"}}); status != 403 {
		t.Errorf("a Reader's forged download: %d, want 403", status)
	}
}
