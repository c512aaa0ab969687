package imap_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/ferry-migrate/ferry/internal/connector"
	ferryimap "github.com/ferry-migrate/ferry/internal/connector/imap"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
)

// commandLog forwards to a server and records, per connection, the client's command lines
// (literals skipped; what follows a literal is logged with a "+" in front).
type commandLog struct {
	ln    net.Listener
	mu    sync.Mutex
	lines map[int][]string
}

var literalAtEnd = regexp.MustCompile(`\{(\d+)\+?\}\r\n$`)

func newCommandLog(t *testing.T, target string) *commandLog {
	l := &commandLog{lines: map[int][]string{}}
	l.ln = forward(t, target, func(n int, c, s net.Conn, wg *sync.WaitGroup) {
		wg.Add(2)
		go func() { defer wg.Done(); io.Copy(c, s); c.Close() }()
		go func() {
			defer wg.Done()
			defer s.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				l.log(n, line)
				s.Write([]byte(line))
				// A command goes on after each literal: copy the literal, then the rest of the line.
				for m := literalAtEnd.FindStringSubmatch(line); m != nil; m = literalAtEnd.FindStringSubmatch(line) {
					k, _ := strconv.ParseInt(m[1], 10, 64)
					if _, err := io.CopyN(s, r, k); err != nil {
						return
					}
					if line, err = r.ReadString('\n'); err != nil {
						return
					}
					l.log(n, "+"+line)
					s.Write([]byte(line))
				}
			}
		}()
	})
	return l
}

func (l *commandLog) log(n int, line string) {
	l.mu.Lock()
	l.lines[n] = append(l.lines[n], strings.TrimRight(line, "\r\n"))
	l.mu.Unlock()
}

var commandRE = regexp.MustCompile(`^\S+ (SELECT|EXAMINE|APPEND|UNSELECT|CLOSE) ?"?([^"\s]*)`)

// Dovecot appends to the selected folder at less cost than to another one, so every APPEND should
// go to the folder its connection has selected, however folders share connections; and small
// messages go several to an APPEND (MULTIAPPEND), which costs Dovecot less again.
func TestAppendsGoToTheSelectedFolder(t *testing.T) {
	p := newPair(t)
	sc := client(t, p.src)
	const folders, per = 8, 6
	for f := range folders {
		create(t, sc, fmt.Sprintf("F%d", f))
		for i := range per {
			appendMsg(t, sc, fmt.Sprintf("F%d", f), []byte(fmt.Sprintf("Message-ID: <s%d.%d@x>\r\n\r\nbody %d\r\n", f, i, i)), time.Now())
		}
	}
	log, slog := newCommandLog(t, p.dst.Addr), newCommandLog(t, p.src.Addr)
	realDst, realSrc := p.dst, p.src
	p.dst, p.src = &dovecot.Server{Addr: log.ln.Addr().String()}, &dovecot.Server{Addr: slog.ln.Addr().String()}
	stats, _ := p.copyOnce(t, engine.CopyOptions{Connections: 4})
	p.dst, p.src = realDst, realSrc
	if stats.Objects != folders*per {
		t.Fatalf("copied %d messages, want %d", stats.Objects, folders*per)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	appends, messages, elsewhere := 0, 0, 0
	for n, lines := range log.lines {
		selected, inAppend := "", false
		for _, line := range lines {
			if strings.HasPrefix(line, "+") {
				if inAppend && literalAtEnd.MatchString(line[1:]+"\r\n") {
					messages++
				}
				continue
			}
			m := commandRE.FindStringSubmatch(line)
			inAppend = m != nil && m[1] == "APPEND"
			switch {
			case m == nil:
			case m[1] == "APPEND":
				appends++
				messages++
				if m[2] != selected {
					elsewhere++
					t.Errorf("connection %d: APPEND to %q with %q selected", n, m[2], selected)
				}
			case m[1] == "UNSELECT" || m[1] == "CLOSE":
				selected = ""
			default:
				selected = m[2]
			}
		}
	}
	if messages != folders*per {
		t.Fatalf("the APPENDs carried %d messages, want %d", messages, folders*per)
	}
	if elsewhere > 0 {
		t.Fatalf("%d of %d APPENDs went to a folder the connection had not selected", elsewhere, appends)
	}
	if appends != folders {
		t.Fatalf("%d APPENDs for %d messages in %d folders: want one MULTIAPPEND per folder", appends, messages, folders)
	}
	// The source sends each folder's bodies in one UID FETCH too.
	slog.mu.Lock()
	defer slog.mu.Unlock()
	fetches := 0
	for _, lines := range slog.lines {
		for _, line := range lines {
			if strings.Contains(line, "UID FETCH") && strings.Contains(line, "BODY.PEEK[]") {
				fetches++
			}
		}
	}
	if fetches != folders {
		t.Fatalf("%d body FETCHes for %d folders, want one each", fetches, folders)
	}
}

// A message expunged between the listing and the batch's FETCH ends the batch with an error at
// that message, after the bodies before it, never with another message's body in its place.
func TestOpenBatchStopsAtAGoneMessage(t *testing.T) {
	s := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	c := client(t, s)
	for i := range 3 {
		appendMsg(t, c, "INBOX", []byte(fmt.Sprintf("Message-ID: <g%d@x>\r\n\r\nbody %d\r\n", i, i)), time.Now())
	}
	m, err := ferryimap.Open(ctx, cfg(s))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f := connector.Folder{Path: "INBOX"}
	objects, _ := m.List(ctx, f, "")
	var objs []connector.Object
	for o, err := range objects {
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	if len(objs) != 3 {
		t.Fatalf("listed %d, want 3", len(objs))
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(goimap.SeqSetNum(2), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	next, done, err := m.OpenBatch(ctx, f, objs)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := next()
	if err != nil {
		t.Fatalf("first body: %v", err)
	}
	if b, _ := io.ReadAll(r); !strings.Contains(string(b), "body 0") {
		t.Fatalf("first body = %q", b)
	}
	if r, _, err := next(); err == nil || !strings.Contains(err.Error(), "gone") {
		var b []byte
		if r != nil {
			b, _ = io.ReadAll(r)
		}
		t.Fatalf("second body (expunged) = %q, %v; want an error saying it is gone", b, err)
	}
	if err := done(); err != nil {
		t.Fatalf("done: %v", err)
	}
}
