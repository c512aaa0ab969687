package imap_test

import (
	"fmt"
	"testing"
	"time"

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
