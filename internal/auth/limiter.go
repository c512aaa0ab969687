package auth

import (
	"sync"
	"time"
)

// limiterPruneAt is the number of keys past which Fail sweeps out keys with no recent failures.
const limiterPruneAt = 1024

// LoginLimiter counts failed sign-ins per key (a user name, a client address, or both) in memory.
// An attempt is reserved before the password is checked and settled after, so attempts that run
// at once count against the allowance together: sixty concurrent guesses cannot all pass a check
// made before any of them failed. It is safe for concurrent use.
type LoginLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu        sync.Mutex
	failures  map[string][]time.Time // per key, oldest first, at most max entries
	inflight  map[string]int         // per key, attempts reserved and not yet released
	nextPrune int
}

// NewLoginLimiter returns a limiter that, after maxFails failures for a key within window, refuses
// further attempts until the oldest of those failures ages out. now is the clock; nil means
// time.Now. A maxFails below 1 is taken as 1.
func NewLoginLimiter(maxFails int, window time.Duration, now func() time.Time) *LoginLimiter {
	if now == nil {
		now = time.Now
	}
	return &LoginLimiter{
		max:       max(maxFails, 1),
		window:    window,
		now:       now,
		failures:  make(map[string][]time.Time),
		inflight:  make(map[string]int),
		nextPrune: limiterPruneAt,
	}
}

// inflightRetry is what a caller refused only because of attempts still running is told to wait:
// they settle within one password check.
const inflightRetry = time.Second

// Reserve takes an attempt for key if its recent failures and the attempts still running leave
// room; if not, it says how long until there may be. A reserved attempt must be Released.
func (l *LoginLimiter) Reserve(key string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.recent(key, now)
	if len(f) >= l.max {
		// Only the newest max failures are kept, so the oldest kept one is the one that must age out.
		return false, f[0].Add(l.window).Sub(now)
	}
	if len(f)+l.inflight[key] >= l.max {
		return false, inflightRetry
	}
	l.inflight[key]++
	return true, 0
}

// Release ends an attempt Reserve took, recording a failure if it failed.
func (l *LoginLimiter) Release(key string, failed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.inflight[key] - 1; n > 0 {
		l.inflight[key] = n
	} else {
		delete(l.inflight, key)
	}
	if failed {
		l.fail(key)
	}
}

// fail records a failed attempt for key. Callers hold l.mu.
func (l *LoginLimiter) fail(key string) {
	now := l.now()
	f := append(l.recent(key, now), now)
	if len(f) > l.max {
		f = append(f[:0], f[len(f)-l.max:]...)
	}
	l.failures[key] = f
	if len(l.failures) > l.nextPrune {
		l.prune(now)
	}
}

// Succeed forgets the failures of key.
func (l *LoginLimiter) Succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

// recent drops the failures of key that are outside the window and returns the rest.
// Callers hold l.mu.
func (l *LoginLimiter) recent(key string, now time.Time) []time.Time {
	f := l.failures[key]
	i := 0
	for i < len(f) && !now.Before(f[i].Add(l.window)) {
		i++
	}
	if i == 0 {
		return f
	}
	if i == len(f) {
		delete(l.failures, key)
		return nil
	}
	f = append(f[:0], f[i:]...)
	l.failures[key] = f
	return f
}

// prune drops keys whose failures are all outside the window. The next sweep waits until the map
// has doubled, so a flood of distinct keys costs amortised O(1) per Fail rather than a sweep each.
// Callers hold l.mu.
func (l *LoginLimiter) prune(now time.Time) {
	for key, f := range l.failures {
		if len(f) == 0 || !now.Before(f[len(f)-1].Add(l.window)) {
			delete(l.failures, key)
		}
	}
	l.nextPrune = max(limiterPruneAt, 2*len(l.failures))
}
