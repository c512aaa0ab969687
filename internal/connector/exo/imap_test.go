package exo_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/connector/exo"
	ferryimap "github.com/ferry-migrate/ferry/internal/connector/imap"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
	"github.com/ferry-migrate/ferry/internal/testenv/reference"
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
			if m.IsDraft {
				flags = append(flags, `\Draft`)
			}
			for _, p := range m.SingleValueExtendedProperties {
				switch {
				case p.ID == graph.PropLastVerb && (p.Value == graph.VerbReply || p.Value == graph.VerbReplyAll):
					flags = append(flags, `\Answered`)
				case p.ID == graph.PropLastVerb && p.Value == graph.VerbForward:
					flags = append(flags, "$Forwarded")
				}
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

func updated(res []engine.FolderResult) (n int64) {
	for _, f := range res {
		n += f.Updated
	}
	return n
}

// copyOut copies Dovecot's alice to the emulator's user01@fabrikam.com, as the rig's item.
func (r *rig) copyOut(t *testing.T, d *dovecot.Server, passID string, connections int) (model.ItemStats, []engine.FolderResult, error) {
	t.Helper()
	src, err := ferryimap.Connector{}.OpenSource(ctx, imapSide(t, d, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := exo.Connector{}.OpenTarget(ctx, connector.Side{Endpoint: r.dst, Email: "user01@fabrikam.com"})
	if err != nil {
		t.Fatal(err)
	}
	return engine.CopyMailbox(ctx, r.st, src, dst, engine.CopyOptions{ItemID: r.item, PassID: passID, Connections: connections})
}

// copyBack copies user01@fabrikam.com's mailbox from the emulator to Dovecot's bob, as a second
// item of the rig's project.
func (r *rig) copyBack(t *testing.T, d *dovecot.Server) (model.ItemStats, error) {
	t.Helper()
	src, err := exo.Connector{}.OpenSource(ctx, connector.Side{Endpoint: r.dst, Email: "user01@fabrikam.com"})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := ferryimap.Connector{}.OpenTarget(ctx, imapSide(t, d, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	it, _ := r.st.Item(ctx, r.item)
	r.st.ImportItems(ctx, it.ProjectID, "t", []store.ItemInput{{SourceEmail: "user01@fabrikam.com", TargetEmail: "bob"}})
	items, _, _ := r.st.Items(ctx, it.ProjectID, store.ItemFilter{Text: "bob"})
	if len(items) != 1 {
		t.Fatalf("the item back: %v", items)
	}
	stats, _, err := engine.CopyMailbox(ctx, r.st, src, dst, engine.CopyOptions{ItemID: items[0].ID, PassID: "back", Connections: 2})
	return stats, err
}

// imapSide is a Dovecot user as one side of a copy.
func imapSide(t *testing.T, d *dovecot.Server, user string) connector.Side {
	t.Helper()
	host, port, _ := strings.Cut(d.Addr, ":")
	var p int
	fmt.Sscan(port, &p)
	return connector.Side{Endpoint: model.Endpoint{Kind: model.KindIMAP, Settings: model.EndpointSettings{Host: host, Port: p, Security: model.SecurityNone}},
		Email: user, Login: user, Password: dovecot.Password(user)}
}

// TestIMAPToExchange copies the MIME corpus (malformed mail included) from Dovecot to Exchange:
// every message arrives as a received message, not a draft, with its read state, flag, keywords
// (as categories) and dates; a large attachment goes through an upload session; a message over
// 150 MB is recorded with the reason; re-runs, a flag change and lost watermarks copy nothing
// twice; and the copies go back to Dovecot byte for byte as the emulator serves them.
func TestIMAPToExchange(t *testing.T) {
	r := newRig(t)
	d := dovecot.Start(t, dovecot.Options{Users: []string{"alice", "bob"}})
	ac := d.Dial(t, "alice")
	if err := ac.Create("Work/Reports", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	files := reference.MIMECorpus(t)
	base := time.Date(2021, 6, 1, 8, 0, 0, 0, time.UTC)
	type want struct {
		read, flagged bool
		cats          []string
	}
	wants := map[time.Time]want{} // by internal date, distinct for every message
	add := func(box string, body []byte, i int) {
		date := base.Add(time.Duration(i) * time.Hour)
		var flags []imap.Flag
		w := want{read: i%2 == 0, flagged: i%3 == 0}
		if w.read {
			flags = append(flags, imap.FlagSeen)
		}
		if w.flagged {
			flags = append(flags, imap.FlagFlagged)
		}
		if i%5 == 0 {
			flags = append(flags, imap.FlagAnswered, "Project-X")
			w.cats = []string{"Project-X"}
		}
		dovecot.Append(t, ac, box, body, date, flags...)
		wants[date] = w
	}
	for i, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		box := "INBOX"
		if i%4 == 3 {
			box = "Work/Reports"
		}
		add(box, body, i)
	}
	// A 5 MiB attachment (an upload session), and a message over Exchange's 150 MB.
	big := make([]byte, 5<<20)
	for i := range big {
		big[i] = byte(i * 7 >> 3)
	}
	bigSum := sha256.Sum256(big)
	att := base64.StdEncoding.EncodeToString(big)
	var mb strings.Builder
	mb.WriteString("Message-ID: <big@ferry.test>\r\nFrom: Ann <ann@contoso.com>\r\nTo: bob@fabrikam.com\r\nSubject: Report with a large file\r\nDate: Tue, 1 Jun 2021 07:00:00 +0000\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attached report.\r\n--b1\r\n" +
		"Content-Type: application/pdf; name=report.pdf\r\nContent-Disposition: attachment; filename=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for len(att) > 76 {
		mb.WriteString(att[:76] + "\r\n")
		att = att[76:]
	}
	mb.WriteString(att + "\r\n--b1--\r\n")
	add("INBOX", []byte(mb.String()), len(files))
	huge := append([]byte("Message-ID: <huge@ferry.test>\r\nSubject: huge\r\n\r\n"), make([]byte, 151<<20)...)
	dovecot.Append(t, ac, "INBOX", huge, base.Add(-time.Hour))
	huge = nil
	total := len(files) + 1

	pass := func() (model.ItemStats, []engine.FolderResult) {
		t.Helper()
		stats, res, err := r.copyOut(t, d, "p", 2)
		if err != nil {
			t.Fatalf("copy: %v", err)
		}
		return stats, res
	}
	stats, res := pass()
	if stats.Objects != int64(total) || stats.Errors != 1 {
		t.Fatalf("first pass: %+v, want %d copied and 1 error (the message over 150 MB)", stats, total)
	}
	errs, _ := r.st.ObjectErrors(ctx, r.item, 10)
	if len(errs) != 1 || !strings.Contains(errs[0].Reason, "158.3 MB; Exchange Online takes at most 150 MB") {
		t.Fatalf("recorded errors %+v, want the huge message's size and the limit", errs)
	}
	for _, f := range res {
		if f.Source == "Work/Reports" && (!f.Reconciled || f.TargetCount != f.SourceCount || f.TargetCount == 0) {
			t.Errorf("folder %s → %s: source %d, target %d", f.Source, f.Target, f.SourceCount, f.TargetCount)
		}
	}

	// Every copy: a received message with the source's state and date.
	tc := r.client(t, r.dst, "user01@fabrikam.com")
	check := func() {
		t.Helper()
		seen := 0
		walkFolders(t, tc, "user01@fabrikam.com", func(path string, f graph.MailboxFolder) {
			if f.Type != "IPF.Note" {
				return
			}
			msgs, _ := tc.MessagesDelta(ctx, "user01@fabrikam.com", f.ID, "")
			for full, err := range msgs {
				if err != nil {
					t.Fatal(err)
				}
				w, ok := wants[full.ReceivedDateTime.UTC()]
				switch {
				case !ok:
					t.Errorf("%s: message %q received %s, a date no source message has", path, full.Subject, full.ReceivedDateTime)
				case full.IsDraft:
					t.Errorf("%s: message %q is a draft", path, full.Subject)
				case full.IsRead != w.read || (full.Flag.FlagStatus == "flagged") != w.flagged || !slices.Equal(full.Categories, w.cats):
					t.Errorf("%s: message %q read=%v flag=%s categories=%v, want %+v", path, full.Subject, full.IsRead, full.Flag.FlagStatus, full.Categories, w)
				}
				seen++
			}
		})
		if seen != total {
			t.Errorf("the target holds %d messages, want %d", seen, total)
		}
	}
	check()

	// The large attachment arrived whole.
	found, err := tc.MessagesWithProperty(ctx, "user01@fabrikam.com", "inbox", exo.StampProperty, "mid:<big@ferry.test>|"+fmt.Sprint(len(mb.String())))
	if err != nil || len(found) != 1 {
		t.Fatalf("the large message by its stamp: %v %v", found, err)
	}
	var atts struct {
		Value []struct {
			Name         string `json:"name"`
			Size         int    `json:"size"`
			ContentBytes []byte `json:"contentBytes"`
		} `json:"value"`
	}
	if _, err := tc.Do(ctx, graph.Request{Method: "GET", Path: "/users/user01@fabrikam.com/messages/" + found[0].ID + "/attachments"}, &atts); err != nil {
		t.Fatal(err)
	}
	if len(atts.Value) != 1 || atts.Value[0].Name != "report.pdf" || atts.Value[0].Size != len(big) || sha256.Sum256(atts.Value[0].ContentBytes) != bigSum {
		t.Fatalf("attachments of the large message: %d, want report.pdf of %d bytes, intact", len(atts.Value), len(big))
	}

	// Repeated passes copy nothing; a flag changed at the source is carried over.
	for i := range 2 {
		if stats, res := pass(); stats.Objects != 0 || updated(res) != 0 {
			t.Fatalf("pass %d after the first: %+v, want nothing copied", i+2, stats)
		}
	}
	if _, err := ac.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	first := base // message 0: read, flagged, Project-X
	if err := ac.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagSeen, imap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	wants[first] = want{cats: []string{"Project-X"}}
	if stats, res := pass(); stats.Objects != 0 || updated(res) != 1 {
		t.Fatalf("the delta after one flag change: %+v, %d updated, want 1", stats, updated(res))
	}
	check()

	// Lost watermarks: the stamps find every copy.
	for _, f := range res {
		r.st.ForgetFolder(ctx, r.item, f.Source)
		r.st.Checkpoint(ctx, r.item, nil, &model.Cursor{ItemID: r.item, Folder: f.Source, Value: ""})
	}
	if stats, _ := pass(); stats.Objects != 0 {
		t.Fatalf("after losing every watermark a pass copied %d messages", stats.Objects)
	}
	check()

	// Back to Dovecot: byte for byte what the emulator serves.
	if stats, err := r.copyBack(t, d); err != nil || stats.Objects != int64(total) {
		t.Fatalf("copy back: %+v %v, want %d", stats, err, total)
	}
	if got, want := imapMail(t, d.Dial(t, "bob")), exchangeMail(t, tc, "user01@fabrikam.com"); !slices.Equal(got, want) {
		t.Fatalf("Dovecot holds %d messages unlike the emulator's %d", len(got), len(want))
	}
}
