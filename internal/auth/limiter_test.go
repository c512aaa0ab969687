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
		if ok, wait := l.Allow("bob"); !ok || wait != 0 {
			t.Fatalf("attempt %d: Allow = %v, %v; want true, 0", i+1, ok, wait)
		}
		l.Fail("bob")
		clk.advance(time.Minute)
	}
	// Failures at 0, 1 and 2 minutes; now is 3 minutes: the first ages out at 10.
	ok, wait := l.Allow("bob")
	if ok || wait != 7*time.Minute {
		t.Fatalf("after 3 failures: Allow = %v, %v; want false, 7m", ok, wait)
	}
	if ok, _ := l.Allow("alice"); !ok {
		t.Fatal("another key is blocked too")
	}

	clk.advance(7*time.Minute - time.Second)
	if ok, wait := l.Allow("bob"); ok || wait != time.Second {
		t.Fatalf("1s before the oldest failure ages out: Allow = %v, %v; want false, 1s", ok, wait)
	}
	clk.advance(time.Second)
	if ok, wait := l.Allow("bob"); !ok || wait != 0 {
		t.Fatalf("once the oldest failure aged out: Allow = %v, %v; want true, 0", ok, wait)
	}
	// Two failures are still in the window, so one more blocks again until the second ages out.
	l.Fail("bob")
	if ok, wait := l.Allow("bob"); ok || wait != time.Minute {
		t.Fatalf("after a fourth failure: Allow = %v, %v; want false, 1m", ok, wait)
	}
}

func TestLoginLimiterSucceedClears(t *testing.T) {
	clk := newFakeClock()
	l := NewLoginLimiter(2, time.Hour, clk.now)
	l.Fail("bob")
	l.Fail("bob")
	if ok, _ := l.Allow("bob"); ok {
		t.Fatal("not blocked after 2 failures")
	}
	l.Succeed("bob")
	if ok, wait := l.Allow("bob"); !ok || wait != 0 {
		t.Fatalf("after Succeed: Allow = %v, %v; want true, 0", ok, wait)
	}
	l.Fail("bob")
	if ok, _ := l.Allow("bob"); !ok {
		t.Fatal("one failure after Succeed blocks; the old ones were not cleared")
	}
}

func TestLoginLimiterPrunes(t *testing.T) {
	clk := newFakeClock()
	l := NewLoginLimiter(5, time.Minute, clk.now)
	for i := range 3 * limiterPruneAt {
		l.Fail(fmt.Sprintf("user%d", i))
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
		l.Fail("bob")
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
				l.Allow(key)
				l.Fail(key)
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
