package exo_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/connector/exo"
	ferryimap "github.com/ferry-migrate/ferry/internal/connector/imap"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
)

// state is a message as an IMAP server or the emulator shows it: content hash, flags, date.
func state(body []byte, flags []string, date time.Time) string {
	h := sha256.Sum256(body)
	slices.Sort(flags)
	return fmt.Sprintf("%s %v %s", hex.EncodeToString(h[:8]), flags, date.UTC().Format(time.RFC3339))
}

// exchangeMail is every mail message of a user as the emulator serves it ($value), with the IMAP
// flags its state maps to.
func exchangeMail(t *testing.T, c *graph.Client, user string) []string {
	t.Helper()
	var out []string
	walkFolders(t, c, user, func(_ string, f graph.MailboxFolder) {
		if f.Type != "IPF.Note" {
			return
		}
		eachMessage(t, c, user, f.ID, func(m graph.Message, mime []byte) {
			var flags []string
			if m.IsRead {
				flags = append(flags, `\Seen`)
			}
			if m.Flag != nil && m.Flag.FlagStatus == "flagged" {
				flags = append(flags, `\Flagged`)
			}
			for _, cat := range m.Categories {
				flags = append(flags, strings.ReplaceAll(cat, " ", "_"))
			}
			out = append(out, state(mime, flags, *m.ReceivedDateTime))
		})
	})
	slices.Sort(out)
	return out
}

// imapMail is every message of every folder of a Dovecot user.
func imapMail(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	var out []string
	for _, m := range dovecot.Messages(t, c) {
		out = append(out, state(m.Body, m.Flags, m.Date))
	}
	slices.Sort(out)
	return out
}

// TestExchangeToIMAP copies an Exchange mailbox to Dovecot as MIME: every mail message arrives
// byte for byte as the emulator serves it, with its read state, flag, categories (as keywords)
// and received date; calendars stay behind; re-runs and lost watermarks copy nothing twice.
func TestExchangeToIMAP(t *testing.T) {
	r := newRig(t)
	d := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	host, port, _ := strings.Cut(d.Addr, ":")
	var p int
	fmt.Sscan(port, &p)
	imapSide := connector.Side{Endpoint: model.Endpoint{Kind: model.KindIMAP, Settings: model.EndpointSettings{Host: host, Port: p, Security: model.SecurityNone}},
		Email: "alice", Login: "alice", Password: dovecot.Password("alice")}
	pass := func() (model.ItemStats, []engine.FolderResult) {
		t.Helper()
		src, err := exo.Connector{}.OpenSource(ctx, connector.Side{Endpoint: r.src, Email: "user00@contoso.com"})
		if err != nil {
			t.Fatal(err)
		}
		dst, err := ferryimap.Connector{}.OpenTarget(ctx, imapSide)
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		stats, res, err := engine.CopyMailbox(ctx, r.st, src, dst, engine.CopyOptions{ItemID: r.item, PassID: "p", Connections: 2})
		if err != nil {
			t.Fatalf("copy: %v", err)
		}
		return stats, res
	}
	stats, res := pass()
	if stats.Objects != 24 || stats.Errors != 0 {
		t.Fatalf("first pass: %+v, want the 24 mail messages copied (the calendar stays behind)", stats)
	}
	for _, f := range res {
		if !f.Reconciled {
			t.Errorf("folder %s → %s: source %d, target %d", f.Source, f.Target, f.SourceCount, f.TargetCount)
		}
	}
	sc := r.client(t, r.src, "user00@contoso.com")
	want := exchangeMail(t, sc, "user00@contoso.com")
	c := d.Dial(t, "alice")
	if got := imapMail(t, c); !slices.Equal(got, want) {
		t.Fatalf("Dovecot holds %d messages unlike the emulator's %d:\n%v\n%v", len(got), len(want), got, want)
	}
	if !strings.Contains(strings.Join(want, "\n"), `Blue_category`) || !strings.Contains(strings.Join(want, "\n"), `\Flagged`) {
		t.Fatal("the seed has no category or flag: the comparison proves less than it should")
	}

	if stats, _ := pass(); stats.Objects != 0 {
		t.Errorf("second pass copied %d", stats.Objects)
	}
	// A changed read state and category reach the IMAP flags.
	msgs, _ := sc.MessagesDelta(ctx, "user00@contoso.com", "inbox", "")
	var m graph.Message
	for m = range msgs {
		break
	}
	if err := sc.UpdateMessage(ctx, "user00@contoso.com", m.ID, !m.IsRead, "flagged", []string{"Green"}); err != nil {
		t.Fatal(err)
	}
	if _, res := pass(); res[0].Updated+res[1].Updated+res[2].Updated+res[3].Updated+res[4].Updated+res[5].Updated != 1 {
		t.Errorf("the delta after one change updated %+v", res)
	}
	if got, want := imapMail(t, c), exchangeMail(t, sc, "user00@contoso.com"); !slices.Equal(got, want) {
		t.Errorf("after the change Dovecot differs:\n%v\n%v", got, want)
	}
	// Lost watermarks: the content hashes find every copy.
	for _, f := range res {
		r.st.ForgetFolder(ctx, r.item, f.Source)
		r.st.Checkpoint(ctx, r.item, nil, &model.Cursor{ItemID: r.item, Folder: f.Source, Value: ""})
	}
	if stats, _ := pass(); stats.Objects != 0 {
		t.Errorf("after losing every watermark a pass copied %d messages", stats.Objects)
	}
	if got := imapMail(t, c); len(got) != 24 {
		t.Errorf("Dovecot holds %d messages after the lost watermarks, want 24", len(got))
	}
}
