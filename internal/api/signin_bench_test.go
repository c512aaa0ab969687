package api_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkConcurrentSignIns sends 200 sign-ins at once, for 200 different unknown users from four
// loopback addresses (50 each, so the limiter lets every one reach the password check), and reports the
// process's peak resident memory during the burst: the server's own, as the clients only wait.
// Each sign-in hashes 19 MiB with argon2id; unbounded, 200 of them took 3.2 GB.
func BenchmarkConcurrentSignIns(b *testing.B) {
	e := newEnv(b)
	const n = 200
	for i := 0; i < b.N; i++ {
		// Fresh addresses each round: the last round's failures still count against the old ones.
		clients := make([]*http.Client, 4)
		for k := range clients {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i%250), byte(2+k))}}
			clients[k] = &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: n}}
		}
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS(b)
		base := rssKB(b, "VmRSS")
		statuses := map[int]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for j := range n {
			wg.Go(func() {
				body := fmt.Sprintf(`{"username":"nobody%d-%d","password":"wrong-password"}`, i, j)
				req, _ := http.NewRequestWithContext(context.Background(), "POST", e.srv.URL+"/api/v1/session", strings.NewReader(body))
				resp, err := clients[j%len(clients)].Do(req)
				code := 0
				if err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				statuses[code]++
				mu.Unlock()
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		peak := rssKB(b, "VmHWM")
		if statuses[401]+statuses[503] != n {
			b.Fatalf("answers %v: want only 401 (checked) and 503 (told to retry)", statuses)
		}
		b.ReportMetric(float64(peak)/1024, "peak-rss-MB")
		b.ReportMetric(float64(base)/1024, "start-rss-MB")
		b.ReportMetric(float64(statuses[401]), "checked")
		b.ReportMetric(float64(statuses[503]), "busy")
		b.ReportMetric(elapsed.Seconds(), "burst-s")
	}
}

// resetPeakRSS sets VmHWM back to the current RSS (Linux: "5" in clear_refs).
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Skipf("cannot reset the peak RSS on this system: %v", err)
	}
}

func rssKB(b *testing.B, field string) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
