// Package throttle keeps request, byte and concurrency budgets per (tenant, app, mailbox or user),
// so that Ferry runs just under Microsoft's published limits instead of bouncing off them. Every
// goroutine of a process shares one Store; a PostgreSQL-backed Store can later share budgets
// between nodes behind the same interface.
package throttle

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// Key names a budget: Microsoft counts per app per mailbox (Outlook) or per app per tenant and per
// user (SharePoint and OneDrive).
type Key struct {
	Tenant, App, Resource string
}

func (k Key) String() string { return k.Tenant + "/" + k.App + "/" + k.Resource }

// Limits is one budget's ceiling. Zero fields are unlimited.
type Limits struct {
	Concurrency int           // requests in flight at once
	Requests    int           // request units per Window
	Window      time.Duration //
	Bytes       int64         // bytes uploaded per ByteWindow
	ByteWindow  time.Duration //
}

// Published limits (learn.microsoft.com, "Microsoft Graph service-specific throttling limits" and
// SharePoint's "Avoid getting throttled or blocked").
var (
	// Outlook: per app per mailbox: 4 concurrent requests, 10,000 requests per 10 minutes, 150 MB
	// upload (PATCH, POST, PUT) per 5 minutes.
	Outlook = Limits{Concurrency: 4, Requests: 10000, Window: 10 * time.Minute, Bytes: 150 * 1000 * 1000, ByteWindow: 5 * time.Minute}
	// SharePointUser: per user ingress 50 GB per hour.
	SharePointUser = Limits{Bytes: 50 * 1000 * 1000 * 1000, ByteWindow: time.Hour}
)

// SharePointTenant returns the per app per tenant budget for a tenant with the given number of
// licences: 1,250 resource units a minute up to 1,000 licences, 2,500 to 5,000, 3,750 to 15,000,
// 5,000 to 50,000 and 6,250 above; 400 GB an hour of ingress.
func SharePointTenant(licences int) Limits {
	ru := 6250
	switch {
	case licences <= 1000:
		ru = 1250
	case licences <= 5000:
		ru = 2500
	case licences <= 15000:
		ru = 3750
	case licences <= 50000:
		ru = 5000
	}
	return Limits{Requests: ru, Window: time.Minute, Bytes: 400 * 1000 * 1000 * 1000, ByteWindow: time.Hour}
}

// Resource-unit costs of SharePoint and OneDrive calls.
const (
	CostRead        = 1 // get, delta with a token, download
	CostWrite       = 2 // list, delta without a token, create, update, upload
	CostPermissions = 5
)

// Scale returns l with every window multiplied by f: benchmarks shrink the windows (f < 1) and the
// budgets with them, keeping every rate the same.
func (l Limits) Scale(f float64) Limits {
	l.Window = time.Duration(float64(l.Window) * f)
	l.ByteWindow = time.Duration(float64(l.ByteWindow) * f)
	if l.Requests > 0 {
		l.Requests = max(1, int(math.Round(float64(l.Requests)*f)))
	}
	l.Bytes = int64(float64(l.Bytes) * f)
	return l
}

// Store hands out budget.
type Store interface {
	// Acquire waits until key's budget allows one request costing cost units and carrying bytes
	// of upload, then takes it. release must be called when the response has arrived.
	Acquire(ctx context.Context, key Key, lim Limits, cost int, bytes int64) (release func(), err error)
	// Pause stops key until the given time, as a server's Retry-After asks.
	Pause(key Key, until time.Time)
}

// Headroom is the share of a budget that may be spent as a burst; the rest is paced evenly over
// the window. Burst plus pace never exceed the ceiling in any window.
const Headroom = 0.05

// Memory is the in-process Store.
type Memory struct {
	mu      sync.Mutex
	budgets map[Key]*budget
	now     func() time.Time
}

// NewMemory returns an empty in-process Store.
func NewMemory() *Memory { return &Memory{budgets: map[Key]*budget{}, now: time.Now} }

type budget struct {
	lim      Limits
	inFlight int
	reqs     bucket
	bytes    bucket
	paused   time.Time
	wake     chan struct{} // closed and replaced when a request is released
}

// bucket is a token bucket whose capacity is Headroom of the limit and whose rate is the rest of
// the limit spread over the window.
type bucket struct {
	tokens, capacity, rate float64 // rate per second
	at                     time.Time
}

func newBucket(limit float64, window time.Duration, now time.Time) bucket {
	if limit <= 0 || window <= 0 {
		return bucket{}
	}
	c := limit * Headroom
	return bucket{tokens: c, capacity: c, rate: (limit - c) / window.Seconds(), at: now}
}

// wait returns how long until n tokens may be taken. A request larger than the whole capacity
// waits for a full bucket and then overdraws it.
func (b *bucket) wait(n float64, now time.Time) time.Duration {
	if b.rate == 0 {
		return 0
	}
	b.tokens = math.Min(b.capacity, b.tokens+now.Sub(b.at).Seconds()*b.rate)
	b.at = now
	need := math.Min(n, b.capacity)
	if b.tokens >= need {
		return 0
	}
	return time.Duration((need - b.tokens) / b.rate * float64(time.Second))
}

func (b *bucket) take(n float64) {
	if b.rate != 0 {
		b.tokens -= n
	}
}

func (m *Memory) get(key Key, lim Limits, now time.Time) *budget {
	b := m.budgets[key]
	if b == nil || b.lim != lim {
		b = &budget{lim: lim, reqs: newBucket(float64(lim.Requests), lim.Window, now), bytes: newBucket(float64(lim.Bytes), lim.ByteWindow, now),
			wake: make(chan struct{})}
		if old := m.budgets[key]; old != nil {
			b.inFlight, b.paused, b.wake = old.inFlight, old.paused, old.wake
		}
		m.budgets[key] = b
	}
	return b
}

// Acquire implements Store.
func (m *Memory) Acquire(ctx context.Context, key Key, lim Limits, cost int, bytes int64) (func(), error) {
	if cost <= 0 {
		cost = 1
	}
	for {
		m.mu.Lock()
		now := m.now()
		b := m.get(key, lim, now)
		var wait time.Duration
		switch {
		case now.Before(b.paused):
			wait = b.paused.Sub(now)
		case lim.Concurrency > 0 && b.inFlight >= lim.Concurrency:
			wait = -1 // until a release
		default:
			wait = max(b.reqs.wait(float64(cost), now), b.bytes.wait(float64(bytes), now))
		}
		if wait == 0 {
			b.reqs.take(float64(cost))
			b.bytes.take(float64(bytes))
			b.inFlight++
			m.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { m.release(b) }) }, nil
		}
		wake := b.wake
		m.mu.Unlock()
		var timer *time.Timer
		var fire <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil, fmt.Errorf("waiting for %s budget: %w", key, ctx.Err())
		case <-fire:
		case <-wake:
			if timer != nil {
				timer.Stop()
			}
		}
	}
}

func (m *Memory) release(b *budget) {
	m.mu.Lock()
	b.inFlight--
	close(b.wake)
	b.wake = make(chan struct{})
	m.mu.Unlock()
}

// Pause implements Store.
func (m *Memory) Pause(key Key, until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.budgets[key]
	if b == nil {
		b = &budget{wake: make(chan struct{})}
		m.budgets[key] = b
	}
	if until.After(b.paused) {
		b.paused = until
	}
}
