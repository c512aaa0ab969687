package imap_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	ferryimap "github.com/ferry-migrate/ferry/internal/connector/imap"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
)

func TestUIDValidityChangeRechecksWithoutDuplicates(t *testing.T) {
	p := newPair(t)
	sc := client(t, p.src)
	create(t, sc, "Box")
	for i := 0; i < 10; i++ {
		appendMsg(t, sc, "Box", []byte(fmt.Sprintf("Message-ID: <u%d@x>\r\n\r\nbody %d\r\n", i, i)), time.Now())
	}
	appendMsg(t, sc, "Box", []byte("Subject: no id\r\n\r\nwithout message-id\r\n"), time.Now())
	if stats, _ := p.copyOnce(t, engine.CopyOptions{}); stats.Objects != 11 {
		t.Fatalf("first copy: %d objects", stats.Objects)
	}
	// Recreate the folder with the same messages plus one: a new UIDVALIDITY, so old ids are void.
	if err := sc.Rename("Box", "Box-old", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	create(t, sc, "Box")
	for i := 0; i < 11; i++ {
		appendMsg(t, sc, "Box", []byte(fmt.Sprintf("Message-ID: <u%d@x>\r\n\r\nbody %d\r\n", i, i)), time.Now())
	}
	appendMsg(t, sc, "Box", []byte("Subject: no id\r\n\r\nwithout message-id\r\n"), time.Now())
	stats, _ := p.copyOnce(t, engine.CopyOptions{Exclude: nil})
	// Box: 1 new (u10); Box-old: 11 new (a new folder at the target).
	if stats.Objects != 12 {
		t.Fatalf("after UIDVALIDITY change copied %d, want 12 (1 new in Box, 11 in Box-old)", stats.Objects)
	}
	if n := len(snapshot(t, client(t, p.dst), "Box")); n != 12 {
		t.Fatalf("target Box holds %d, want 12", n)
	}
}

func TestWithoutCondstoreUsesUIDNext(t *testing.T) {
	// Advertise neither CONDSTORE nor LIST-STATUS, as many hosted servers do.
	caps := "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS SPECIAL-USE"
	p := newPair(t)
	p.src = dovecot.Start(t, dovecot.Options{Users: []string{"alice"}, Extra: caps})
	sc := client(t, p.src)
	for i := 0; i < 5; i++ {
		appendMsg(t, sc, "INBOX", []byte(fmt.Sprintf("Message-ID: <n%d@x>\r\n\r\n%d\r\n", i, i)), time.Now())
	}
	if stats, _ := p.copyOnce(t, engine.CopyOptions{}); stats.Objects != 5 {
		t.Fatalf("first copy: %d", stats.Objects)
	}
	appendMsg(t, sc, "INBOX", []byte("Message-ID: <n5@x>\r\n\r\n5\r\n"), time.Now())
	stats, _ := p.copyOnce(t, engine.CopyOptions{})
	if stats.Objects != 1 || stats.Skipped != 0 {
		t.Fatalf("delta without CONDSTORE: copied %d, skipped %d; want 1 and 0 (only UIDs from UIDNEXT listed)", stats.Objects, stats.Skipped)
	}
	if n := len(snapshot(t, client(t, p.dst), "INBOX")); n != 6 {
		t.Fatalf("target holds %d, want 6", n)
	}
}

func TestRejectedMessageIsRecordedAndPassGoesOn(t *testing.T) {
	p := newPair(t)
	p.dst = dovecot.Start(t, dovecot.Options{Users: []string{"alice"}, Extra: "mail_plugins = $mail_plugins quota\nplugin {\n  quota = maildir:User quota\n  quota_max_mail_size = 64k\n}\n"})
	sc := client(t, p.src)
	appendMsg(t, sc, "INBOX", []byte("Message-ID: <ok1@x>\r\n\r\nsmall\r\n"), time.Now())
	appendMsg(t, sc, "INBOX", append([]byte("Message-ID: <big@x>\r\n\r\n"), []byte(strings.Repeat("y", 100<<10))...), time.Now())
	appendMsg(t, sc, "INBOX", []byte("Message-ID: <ok2@x>\r\n\r\nsmall too\r\n"), time.Now())
	stats, res := p.copyOnce(t, engine.CopyOptions{})
	if stats.Objects != 2 || stats.Errors != 1 {
		t.Fatalf("copied %d with %d errors, want 2 and 1", stats.Objects, stats.Errors)
	}
	errs, _ := p.st.ObjectErrors(ctx, p.item, 10)
	if len(errs) != 1 || !strings.Contains(errs[0].Reason, "server answered") || !strings.Contains(errs[0].Reason, "NO [LIMIT]") {
		t.Fatalf("recorded errors = %+v", errs)
	}
	for _, r := range res {
		if r.Source == "INBOX" && (r.Reconciled || r.TargetCount != 2 || r.SourceCount != 3) {
			t.Fatalf("reconciliation should show the missing message: %+v", r)
		}
	}
}

func TestLoginMechanism(t *testing.T) {
	s := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	c := cfg(s)
	c.Auth = "login"
	m, err := openMailbox(c)
	if err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	putBatch(t, m, "login") // on a connection of its own, which signs in the same way
	m.Close()
	if got := snapshot(t, client(t, s), "INBOX"); len(got) != 1 {
		t.Fatalf("target holds %d messages after a batch, want 1", len(got))
	}
	c.Auth = "cram-md5"
	if _, err := openMailbox(c); err == nil || !strings.Contains(err.Error(), `unknown auth "cram-md5"`) {
		t.Fatalf("unknown mechanism: %v", err)
	}
}

func openMailbox(c ferryimap.Config) (*ferryimap.Mailbox, error) { return ferryimap.Open(ctx, c) }
