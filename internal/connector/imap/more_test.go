package imap_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/connector"
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

// TestXOAUTH2 signs in with an OAuth access token, which Dovecot checks with the test's own token
// issuer (RFC 7662 introspection): on the pool's connections and on a batch's. A refused token
// fails with Dovecot's reason on both.
func TestXOAUTH2(t *testing.T) {
	var accepted atomic.Int32
	var revoked atomic.Bool
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		active := r.PostFormValue("token") == "token-for-alice" && !revoked.Load()
		if active {
			accepted.Add(1)
		}
		json.NewEncoder(w).Encode(map[string]any{"active": active, "username": "alice"})
	}))
	defer issuer.Close()
	s := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}, OAuthIntrospection: issuer.URL})
	c := cfg(s)
	c.Auth, c.Password = "xoauth2", "token-for-alice"
	m, err := openMailbox(c)
	if err != nil {
		t.Fatalf("XOAUTH2 with a good token: %v", err)
	}
	defer m.Close()
	// Dovecot answers as Google and Microsoft do: {"status":"401","schemes":"bearer","scope":"mail"}.
	const refused = `token refused: {"status":"401"`
	revoked.Store(true) // before the first batch, whose connection signs in on its own
	ref, _ := m.EnsureFolder(ctx, connector.Folder{Path: "INBOX"})
	msg := "Message-ID: <refused@x>\r\n\r\nrefused\r\n"
	_, err = m.PutBatch(ctx, ref, []connector.Object{{MessageID: "<refused@x>", Size: int64(len(msg))}},
		func(int) (io.Reader, int64, error) { return strings.NewReader(msg), int64(len(msg)), nil })
	if err == nil || !strings.Contains(err.Error(), refused) {
		t.Fatalf("batch with a revoked token: %v, want %q", err, refused)
	}
	revoked.Store(false)
	putBatch(t, m, "xoauth2")
	if got := snapshot(t, client(t, s), "INBOX"); len(got) != 1 {
		t.Fatalf("target holds %d messages after a refused and a good batch, want 1", len(got))
	}
	if n := accepted.Load(); n < 2 {
		t.Fatalf("the issuer accepted %d tokens, want one per connection (pool and batch, at least 2)", n)
	}
	c.Password = "expired-token"
	if _, err := openMailbox(c); err == nil || !strings.Contains(err.Error(), refused) {
		t.Fatalf("XOAUTH2 with a bad token: %v, want %q", err, refused)
	}
}

func openMailbox(c ferryimap.Config) (*ferryimap.Mailbox, error) { return ferryimap.Open(ctx, c) }

// TestXOAUTH2TokenSource signs in with a token source, as a copy that outlives one access token
// does: every sign-in asks for a fresh token, so a connection opened after the first token was
// revoked still signs in, and a source that fails stops the sign-in with its reason.
func TestXOAUTH2TokenSource(t *testing.T) {
	var revoked sync.Map
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.PostFormValue("token")
		_, gone := revoked.Load(tok)
		json.NewEncoder(w).Encode(map[string]any{"active": strings.HasPrefix(tok, "tok-") && !gone, "username": "alice"})
	}))
	defer issuer.Close()
	s := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}, OAuthIntrospection: issuer.URL})
	var issued atomic.Int32
	c := cfg(s)
	c.Auth, c.Password = "xoauth2", "not-used"
	c.Token = func(context.Context) (string, error) { return fmt.Sprintf("tok-%d", issued.Add(1)), nil }
	m, err := openMailbox(c)
	if err != nil {
		t.Fatalf("XOAUTH2 with a token source: %v", err)
	}
	defer m.Close()
	for i := int32(1); i <= issued.Load(); i++ {
		revoked.Store(fmt.Sprintf("tok-%d", i), true) // expired: only a fresh token signs in now
	}
	before := issued.Load()
	putBatch(t, m, "fresh-token") // a batch connection signs in on its own
	if got := snapshot(t, client(t, s), "INBOX"); len(got) != 1 {
		t.Fatalf("target holds %d messages after a batch with a fresh token, want 1", len(got))
	}
	if issued.Load() <= before {
		t.Fatalf("the batch connection signed in without asking for a token (%d issued before, %d after)", before, issued.Load())
	}
	c.Token = func(context.Context) (string, error) { return "", errors.New("refresh token expired") }
	if _, err := openMailbox(c); err == nil || !strings.Contains(err.Error(), "no access token: refresh token expired") {
		t.Fatalf("failing token source: %v", err)
	}
}
