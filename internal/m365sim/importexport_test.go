package m365sim_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/graph"
)

// TestExportImportRoundTrip moves every message of a mailbox to another tenant with exportItems
// and import sessions, then updates one item in update mode.
func TestExportImportRoundTrip(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	const src, dstTenant = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	perms := []string{"User.Read.All", "Mail.ReadWrite", "MailboxFolder.ReadWrite.All", "MailboxItem.Read.All", "MailboxItem.ImportExport.All"}
	r.sim.AddApp(src, "mover", "m", nil, perms...)
	r.sim.AddTenant(dstTenant, "fabrikam.onmicrosoft.com")
	r.sim.AddApp(dstTenant, "mover", "m", nil, perms...)
	r.sim.AddUser(dstTenant, "ann@fabrikam.com", "Ann")
	sc := r.client(t, graph.AppCredential{ClientID: "mover", ClientSecret: "m"})
	dstTS, _ := r.creds.For(r.cloud, graph.AppCredential{Tenant: "fabrikam.onmicrosoft.com", ClientID: "mover", ClientSecret: "m"})
	dc := graph.New(graph.Config{Cloud: r.cloud, Tokens: dstTS, HTTP: r.srv.Client()})

	const n = 25
	var want []string
	for i := 0; i < n; i++ {
		mime := fmt.Sprintf("Message-ID: <x%d@contoso.com>\r\nSubject: item %d\r\n\r\nbody %d\r\n", i, i, i)
		m, err := sc.CreateMessageFromMIME(ctx, "user0@contoso.com", "inbox", []byte(mime))
		if err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			sc.UpdateMessage(ctx, "user0@contoso.com", m.ID, true, "flagged", []string{"Red"})
		}
		want = append(want, mime)
	}
	srcSet, err := sc.ExchangeSettings(ctx, "user0@contoso.com")
	if err != nil || !strings.HasPrefix(srcSet.PrimaryMailboxID, "MBX:") {
		t.Fatalf("settings/exchange: %+v %v", srcSet, err)
	}
	dstSet, _ := dc.ExchangeSettings(ctx, "ann@fabrikam.com")
	var inbox string
	folders, _ := sc.MailboxFolders(ctx, srcSet.PrimaryMailboxID, "")
	for f, err := range folders {
		if err != nil {
			t.Fatal(err)
		}
		if f.DisplayName == "Inbox" {
			inbox = f.ID
			if f.TotalItemCount != n || f.Type != "IPF.Note" {
				t.Fatalf("source inbox = %+v", f)
			}
		}
	}
	var ids []string
	items, _ := sc.MailboxItems(ctx, srcSet.PrimaryMailboxID, inbox)
	for it, err := range items {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, it.ID)
	}
	if _, err := sc.ExportItems(ctx, srcSet.PrimaryMailboxID, ids[:21]); err == nil {
		t.Fatal("21 items in one exportItems accepted")
	}
	sess, err := dc.CreateImportSession(ctx, dstSet.PrimaryMailboxID)
	if err != nil || sess.ImportURL == "" {
		t.Fatalf("import session: %+v %v", sess, err)
	}
	var dstIDs []string
	for i := 0; i < len(ids); i += graph.MaxExport {
		batch, err := sc.ExportItems(ctx, srcSet.PrimaryMailboxID, ids[i:min(i+graph.MaxExport, len(ids))])
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range batch {
			if it.Error != nil || it.Data == "" {
				t.Fatalf("export %s: %+v", it.ItemID, it.Error)
			}
			id, ck, err := dc.ImportItem(ctx, sess, "inbox", "create", it.Data, "", "")
			if err != nil || id == "" || ck != "1" {
				t.Fatalf("import: %q %q %v", id, ck, err)
			}
			dstIDs = append(dstIDs, id)
		}
	}
	for i, id := range dstIDs {
		body, err := dc.MessageMIME(ctx, "ann@fabrikam.com", id)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(body)
		body.Close()
		if string(got) != want[i] {
			t.Fatalf("item %d MIME after round trip = %q, want %q", i, got, want[i])
		}
	}
	var flagged graph.Message
	dc.Do(ctx, graph.Request{Method: "GET", Path: "/users/ann@fabrikam.com/messages/" + dstIDs[5]}, &flagged)
	if !flagged.IsRead || flagged.Flag.FlagStatus != "flagged" || flagged.Categories[0] != "Red" || !flagged.IsDraft {
		t.Fatalf("properties lost in the round trip: %+v", flagged)
	}

	// Update mode: the source item changes, its new version replaces the target's.
	sc.UpdateMessage(ctx, "user0@contoso.com", ids[1], true, "complete", []string{"Blue"})
	again, _ := sc.ExportItems(ctx, srcSet.PrimaryMailboxID, ids[1:2])
	if _, _, err := dc.ImportItem(ctx, sess, "inbox", "update", again[0].Data, dstIDs[1], "7"); !graph.IsStatus(err, 409) {
		t.Fatalf("update with a stale changeKey: %v, want 409", err)
	}
	id, ck, err := dc.ImportItem(ctx, sess, "inbox", "update", again[0].Data, dstIDs[1], "1")
	if err != nil || id != dstIDs[1] || ck != "2" {
		t.Fatalf("update: %q %q %v", id, ck, err)
	}
	var updated graph.Message
	dc.Do(ctx, graph.Request{Method: "GET", Path: "/users/ann@fabrikam.com/messages/" + id}, &updated)
	if updated.Flag.FlagStatus != "complete" || updated.Categories[0] != "Blue" {
		t.Fatalf("updated item = %+v", updated)
	}
	// Folder delta: the whole tree, then only what is new.
	fseq, flink := dc.MailboxFoldersDelta(ctx, dstSet.PrimaryMailboxID, "")
	nf := 0
	for _, err := range fseq {
		if err != nil {
			t.Fatal(err)
		}
		nf++
	}
	if nf != 9 {
		t.Fatalf("folder delta of a new mailbox: %d folders, want the 9 well-known ones (six of mail, the calendar, contacts and tasks)", nf)
	}
	if _, err := dc.CreateMailFolder(ctx, "ann@fabrikam.com", "inbox", "Clients"); err != nil {
		t.Fatal(err)
	}
	old, err := dc.CreateMailFolder(ctx, "ann@fabrikam.com", "inbox", "Old")
	if err != nil {
		t.Fatal(err)
	}
	fseq, flink2 := dc.MailboxFoldersDelta(ctx, dstSet.PrimaryMailboxID, flink())
	var newFolders []string
	var clients string
	for f, err := range fseq {
		if err != nil {
			t.Fatal(err)
		}
		newFolders = append(newFolders, f.DisplayName)
		if f.DisplayName == "Clients" {
			clients = f.ID
		}
	}
	if strings.Join(newFolders, ",") != "Clients,Old" {
		t.Fatalf("folder delta since the first link = %v, want [Clients Old]", newFolders)
	}
	// A rename and a deletion come in the next delta; well-known folders cannot be deleted.
	if _, err := dc.RenameMailboxFolder(ctx, dstSet.PrimaryMailboxID, clients, "Customers"); err != nil {
		t.Fatal(err)
	}
	if err := dc.DeleteMailboxFolder(ctx, dstSet.PrimaryMailboxID, old.ID); err != nil {
		t.Fatal(err)
	}
	if err := dc.DeleteMailboxFolder(ctx, dstSet.PrimaryMailboxID, "inbox"); err == nil {
		t.Fatal("the inbox was deleted")
	}
	fseq, _ = dc.MailboxFoldersDelta(ctx, dstSet.PrimaryMailboxID, flink2())
	var changes []string
	for f, err := range fseq {
		if err != nil {
			t.Fatal(err)
		}
		if f.Removed != nil {
			changes = append(changes, "removed "+f.ID)
		} else {
			changes = append(changes, "renamed "+f.DisplayName)
		}
	}
	if strings.Join(changes, ",") != "renamed Customers,removed "+old.ID {
		t.Fatalf("folder delta after a rename and a deletion = %v", changes)
	}

	// Item delta on the source: first everything, then only the changed and the deleted.
	dseq, link := sc.MailboxItemsDelta(ctx, srcSet.PrimaryMailboxID, inbox, "")
	count := 0
	for _, err := range dseq {
		if err != nil {
			t.Fatal(err)
		}
		count++
	}
	if count != n || link() == "" {
		t.Fatalf("initial item delta: %d items, link %q", count, link())
	}
	first := link()
	sc.UpdateMessage(ctx, "user0@contoso.com", ids[3], true, "flagged", nil)
	sc.Do(ctx, graph.Request{Method: "DELETE", Path: "/users/user0@contoso.com/messages/" + ids[4]}, nil)
	dseq, _ = sc.MailboxItemsDelta(ctx, srcSet.PrimaryMailboxID, inbox, first)
	var seen []string
	for it, err := range dseq {
		if err != nil {
			t.Fatal(err)
		}
		if it.Removed != nil {
			seen = append(seen, "removed:"+it.ID)
		} else {
			seen = append(seen, "changed:"+it.ID)
		}
	}
	if strings.Join(seen, ",") != "changed:"+ids[3]+",removed:"+ids[4] {
		t.Fatalf("item delta since the first link = %v", seen)
	}

	// The import URL refuses a bearer token, as the service documents.
	req, _ := http.NewRequest("POST", sess.ImportURL, strings.NewReader(`{"FolderId":"inbox","Mode":"create","Data":"`+again[0].Data+`"}`))
	req.Header.Set("Authorization", "Bearer x")
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("import with Authorization: %d, want 400", resp.StatusCode)
	}
}
