package exo_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/ferry-migrate/ferry/internal/connector/exo"
	"github.com/ferry-migrate/ferry/internal/mailparse"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
	"github.com/ferry-migrate/ferry/internal/testenv/mimecorpus"
)

// TestCorpusRoundTrip sends the project's own hard MIME cases from Dovecot through (emulated)
// Exchange and back to Dovecot, then reads every message that came back: subject, addresses, body
// text and every attachment's name and bytes are exactly what the corpus expects of the original.
// IMAP state survives too: \Seen, \Flagged, \Answered, $Forwarded, \Draft and keywords. Three
// passes out add nothing twice.
func TestCorpusRoundTrip(t *testing.T) {
	dir, exp := mimecorpus.Load(t)
	names := make([]string, 0, len(exp))
	for name := range exp {
		names = append(names, name)
	}
	sort.Strings(names)
	r := newRig(t)
	d := dovecot.Start(t, dovecot.Options{Users: []string{"alice", "bob"}})
	ac := d.Dial(t, "alice")
	base := time.Date(2022, 3, 1, 9, 0, 0, 0, time.UTC)
	byDate := map[time.Time]string{} // every message has an internal date of its own
	flagsOf := map[string][]string{}
	for i, name := range names {
		body, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		date := base.Add(time.Duration(i) * time.Hour)
		flags := [][]imap.Flag{{imap.FlagSeen, imap.FlagAnswered}, {"$Forwarded", "Project-X"}, {imap.FlagDraft}, {imap.FlagSeen, imap.FlagFlagged, imap.FlagAnswered, "Kunde_A"}, {}}[i%5]
		dovecot.Append(t, ac, "INBOX", body, date, flags...)
		byDate[date] = name
		for _, f := range flags {
			flagsOf[name] = append(flagsOf[name], string(f))
		}
		slices.Sort(flagsOf[name])
	}
	for i := range 3 {
		stats, _, err := r.copyOut(t, d, "out", 2)
		if err != nil {
			t.Fatalf("pass %d to Exchange: %v", i+1, err)
		}
		want := int64(len(names))
		if i > 0 {
			want = 0
		}
		if stats.Objects != want || stats.Errors != 0 {
			t.Fatalf("pass %d to Exchange: %+v, want %d copied and no error", i+1, stats, want)
		}
	}

	// Back to Dovecot, for bob.
	if stats, err := r.copyBack(t, d); err != nil || stats.Objects < int64(len(names)) {
		t.Fatalf("copy back: %+v %v, want at least %d", stats, err, len(names))
	}
	seen := map[string]bool{}
	for _, m := range dovecot.Messages(t, d.Dial(t, "bob")) {
		name, ok := byDate[m.Date.UTC()]
		if !ok {
			continue // the seeded mailbox's own mail
		}
		if seen[name] {
			t.Errorf("%s came back twice", name)
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			if want := flagsOf[name]; !slices.Equal(m.Flags, want) && !(len(m.Flags) == 0 && len(want) == 0) {
				t.Errorf("flags %v, want %v", m.Flags, want)
			}
			var atts []mimecorpus.Attachment
			msg, err := mailparse.Read(bytes.NewReader(m.Body), 1<<20, func(p mailparse.Part, r io.Reader) error {
				h := sha256.New()
				n, err := io.Copy(h, r)
				atts = append(atts, mimecorpus.Attachment{Name: p.Name, ContentType: p.ContentType, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			mimecorpus.Check(t, exp[name], mimecorpus.Reading{Subject: msg.Header.Subject, From: mimecorpus.Pairs(msg.Header.From),
				To: mimecorpus.Pairs(msg.Header.To), Body: msg.Body, Attachments: atts, Canonical: true})
		})
	}
	if len(seen) != len(names) {
		t.Fatalf("%d of %d corpus messages came back", len(seen), len(names))
	}
}

// A message Ferry cannot read (a header over 1 MiB) arrives as a note with the original attached
// whole, counts as copied, and the item's report says so; the next pass neither copies it again
// nor reports it again.
func TestUnreadableMessageIsReported(t *testing.T) {
	r := newRig(t)
	d := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	ac := d.Dial(t, "alice")
	dovecot.Append(t, ac, "INBOX", []byte("Message-ID: <fine@ferry.test>\r\nSubject: fine\r\n\r\nbody\r\n"), time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC))
	huge := []byte("Message-ID: <huge-header@ferry.test>\r\nX-Long: " + strings.Repeat("x", 2<<20) + "\r\nSubject: too long\r\n\r\nbody\r\n")
	dovecot.Append(t, ac, "INBOX", huge, time.Date(2022, 1, 2, 0, 0, 0, 0, time.UTC))
	for pass := range 2 {
		stats, _, err := r.copyOut(t, d, fmt.Sprint("p", pass), 1)
		if err != nil {
			t.Fatal(err)
		}
		want := model.ItemStats{Objects: 2, Errors: 1}
		if pass == 1 {
			want = model.ItemStats{}
		}
		if stats.Objects != want.Objects || stats.Errors != want.Errors {
			t.Fatalf("pass %d: %d copied, %d errors; want %d and %d", pass+1, stats.Objects, stats.Errors, want.Objects, want.Errors)
		}
	}
	errs, _ := r.st.ObjectErrors(ctx, r.item, 10)
	if len(errs) != 1 || !strings.Contains(errs[0].Reason, "kept whole as original.eml in a note: the message could not be read") {
		t.Fatalf("report %+v, want the unreadable message once", errs)
	}
	tc := r.client(t, r.dst, "user01@fabrikam.com")
	found, err := tc.MessagesWithProperty(ctx, "user01@fabrikam.com", "inbox", exo.StampProperty, fmt.Sprintf("mid:<huge-header@ferry.test>|%d", len(huge)))
	if err != nil || len(found) != 1 || found[0].Subject != "(unreadable message)" {
		t.Fatalf("the note at the target: %+v %v", found, err)
	}
}
