package m365sim

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Faults makes the emulator misbehave the way the real service sometimes does. Faults strike
// before a request is processed, so a failed write never half-happens; what a client must survive
// is the retry.
type Faults struct {
	ErrorRate   float64       // share of Graph requests answered 503 without Retry-After (the client backs off)
	ResetRate   float64       // share of Graph requests whose connection is dropped without an answer
	Latency     time.Duration // added to every Graph request
	BurstEvery  int           // every Nth request starts a burst of BurstLength 503s (0 = none)
	BurstLength int
	Seed        uint64 // for a repeatable sequence
}

type faultState struct {
	mu    sync.Mutex
	f     Faults
	rng   *rand.Rand
	n     int
	burst int
	// counts of what was injected, for tests and logs
	Errors, Resets int
}

// SetFaults turns fault injection on (or off, with the zero value).
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = &faultState{f: f, rng: rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))}
}

// Injected reports how many 503s and resets were injected so far.
func (s *Server) Injected() (errors, resets int) {
	s.mu.Lock()
	fs := s.faults
	s.mu.Unlock()
	if fs == nil {
		return 0, 0
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.Errors, fs.Resets
}

// inject applies the configured faults to a request; it reports true when it answered (or dropped)
// the request itself.
func (s *Server) inject(w http.ResponseWriter) bool {
	s.mu.Lock()
	fs := s.faults
	s.mu.Unlock()
	if fs == nil {
		return false
	}
	fs.mu.Lock()
	f := fs.f
	fs.n++
	if f.BurstEvery > 0 && fs.n%f.BurstEvery == 0 {
		fs.burst = f.BurstLength
	}
	var fail, reset bool
	switch {
	case fs.burst > 0:
		fs.burst--
		fail = true
	case fs.rng.Float64() < f.ResetRate:
		reset = true
	case fs.rng.Float64() < f.ErrorRate:
		fail = true
	}
	if fail {
		fs.Errors++
	}
	if reset {
		fs.Resets++
	}
	fs.mu.Unlock()
	if f.Latency > 0 {
		time.Sleep(f.Latency)
	}
	switch {
	case reset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return true
			}
		}
		graphError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The connection was reset.")
		return true
	case fail:
		graphError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The service is temporarily unavailable. Please retry.")
		return true
	}
	return false
}
