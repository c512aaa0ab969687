package m365sim_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/m365sim"
)

func TestMailFoldersMessagesAndDelta(t *testing.T) {
	r := newRig(t)
	r.sim.AddApp("11111111-1111-1111-1111-111111111111", "app-mail", "m", nil, "Mail.ReadWrite", "User.Read.All")
	c := r.client(t, graph.AppCredential{ClientID: "app-mail", ClientSecret: "m"})
	ctx := context.Background()
	const user = "user2@contoso.com"

	seq, _ := c.MailFolders(ctx, user, "")
	names := map[string]string{}
	for f, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		names[f.DisplayName] = f.ID
	}
	if names["Inbox"] == "" || names["Sent Items"] == "" || len(names) != 6 {
		t.Fatalf("well-known folders = %v", names)
	}
	proj, err := c.CreateMailFolder(ctx, user, "", "Projects")
	if err != nil || proj.ID == "" {
		t.Fatalf("create folder: %+v %v", proj, err)
	}
	if _, err := c.CreateMailFolder(ctx, user, "", "projects"); !graph.IsStatus(err, 409) {
		t.Fatalf("duplicate folder: %v, want 409", err)
	}
	child, err := c.CreateMailFolder(ctx, user, proj.ID, "2026")
	if err != nil || child.ParentFolderID != proj.ID {
		t.Fatalf("child folder: %+v %v", child, err)
	}

	mime := []byte("Message-ID: <a1@contoso.com>\r\nSubject: Quarterly numbers\r\nDate: Mon, 2 Jan 2023 15:04:05 +0000\r\n\r\nSee attached.\r\n")
	m, err := c.CreateMessageFromMIME(ctx, user, proj.ID, mime)
	if err != nil || !m.IsDraft || m.Subject != "Quarterly numbers" || m.InternetMessageID != "<a1@contoso.com>" || m.ReceivedDateTime.Year() != 2023 {
		t.Fatalf("message from MIME: %+v %v", m, err)
	}
	body, err := c.MessageMIME(ctx, user, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(body)
	body.Close()
	if !bytes.Equal(got, mime) {
		t.Fatalf("$value = %q, want the MIME as created", got)
	}
	var notDraft graph.Message
	if _, err := c.Do(ctx, graph.Request{Method: "POST", Path: "/users/" + user + "/mailFolders/inbox/messages",
		Body: map[string]any{"subject": "imported", "singleValueExtendedProperties": []graph.ExtendedProperty{{ID: graph.PropMessageFlags, Value: "1"}}}}, &notDraft); err != nil {
		t.Fatal(err)
	}
	if notDraft.IsDraft || !notDraft.IsRead {
		t.Fatalf("JSON message with PidTagMessageFlags=1: draft %v read %v, want false and true", notDraft.IsDraft, notDraft.IsRead)
	}

	dseq, link := c.MessagesDelta(ctx, user, proj.ID, "")
	n := 0
	for _, err := range dseq {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 1 || link() == "" {
		t.Fatalf("initial delta: %d messages, link %q", n, link())
	}
	first := link()
	if err := c.UpdateMessage(ctx, user, m.ID, true, "flagged", []string{"ProjectX"}); err != nil {
		t.Fatal(err)
	}
	m2, _ := c.CreateMessageFromMIME(ctx, user, proj.ID, []byte("Subject: second\r\n\r\nx\r\n"))
	if _, err := c.Do(ctx, graph.Request{Method: "DELETE", Path: "/users/" + user + "/messages/" + m2.ID}, nil); err != nil {
		t.Fatal(err)
	}
	dseq, link = c.MessagesDelta(ctx, user, proj.ID, first)
	var changed []string
	for msg, err := range dseq {
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case msg.Removed != nil:
			changed = append(changed, "removed:"+msg.ID)
		default:
			if msg.ID != m.ID || !msg.IsRead || msg.Flag.FlagStatus != "flagged" || msg.Categories[0] != "ProjectX" || msg.ChangeKey != "2" {
				t.Fatalf("changed message = %+v", msg)
			}
			changed = append(changed, "changed:"+msg.ID)
		}
	}
	// m2 was created and deleted since the first link: it appears only as removed.
	if strings.Join(changed, ",") != "changed:"+m.ID+",removed:"+m2.ID {
		t.Fatalf("delta since the first link = %v", changed)
	}
	dseq, _ = c.MessagesDelta(ctx, user, proj.ID, link())
	for range dseq {
		t.Fatal("an unchanged folder's delta returned something")
	}

	big := append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte("x"), 5<<20)...)
	if _, err := c.CreateMessageFromMIME(ctx, user, proj.ID, big); !graph.IsStatus(err, 413) {
		t.Fatalf("5 MB MIME in one POST: %v, want 413 (upload sessions are for that)", err)
	}
	ro := r.client(t, graph.AppCredential{ClientID: "app-secret", ClientSecret: "s3cret-value"})
	if _, err := ro.CreateMessageFromMIME(ctx, user, "inbox", mime); !graph.IsStatus(err, 403) || !strings.Contains(err.Error(), "Mail.ReadWrite") {
		t.Fatalf("app without Mail.ReadWrite: %v", err)
	}
}

// TestWritesSurviveFaults creates 150 messages through a 10% fault rate (503s, dropped
// connections and a burst of 503s) and checks every one arrived exactly once.
func TestWritesSurviveFaults(t *testing.T) {
	r := newRig(t)
	r.sim.AddApp("11111111-1111-1111-1111-111111111111", "app-mail", "m", nil, "Mail.ReadWrite")
	c := r.client(t, graph.AppCredential{ClientID: "app-mail", ClientSecret: "m"})
	ctx := context.Background()
	// Sign in before the faults start: the token endpoint is not faulted, Graph is.
	if _, err := c.CreateMessageFromMIME(ctx, "user4@contoso.com", "drafts", []byte("Subject: warm-up\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	r.sim.SetFaults(m365sim.Faults{ErrorRate: 0.05, ResetRate: 0.05, BurstEvery: 60, BurstLength: 3, Seed: 42})
	const n = 150
	for i := 0; i < n; i++ {
		mime := []byte(fmt.Sprintf("Message-ID: <f%d@x>\r\nSubject: fault %d\r\n\r\nbody\r\n", i, i))
		if _, err := c.CreateMessageFromMIME(ctx, "user4@contoso.com", "inbox", mime); err != nil {
			t.Fatalf("message %d lost: %v", i, err)
		}
	}
	errs, resets := r.sim.Injected()
	if errs+resets < n/10 {
		t.Fatalf("only %d 503s and %d resets injected; the test needs about 10%%", errs, resets)
	}
	r.sim.SetFaults(m365sim.Faults{})
	seq, _ := c.MessagesDelta(ctx, "user4@contoso.com", "inbox", "")
	seen := map[string]int{}
	for m, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		seen[m.InternetMessageID]++
	}
	if len(seen) != n {
		t.Fatalf("inbox holds %d distinct messages, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("%s arrived %d times", id, k)
		}
	}
	t.Logf("%d writes through %d injected 503s and %d dropped connections: all arrived once", n, errs, resets)
}
