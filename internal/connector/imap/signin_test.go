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

	"github.com/ferry-migrate/ferry/internal/connector"
	ferryimap "github.com/ferry-migrate/ferry/internal/connector/imap"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
)

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

func openMailbox(c ferryimap.Config) (*ferryimap.Mailbox, error) { return ferryimap.Open(ctx, c) }
