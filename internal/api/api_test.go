package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/api/client"
	"github.com/ferry-migrate/ferry/internal/auth"
	_ "github.com/ferry-migrate/ferry/internal/connector/memory"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
	"github.com/ferry-migrate/ferry/internal/testenv/server"
)

const adminPassword = server.AdminPassword

type env struct {
	srv   *httptest.Server
	api   *api.Server
	st    *store.Store
	admin *client.Client
	db    storetest.DB
	stack *server.Stack
}

func newEnv(t testing.TB) *env { return newEnvOn(t, storetest.SQLite(t)) }

func newEnvOn(t testing.TB, db storetest.DB) *env {
	t.Helper()
	s := server.Start(t, db, nil)
	return &env{srv: s.Srv, api: s.API, st: s.Store, admin: s.Admin, db: db, stack: s}
}

// tokenFor signs in with a password and returns a client using a fresh API token.
func (e *env) tokenFor(t testing.TB, user, pw string) *client.Client {
	return e.stack.TokenFor(t, user, pw)
}

// project creates two memory endpoints (the source with a password) and a project.
func (e *env) project(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	for _, ep := range []map[string]any{
		{"name": "src", "kind": "memory", "settings": map[string]any{"host": "api-src"}, "credentials": map[string]string{"admin_password": "Endpoint-Secret-Pw-777"}},
		{"name": "dst", "kind": "memory", "settings": map[string]any{"host": "api-dst"}},
	} {
		if err := e.admin.Do(ctx, "POST", "/api/v1/endpoints", ep, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.admin.Do(ctx, "POST", "/api/v1/projects", map[string]any{"name": "acme", "workload": "mailbox", "source": "src", "target": "dst",
		"options": map[string]any{"max_concurrent": 5}}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestEveryRouteIsDocumentedAndEveryDocumentedRouteExists(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	resp, err := http.Get(e.srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	var documented, served []string
	for path, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+path)
		}
	}
	for _, r := range e.api.Routes() {
		served = append(served, r.Method+" "+r.Pattern)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("OpenAPI and routes differ.\ndocumented:\n%s\n\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
}

func TestEveryNonPublicRouteNeedsAuthentication(t *testing.T) {
	e := newEnv(t)
	checked := 0
	for _, r := range e.api.Routes() {
		if r.Public {
			continue
		}
		path := strings.NewReplacer("{id}", "x", "{user}", "x").Replace(r.Pattern)
		req, _ := http.NewRequest(r.Method, e.srv.URL+path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p client.Problem
		json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/problem+json" || p.Status != 401 {
			t.Errorf("%s %s without credentials: %d %q, want 401 problem", r.Method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		checked++
	}
	if checked < 30 {
		t.Fatalf("checked only %d routes", checked)
	}
}

func TestReaderCannotStartAPass(t *testing.T) {
	e := newEnv(t)
	e.project(t)
	ctx := context.Background()
	if err := e.admin.Do(ctx, "POST", "/api/v1/users", map[string]any{"username": "rita", "password": "Reader-Password-123", "workgroup": "Default", "role": "Reader"}, nil); err != nil {
		t.Fatal(err)
	}
	reader := e.tokenFor(t, "rita", "Reader-Password-123")
	var v api.ProjectView
	if err := reader.Do(ctx, "GET", "/api/v1/projects/acme", nil, &v); err != nil || v.Name != "acme" {
		t.Fatalf("reader reading the project: %+v %v", v, err)
	}
	err := reader.Do(ctx, "POST", "/api/v1/projects/acme/passes", map[string]string{"type": "full"}, nil)
	if client.StatusOf(err) != 403 || !strings.Contains(err.Error(), "needs Operator") {
		t.Fatalf("reader starting a pass: %v, want 403 needing Operator", err)
	}
	err = reader.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": "x", "kind": "imap", "settings": map[string]any{"host": "h"}}, nil)
	if client.StatusOf(err) != 403 {
		t.Fatalf("reader adding an endpoint: %v, want 403", err)
	}
	err = reader.Do(ctx, "GET", "/api/v1/users", nil, nil)
	if client.StatusOf(err) != 403 {
		t.Fatalf("reader listing users: %v, want 403", err)
	}
	// A cookie session without the CSRF token is refused even for an Owner.
	c := client.New(e.srv.URL, "")
	c.HTTP.Jar = nil
	login, _ := http.Post(e.srv.URL+"/api/v1/session", "application/json", strings.NewReader(`{"username":"admin","password":"`+adminPassword+`"}`))
	login.Body.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/projects/acme/passes", strings.NewReader(`{"type":"full"}`))
	for _, ck := range login.Cookies() {
		req.AddCookie(ck)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("cookie POST without CSRF token: %d, want 403", resp.StatusCode)
	}
}

func TestRevokedTokenStopsWorking(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var out struct {
		Token string
		Info  model.Token
	}
	if err := e.admin.Do(ctx, "POST", "/api/v1/tokens", map[string]string{"name": "ci", "expires": "30d"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.Token, "fy_") || out.Info.ExpiresAt == nil {
		t.Fatalf("token = %q, info %+v", out.Token, out.Info)
	}
	c := client.New(e.srv.URL, out.Token)
	if err := c.Do(ctx, "GET", "/api/v1/me", nil, nil); err != nil {
		t.Fatalf("fresh token refused: %v", err)
	}
	if err := e.admin.Do(ctx, "DELETE", "/api/v1/tokens/"+out.Info.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	err := c.Do(ctx, "GET", "/api/v1/me", nil, nil)
	if client.StatusOf(err) != 401 || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v, want 401 revoked", err)
	}
	// The token list shows the token but never its value.
	var list []map[string]any
	e.admin.Do(ctx, "GET", "/api/v1/tokens", nil, &list)
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), out.Token) || strings.Contains(string(raw), auth.HashToken(out.Token)) {
		t.Fatal("token list reveals a token value or hash")
	}
}

func TestFailedLoginsAreRateLimited(t *testing.T) {
	e := newEnv(t)
	c := client.New(e.srv.URL, "")
	for i := 0; i < 5; i++ {
		if err := c.Login(context.Background(), "admin", "wrong"); client.StatusOf(err) != 401 {
			t.Fatalf("attempt %d: %v, want 401", i+1, err)
		}
	}
	err := c.Login(context.Background(), "admin", adminPassword)
	if client.StatusOf(err) != 429 {
		t.Fatalf("sixth attempt (right password): %v, want 429", err)
	}
}

// csv1000 returns a 1,000-line item CSV (header + 999 items) with bad lines at the given numbers.
func csv1000(bad map[int]string) string {
	var b strings.Builder
	b.WriteString("Source_Email,target_email\n")
	for line := 2; line <= 1000; line++ {
		if v, ok := bad[line]; ok {
			b.WriteString(v + "\n")
			continue
		}
		fmt.Fprintf(&b, "user%d@old.example,user%d@new.example\n", line, line)
	}
	return b.String()
}

func TestCSVWithThreeBadLinesIsRejectedWhole(t *testing.T) {
	e := newEnv(t)
	e.project(t)
	body := csv1000(map[int]string{
		17:  "not-an-address,x@new.example",
		500: "user2@old.example,dup@new.example", // duplicate of line 2's source
		999: "only-one-field@old.example",
	})
	var res api.ImportResponse
	err := e.admin.Upload(context.Background(), "POST", "/api/v1/projects/acme/items/import", "text/csv", strings.NewReader(body), &res)
	p, ok := err.(*client.Problem)
	if !ok || p.Status != 422 {
		t.Fatalf("import: %v, want 422", err)
	}
	var lines []int
	for _, l := range p.Errors {
		lines = append(lines, l.Line)
	}
	if fmt.Sprint(lines) != "[17 500 999]" {
		t.Fatalf("bad lines reported = %v (%+v), want [17 500 999]", lines, p.Errors)
	}
	if !strings.Contains(p.Errors[1].Reason, "line 2") {
		t.Fatalf("duplicate reason %q does not name the first line", p.Errors[1].Reason)
	}
	var page api.ItemPage
	e.admin.Do(context.Background(), "GET", "/api/v1/projects/acme/items", nil, &page)
	if page.Total != 0 {
		t.Fatalf("%d items imported from a rejected CSV, want 0", page.Total)
	}
	// The same file without the bad lines imports all 997 items.
	good := csv1000(map[int]string{17: "a17@old.example,a17@new.example", 500: "a500@old.example,a500@new.example", 999: "a999@old.example,a999@new.example"})
	if err := e.admin.Upload(context.Background(), "POST", "/api/v1/projects/acme/items/import", "text/csv", strings.NewReader(good), &res); err != nil {
		t.Fatal(err)
	}
	if res.Created != 999 {
		t.Fatalf("created %d, want 999", res.Created)
	}
}

func TestPasswordsNeverLeaveTheServer(t *testing.T) {
	e := newEnv(t)
	e.project(t)
	ctx := context.Background()
	csv := "source_email,target_email,source_password\nann@old.example,ann@new.example,Item-Pw-Walrus-31\n"
	var res api.ImportResponse
	if err := e.admin.Upload(ctx, "POST", "/api/v1/projects/acme/items/import", "text/csv", strings.NewReader(csv), &res); err != nil {
		t.Fatal(err)
	}
	var page api.ItemPage
	e.admin.Do(ctx, "GET", "/api/v1/projects/acme/items", nil, &page)
	for _, path := range []string{"/api/v1/endpoints", "/api/v1/endpoints/src", "/api/v1/projects", "/api/v1/projects/acme",
		"/api/v1/projects/acme/items", "/api/v1/projects/acme/items/export", "/api/v1/projects/acme/stats", "/api/v1/events", "/api/v1/items/" + page.Items[0].ID} {
		var sb strings.Builder
		if err := e.admin.Do(ctx, "GET", path, nil, &sb); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		for _, pw := range []string{"Endpoint-Secret-Pw-777", "Item-Pw-Walrus-31"} {
			if strings.Contains(sb.String(), pw) {
				t.Fatalf("GET %s returns the password %q", path, pw)
			}
		}
		if path == "/api/v1/endpoints/src" && !strings.Contains(sb.String(), `"has_credentials":true`) {
			t.Fatalf("endpoint does not say it has credentials: %s", sb.String())
		}
	}
	e.st.Close()
	files, _ := filepath.Glob(filepath.Join(e.db.DataDir, "ferry.db*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, pw := range []string{"Endpoint-Secret-Pw-777", "Item-Pw-Walrus-31"} {
			if strings.Contains(string(data), pw) {
				t.Fatalf("%s holds the password %q in plaintext", filepath.Base(f), pw)
			}
		}
	}
}

func TestProblemDetailsOnBadInput(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cases := []struct {
		body any
		want string
	}{
		{map[string]any{"name": "x", "kind": "ftp"}, `unknown endpoint kind "ftp"`},
		{map[string]any{"name": "x", "kind": "imap"}, "needs settings.host"},
		{map[string]any{"name": "x", "kind": "imap", "settings": map[string]any{"host": "h", "security": "ssl"}}, `unknown security "ssl"`},
		{map[string]any{"name": "x", "kind": "imap", "settings": map[string]any{"host": "h"}, "colour": "red"}, `unknown field "colour"`},
	}
	for _, c := range cases {
		err := e.admin.Do(ctx, "POST", "/api/v1/endpoints", c.body, nil)
		if client.StatusOf(err) != 400 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("POST endpoint %v: %v, want 400 containing %q", c.body, err, c.want)
		}
	}
	err := e.admin.Do(ctx, "GET", "/api/v1/projects/nope", nil, nil)
	if client.StatusOf(err) != 404 {
		t.Errorf("missing project: %v, want 404", err)
	}
}

func TestExpiredTokenAndMetrics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var out struct{ Token string }
	if err := e.admin.Do(ctx, "POST", "/api/v1/tokens", map[string]string{"name": "short", "expires": "1ms"}, &out); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if err := client.New(e.srv.URL, out.Token).Do(ctx, "GET", "/api/v1/me", nil, nil); client.StatusOf(err) != 401 || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v, want 401", err)
	}
	e.project(t)
	var res api.ImportResponse
	if err := e.admin.Upload(ctx, "POST", "/api/v1/projects/acme/items/import", "text/csv", strings.NewReader("source_email,target_email\na@x.example,a@y.example\nb@x.example,b@y.example\n"), &res); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`ferry_items{status="NotStarted"} 2`, "ferry_passes_total 0", "ferry_bytes_copied_total 0", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
