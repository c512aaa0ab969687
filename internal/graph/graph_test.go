package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/testenv/reference"
	"github.com/ferry-migrate/ferry/internal/throttle"
)

type staticToken string

func (s staticToken) Token(ctx context.Context, scope string) (string, error) { return string(s), nil }

func newTestClient(t *testing.T, h http.HandlerFunc) (*Client, *throttle.Memory) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	budgets := throttle.NewMemory()
	return New(Config{BaseURL: srv.URL, Tenant: "contoso", App: "app", Tokens: staticToken("tok-123"), Budgets: budgets, MaxAttempts: 6}), budgets
}

func TestHeadersOnEveryRequest(t *testing.T) {
	var got http.Header
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		if r.URL.Path != "/v1.0/users/alice@contoso.com" && r.URL.Path != "/upload/session" {
			t.Errorf("path = %s", r.URL.Path)
		}
		fmt.Fprint(w, `{"id":"u1","proxyAddresses":["SMTP:alice@contoso.com","smtp:a@contoso.com"]}`)
	})
	u, err := c.User(context.Background(), "alice@contoso.com")
	if err != nil || u.ID != "u1" || len(u.ProxyAddresses) != 2 {
		t.Fatalf("user = %+v, %v", u, err)
	}
	if got.Get("User-Agent") != "ISV|Ferry|Ferry/"+Version || got.Get("Prefer") != `IdType="ImmutableId"` || got.Get("Authorization") != "Bearer tok-123" {
		t.Fatalf("headers: %v", got)
	}
	if _, err = c.Do(context.Background(), Request{Method: "PUT", Path: c.base + "/upload/session?x=1", Body: []byte("chunk"), NoAuth: true}, nil); err != nil {
		t.Fatal(err)
	}
	if got.Get("Authorization") != "" || got.Get("User-Agent") == "" {
		t.Fatalf("a NoAuth upload carried the token (or lost its User-Agent): %v", got)
	}
}

func TestRetryHonoursRetryAfterAndReplaysTheBody(t *testing.T) {
	var calls atomic.Int32
	var bodies []string
	c, budgets := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":{"code":"ApplicationThrottled","message":"slow down"}}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"f1","displayName":"Projects"}`)
	})
	start := time.Now()
	f, err := c.CreateMailFolder(context.Background(), "alice", "", "Projects")
	if err != nil || f.ID != "f1" {
		t.Fatalf("create folder: %+v %v", f, err)
	}
	if el := time.Since(start); el < 950*time.Millisecond {
		t.Fatalf("retried after %s, Retry-After said 1 s", el)
	}
	if len(bodies) != 2 || bodies[0] != bodies[1] || !strings.Contains(bodies[0], `"displayName":"Projects"`) {
		t.Fatalf("bodies = %q", bodies)
	}
	// The 429 paused alice's budget; another mailbox was not held up.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if r, err := budgets.Acquire(ctx, throttle.Key{Tenant: "contoso", App: "app", Resource: "bob"}, throttle.Outlook, 1, 0); err != nil {
		t.Fatalf("bob's budget blocked by alice's 429: %v", err)
	} else {
		r()
	}
}

func TestRetryBackoffOn503AndGiveUp(t *testing.T) {
	var calls atomic.Int32
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"value":[]}`)
	})
	if _, err := c.Do(context.Background(), Request{Method: "GET", Path: "/users"}, &Page[User]{}); err != nil || calls.Load() != 4 {
		t.Fatalf("after 3 × 503: err %v, calls %d", err, calls.Load())
	}
	calls.Store(-100)
	c.cfg.MaxAttempts = 2
	_, err := c.Do(context.Background(), Request{Method: "GET", Path: "/users"}, nil)
	if !IsStatus(err, 503) {
		t.Fatalf("after giving up: %v, want the 503", err)
	}
}

func TestRetryOnConnectionReset(t *testing.T) {
	var calls atomic.Int32
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		fmt.Fprint(w, `{"id":"m1"}`)
	})
	m, err := c.CreateMessageFromMIME(context.Background(), "alice", "inbox", []byte("Subject: x\r\n\r\nhi\r\n"))
	if err != nil || m.ID != "m1" || calls.Load() != 2 {
		t.Fatalf("after a reset: %+v %v (calls %d)", m, err, calls.Load())
	}
}

func TestPagingAndDeltaLink(t *testing.T) {
	var srvURL string
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("page") {
		case "":
			fmt.Fprintf(w, `{"value":[{"id":"1"},{"id":"2"}],"@odata.nextLink":"%s/v1.0/users/a/mailFolders/inbox/messages/delta?page=2"}`, srvURL)
		case "2":
			fmt.Fprintf(w, `{"value":[{"id":"3","@removed":{"reason":"deleted"}}],"@odata.deltaLink":"%s/v1.0/delta?token=abc"}`, srvURL)
		}
	})
	srvURL = c.base
	seq, delta := c.MessagesDelta(context.Background(), "a", "inbox", "")
	var ids []string
	for m, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
		if m.ID == "3" && (m.Removed == nil || m.Removed.Reason != "deleted") {
			t.Fatal("@removed not parsed")
		}
	}
	if strings.Join(ids, ",") != "1,2,3" || delta() != srvURL+"/v1.0/delta?token=abc" {
		t.Fatalf("ids %v, delta %q", ids, delta())
	}
}

func TestBatchLimitsAndOrder(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Requests []BatchRequest }
		json.NewDecoder(r.Body).Decode(&in)
		var out []BatchResponse
		for i := len(in.Requests) - 1; i >= 0; i-- { // answer out of order, as Graph may
			out = append(out, BatchResponse{ID: in.Requests[i].ID, Status: 200 + i})
		}
		json.NewEncoder(w).Encode(map[string]any{"responses": out})
	})
	reqs := make([]BatchRequest, 21)
	for i := range reqs {
		reqs[i] = BatchRequest{ID: fmt.Sprint(i + 1), Method: "GET", URL: "/me"}
	}
	if _, err := c.Batch(context.Background(), reqs); err == nil || !strings.Contains(err.Error(), "at most 20") {
		t.Fatalf("21 requests: %v", err)
	}
	if _, err := c.Batch(context.Background(), []BatchRequest{{ID: "1", Method: "GET", URL: "/me", DependsOn: []string{"2"}}, {ID: "2", Method: "GET", URL: "/me"}}); err == nil ||
		!strings.Contains(err.Error(), `depends on "2"`) {
		t.Fatalf("forward dependency: %v", err)
	}
	res, err := c.Batch(context.Background(), reqs[:3])
	if err != nil || res[0].ID != "1" || res[2].ID != "3" || res[0].Status != 200 || res[2].Status != 202 {
		t.Fatalf("batch = %+v %v", res, err)
	}
}

// TestDocumentedSamplesParse decodes the Graph reference docs' response samples for the entities
// Ferry reads and checks that every field Ferry's types declare survives decoding unchanged.
func TestDocumentedSamplesParse(t *testing.T) {
	data, err := os.ReadFile(reference.Path(t, "reference/graph/graph-v1_0-docs-samples.json"))
	if err != nil {
		t.Fatalf("samples: %v", err)
	}
	var doc struct {
		Mocks []struct {
			Request struct {
				URL    string `json:"url"`
				Method string `json:"method"`
			} `json:"request"`
			Response struct {
				StatusCode int             `json:"statusCode"`
				Body       json.RawMessage `json:"body"`
			} `json:"response"`
		} `json:"mocks"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	kinds := []struct {
		name  string
		match func(url string) bool
		check func(t *testing.T, raw json.RawMessage) int
	}{
		{"users", func(u string) bool { return strings.HasSuffix(strings.Split(u, "?")[0], "/v1.0/users") }, checkAll[User]},
		{"mailFolders", func(u string) bool { return strings.HasSuffix(strings.Split(u, "?")[0], "/mailFolders") }, checkAll[MailFolder]},
		{"mailFolders delta", func(u string) bool { return strings.HasSuffix(strings.Split(u, "?")[0], "/mailFolders/delta") }, checkDelta},
		{"messages delta", func(u string) bool { return strings.HasSuffix(strings.Split(u, "?")[0], "/messages/delta") }, checkDelta},
		{"messages", func(u string) bool {
			p := strings.Split(u, "?")[0]
			return strings.HasSuffix(p, "/messages") && (strings.Contains(p, "/mailFolders/") || strings.HasSuffix(p, "/me/messages") || strings.Contains(p, "/users/"))
		}, checkAll[Message]},
		{"subscribedSkus", func(u string) bool { return strings.HasSuffix(strings.Split(u, "?")[0], "/subscribedSkus") }, checkAll[SubscribedSku]},
		{"events", func(u string) bool { return strings.HasSuffix(strings.Split(u, "?")[0], "/events") }, checkAll[Event]},
		{"contacts", func(u string) bool { return strings.HasSuffix(strings.Split(u, "?")[0], "/contacts") }, checkAll[Item]},
		{"todo tasks", func(u string) bool {
			return strings.HasSuffix(strings.Split(u, "?")[0], "/tasks") && strings.Contains(u, "/todo/")
		}, checkAll[Item]},
		{"drive children", func(u string) bool { return strings.HasSuffix(strings.Split(u, "?")[0], "/children") }, checkAll[DriveItem]},
		{"permissions", func(u string) bool {
			return strings.HasSuffix(strings.Split(u, "?")[0], "/permissions") && strings.Contains(u, "/items/")
		}, checkAll[Permission]},
	}
	for _, k := range kinds {
		objects := 0
		for _, m := range doc.Mocks {
			if m.Request.Method == "GET" && m.Response.StatusCode == 200 && k.match(m.Request.URL) && len(m.Response.Body) > 0 {
				objects += k.check(t, m.Response.Body)
			}
		}
		if objects == 0 {
			t.Errorf("%s: no sample objects found", k.name)
		}
		t.Logf("%s: %d sample objects parsed", k.name, objects)
	}
}

// checkAll decodes a collection body into T and compares every field T declares with the sample.
func checkAll[T any](t *testing.T, raw json.RawMessage) int {
	var page struct {
		Value []json.RawMessage `json:"value"`
	}
	if json.Unmarshal(raw, &page) != nil {
		return 0
	}
	n := 0
	for _, obj := range page.Value {
		// Some reference samples are templates ("datetime-value"): no service sends those.
		if strings.Contains(string(obj), `-value"`) {
			t.Logf("skipped a template sample: %.80s", obj)
			continue
		}
		n++
		var typed T
		if err := json.Unmarshal(obj, &typed); err != nil {
			t.Errorf("%T: %v in %s", typed, err, obj)
			continue
		}
		var sample, back map[string]any
		json.Unmarshal(obj, &sample)
		again, _ := json.Marshal(typed)
		json.Unmarshal(again, &back)
		for field, v := range back {
			if sv, ok := sample[field]; ok && !subset(v, sv) {
				t.Errorf("%T.%s: sample %v, parsed %v", typed, field, sv, v)
			}
		}
	}
	return n
}

// checkDelta checks the shape Ferry's paging relies on: a value array and a nextLink or deltaLink.
// The delta samples in the reference are templates (no ids, "datetime-value"), so only the shape is
// checked; the typed fields are covered by the non-delta samples of the same entities.
func checkDelta(t *testing.T, raw json.RawMessage) int {
	var p Page[map[string]any]
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Errorf("delta sample: %v", err)
		return 0
	}
	if p.NextLink == "" && p.DeltaLink == "" {
		t.Errorf("delta sample without @odata.nextLink or @odata.deltaLink: %.200s", raw)
	}
	return len(p.Value)
}

// subset reports whether every field of parsed (what Ferry's type kept) equals the sample's;
// fields Ferry does not declare are ignored at every depth.
func subset(parsed, sample any) bool {
	switch p := parsed.(type) {
	case map[string]any:
		s, ok := sample.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range p {
			if sv, ok := s[k]; ok && !subset(v, sv) {
				return false
			}
		}
		return true
	case []any:
		s, ok := sample.([]any)
		if !ok || len(s) != len(p) {
			return false
		}
		for i := range p {
			if !subset(p[i], s[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(normalise(parsed), normalise(sample))
}

// normalise makes dates comparable whatever their fraction digits.
func normalise(v any) any {
	if s, ok := v.(string); ok {
		if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return tm.UTC().Format(time.RFC3339Nano)
		}
	}
	return v
}

func TestClouds(t *testing.T) {
	for name, graphHost := range map[string]string{"": "https://graph.microsoft.com", "usgov": "https://graph.microsoft.us", "usgovdod": "https://dod-graph.microsoft.us", "china": "https://microsoftgraph.chinacloudapi.cn"} {
		c, err := CloudByName(name)
		if err != nil || c.GraphURL != graphHost {
			t.Errorf("cloud %q = %+v %v", name, c, err)
		}
	}
	if _, err := CloudByName("moon"); err == nil {
		t.Fatal("unknown cloud accepted")
	}
}

// Redirects (an archive's 308s) are followed on the same service, with the token and the body
// again; a redirect to another host is refused rather than sent the token.
func TestRedirectsStayOnTheService(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the client followed a redirect to another host, with Authorization %q", r.Header.Get("Authorization"))
	}))
	defer other.Close()
	var got []string
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+string(body))
		switch r.URL.Path {
		case "/beta/admin/exchange/mailboxes/MBX:main/exportItems":
			w.Header().Set("Location", "/beta/admin/exchange/mailboxes/MBX:aux/exportItems")
			w.WriteHeader(http.StatusPermanentRedirect)
		case "/beta/admin/exchange/mailboxes/MBX:aux/exportItems":
			w.Write([]byte(`{"value":[{"itemId":"i1","data":"ZGF0YQ=="}]}`))
		default:
			w.Header().Set("Location", other.URL+"/v1.0/x")
			w.WriteHeader(http.StatusPermanentRedirect)
		}
	})
	items, err := c.Beta().ExportItems(context.Background(), "MBX:main", []string{"i1"})
	if err != nil || len(items) != 1 || items[0].Data != "ZGF0YQ==" {
		t.Fatalf("export through a redirect: %+v %v", items, err)
	}
	if len(got) != 2 || got[1] != `POST /beta/admin/exchange/mailboxes/MBX:aux/exportItems Bearer tok-123 {"ItemIds":["i1"]}` {
		t.Fatalf("requests: %q", got)
	}
	if _, err := c.Do(context.Background(), Request{Method: "GET", Path: "/users/x"}, nil); err == nil || !strings.Contains(err.Error(), "which is not on") {
		t.Fatalf("a redirect to another host: %v, want it refused", err)
	}
}
