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
// server: a network that drops connections in the middle of a message.
type cutProxy struct {
	ln    net.Listener
	cuts  atomic.Int32
	limit int64
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string, cuts int32, limit int64) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, limit: limit}
	p.cuts.Store(cuts)
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			cut := p.cuts.Add(-1) >= 0
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(s, c); s.Close() }()
			go func() {
				defer p.wg.Done()
				if cut {
					io.CopyN(c, s, p.limit)
				} else {
					io.Copy(c, s)
				}
				c.Close()
				s.Close()
			}()
		}
	}()
	return p
}

func TestDroppedConnectionsAreRetried(t *testing.T) {
	p := newPair(t)
	sc := client(t, p.src)
	for i := 0; i < 6; i++ {
		body := fmt.Sprintf("Message-ID: <d%d@x>\r\n\r\n%s\r\n", i, strings.Repeat("z", 150<<10))
		appendMsg(t, sc, "INBOX", []byte(body), time.Now())
	}
	// The first two source connections die 200 KB into what the server sends.
	proxy := newCutProxy(t, p.src.Addr, 2, 200<<10)
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
