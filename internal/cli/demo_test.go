package cli

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/api/client"
	"github.com/ferry-migrate/ferry/internal/model"
)

// TestDemo runs `ferry demo` and migrates its project, Exchange to Exchange through the server's
// job queue: a verify pass, then a full pass that moves every seeded message. A second start in
// the same folder finds everything in place.
func TestDemo(t *testing.T) {
	data := filepath.Join(t.TempDir(), "demo")
	start := func() (*client.Client, func()) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		type ready struct{ url, pw string }
		rc, done := make(chan ready, 1), make(chan error, 1)
		go func() {
			done <- RunDemo(ctx, DemoOptions{Data: data, Listen: "127.0.0.1:0", SimListen: "127.0.0.1:0", Ready: func(u, p string) { rc <- ready{u, p} }}, io.Discard)
		}()
		stop := func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("demo: %v", err)
			}
		}
		select {
		case r := <-rc:
			c := client.New(r.url, "")
			if err := c.Login(ctx, "admin", r.pw); err != nil {
				t.Fatal(err)
			}
			return c, stop
		case err := <-done:
			t.Fatalf("demo did not start: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("demo did not start in 60 s")
		}
		return nil, nil
	}
	c, stop := start()
	ctx := context.Background()
	passOf := func(project, typ string) api.StatsResponse {
		t.Helper()
		if err := c.Do(ctx, "POST", "/api/v1/projects/"+project+"/passes", map[string]string{"type": typ}, nil); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			var s api.StatsResponse
			if err := c.Do(ctx, "GET", "/api/v1/projects/"+project+"/stats", nil, &s); err != nil {
				t.Fatal(err)
			}
			if s.Counts[model.StatusQueued]+s.Counts[model.StatusRunning] == 0 {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s pass still running: %v", typ, s.Counts)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	pass := func(typ string) api.StatsResponse { t.Helper(); return passOf(demoProject, typ) }
	if s := pass("verify"); s.Counts[model.StatusCompleted] != 10 {
		t.Fatalf("verify: %v; %v", s.Counts, firstError(s))
	}
	s := pass("full")
	if s.Counts[model.StatusCompleted] != 10 || s.Total.Objects != 280 || s.Total.Errors != 0 {
		t.Fatalf("full pass: %v, %d objects, %d errors, want 10 Completed with 280 objects (20 messages, 3 events, 3 contacts and 2 tasks each); %v", s.Counts, s.Total.Objects, s.Total.Errors, firstError(s))
	}
	var item api.ItemDetail
	if err := c.Do(ctx, "GET", "/api/v1/items/"+s.Items[0].ID, nil, &item); err != nil {
		t.Fatal(err)
	}
	if len(item.Runs) == 0 || len(item.Runs[0].Folders) < 10 || string(item.Runs[0].Folders) == "[]" {
		t.Errorf("the item's latest run has no per-folder results: %s", item.Runs[0].Folders)
	}
	// Item statistics add up over passes: a second full pass adds nothing.
	if s := pass("full"); s.Total.Objects != 280 || s.Counts[model.StatusCompleted] != 10 {
		t.Errorf("after a second full pass: %d objects in all, counts %v; want still 280 and all Completed", s.Total.Objects, s.Counts)
	}
	if err := c.Do(ctx, "GET", "/api/v1/items/"+s.Items[0].ID, nil, &item); err != nil {
		t.Fatal(err)
	}
	// The delta links make the second pass list nothing at all: no item was copied or even looked at.
	if last := item.Runs[0].Stats; last.Objects != 0 || last.Skipped != 0 || last.Errors != 0 || item.Runs[0].Status != model.StatusCompleted {
		t.Errorf("the second full pass of %s: %s %+v, want Completed with nothing copied or listed", item.Item.SourceEmail, item.Runs[0].Status, last)
	}
	// The archives, the first one auto-expanded.
	if s := passOf(demoArchiveProject, "full"); s.Counts[model.StatusCompleted] != 10 || s.Total.Objects != 120 || s.Total.Errors != 0 {
		t.Errorf("archive pass: %v, %d objects, %d errors, want 10 Completed with 120 objects (12 each); %v", s.Counts, s.Total.Objects, s.Total.Errors, firstError(s))
	}
	stop()

	c, stop = start()
	defer stop()
	var page api.ItemPage
	if err := c.Do(ctx, "GET", "/api/v1/projects/"+demoProject+"/items", nil, &page); err != nil || page.Total != 10 {
		t.Fatalf("after a restart the project has %d items (%v), want 10", page.Total, err)
	}
}

func firstError(s api.StatsResponse) string {
	for _, it := range s.Items {
		if it.LastError != "" {
			return it.SourceEmail + ": " + it.LastError
		}
	}
	return ""
}
