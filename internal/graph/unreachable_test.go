package graph

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A server that cannot be reached at all is reported at once with the reason, never retried: an
// untrusted certificate, a refused connection.
func TestUnreachableIsNotRetried(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "https://" + ln.Addr().String()
	ln.Close()
	for _, c := range []struct{ base, want string }{
		{tlsSrv.URL, "its TLS certificate is not trusted"},
		{closed, "the connection was refused"},
	} {
		attempts := 0
		hc := &http.Client{Transport: countingTransport{&attempts, http.DefaultTransport}}
		cl := New(Config{BaseURL: c.base, Tokens: tokenFunc(func(context.Context, string) (string, error) { return "t", nil }), HTTP: hc})
		start := time.Now()
		_, err := cl.Do(context.Background(), Request{Method: "GET", Path: "/users"}, nil)
		why, ok := Unreachable(err)
		if !ok || !strings.Contains(why, c.want) {
			t.Errorf("%s: %v (%q), want unreachable: %q", c.base, err, why, c.want)
		}
		if attempts != 1 {
			t.Errorf("%s: %d attempts in %s, want 1", c.base, attempts, time.Since(start))
		}
	}
}

type countingTransport struct {
	n    *int
	next http.RoundTripper
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	*c.n++
	return c.next.RoundTrip(r)
}

type tokenFunc func(context.Context, string) (string, error)

func (f tokenFunc) Token(ctx context.Context, scope string) (string, error) { return f(ctx, scope) }
