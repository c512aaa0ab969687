package imap_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ferry-migrate/ferry/internal/connector"
	ferryimap "github.com/ferry-migrate/ferry/internal/connector/imap"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
	"github.com/ferry-migrate/ferry/internal/testenv/reference"
)

var ctx = context.Background()

// pair is a source and a target Dovecot, each with user "alice", and a state store for one item.
type pair struct {
	src, dst *dovecot.Server
	st       *store.Store
	item     string
}

func newPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{src: dovecot.Start(t, dovecot.Options{Users: []string{"alice"}}), dst: dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})}
	p.st = storetest.SQLite(t).Open(t)
	t.Cleanup(func() { p.st.Close() })
	wg, _ := p.st.CreateWorkgroup(ctx, "w", true)
	ep, _ := p.st.CreateEndpoint(ctx, model.Endpoint{WorkgroupID: wg.ID, Name: "e", Kind: model.KindIMAP})
	prj, err := p.st.CreateProject(ctx, model.Project{WorkgroupID: wg.ID, Name: "p", Workload: model.WorkloadMailbox, SourceID: ep.ID, TargetID: ep.ID, CreatedBy: "t"})
	if err != nil {
		t.Fatal(err)
	}
	p.st.ImportItems(ctx, prj.ID, "t", []store.ItemInput{{SourceEmail: "alice@x.example", TargetEmail: "alice@y.example"}})
	items, _, _ := p.st.Items(ctx, prj.ID, store.ItemFilter{})
	p.item = items[0].ID
	return p
}

func cfg(s *dovecot.Server) ferryimap.Config {
	host, port, _ := strings.Cut(s.Addr, ":")
	return ferryimap.Config{Host: host, Port: port, Security: model.SecurityNone, User: "alice", Password: dovecot.Password("alice")}
}

// copyOnce runs one full pass from source to target.
func (p *pair) copyOnce(t *testing.T, o engine.CopyOptions) (model.ItemStats, []engine.FolderResult) {
	t.Helper()
	src, err := ferryimap.Open(ctx, cfg(p.src))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := ferryimap.Open(ctx, cfg(p.dst))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	o.ItemID, o.PassID = p.item, "pass"
	if o.Connections == 0 {
		o.Connections = 4
	}
	stats, res, err := engine.CopyMailbox(ctx, p.st, src, dst, o)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	return stats, res
}

// client opens a raw IMAP session to a server as alice.
func client(t *testing.T, s *dovecot.Server) *imapclient.Client { return s.Dial(t, "alice") }

func appendMsg(t *testing.T, c *imapclient.Client, mailbox string, body []byte, date time.Time, flags ...goimap.Flag) {
	t.Helper()
	dovecot.Append(t, c, mailbox, body, date, flags...)
}

func create(t *testing.T, c *imapclient.Client, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := c.Create(n, nil).Wait(); err != nil {
			t.Fatalf("create %q: %v", n, err)
		}
	}
}

// snapshot is what a server holds in a folder: per message its hash, flags and internal date.
type msgState struct {
	Hash  string
	Flags string
	Date  time.Time
	Size  int64
}

func snapshot(t *testing.T, c *imapclient.Client, mailbox string) []msgState {
	t.Helper()
	sd, err := c.Select(mailbox, &goimap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("select %q: %v", mailbox, err)
	}
	if sd.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{Flags: true, InternalDate: true, RFC822Size: true,
		BodySection: []*goimap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []msgState
	for _, m := range msgs {
		h := sha256.Sum256(m.BodySection[0].Bytes)
		var fl []string
		for _, f := range m.Flags {
			if f != `\Recent` {
				fl = append(fl, string(f))
			}
		}
		sort.Strings(fl)
		out = append(out, msgState{Hash: hex.EncodeToString(h[:]), Flags: strings.Join(fl, " "), Date: m.InternalDate.UTC(), Size: m.RFC822Size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hash+out[i].Flags < out[j].Hash+out[j].Flags })
	return out
}

func mailboxes(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range boxes {
		out = append(out, b.Mailbox)
	}
	sort.Strings(out)
	return out
}

func TestMIMECorpusArrivesByteIdentical(t *testing.T) {
	p := newPair(t)
	files := reference.MIMECorpus(t)
	sc := client(t, p.src)
	date := time.Date(2019, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3600))
	for i, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		flags := []goimap.Flag{goimap.FlagSeen}
		if i%3 == 0 {
			flags = append(flags, goimap.FlagFlagged, "$Label1")
		}
		appendMsg(t, sc, "INBOX", body, date.Add(time.Duration(i)*time.Hour), flags...)
	}
	stats, res := p.copyOnce(t, engine.CopyOptions{})
	if stats.Objects != int64(len(files)) || stats.Errors != 0 {
		t.Fatalf("copied %d objects with %d errors, want %d and 0", stats.Objects, stats.Errors, len(files))
	}
	want, got := snapshot(t, sc, "INBOX"), snapshot(t, client(t, p.dst), "INBOX")
	if len(got) != len(want) {
		t.Fatalf("target INBOX holds %d messages, source %d", len(got), len(want))
	}
	for i := range want {
		if want[i] != got[i] {
			t.Fatalf("message %d differs:\n source %+v\n target %+v", i, want[i], got[i])
		}
	}
	for _, r := range res {
		if r.Source == "INBOX" && (!r.Reconciled || r.SourceCount != len(files) || r.TargetCount != len(files)) {
			t.Fatalf("INBOX reconciliation = %+v", r)
		}
	}
}

func TestAwkwardFolderNamesAndRoles(t *testing.T) {
	p := newPair(t)
	sc := client(t, p.src)
	names := []string{"Projects 2024", "Invoices.2023", "[Archive] Old", "R&D", "Проекты", "Проекты/Отчёты", "日本語", "a", "a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e",
		"Gesendete Objekte", "Archiv"}
	create(t, sc, names...)
	create(t, client(t, p.dst), "Archive")
	for i, n := range names {
		appendMsg(t, sc, n, []byte(fmt.Sprintf("Message-ID: <f%d@x>\r\nSubject: %s\r\n\r\nin %s\r\n", i, n, n)), time.Now())
	}
	p.copyOnce(t, engine.CopyOptions{})
	got := mailboxes(t, client(t, p.dst))
	for _, n := range names {
		if n == "Archiv" {
			continue
		}
		if !slices.Contains(got, n) {
			t.Errorf("target lacks folder %q; has %v", n, got)
		}
	}
	// The source's Sent has its role by SPECIAL-USE, so "Gesendete Objekte" beside it is a plain
	// folder and keeps its name. "Archiv" has its role by name, as the target's "Archive" does,
	// and no folder has it by SPECIAL-USE: it lands in "Archive".
	if slices.Contains(got, "Archiv") {
		t.Errorf("target got a new folder \"Archiv\" instead of using Archive: %v", got)
	}
	dc := client(t, p.dst)
	for box, want := range map[string]int{"Archive": 1, "Gesendete Objekte": 1, "Sent": 0, "Проекты/Отчёты": 1} {
		if s := snapshot(t, dc, box); len(s) != want {
			t.Errorf("target %s holds %d messages, want %d", box, len(s), want)
		}
	}
}

func TestNoMessageIDDuplicatesFlagsAndRepeatedPasses(t *testing.T) {
	p := newPair(t)
	sc := client(t, p.src)
	create(t, sc, "Work")
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	msgs := [][]byte{
		[]byte("Subject: no id one\r\n\r\nfirst\r\n"),
		[]byte("Subject: no id two\r\n\r\nsecond!\r\n"),
		[]byte("Subject: no id one\r\n\r\nfirst\r\n"), // an exact copy: the source holds it twice
		[]byte("Message-ID: <same@x>\r\nSubject: a\r\n\r\nshort\r\n"),
		[]byte("Message-ID: <same@x>\r\nSubject: b\r\n\r\na longer body with the same id\r\n"),
	}
	for i, m := range msgs {
		appendMsg(t, sc, "Work", m, now.Add(time.Duration(i)*time.Minute), goimap.FlagSeen, goimap.FlagAnswered, goimap.FlagFlagged,
			goimap.FlagDeleted, goimap.FlagDraft, "$Forwarded", "ProjectX", "Kunde_42")
	}
	for pass := 1; pass <= 3; pass++ {
		stats, _ := p.copyOnce(t, engine.CopyOptions{})
		wantObjects := int64(0)
		if pass == 1 {
			wantObjects = int64(len(msgs))
		}
		if stats.Objects != wantObjects || stats.Errors != 0 {
			t.Fatalf("pass %d copied %d (errors %d), want %d", pass, stats.Objects, stats.Errors, wantObjects)
		}
	}
	want, got := snapshot(t, sc, "Work"), snapshot(t, client(t, p.dst), "Work")
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("after three passes:\n source %v\n target %v", want, got)
	}
	if !strings.Contains(got[0].Flags, "ProjectX") || !strings.Contains(got[0].Flags, `\Deleted`) || !got[0].Date.Equal(now) && !got[1].Date.Equal(now) {
		t.Fatalf("flags or dates lost: %+v", got)
	}
	// A flag change at the source reaches the target on the next delta.
	if _, err := sc.Select("Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Store(goimap.SeqSetNum(4), &goimap.StoreFlags{Op: goimap.StoreFlagsSet, Flags: []goimap.Flag{goimap.FlagSeen, "Reviewed"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	stats, _ := p.copyOnce(t, engine.CopyOptions{})
	if stats.Objects != 0 {
		t.Fatalf("flag delta copied %d messages", stats.Objects)
	}
	want, got = snapshot(t, sc, "Work"), snapshot(t, client(t, p.dst), "Work")
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("after flag change:\n source %v\n target %v", want, got)
	}
}

func TestLargeMessageAndLostState(t *testing.T) {
	p := newPair(t)
	sc := client(t, p.src)
	big := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-+_=\r\n"), 50<<20/68+1)
	body := append([]byte("Message-ID: <big@x>\r\nSubject: 50 MB\r\n\r\n"), big...)
	appendMsg(t, sc, "INBOX", body, time.Now(), goimap.FlagSeen)
	for i := 0; i < 20; i++ {
		appendMsg(t, sc, "INBOX", []byte(fmt.Sprintf("Message-ID: <s%d@x>\r\n\r\nsmall %d\r\n", i, i)), time.Now())
	}
	stats, _ := p.copyOnce(t, engine.CopyOptions{})
	if stats.Objects != 21 || stats.Bytes < 50<<20 {
		t.Fatalf("copied %d objects, %d bytes", stats.Objects, stats.Bytes)
	}
	// Losing every watermark and cursor (as a crash between write and checkpoint would for a
	// batch) must not duplicate anything on the next pass.
	if _, err := p.st.DB().Exec(`DELETE FROM watermarks; DELETE FROM cursors`); err != nil {
		t.Fatal(err)
	}
	stats, _ = p.copyOnce(t, engine.CopyOptions{})
	if stats.Objects != 0 || stats.Skipped != 21 {
		t.Fatalf("after losing state: copied %d, skipped %d; want 0 and 21", stats.Objects, stats.Skipped)
	}
	want, got := snapshot(t, sc, "INBOX"), snapshot(t, client(t, p.dst), "INBOX")
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("target differs from source (%d vs %d messages)", len(got), len(want))
	}
}

// putBatch writes one message as a batch (MULTIAPPEND), which goes over a connection of its own.
func putBatch(t *testing.T, m *ferryimap.Mailbox, name string) {
	t.Helper()
	if m.MaxBatch() == 0 {
		t.Fatal("Dovecot should take batches (MULTIAPPEND, LITERAL+, UIDPLUS)")
	}
	ref, err := m.EnsureFolder(ctx, connector.Folder{Path: "INBOX"})
	if err != nil {
		t.Fatal(err)
	}
	msg := "Message-ID: <" + name + "@x>\r\n\r\nover " + name + "\r\n"
	refs, err := m.PutBatch(ctx, ref, []connector.Object{{MessageID: "<" + name + "@x>", Size: int64(len(msg))}},
		func(int) (io.Reader, int64, error) { return strings.NewReader(msg), int64(len(msg)), nil })
	if err != nil || len(refs) != 1 {
		t.Fatalf("batch over %s: %v, %v", name, refs, err)
	}
}

func TestTLSVerifiesCertificatesByDefault(t *testing.T) {
	s := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}, TLS: true})
	host, port, _ := strings.Cut(s.TLSAddr, ":")
	c := ferryimap.Config{Host: host, Port: port, Security: model.SecurityTLS, User: "alice", Password: dovecot.Password("alice")}
	if _, err := ferryimap.Open(ctx, c); err == nil || !strings.Contains(err.Error(), "certificate not trusted") {
		t.Fatalf("self-signed certificate accepted by default: %v", err)
	}
	c.CACert = string(s.CertPEM)
	m, err := ferryimap.Open(ctx, c)
	if err != nil {
		t.Fatalf("with the CA certificate: %v", err)
	}
	putBatch(t, m, "tls")
	m.Close()
	_, port, _ = strings.Cut(s.Addr, ":")
	st := ferryimap.Config{Host: host, Port: port, Security: model.SecuritySTARTTLS, InsecureSkipVerify: true, User: "alice", Password: dovecot.Password("alice")}
	m, err = ferryimap.Open(ctx, st)
	if err != nil {
		t.Fatalf("STARTTLS with verification off: %v", err)
	}
	putBatch(t, m, "starttls")
	m.Close()
	// Both batches went over their own connections, with the same security as the rest.
	if got := snapshot(t, client(t, s), "INBOX"); len(got) != 2 {
		t.Fatalf("target holds %d messages after a batch over TLS and one over STARTTLS, want 2", len(got))
	}
	st.Password = "wrong"
	if _, err := ferryimap.Open(ctx, st); err == nil || !strings.Contains(err.Error(), "sign-in as alice failed") {
		t.Fatalf("wrong password: %v", err)
	}
}
