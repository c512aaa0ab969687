package m365sim

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/throttle"
)

// window is what one key has spent: requests in flight, and a log of recent requests and uploads,
// checked as a sliding window like the service's.
type window struct {
	inFlight int
	reqs     []time.Time
	ups      []upload
}

type upload struct {
	at    time.Time
	bytes int64
}

// admit decides whether a request may run now. If not, it says how long until it could.
// Rejected counts the requests answered 429, by the limit they hit.
func (s *Server) Rejected() (concurrency, requests, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected[0], s.rejected[1], s.rejected[2]
}

// admit spends cost request units of key's budget: one per request for Outlook, SharePoint's
// resource units for drives.
func (s *Server) admit(key throttle.Key, bytes int64, cost int) (release func(), retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now, lim := s.now(), s.limits
	if key.Resource == sharePoint {
		lim = s.spLimits
	}
	w := s.windows[key]
	if w == nil {
		w = &window{}
		s.windows[key] = w
	}
	for len(w.reqs) > 0 && now.Sub(w.reqs[0]) >= lim.Window {
		w.reqs = w.reqs[1:]
	}
	for len(w.ups) > 0 && now.Sub(w.ups[0].at) >= lim.ByteWindow {
		w.ups = w.ups[1:]
	}
	if lim.Concurrency > 0 && w.inFlight >= lim.Concurrency {
		s.rejected[0]++
		return nil, time.Second
	}
	if lim.Requests > 0 && len(w.reqs)+cost > lim.Requests && len(w.reqs) > 0 {
		s.rejected[1]++
		return nil, lim.Window - now.Sub(w.reqs[0])
	}
	if lim.Bytes > 0 && bytes > 0 {
		var sum int64
		for _, u := range w.ups {
			sum += u.bytes
		}
		if sum+bytes > lim.Bytes && len(w.ups) > 0 {
			s.rejected[2]++
			// Wait until enough of the window has slid out.
			for _, u := range w.ups {
				sum -= u.bytes
				if sum+bytes <= lim.Bytes {
					return nil, lim.ByteWindow - now.Sub(u.at)
				}
			}
			return nil, lim.ByteWindow
		}
		w.ups = append(w.ups, upload{now, bytes})
	}
	for range cost {
		w.reqs = append(w.reqs, now)
	}
	w.inFlight++
	return func() {
		s.mu.Lock()
		w.inFlight--
		s.mu.Unlock()
	}, 0
}

// stableID derives a GUID-shaped id from parts, so seeded data keeps its ids across restarts.
func stableID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	x := hex.EncodeToString(h.Sum(nil))
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// sharePoint is the budget key of OneDrive and SharePoint traffic: per app per tenant.
const sharePoint = "sharepoint"

// driveCost is what a drive request costs in SharePoint's resource units, and whether the
// request is one (drive routes answer to SharePoint's limits, not Outlook's).
func driveCost(r *http.Request) (int, bool) {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/v1.0/drives/") && !strings.HasPrefix(p, "/v1.0/sites") && !strings.HasSuffix(p, "/drive") {
		return 0, false
	}
	switch {
	case strings.HasSuffix(p, "/permissions") || strings.HasSuffix(p, "/invite"):
		return throttle.CostPermissions, true
	case r.Method != http.MethodGet:
		return throttle.CostWrite, true
	case strings.HasSuffix(p, "/delta") && r.URL.Query().Get("token") == "", strings.HasSuffix(p, "/children"):
		return throttle.CostWrite, true
	}
	return throttle.CostRead, true
}

// admitted admits a request as admit does, or answers it 429 itself (release nil).
func (s *Server) admitted(w http.ResponseWriter, key throttle.Key, bytes int64, cost int) (release func()) {
	release, retry := s.admit(key, bytes, cost)
	if release == nil {
		s.throttled(w, key, retry)
	}
	return release
}

// throttled answers 429 with Retry-After and the RateLimit headers Microsoft sends with it.
func (s *Server) throttled(w http.ResponseWriter, key throttle.Key, retry time.Duration) {
	s.mu.Lock()
	lim, code, msg := s.limits, "ApplicationThrottled", "Application is over its MailboxConcurrency, request or upload limit."
	if key.Resource == sharePoint {
		lim, code, msg = s.spLimits, "activityLimitReached", "The app is over its resource-unit or ingress limit for the tenant."
	}
	s.mu.Unlock()
	secs := strconv.Itoa(int(retry.Seconds() + 0.999))
	w.Header().Set("Retry-After", secs)
	w.Header().Set("RateLimit-Limit", strconv.Itoa(lim.Requests))
	w.Header().Set("RateLimit-Remaining", "0")
	w.Header().Set("RateLimit-Reset", secs)
	graphError(w, http.StatusTooManyRequests, code, msg)
}
