package graph

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/internal/retry"
	"github.com/ferry-migrate/ferry/internal/throttle"
)

// budgetTransport waits for the request's budget before sending it.
type budgetTransport struct {
	next http.RoundTripper
	c    *Client
}

var mailboxPath = regexp.MustCompile(`/(?:users|me)/?([^/?]*)`)

// defaultBudget: Outlook limits per app per mailbox, the mailbox taken from users/{id}.
func (c *Client) defaultBudget(r *http.Request) (throttle.Key, throttle.Limits, int) {
	res := "tenant"
	if m := mailboxPath.FindStringSubmatch(r.URL.Path); m != nil {
		res = strings.ToLower(m[1])
	}
	return throttle.Key{Tenant: c.cfg.Tenant, App: c.cfg.App, Resource: res}, throttle.Outlook, 1
}

func (t *budgetTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.c.cfg.Budgets == nil {
		return t.next.RoundTrip(r)
	}
	classify := t.c.cfg.Budget
	if classify == nil {
		classify = t.c.defaultBudget
	}
	key, lim, cost := classify(r)
	var up int64
	if r.Method != http.MethodGet && r.ContentLength > 0 {
		up = r.ContentLength
	}
	release, err := t.c.cfg.Budgets.Acquire(r.Context(), key, lim, cost, up)
	if err != nil {
		return nil, err
	}
	resp, err := t.next.RoundTrip(r)
	release()
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		// The server knows better than our budget: stop this key until it says so.
		t.c.cfg.Budgets.Pause(key, time.Now().Add(retryAfter(resp.Header, time.Now())))
	}
	return resp, err
}

// retryTransport retries 429, 503, 504 and broken connections: after Retry-After (or RateLimit-Reset)
// when the server gives one, else exponential backoff with jitter, up to MaxAttempts.
type retryTransport struct {
	next http.RoundTripper
	c    *Client
}

func (t *retryTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		if attempt > 1 && r.Body != nil {
			if r.GetBody == nil {
				return nil, errors.New("graph: cannot retry a request whose body cannot be replayed")
			}
			body, err := r.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = body
		}
		resp, err := t.next.RoundTrip(r)
		wait, retry := t.shouldRetry(resp, err, attempt)
		if !retry || attempt >= t.c.cfg.MaxAttempts {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
		select {
		case <-r.Context().Done():
			return nil, r.Context().Err()
		case <-time.After(wait):
		}
	}
}

func (t *retryTransport) shouldRetry(resp *http.Response, err error, attempt int) (time.Duration, bool) {
	backoff := func() time.Duration {
		d := time.Duration(1<<min(attempt-1, 6)) * 200 * time.Millisecond
		return d/2 + rand.N(d) // full jitter around the exponential step
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return 0, false
		}
		if _, ok := Unreachable(err); ok {
			return 0, false // asking again changes nothing: say why at once
		}
		if retry.NetworkError(err) {
			return backoff(), true
		}
		return 0, false
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if d := retryAfter(resp.Header, time.Now()); d > 0 {
			return d, true
		}
		return backoff(), true
	}
	return 0, false
}

// retryAfter reads Retry-After (seconds or an HTTP date), else RateLimit-Reset (seconds).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return time.Duration(s) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(0, t.Sub(now))
		}
		if d, err := strconv.ParseFloat(v, 64); err == nil {
			return time.Duration(d * float64(time.Second))
		}
	}
	if v := h.Get("RateLimit-Reset"); v != "" {
		if s, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return time.Duration(s * float64(time.Second))
		}
	}
	return 0
}

// logTransport logs each attempt at debug level; never headers, so never tokens.
type logTransport struct {
	next http.RoundTripper
	log  *slog.Logger
}

func (t *logTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	attrs := []any{"method", r.Method, "path", r.URL.Path, "ms", time.Since(start).Milliseconds()}
	if resp != nil {
		attrs = append(attrs, "status", resp.StatusCode, "request_id", resp.Header.Get("request-id"))
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	t.log.Debug("graph", attrs...)
	return resp, err
}

// Unreachable says why a server cannot be reached at all, for the errors no retry cures: a TLS
// certificate that is not trusted, a refused connection, a host name that does not exist.
func Unreachable(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var dns *net.DNSError
	switch {
	case errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci):
		return "its TLS certificate is not trusted; set the endpoint's ca_cert to the certificate of the CA that signed it", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the connection was refused (nothing listens on that port)", true
	case errors.As(err, &dns) && dns.IsNotFound:
		return "the host name does not exist", true
	}
	return "", false
}
