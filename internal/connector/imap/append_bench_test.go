package imap_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
)

// BenchmarkDovecotAppend measures what one APPEND costs the target Dovecot, in its own CPU time per
// message, written on a raw connection so that only the server's side is counted: to a folder
// the connection has not selected, to the selected folder, and in MULTIAPPENDs of 50 (RFC 3502).
// It explains where the server's time goes in BenchmarkCopyVsMbsync.
//
//	go test -run '^$' -bench DovecotAppend -benchtime 1000x ./internal/connector/imap/
func BenchmarkDovecotAppend(b *testing.B) {
	for _, size := range []int{30 << 10, 1 << 20} {
		for _, mode := range []string{"not-selected", "selected", "multiappend-50"} {
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, mode), func(b *testing.B) {
				s := dovecot.Start(b, dovecot.Options{Users: []string{"alice"}})
				msg := benchMessage(size)
				r := dialRaw(b, s)
				r.cmd(b, "CREATE A")
				if mode != "not-selected" {
					r.cmd(b, "SELECT A")
				}
				time.Sleep(200 * time.Millisecond) // let the CREATE's session settle before reading CPU
				cpu0 := s.CPU()
				b.SetBytes(int64(len(msg)))
				b.ResetTimer()
				batch := 1
				if mode == "multiappend-50" {
					batch = 50
				}
				for i := 0; i < b.N; i += batch {
					tag := r.send("APPEND A")
					for range min(batch, b.N-i) {
						fmt.Fprintf(r.w, ` (\Seen $Kunde) "03-Dec-2026 07:33:31 +0000" {%d+}`+"\r\n", len(msg))
						r.w.Write(msg)
					}
					r.w.WriteString("\r\n")
					r.wait(b, tag)
				}
				r.cmd(b, "LOGOUT")
				r.c.Close()
				b.StopTimer()
				time.Sleep(300 * time.Millisecond) // Dovecot's CPU is counted when the session ends
				b.ReportMetric(float64((s.CPU()-cpu0).Microseconds())/float64(b.N), "dovecot-us/msg")
			})
		}
	}
}

func benchMessage(size int) []byte {
	var m bytes.Buffer
	m.WriteString("Message-ID: <bench@x>\r\nSubject: bench\r\nFrom: a@b.example\r\n\r\n")
	line := strings.Repeat("abcdefghij", 7) + "klmnop\r\n"
	for m.Len() < size {
		m.WriteString(line)
	}
	return m.Bytes()
}

// raw is an IMAP connection spoken by hand, so a benchmark can send what go-imap cannot (MULTIAPPEND).
type raw struct {
	c   net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	tag int
}

func dialRaw(tb testing.TB, s *dovecot.Server) *raw {
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		tb.Fatal(err)
	}
	r := &raw{c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 1<<20)}
	if _, err := r.r.ReadString('\n'); err != nil {
		tb.Fatal(err)
	}
	r.cmd(tb, "LOGIN alice "+dovecot.Password("alice"))
	return r
}

func (r *raw) send(s string) string {
	r.tag++
	tag := fmt.Sprintf("T%d", r.tag)
	r.w.WriteString(tag + " " + s)
	return tag
}

// wait flushes and reads up to the tagged answer, which must be OK.
func (r *raw) wait(tb testing.TB, tag string) {
	if err := r.w.Flush(); err != nil {
		tb.Fatal(err)
	}
	for {
		l, err := r.r.ReadString('\n')
		if err != nil {
			tb.Fatal(err)
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				tb.Fatalf("server answered %q", l)
			}
			return
		}
	}
}

func (r *raw) cmd(tb testing.TB, s string) { r.wait(tb, r.send(s+"\r\n")) }
