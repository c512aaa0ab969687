// Package graph is Ferry's own Microsoft Graph client over net/http: clouds, tokens, a middleware
// chain (throttle budgets, then retry, then logging), paging, delta links, $batch, and typed calls
// for only what Ferry uses.
package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/throttle"
)

// Version goes into the User-Agent, which Microsoft asks ISVs to set as "ISV|Company|Product/Version".
var Version = "0.1.0"

// UserAgent identifies Ferry's traffic to Microsoft.
func UserAgent() string { return "ISV|Ferry|Ferry/" + Version }

// Cloud is a Microsoft cloud's sign-in and Graph endpoints.
type Cloud struct {
	Name     string
	LoginURL string // e.g. https://login.microsoftonline.com
	GraphURL string // e.g. https://graph.microsoft.com
}

// The national clouds.
var Clouds = map[string]Cloud{
	"global":   {"global", "https://login.microsoftonline.com", "https://graph.microsoft.com"},
	"usgov":    {"usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"},        // GCC High (L4)
	"usgovdod": {"usgovdod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"}, // DoD (L5)
	"china":    {"china", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"},
}

// CloudByName returns a national cloud; "" means global.
func CloudByName(name string) (Cloud, error) {
	if name == "" {
		name = "global"
	}
	c, ok := Clouds[strings.ToLower(name)]
	if !ok {
		return Cloud{}, fmt.Errorf("unknown cloud %q: want global, usgov, usgovdod or china", name)
	}
	return c, nil
}

// TokenSource gives access tokens for a scope. azidentity credentials satisfy it through
// AzureCredential; tests and the emulator use their own.
type TokenSource interface {
	Token(ctx context.Context, scope string) (string, error)
}

// Config builds a Client.
type Config struct {
	Cloud       Cloud
	BaseURL     string // overrides Cloud.GraphURL (the emulator)
	Tenant, App string // budget keys
	Tokens      TokenSource
	Budgets     throttle.Store // nil: no client-side budgets
	// Budget classifies a request: which budget it draws on, with what cost. Nil: Outlook limits
	// per mailbox, keyed by the path's users/{id} segment.
	Budget      func(r *http.Request) (throttle.Key, throttle.Limits, int)
	MaxAttempts int // per request, including the first (default 6)
	Log         *slog.Logger
	HTTP        *http.Client
}

// Client calls Microsoft Graph v1.0.
type Client struct {
	base    string
	version string // v1.0, or beta for the few calls Ferry needs from it
	cfg     Config
	http    *http.Client
	scope   string
}

// Beta returns a client for the same service that calls /beta: what archive mailboxes need
// (their ids and redirects are documented only there). It shares budgets and tokens.
func (c *Client) Beta() *Client {
	b := *c
	b.version = "beta"
	return &b
}

// New returns a client.
func New(cfg Config) *Client {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	base := cfg.BaseURL
	if base == "" {
		base = cfg.Cloud.GraphURL
	}
	base = strings.TrimRight(base, "/")
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Minute}
	}
	inner := hc.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	c := &Client{base: base, version: "v1.0", cfg: cfg, scope: strings.TrimRight(cfg.Cloud.GraphURL, "/") + "/.default"}
	if cfg.BaseURL != "" && cfg.Cloud.GraphURL == "" {
		c.scope = base + "/.default"
	}
	// The chain, outermost first: budgets, then retry, then logging. Retries go back through the
	// budgets, so a retried request is counted like any other.
	var t http.RoundTripper = &logTransport{next: inner, log: cfg.Log}
	t = &retryTransport{next: t, c: c}
	t = &budgetTransport{next: t, c: c}
	c.http = &http.Client{Transport: t, Timeout: hc.Timeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		// Archive mailboxes redirect (308) to their auxiliary mailboxes on the same service. A
		// redirect elsewhere is refused rather than followed with the token.
		if len(via) >= maxRedirects {
			return fmt.Errorf("graph: more than %d redirects from %s", maxRedirects, via[0].URL)
		}
		return c.trusted(req.URL.String())
	}}
	return c
}

// maxRedirects bounds the redirects followed for one request.
const maxRedirects = 5

// trusted refuses a URL that is not on the Graph service this client talks to.
func (c *Client) trusted(raw string) error {
	u, err := url.Parse(raw)
	b, _ := url.Parse(c.base)
	if err != nil || b == nil || u.Scheme != b.Scheme || u.Host != b.Host {
		return fmt.Errorf("graph: refusing to follow %q, which is not on %s", raw, c.base)
	}
	return nil
}

// Error is Graph's error answer.
type Error struct {
	Status     int
	Code       string
	Message    string
	RequestID  string
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("graph: %d %s: %s", e.Status, e.Code, e.Message)
}

// IsStatus reports whether err is a Graph error with that HTTP status.
func IsStatus(err error, status int) bool {
	var ge *Error
	return errors.As(err, &ge) && ge.Status == status
}

// url makes an absolute URL from a path under /v1.0 (or passes an absolute link through).
func (c *Client) url(path string) string {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path
	}
	return c.base + "/" + c.version + path
}

// Request is one call.
type Request struct {
	Method  string
	Path    string // under /v1.0, or an absolute nextLink/deltaLink
	Body    any    // JSON-encoded, unless []byte or io.Reader with ContentType
	Header  http.Header
	NoAuth  bool // an upload or import URL that must not carry the token
	Content string
}

// Do sends r and decodes a JSON answer into out (if not nil). It returns the response headers.
func (c *Client) Do(ctx context.Context, r Request, out any) (http.Header, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		io.Copy(io.Discard, resp.Body)
		return resp.Header, nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
		return resp.Header, err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.Header, fmt.Errorf("decode %s %s: %w", r.Method, r.Path, err)
	}
	return resp.Header, nil
}

// Stream sends r and returns the response body for the caller to read and close.
func (c *Client) Stream(ctx context.Context, r Request) (io.ReadCloser, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (c *Client) send(ctx context.Context, r Request) (*http.Response, error) {
	var body []byte
	ct := r.Content
	switch b := r.Body.(type) {
	case nil:
	case []byte:
		body = b
	case string:
		body = []byte(b)
	default:
		// Bodies go as they are: HTML escaping would only make mail bodies larger.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(b); err != nil {
			return nil, err
		}
		body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if ct == "" {
			ct = "application/json"
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.url(r.Path), nil)
	if err != nil {
		return nil, err
	}
	if body != nil {
		// A body the retry layer can replay.
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("User-Agent", UserAgent())
	req.Header.Set("Accept", "application/json")
	if req.Header.Get("Prefer") == "" {
		req.Header.Add("Prefer", `IdType="ImmutableId"`)
	}
	if !r.NoAuth && c.cfg.Tokens != nil {
		tok, err := c.cfg.Tokens.Token(ctx, c.scope)
		if err != nil {
			return nil, fmt.Errorf("get token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, parseError(resp)
	}
	return resp, nil
}

func parseError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("request-id"), RetryAfter: retryAfter(resp.Header, time.Now())}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(data, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	} else {
		e.Code, e.Message = http.StatusText(resp.StatusCode), strings.TrimSpace(string(data))
	}
	return e
}

// Page is one page of a collection.
type Page[T any] struct {
	Value     []T    `json:"value"`
	NextLink  string `json:"@odata.nextLink"`
	DeltaLink string `json:"@odata.deltaLink"`
}

// All follows @odata.nextLink from path and yields every item; the final deltaLink, if the
// collection is a delta query, is returned by the second function once iteration has ended.
func All[T any](ctx context.Context, c *Client, path string) (func(yield func(T, error) bool), func() string) {
	var delta string
	seq := func(yield func(T, error) bool) {
		next := path
		for next != "" {
			var p Page[T]
			if _, err := c.Do(ctx, Request{Method: http.MethodGet, Path: next}, &p); err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, v := range p.Value {
				if !yield(v, nil) {
					return
				}
			}
			next, delta = p.NextLink, p.DeltaLink
		}
	}
	return seq, func() string { return delta }
}

// Query builds "?$select=…&$top=…" style query strings in a stable order.
func Query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + strings.ReplaceAll(v.Encode(), "%24", "$")
}
