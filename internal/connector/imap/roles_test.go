package imap_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/connector"
	ferryimap "github.com/ferry-migrate/ferry/internal/connector/imap"
)

// A target with a SPECIAL-USE \Drafts folder and a folder named like a localised Drafts
// ("Entwürfe", left by an earlier copy) takes drafts into \Drafts on every run, and lists
// "Entwürfe" as a plain folder; the mapping never changes between runs.
func TestSpecialUseWinsOverNamesEveryRun(t *testing.T) {
	p := newPair(t)
	dc := client(t, p.dst)
	create(t, dc, "Entwürfe", "Sent Items")
	appendMsg(t, dc, "Entwürfe", []byte("Message-ID: <old-draft@x>\r\nSubject: left by an earlier copy\r\n\r\nx\r\n"), time.Now())
	for run := range 20 {
		mb, err := ferryimap.Open(ctx, cfg(p.dst))
		if err != nil {
			t.Fatal(err)
		}
		folders, err := mb.Folders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		roles := map[string]string{}
		for _, f := range folders {
			roles[f.Path] = f.Role
		}
		drafts, err := mb.EnsureFolder(ctx, connector.Folder{Path: "Entwürfe", Role: ferryimap.RoleDrafts})
		sent, err2 := mb.EnsureFolder(ctx, connector.Folder{Path: "Gesendet", Role: ferryimap.RoleSent})
		mb.Close()
		if err != nil || err2 != nil {
			t.Fatal(err, err2)
		}
		got := fmt.Sprintf("drafts→%s sent→%s Drafts=%q Entwürfe=%q Sent=%q Sent Items=%q", drafts.Path, sent.Path, roles["Drafts"], roles["Entwürfe"], roles["Sent"], roles["Sent Items"])
		if want := `drafts→Drafts sent→Sent Drafts="drafts" Entwürfe="" Sent="sent" Sent Items=""`; got != want {
			t.Fatalf("run %d: %s, want %s", run+1, got, want)
		}
	}
}
