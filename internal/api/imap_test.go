package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ferry-migrate/ferry/internal/api"
	_ "github.com/ferry-migrate/ferry/internal/connector/imap"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
)

// TestIMAPProjectThroughPasses runs the server path: IMAP endpoints, items with per-item
// credentials from the CSV, a verify pass and two full passes through the job queue.
func TestIMAPProjectThroughPasses(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	users := []string{"alice", "bob", "carol"}
	src := dovecot.Start(t, dovecot.Options{Users: users})
	dst := dovecot.Start(t, dovecot.Options{Users: users})
	for i, u := range users {
		c := login(t, src, u)
		for m := 0; m < 5+i; m++ {
			body := fmt.Sprintf("Message-ID: <%d.%s@src>\r\nSubject: hi %d\r\n\r\nhello %s\r\n", m, u, m, u)
			cmd := c.Append("INBOX", int64(len(body)), &goimap.AppendOptions{Flags: []goimap.Flag{goimap.FlagSeen}, Time: time.Now()})
			cmd.Write([]byte(body))
			cmd.Close()
			if _, err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
	hostPort := func(s *dovecot.Server) (string, int) {
		h, p, _ := strings.Cut(s.Addr, ":")
		var port int
		fmt.Sscan(p, &port)
		return h, port
	}
	for name, s := range map[string]*dovecot.Server{"old": src, "new": dst} {
		h, p := hostPort(s)
		if err := e.admin.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": name, "kind": "imap",
			"settings": map[string]any{"host": h, "port": p, "security": "none"}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.admin.Do(ctx, "POST", "/api/v1/projects", map[string]any{"name": "mail", "workload": "mailbox", "source": "old", "target": "new"}, nil); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("source_email,target_email,source_login,source_password,target_login,target_password\n")
	for _, u := range users {
		fmt.Fprintf(&csv, "%s@old.example,%s@new.example,%s,%s,%s,%s\n", u, u, u, dovecot.Password(u), u, dovecot.Password(u))
	}
	var imp api.ImportResponse
	if err := e.admin.Upload(ctx, "POST", "/api/v1/projects/mail/items/import", "text/csv", strings.NewReader(csv.String()), &imp); err != nil || imp.Created != 3 {
		t.Fatalf("import: %+v %v", imp, err)
	}
	run := func(pass string) map[model.ItemStatus]int {
		t.Helper()
		if err := e.admin.Do(ctx, "POST", "/api/v1/projects/mail/passes", map[string]string{"type": pass}, nil); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			var v api.ProjectView
			if err := e.admin.Do(ctx, "GET", "/api/v1/projects/mail", nil, &v); err != nil {
				t.Fatal(err)
			}
			if v.Counts[model.StatusQueued]+v.Counts[model.StatusRunning] == 0 {
				return v.Counts
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s pass still running: %v", pass, v.Counts)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if c := run("verify"); c[model.StatusCompleted] != 3 {
		t.Fatalf("verify: %v", c)
	}
	if c := run("full"); c[model.StatusCompleted] != 3 {
		t.Fatalf("full: %v", c)
	}
	var page api.ItemPage
	e.admin.Do(ctx, "GET", "/api/v1/projects/mail/items", nil, &page)
	for i, it := range page.Items {
		if it.Stats.Objects != int64(5+i) {
			t.Fatalf("%s: %d objects, want %d", it.SourceEmail, it.Stats.Objects, 5+i)
		}
	}
	if c := run("full"); c[model.StatusCompleted] != 3 {
		t.Fatalf("second full: %v", c)
	}
	var d api.ItemDetail
	e.admin.Do(ctx, "GET", "/api/v1/items/"+page.Items[2].ID, nil, &d)
	if len(d.Runs) != 3 || d.Runs[0].Stats.Objects != 0 || !strings.Contains(string(d.Runs[0].Folders), `"reconciled":true`) {
		t.Fatalf("carol's runs: %+v", d.Runs)
	}
	for i, u := range users {
		st, err := login(t, dst, u).Status("INBOX", &goimap.StatusOptions{NumMessages: true}).Wait()
		if err != nil || int(*st.NumMessages) != 5+i {
			t.Fatalf("%s target INBOX: %v %v, want %d", u, st, err, 5+i)
		}
	}
}

func login(t *testing.T, s *dovecot.Server, user string) *imapclient.Client { return s.Dial(t, user) }
