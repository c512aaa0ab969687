package imap

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/ferry-migrate/ferry/internal/connector/imap/wire"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
)

// BenchmarkDovecotAppend measures what one APPEND costs the target Dovecot, in its own CPU time per
// message, written on a batch connection so that only the server's side is counted: to a folder
// the connection has not selected, to the selected folder, and in MULTIAPPENDs of 50 (RFC 3502).
// It explains where the server's time goes in BenchmarkCopyVsMbsync.
//
//	go test -run '^$' -bench DovecotAppend -benchtime 1000x ./internal/connector/imap/
func BenchmarkDovecotAppend(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{30 << 10, 1 << 20} {
		for _, mode := range []string{"not-selected", "selected", "multiappend-50"} {
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, mode), func(b *testing.B) {
				s := dovecot.Start(b, dovecot.Options{Users: []string{"alice"}})
				host, port, _ := strings.Cut(s.Addr, ":")
				if err := s.Dial(b, "alice").Create("A", nil).Wait(); err != nil {
					b.Fatal(err)
				}
				rc, err := dialBatch(ctx, Config{Host: host, Port: port, Security: model.SecurityNone, User: "alice", Password: dovecot.Password("alice")}, imap.CapSet{})
				if err != nil {
					b.Fatal(err)
				}
				defer rc.close()
				if mode != "not-selected" {
					if err := rc.Select("A"); err != nil {
						b.Fatal(err)
					}
				}
				msg := benchMessage(size)
				batch := 1
				if mode == "multiappend-50" {
					batch = 50
				}
				next := func(int) (wire.Message, error) {
					return wire.Message{Flags: []imap.Flag{imap.FlagSeen, "$Kunde"}, Date: time.Date(2026, 12, 3, 7, 33, 31, 0, time.UTC),
						Size: int64(len(msg)), Body: bytes.NewReader(msg)}, nil
				}
				time.Sleep(200 * time.Millisecond) // let the session settle before reading CPU
				cpu0 := s.CPU()
				b.SetBytes(int64(len(msg)))
				b.ResetTimer()
				for i := 0; i < b.N; i += batch {
					if _, err := rc.MultiAppend("A", min(batch, b.N-i), next); err != nil {
						b.Fatal(err)
					}
				}
				rc.Logout()
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
