package api_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/api/client"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
)

// twoWorkgroups gives the env a second workgroup "blue" with a Manager (bob) and a Reader (rhea),
// and the Default workgroup the admin's project acme. It returns acme's id and clients for bob and rhea.
func (e *env) twoWorkgroups(t *testing.T) (acmeID string, bob, rhea *client.Client) {
	t.Helper()
	ctx := context.Background()
	e.project(t)
	var acme api.ProjectView
	if err := e.admin.Do(ctx, "GET", "/api/v1/projects/acme", nil, &acme); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Do(ctx, "POST", "/api/v1/workgroups", map[string]any{"name": "blue"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, role string }{{"bob", "Manager"}, {"rhea", "Reader"}} {
		if err := e.admin.Do(ctx, "POST", "/api/v1/users", map[string]any{"username": u.name, "password": "Blue-Password-" + u.name + "-1",
			"workgroup": "blue", "role": u.role}, nil); err != nil {
			t.Fatal(err)
		}
	}
	bob = e.tokenFor(t, "bob", "Blue-Password-bob-1")
	rhea = e.tokenFor(t, "rhea", "Blue-Password-rhea-1")
	for _, ep := range []string{"bsrc", "bdst"} {
		if err := bob.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": ep, "kind": "memory", "settings": map[string]any{"host": ep}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return acme.ID, bob, rhea
}

// The probe's cross-workgroup scenario: a project named "%" and one named after another
// workgroup's project id. Each caller gets only its own workgroup's events and objects.
func TestAuditTrailAndLookupsStayInTheWorkgroup(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		e := newEnvOn(t, db)
		ctx := context.Background()
		acmeID, bob, rhea := e.twoWorkgroups(t)
		var pct, twin model.Project
		for _, p := range []struct {
			name string
			out  *model.Project
		}{{"%", &pct}, {acmeID, &twin}} {
			if err := bob.Do(ctx, "POST", "/api/v1/projects", map[string]any{"name": p.name, "workload": "mailbox", "source": "bsrc", "target": "bdst"}, p.out); err != nil {
				t.Fatalf("create project %q: %v", p.name, err)
			}
		}
		// "%" must not widen the query: rhea sees the one event of the project named "%".
		var evs []model.Event
		if err := rhea.Do(ctx, "GET", "/api/v1/events?object=project/"+pathEscape("%"), nil, &evs); err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Object != "project/"+pct.ID || evs[0].Action != "project.create" {
			t.Fatalf("events of project %%: %+v, want only its project.create", evs)
		}
		// A prefix of an id is not an id.
		err := rhea.Do(ctx, "GET", "/api/v1/events?object=project/"+acmeID[:4], nil, &evs)
		if client.StatusOf(err) != 404 {
			t.Fatalf("events of a project id prefix: %v (%d events), want 404", err, len(evs))
		}
		// acme's id, said by a caller of blue, names blue's project called that, never acme.
		var got api.ProjectView
		if err := rhea.Do(ctx, "GET", "/api/v1/projects/"+acmeID, nil, &got); err != nil {
			t.Fatalf("project named after acme's id: %v", err)
		}
		if got.ID != twin.ID {
			t.Fatalf("GET /projects/%s as rhea gave project %s (%q), want blue's %s", acmeID, got.ID, got.Name, twin.ID)
		}
		if err := rhea.Do(ctx, "GET", "/api/v1/events?object=project/"+acmeID, nil, &evs); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Object != "project/"+twin.ID {
				t.Fatalf("rhea's trail of %q holds %s %s", acmeID, ev.Object, ev.Action)
			}
		}
		if len(evs) != 1 {
			t.Fatalf("rhea's trail of %q: %d events, want 1", acmeID, len(evs))
		}
		// The admin, who sees both workgroups, gets acme by its id, and the twin by its own id.
		if err := e.admin.Do(ctx, "GET", "/api/v1/projects/"+acmeID, nil, &got); err != nil || got.ID != acmeID {
			t.Fatalf("admin GET /projects/%s: %s %v, want acme", acmeID, got.ID, err)
		}
		// The admin's object filter matches exactly too: "project/%" is no pattern.
		if err := e.admin.Do(ctx, "GET", "/api/v1/events?object=project/"+pathEscape("%"), nil, &evs); err != nil {
			t.Fatal(err)
		}
		if len(evs) != 0 {
			t.Fatalf("admin's events of object project/%%: %d, want none (no project has the id %%)", len(evs))
		}
		// An endpoint named after another workgroup's endpoint id resolves in the caller's workgroup.
		var src model.Endpoint
		if err := e.admin.Do(ctx, "GET", "/api/v1/endpoints/src", nil, &src); err != nil {
			t.Fatal(err)
		}
		var twinEP model.Endpoint
		if err := bob.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": src.ID, "kind": "memory", "settings": map[string]any{"host": "x"}}, &twinEP); err != nil {
			t.Fatal(err)
		}
		var ep model.Endpoint
		if err := rhea.Do(ctx, "GET", "/api/v1/endpoints/"+src.ID, nil, &ep); err != nil || ep.ID != twinEP.ID {
			t.Fatalf("rhea GET /endpoints/%s: %s %v, want blue's %s", src.ID, ep.ID, err, twinEP.ID)
		}
	})
}

func pathEscape(s string) string { return strings.ReplaceAll(s, "%", "%25") }

// Sixty wrong passwords at once for one user: the limiter's allowance (5) reaches the password
// check, the rest are refused before it.
func TestConcurrentWrongPasswordsCannotRaceTheLimiter(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := client.New(e.srv.URL, "").Login(context.Background(), "admin", "wrong-password")
			mu.Lock()
			statuses[client.StatusOf(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[401] > 5 || statuses[401]+statuses[429] != 60 {
		t.Fatalf("60 concurrent wrong passwords: %v, want at most 5 × 401 and the rest 429", statuses)
	}
}

func signIn(t *testing.T, url, user, pw, forwardedFor string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/api/v1/session", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw)))
	req.Header.Set("Content-Type", "application/json")
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Behind a trusted proxy, one attacker's failures lock only the attacker's address out; from an
// untrusted peer, X-Forwarded-For is ignored so it cannot be used to dodge the limiter.
func TestLimiterKeysByTheClientBehindTrustedProxies(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		if s := signIn(t, e.srv.URL, "admin", "wrong", fmt.Sprintf("203.0.113.%d", i)); s != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, s)
		}
	}
	if s := signIn(t, e.srv.URL, "admin", adminPassword, "198.51.100.7"); s != 429 {
		t.Fatalf("untrusted peer naming another address in X-Forwarded-For: %d, want 429", s)
	}

	e = newEnv(t)
	e.api.SetTrustedProxies([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	for i := range 5 {
		if s := signIn(t, e.srv.URL, "admin", "wrong", "10.9.9.9, 203.0.113.9"); s != 401 {
			t.Fatalf("attacker failure %d: %d, want 401", i+1, s)
		}
	}
	if s := signIn(t, e.srv.URL, "admin", adminPassword, "203.0.113.9"); s != 429 {
		t.Fatalf("attacker's sixth try: %d, want 429", s)
	}
	if s := signIn(t, e.srv.URL, "admin", adminPassword, "198.51.100.7"); s != 200 {
		t.Fatalf("the real admin behind the same proxy: %d, want 200", s)
	}
	// Many addresses guessing one user's password are stopped by the per-user allowance.
	got429 := 0
	for i := range 40 {
		if signIn(t, e.srv.URL, "admin", "wrong", fmt.Sprintf("192.0.2.%d", i)) == 429 {
			got429++
		}
	}
	if got429 == 0 {
		t.Fatal("40 addresses guessed admin's password with no refusal")
	}
}

func TestSignInBodyIsSmall(t *testing.T) {
	e := newEnv(t)
	big := fmt.Sprintf(`{"username":"admin","password":%q}`, strings.Repeat("x", 64<<10))
	resp, err := http.Post(e.srv.URL+"/api/v1/session", "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("64 KiB sign-in body: %d, want 413", resp.StatusCode)
	}
}

func TestPasswordResetAndDisableEndOldCredentials(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.admin.Do(ctx, "POST", "/api/v1/users", map[string]any{"username": "una", "password": "Una-Password-0001", "workgroup": "Default", "role": "Reader"}, nil); err != nil {
		t.Fatal(err)
	}
	tok := e.tokenFor(t, "una", "Una-Password-0001")
	cookie := client.New(e.srv.URL, "")
	if err := cookie.Login(ctx, "una", "Una-Password-0001"); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Do(ctx, "PATCH", "/api/v1/users/una", map[string]any{"password": "Una-Password-0002"}, nil); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*client.Client{"token": tok, "session": cookie} {
		if err := c.Do(ctx, "GET", "/api/v1/me", nil, nil); client.StatusOf(err) != 401 {
			t.Errorf("%s from before the password reset: %v, want 401", name, err)
		}
	}
	tok = e.tokenFor(t, "una", "Una-Password-0002")
	for _, disabled := range []bool{true, false} {
		if err := e.admin.Do(ctx, "PATCH", "/api/v1/users/una", map[string]any{"disabled": disabled}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := tok.Do(ctx, "GET", "/api/v1/me", nil, nil); client.StatusOf(err) != 401 {
		t.Fatalf("token from before a disable, after re-enabling: %v, want 401", err)
	}
	if err := e.tokenFor(t, "una", "Una-Password-0002").Do(ctx, "GET", "/api/v1/me", nil, nil); err != nil {
		t.Fatalf("a new token after re-enabling: %v", err)
	}
}

func TestTokenLifetimeHasACeiling(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, exp := range []string{"0s", "-5h", "100000d", "9999999h"} {
		err := e.admin.Do(ctx, "POST", "/api/v1/tokens", map[string]string{"name": "x", "expires": exp}, nil)
		if client.StatusOf(err) != 400 || !strings.Contains(err.Error(), "expires") {
			t.Errorf("expires %q: %v, want 400 naming expires", exp, err)
		}
	}
	var out struct{ Info model.Token }
	if err := e.admin.Do(ctx, "POST", "/api/v1/tokens", map[string]string{"name": "default"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Info.ExpiresAt == nil || out.Info.ExpiresAt.After(time.Now().Add(367*24*time.Hour)) || out.Info.ExpiresAt.Before(time.Now().Add(364*24*time.Hour)) {
		t.Fatalf("token without expires expires at %v, want in a year", out.Info.ExpiresAt)
	}
}

func TestBadCSVErrorListIsCapped(t *testing.T) {
	e := newEnv(t)
	e.project(t)
	var b strings.Builder
	b.WriteString("source_email,target_email\n")
	for i := range 100000 {
		fmt.Fprintf(&b, "not-an-address-%d,x@new.example\n", i)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/projects/acme/items/import", strings.NewReader(b.String()))
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+e.admin.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 422 || len(body) > 64<<10 {
		t.Fatalf("100,000 bad lines: %d with a %d-byte body, want 422 under 64 KiB", resp.StatusCode, len(body))
	}
	for _, want := range []string{`"errors_total":100000`, "100000 bad lines", `"line":101,`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("answer lacks %s: %.300s", want, body)
		}
	}
	if strings.Contains(string(body), `"line":102,`) {
		t.Error("answer lists more than the first 100 bad lines")
	}
}

func TestStrictJSONAndControlCharacters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/endpoints", strings.NewReader(`{"name":"a","kind":"memory","settings":{"host":"h"}} {"name":"b"}`))
	req.Header.Set("Authorization", "Bearer "+e.admin.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "after the first JSON value") {
		t.Fatalf("two JSON values: %d %s, want 400", resp.StatusCode, body)
	}
	for _, host := range []string{"imap.example\r\nX-Injected: 1", "imap.example\x00", "imap example"} {
		err := e.admin.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": "x", "kind": "imap", "settings": map[string]any{"host": host}}, nil)
		if client.StatusOf(err) != 400 || !strings.Contains(err.Error(), "host") {
			t.Errorf("host %q: %v, want 400 naming the host", host, err)
		}
	}
	err = e.admin.Do(ctx, "POST", "/api/v1/workgroups", map[string]any{"name": "red\nteam"}, nil)
	if client.StatusOf(err) != 400 || !strings.Contains(err.Error(), "control character") {
		t.Errorf("workgroup name with a newline: %v, want 400", err)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("API answer X-Content-Type-Options = %q, want nosniff", got)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("plain-http answer carries HSTS %q", got)
	}
	tlsSrv := httptest.NewTLSServer(e.api.Handler())
	defer tlsSrv.Close()
	c := tlsSrv.Client()
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	resp, err = c.Get(tlsSrv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Errorf("HTTPS answer Strict-Transport-Security = %q, want max-age=…", got)
	}
}
