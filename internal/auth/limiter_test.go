package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func TestLoginLimiterBlocksAndUnblocks(t *testing.T) {
	clk := newFakeClock()
	l := NewLoginLimiter(3, 10*time.Minute, clk.now)

	for i := range 3 {
		if ok, wait := allow(l, "bob"); !ok || wait != 0 {
			t.Fatalf("attempt %d: Allow = %v, %v; want true, 0", i+1, ok, wait)
		}
		fail(l, "bob")
		clk.advance(time.Minute)
	}
	// Failures at 0, 1 and 2 minutes; now is 3 minutes: the first ages out at 10.
	ok, wait := allow(l, "bob")
	if ok || wait != 7*time.Minute {
		t.Fatalf("after 3 failures: Allow = %v, %v; want false, 7m", ok, wait)
	}
	if ok, _ := allow(l, "alice"); !ok {
		t.Fatal("another key is blocked too")
	}

	clk.advance(7*time.Minute - time.Second)
	if ok, wait := allow(l, "bob"); ok || wait != time.Second {
		t.Fatalf("1s before the oldest failure ages out: Allow = %v, %v; want false, 1s", ok, wait)
	}
	clk.advance(time.Second)
	if ok, wait := allow(l, "bob"); !ok || wait != 0 {
		t.Fatalf("once the oldest failure aged out: Allow = %v, %v; want true, 0", ok, wait)
	}
	// Two failures are still in the window, so one more blocks again until the second ages out.
	fail(l, "bob")
	if ok, wait := allow(l, "bob"); ok || wait != time.Minute {
		t.Fatalf("after a fourth failure: Allow = %v, %v; want false, 1m", ok, wait)
	}
}

func TestLoginLimiterSucceedClears(t *testing.T) {
	clk := newFakeClock()
	l := NewLoginLimiter(2, time.Hour, clk.now)
	fail(l, "bob")
	fail(l, "bob")
	if ok, _ := allow(l, "bob"); ok {
		t.Fatal("not blocked after 2 failures")
	}
	l.Succeed("bob")
	if ok, wait := allow(l, "bob"); !ok || wait != 0 {
		t.Fatalf("after Succeed: Allow = %v, %v; want true, 0", ok, wait)
	}
	fail(l, "bob")
	if ok, _ := allow(l, "bob"); !ok {
		t.Fatal("one failure after Succeed blocks; the old ones were not cleared")
	}
}

func TestLoginLimiterPrunes(t *testing.T) {
	clk := newFakeClock()
	l := NewLoginLimiter(5, time.Minute, clk.now)
	for i := range 3 * limiterPruneAt {
		fail(l, fmt.Sprintf("user%d", i))
		clk.advance(time.Second)
	}
	// Only the last 60 keys failed within the minute; the map may hold at most a sweep's worth more.
	if n := len(l.failures); n > limiterPruneAt+1 {
		t.Fatalf("%d keys kept after %d failures on distinct keys, want at most %d", n, 3*limiterPruneAt, limiterPruneAt+1)
	}
	// Keys still in the window survive pruning.
	last := fmt.Sprintf("user%d", 3*limiterPruneAt-1)
	if len(l.failures[last]) != 1 {
		t.Fatalf("recent key %s lost its failure", last)
	}
	// A blocked key keeps only max failures.
	for range 20 {
		fail(l, "bob")
	}
	if n := len(l.failures["bob"]); n != 5 {
		t.Fatalf("bob has %d failures kept, want 5", n)
	}
}

func TestLoginLimiterConcurrent(t *testing.T) {
	l := NewLoginLimiter(1000, time.Hour, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			key := fmt.Sprintf("k%d", g%2)
			for range 100 {
				if ok, _ := l.Reserve(key); ok {
					l.Release(key, true)
				}
			}
		})
	}
	wg.Wait()
	// 4 goroutines × 100 failures on each of the two keys.
	for _, key := range []string{"k0", "k1"} {
		if n := len(l.failures[key]); n != 400 {
			t.Fatalf("%s has %d failures, want 400", key, n)
		}
	}
	l.Succeed("k0")
	if len(l.failures) != 1 {
		t.Fatalf("%d keys after Succeed(k0), want 1", len(l.failures))
	}
}

// allow reports whether an attempt for key would be let through now, without keeping it.
func allow(l *LoginLimiter, key string) (bool, time.Duration) {
	ok, wait := l.Reserve(key)
	if ok {
		l.Release(key, false)
	}
	return ok, wait
}

// fail records a failure for key whether or not the key is blocked.
func fail(l *LoginLimiter, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail(key)
}

func TestLoginLimiterCountsAttemptsInFlight(t *testing.T) {
	clk := newFakeClock()
	l := NewLoginLimiter(3, time.Hour, clk.now)
	for i := range 3 {
		if ok, _ := l.Reserve("bob"); !ok {
			t.Fatalf("reservation %d refused", i+1)
		}
	}
	if ok, wait := l.Reserve("bob"); ok || wait != inflightRetry {
		t.Fatalf("fourth reservation with three in flight: %v, %v; want refused for %v", ok, wait, inflightRetry)
	}
	l.Release("bob", false)
	if ok, _ := l.Reserve("bob"); !ok {
		t.Fatal("a released success does not free its place")
	}
	for range 3 {
		l.Release("bob", true)
	}
	if ok, wait := l.Reserve("bob"); ok || wait != time.Hour {
		t.Fatalf("after three failed releases: %v, %v; want refused for 1h", ok, wait)
	}
	if len(l.inflight) != 0 {
		t.Fatalf("in-flight counts left after every release: %v", l.inflight)
	}
}
