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

	"github.com/emersion/go-imap/v2"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/connector/exo"
	ferryimap "github.com/ferry-migrate/ferry/internal/connector/imap"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/m365sim"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
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
	var in []store.ItemInput
	for u := 0; u < mailboxes; u++ {
		in = append(in, store.ItemInput{SourceEmail: fmt.Sprintf("user%02d@contoso.com", u), TargetEmail: fmt.Sprintf("user%02d@fabrikam.com", u)})
	}
	st, all := benchStore(b, sim, limits, in)
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
	// Every seeded user also has 3 events, 3 contacts and 2 tasks.
	if got, want := copied.Load(), int64(mailboxes*(items+8)); got != want {
		b.Fatalf("copied %d items, want %d", got, want)
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

// uploads counts the bytes of the writes that reached the emulator and succeeded, whatever the
// route: messages from parts, attachments, upload-session chunks, stamps.
type uploads struct {
	next               http.Handler
	bytes, total, c429 atomic.Int64
}

func (u *uploads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: 200}
	u.next.ServeHTTP(sw, r)
	u.total.Add(1)
	if sw.status == http.StatusTooManyRequests {
		u.c429.Add(1)
	}
	if r.Method != http.MethodGet && sw.status < 300 && r.ContentLength > 0 {
		u.bytes.Add(r.ContentLength)
	}
}

// BenchmarkIMAPToExchange copies one Dovecot mailbox of 150 messages of 200 KB into the emulator
// through the MIME path (each message taken apart and created as a received message), with
// Outlook's per-mailbox limits on in the emulator and the client, scaled by 0.05 together
// (5 min -> 15 s, 150 MB -> 7.5 MB, about 4.5 windows). It reports the bytes written as a share
// of the mailbox's upload ceiling, and the share of requests answered 429. The scale keeps each
// request (about 227 KB as JSON) under the budget's 5 % headroom of a window, as every request is
// under a real 5-minute window's: at × 0.005 one request is 30 % of a window, and no pacing can
// keep a sliding window of such lumps under the ceiling (see docs/BENCHMARKS.md).
//
//	go test -run '^$' -bench IMAPToExchange -benchtime 1x ./internal/connector/exo/
func BenchmarkIMAPToExchange(b *testing.B) {
	const items, scale = 150, 0.05
	limits := throttle.Outlook.Scale(scale)
	sim := m365sim.New()
	u := &uploads{next: sim}
	srv := httptest.NewTLSServer(u)
	defer srv.Close()
	sim.SetBaseURL(srv.URL)
	sim.Apply(m365sim.Seed{Tenants: []string{"fabrikam"}, Users: 1})
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	dst := model.Endpoint{Name: "fabrikam", Kind: model.KindM365,
		Settings: model.EndpointSettings{Tenant: "fabrikam.onmicrosoft.com", ClientID: m365sim.SeedClientID, Host: srv.URL, CACert: ca},
		Secret:   &model.EndpointSecret{ClientSecret: m365sim.SeedSecret("fabrikam")}}
	d := dovecot.Start(b, dovecot.Options{Users: []string{"alice"}})
	ac := d.Dial(b, "alice")
	text := bytes.Repeat([]byte("0123456789abcdef\r\n"), 200<<10/18)
	for i := range items {
		msg := append([]byte(fmt.Sprintf("Message-ID: <bulk%d@ferry.test>\r\nFrom: a@contoso.com\r\nSubject: bulk %d\r\n\r\n", i, i)), text...)
		dovecot.Append(b, ac, "INBOX", msg, time.Date(2024, 1, 1, 0, i, 0, 0, time.UTC), imap.FlagSeen)
	}
	st, all := benchStore(b, sim, limits, []store.ItemInput{{SourceEmail: "alice@imap.test", TargetEmail: "user00@fabrikam.com"}})
	src, err := ferryimap.Connector{}.OpenSource(ctx, imapSideB(d, "alice"))
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	tgt, err := exo.Connector{}.OpenTarget(ctx, connector.Side{Endpoint: dst, Email: "user00@fabrikam.com"})
	if err != nil {
		b.Fatal(err)
	}
	u.total.Store(0)
	u.bytes.Store(0)
	b.ResetTimer()
	start := time.Now()
	stats, _, err := engine.CopyMailbox(ctx, st, src, tgt, engine.CopyOptions{ItemID: all[0].ID, PassID: "bench", Connections: 4})
	el := time.Since(start)
	b.StopTimer()
	if err != nil || stats.Objects != items {
		b.Fatalf("copied %d of %d: %v", stats.Objects, items, err)
	}
	ceiling := float64(limits.Bytes) / limits.ByteWindow.Seconds()
	rate := float64(u.bytes.Load()) / el.Seconds()
	b.ReportMetric(100*rate/ceiling, "%-of-mailbox-ceiling")
	b.ReportMetric(100*float64(u.c429.Load())/float64(u.total.Load()), "%-answered-429")
	conc, reqs, byts := sim.Rejected()
	b.Logf("%d messages in %s: %.0f bytes/s written, ceiling %.0f; %d of %d requests answered 429 (concurrency %d, requests %d, bytes %d)",
		items, el.Round(time.Millisecond), rate, ceiling, u.c429.Load(), u.total.Load(), conc, reqs, byts)
}

// benchStore turns the limits on, in the emulator and in the client alike, until the benchmark
// ends, and makes a store holding a project with the items.
func benchStore(b *testing.B, sim *m365sim.Server, limits throttle.Limits, in []store.ItemInput) (*store.Store, []model.Item) {
	b.Helper()
	sim.SetLimits(limits)
	old := exo.Limits
	exo.Limits = limits
	b.Cleanup(func() { exo.Limits = old })
	st := storetest.SQLite(b).Open(b)
	b.Cleanup(func() { st.Close() })
	wg0, _ := st.CreateWorkgroup(ctx, "w", true)
	e, _ := st.CreateEndpoint(ctx, model.Endpoint{WorkgroupID: wg0.ID, Name: "e", Kind: model.KindM365})
	prj, _ := st.CreateProject(ctx, model.Project{WorkgroupID: wg0.ID, Name: "p", Workload: model.WorkloadMailbox, SourceID: e.ID, TargetID: e.ID, CreatedBy: "b"})
	st.ImportItems(ctx, prj.ID, "b", in)
	all, _, _ := st.Items(ctx, prj.ID, store.ItemFilter{})
	return st, all
}

func imapSideB(d *dovecot.Server, user string) connector.Side {
	host, port, _ := strings.Cut(d.Addr, ":")
	var p int
	fmt.Sscan(port, &p)
	return connector.Side{Endpoint: model.Endpoint{Kind: model.KindIMAP, Settings: model.EndpointSettings{Host: host, Port: p, Security: model.SecurityNone}},
		Email: user, Login: user, Password: dovecot.Password(user)}
}
