package exo_test

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/connector/exo"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/m365sim"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
	"github.com/ferry-migrate/ferry/internal/throttle"
)

// wire counts what reaches the emulator: bytes uploaded to import sessions, requests, 429s.
type wire struct {
	next                  http.Handler
	imported, total, c429 atomic.Int64
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) { w.status = s; w.ResponseWriter.WriteHeader(s) }

func (c *wire) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: 200}
	c.next.ServeHTTP(sw, r)
	c.total.Add(1)
	if sw.status == http.StatusTooManyRequests {
		c.c429.Add(1)
	}
	if strings.HasPrefix(r.URL.Path, "/import/") && sw.status == 200 {
		c.imported.Add(r.ContentLength)
	}
}

// BenchmarkExchangeCopy copies mailboxes Exchange to Exchange through the connector and the
// engine, with Outlook's per-mailbox limits on in the emulator and in the client, scaled down
// together (windows and budgets × scale: every rate is the real one) to keep the run short. It
// reports the upload rate into import sessions as a share of the 150 MB per 5 minutes ceiling,
// for one mailbox and for 50 in parallel, and the share of requests answered 429.
//
//	go test -run '^$' -bench ExchangeCopy -benchtime 1x ./internal/connector/exo/
func BenchmarkExchangeCopy(b *testing.B) {
	// Items of 200 KB: each costs two requests (import, stamp), so the bytes, not the request
	// count, are the limit that binds, as for a real mailbox of mail with attachments.
	// One large mailbox shows the share of its ceiling a long copy sustains. One small mailbox and
	// 50 of the same size, in the same run, show how the rate scales out.
	// The parallel runs use windows four times longer: with 50 mailboxes on two cores, a request
	// reaches the emulator up to a few hundred milliseconds after the client counted it, which a
	// 1.5 s window would magnify into 429s that a real 5-minute window never sees.
	b.Run("1-mailbox-60-items", func(b *testing.B) { benchCopy(b, 1, 60, 0.005) })
	b.Run("1-mailbox-36-items", func(b *testing.B) { oneRate = benchCopy(b, 1, 36, 0.02) })
	b.Run("50-mailboxes-36-items", func(b *testing.B) {
		rate := benchCopy(b, 50, 36, 0.02)
		if oneRate > 0 {
			b.ReportMetric(rate/oneRate, "x-one-mailbox")
		}
	})
}

// oneRate is the bytes per second of the single 36-item mailbox, for the 50-mailbox ratio.
var oneRate float64

// benchCopy copies mailboxes of items of 200 KB with every window and budget × scale: at 0.005,
// 5 min -> 1.5 s and 150 MB -> 750 KB, 10 min -> 3 s and 10,000 -> 50 requests; at 0.02, 6 s, 3 MB,
// 12 s and 200 requests. A mailbox of 60 items is then about 22 byte windows, one of 36 about 3.
func benchCopy(b *testing.B, mailboxes, items int, scale float64) float64 {
	limits := throttle.Outlook.Scale(scale)

	sim := m365sim.New()
	w := &wire{next: sim}
	srv := httptest.NewTLSServer(w)
	defer srv.Close()
	sim.SetBaseURL(srv.URL)
	sim.Apply(m365sim.Seed{Tenants: []string{"contoso", "fabrikam"}, Users: mailboxes})
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	ep := func(tenant string) model.Endpoint {
		return model.Endpoint{Name: tenant, Kind: model.KindM365,
			Settings: model.EndpointSettings{Tenant: tenant + ".onmicrosoft.com", ClientID: m365sim.SeedClientID, Host: srv.URL, CACert: ca},
			Secret:   &model.EndpointSecret{ClientSecret: m365sim.SeedSecret(tenant)}}
	}
	src, dst := ep("contoso"), ep("fabrikam")
	body := append([]byte("Subject: bulk\r\n\r\n"), bytes.Repeat([]byte("0123456789abcdef\r\n"), 200<<10/18)...)
	var seed sync.WaitGroup
	for u := 0; u < mailboxes; u++ {
		seed.Add(1)
		go func() {
			defer seed.Done()
			user := fmt.Sprintf("user%02d@contoso.com", u)
			c, err := exo.Client(src, user)
			if err != nil {
				b.Error(err)
				return
			}
			for i := 0; i < items; i++ {
				if _, err := c.CreateMessageFromMIME(ctx, user, "inbox", body); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	seed.Wait()
	if b.Failed() {
		return 0
	}
	// The limits go on once the source is seeded, in the emulator and in the client alike.
	sim.SetLimits(limits)
	old := exo.Limits
	exo.Limits = limits
	defer func() { exo.Limits = old }()
	st := storetest.SQLite(b).Open(b)
	defer st.Close()
	wg0, _ := st.CreateWorkgroup(ctx, "w", true)
	e, _ := st.CreateEndpoint(ctx, model.Endpoint{WorkgroupID: wg0.ID, Name: "e", Kind: model.KindM365})
	prj, _ := st.CreateProject(ctx, model.Project{WorkgroupID: wg0.ID, Name: "p", Workload: model.WorkloadMailbox, SourceID: e.ID, TargetID: e.ID, CreatedBy: "b"})
	var in []store.ItemInput
	for u := 0; u < mailboxes; u++ {
		in = append(in, store.ItemInput{SourceEmail: fmt.Sprintf("user%02d@contoso.com", u), TargetEmail: fmt.Sprintf("user%02d@fabrikam.com", u)})
	}
	st.ImportItems(ctx, prj.ID, "b", in)
	all, _, _ := st.Items(ctx, prj.ID, store.ItemFilter{})
	w.total.Store(0)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var copied atomic.Int64
	for _, it := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := exo.Connector{}.OpenSource(ctx, connector.Side{Endpoint: src, Email: it.SourceEmail})
			if err != nil {
				b.Error(err)
				return
			}
			d, err := exo.Connector{}.OpenTarget(ctx, connector.Side{Endpoint: dst, Email: it.TargetEmail})
			if err != nil {
				b.Error(err)
				return
			}
			stats, _, err := engine.CopyMailbox(ctx, st, s, d, engine.CopyOptions{ItemID: it.ID, PassID: "bench", Connections: 4})
			if err != nil {
				b.Error(err)
			}
			copied.Add(stats.Objects)
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if got := copied.Load(); got != int64(mailboxes*items) {
		b.Fatalf("copied %d items, want %d", got, mailboxes*items)
		return 0
	}
	ceiling := float64(limits.Bytes) / limits.ByteWindow.Seconds() // per mailbox
	rate := float64(w.imported.Load()) / el.Seconds()
	b.ReportMetric(100*rate/ceiling/float64(mailboxes), "%-of-mailbox-ceiling")
	b.ReportMetric(rate/ceiling, "mailbox-ceilings")
	b.ReportMetric(100*float64(w.c429.Load())/float64(w.total.Load()), "%-answered-429")
	conc, reqs, byts := sim.Rejected()
	b.Logf("%d mailboxes, %d items: %s, %.0f bytes/s imported = %.2f × one mailbox's ceiling (%.0f); %d of %d requests answered 429 (concurrency %d, requests %d, bytes %d)",
		mailboxes, mailboxes*items, el.Round(time.Millisecond), rate, rate/ceiling, ceiling, w.c429.Load(), w.total.Load(), conc, reqs, byts)
	return rate
}
