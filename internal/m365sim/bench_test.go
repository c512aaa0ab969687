package m365sim_test

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/throttle"
)

// countingTransport counts requests and 429 answers on the wire, under the retry layer.
type countingTransport struct {
	next             http.RoundTripper
	total, status429 atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	c.total.Add(1)
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		c.status429.Add(1)
	}
	return resp, err
}

// BenchmarkMIMEImport imports MIME messages into one mailbox through the emulator with Microsoft's
// Outlook limits on, scaled down together (every window × scale, every budget × scale, so every
// rate is the real one) to keep the run short. It reports the sustained upload rate as a share of
// the 150 MB per 5 minutes ceiling and the share of requests answered 429.
//
//	go test -run '^$' -bench MIMEImport -benchtime 1x ./internal/m365sim/
func BenchmarkMIMEImport(b *testing.B) {
	const scale = 0.02 // 5 min -> 6 s, 150 MB -> 3 MB; 10 min -> 12 s, 10,000 -> 200 requests
	limits := throttle.Outlook.Scale(scale)
	r := newRig(b)
	defer r.srv.Close()
	r.sim.SetLimits(limits)
	r.sim.AddApp("11111111-1111-1111-1111-111111111111", "app-mail", "m", nil, "Mail.ReadWrite")
	ts, err := r.creds.For(r.cloud, graph.AppCredential{Tenant: "contoso.onmicrosoft.com", ClientID: "app-mail", ClientSecret: "m"})
	if err != nil {
		b.Fatal(err)
	}
	wire := &countingTransport{next: r.srv.Client().Transport}
	c := graph.New(graph.Config{Cloud: r.cloud, Tenant: "contoso", App: "app-mail", Tokens: ts, HTTP: &http.Client{Transport: wire},
		Budgets: throttle.NewMemory(), MaxAttempts: 8,
		Budget: func(req *http.Request) (throttle.Key, throttle.Limits, int) {
			return throttle.Key{Tenant: "contoso", App: "app-mail", Resource: "user0@contoso.com"}, limits, 1
		}})
	ctx := context.Background()
	body := append([]byte("Subject: bulk\r\n\r\n"), bytes.Repeat([]byte("0123456789abcdef\r\n"), 40<<10/18)...)
	duration := 3 * limits.ByteWindow
	var sent atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < limits.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < duration {
				if _, err := c.CreateMessageFromMIME(ctx, "user0@contoso.com", "inbox", body); err != nil {
					b.Errorf("import: %v", err)
					return
				}
				sent.Add(int64(base64Len(len(body))))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	ceiling := float64(limits.Bytes) / limits.ByteWindow.Seconds()
	rate := float64(sent.Load()) / el.Seconds()
	b.ReportMetric(100*rate/ceiling, "%-of-upload-ceiling")
	b.ReportMetric(100*float64(wire.status429.Load())/float64(wire.total.Load()), "%-answered-429")
	b.ReportMetric(float64(wire.total.Load()), "requests")
	b.Logf("%s: %.0f bytes/s against a ceiling of %.0f (%.1f%%); %d of %d requests answered 429",
		el.Round(time.Millisecond), rate, ceiling, 100*rate/ceiling, wire.status429.Load(), wire.total.Load())
}

func base64Len(n int) int { return (n + 2) / 3 * 4 }
