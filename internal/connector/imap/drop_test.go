package imap_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
)

// cutProxy forwards to a server and cuts the first cuts connections after limit bytes from the
// server, or with upstream from the client: a network that drops connections in the middle of a
// message.
type cutProxy struct {
	ln       net.Listener
	cuts     atomic.Int32
	limit    int64
	upstream bool
}

func newCutProxy(t *testing.T, target string, cuts int32, limit int64, upstream bool) *cutProxy {
	p := &cutProxy{limit: limit, upstream: upstream}
	p.cuts.Store(cuts)
	p.ln = forward(t, target, func(_ int, c, s net.Conn, wg *sync.WaitGroup) {
		cut := p.cuts.Add(-1) >= 0
		pipe := func(dst, src net.Conn, cut bool) {
			defer wg.Done()
			if cut {
				io.CopyN(dst, src, p.limit)
			} else {
				io.Copy(dst, src)
			}
			c.Close()
			s.Close()
		}
		wg.Add(2)
		go pipe(s, c, cut && p.upstream)
		go pipe(c, s, cut && !p.upstream)
	})
	return p
}

// forward listens on loopback and hands each accepted connection, with a new one to target, to
// serve (n counts connections from 0); goroutines serve starts are counted in wg, and the test
// waits for them.
func forward(t *testing.T, target string, serve func(n int, client, server net.Conn, wg *sync.WaitGroup)) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			serve(n, c, s, &wg)
		}
	}()
	return ln
}

func TestDroppedConnectionsAreRetried(t *testing.T) {
	p := newPair(t)
	sc := client(t, p.src)
	for i := 0; i < 6; i++ {
		body := fmt.Sprintf("Message-ID: <d%d@x>\r\n\r\n%s\r\n", i, strings.Repeat("z", 150<<10))
		appendMsg(t, sc, "INBOX", []byte(body), time.Now())
	}
	// The first two source connections die 200 KB into what the server sends.
	proxy := newCutProxy(t, p.src.Addr, 2, 200<<10, false)
	real := p.src
	p.src = &dovecot.Server{Addr: proxy.ln.Addr().String()}
	stats, _ := p.copyOnce(t, engine.CopyOptions{Connections: 1})
	p.src = real
	if stats.Objects != 6 || stats.Errors != 0 {
		t.Fatalf("through a dropping network: copied %d with %d errors, want 6 and 0", stats.Objects, stats.Errors)
	}
	if proxy.cuts.Load() >= 0 {
		t.Fatalf("the proxy cut fewer connections than planned (%d left)", proxy.cuts.Load())
	}
	want, got := snapshot(t, sc, "INBOX"), snapshot(t, client(t, p.dst), "INBOX")
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("target differs after retries: %d vs %d messages", len(got), len(want))
	}
}

// A target connection that drops in the middle of a batch (MULTIAPPEND) stores none of it; the
// messages are then appended one by one, and a drop during one of those is retried too. Nothing
// is lost and nothing doubled.
func TestTargetDropsDuringBatch(t *testing.T) {
	p := newPair(t)
	sc := client(t, p.src)
	for i := 0; i < 10; i++ {
		body := fmt.Sprintf("Message-ID: <t%d@x>\r\n\r\n%s\r\n", i, strings.Repeat("q", 100<<10))
		appendMsg(t, sc, "INBOX", []byte(body), time.Now())
	}
	// The first three target connections (sign-in, the batch, its fallback) die after 300 KB
	// from the client.
	proxy := newCutProxy(t, p.dst.Addr, 3, 300<<10, true)
	real := p.dst
	p.dst = &dovecot.Server{Addr: proxy.ln.Addr().String()}
	stats, res := p.copyOnce(t, engine.CopyOptions{Connections: 1})
	p.dst = real
	if stats.Errors != 0 || stats.Objects+stats.Skipped != 10 {
		t.Fatalf("through a dropping network: copied %d, found %d, %d errors; want 10 in all and no errors", stats.Objects, stats.Skipped, stats.Errors)
	}
	if proxy.cuts.Load() >= 0 {
		t.Fatalf("fewer target connections than planned were opened (%d cuts left)", proxy.cuts.Load())
	}
	want, got := snapshot(t, sc, "INBOX"), snapshot(t, client(t, p.dst), "INBOX")
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("target differs after drops: %d messages, want %d", len(got), len(want))
	}
	for _, r := range res {
		if r.Source == "INBOX" && (!r.Reconciled || r.TargetCount != 10) {
			t.Fatalf("reconciliation: %+v", r)
		}
	}
}
