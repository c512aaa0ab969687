package graph

import (
	"context"
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
		var ne net.Error
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &ne) ||
			strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "server closed") {
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
