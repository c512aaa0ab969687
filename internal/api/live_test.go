package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/connector/memory"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

// liveProject makes a project on two memory servers; users listed in broken have no source
// mailbox server behind them, so their runs fail.
func liveProject(t *testing.T, e *env, name string, msgs map[string]int, hostOK bool) {
	t.Helper()
	ctx := context.Background()
	srcHost := name + "-src"
	if hostOK {
		src := memory.NewServer(srcHost, "")
		memory.NewServer(name+"-dst", "")
		for user, n := range msgs {
			for i := 0; i < n; i++ {
				src.Add(user+"@src.example", "INBOX", []byte(fmt.Sprintf("Message-ID: <%d.%s@live>\r\nSubject: %d\r\n\r\n%s\r\n", i, user, i, strings.Repeat("x", 100))))
			}
		}
	}
	for _, ep := range []string{srcHost, name + "-dst"} {
		if err := e.admin.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": ep, "kind": "memory", "settings": map[string]any{"host": ep}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.admin.Do(ctx, "POST", "/api/v1/projects", map[string]any{"name": name, "workload": "mailbox", "source": srcHost, "target": name + "-dst"}, nil); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("source_email,target_email\n")
	for user := range msgs {
		fmt.Fprintf(&csv, "%s@src.example,%s@dst.example\n", user, user)
	}
	if err := e.admin.Upload(ctx, "POST", "/api/v1/projects/"+name+"/items/import", "text/csv", strings.NewReader(csv.String()), &api.ImportResponse{}); err != nil {
		t.Fatal(err)
	}
}

type sseEvent struct{ id, event, data string }

// readEvents parses a server-sent event stream onto a channel.
func readEvents(t *testing.T, resp *http.Response) <-chan sseEvent {
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch
}

func openStream(t *testing.T, e *env, project, lastID string) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/projects/"+project+"/stream", nil)
	req.Header.Set("Authorization", "Bearer "+e.admin.Token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp, func() { cancel(); resp.Body.Close() }
}

func TestStreamSendsStatusChangesAsTheyHappen(t *testing.T) {
	e := newEnv(t)
	liveProject(t, e, "live", map[string]int{"ann": 3, "ben": 5}, true)
	// Slow enough that the items are running across at least one look of the stream.
	memory.NewServer("live-dst", "").SetDelay(300 * time.Millisecond)
	resp, stop := openStream(t, e, "live", "")
	defer stop()
	events := readEvents(t, resp)
	first := <-events
	var counts map[model.ItemStatus]int
	if json.Unmarshal([]byte(first.data), &counts); first.event != "counts" || counts[model.StatusNotStarted] != 2 {
		t.Fatalf("first event: %+v", first)
	}
	if err := e.admin.Do(context.Background(), "POST", "/api/v1/projects/live/passes", map[string]string{"type": "full"}, nil); err != nil {
		t.Fatal(err)
	}
	final := map[string]model.ItemStatus{}
	objects := map[string]int64{}
	seen := map[model.ItemStatus]bool{}
	var lastID string
	deadline := time.After(30 * time.Second)
	for final["ann@src.example"] != model.StatusCompleted || final["ben@src.example"] != model.StatusCompleted || counts[model.StatusCompleted] != 2 {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			lastID = ev.id
			switch ev.event {
			case "items":
				var items []struct {
					SourceEmail string           `json:"source_email"`
					Status      model.ItemStatus `json:"status"`
					Stats       model.ItemStats  `json:"stats"`
				}
				if err := json.Unmarshal([]byte(ev.data), &items); err != nil {
					t.Fatal(err)
				}
				for _, it := range items {
					final[it.SourceEmail], objects[it.SourceEmail] = it.Status, it.Stats.Objects
					seen[it.Status] = true
				}
			case "counts":
				counts = map[model.ItemStatus]int{}
				json.Unmarshal([]byte(ev.data), &counts)
			}
		case <-deadline:
			t.Fatalf("no Completed over the stream: items %v, counts %v", final, counts)
		}
	}
	if objects["ann@src.example"] != 3 || objects["ben@src.example"] != 5 {
		t.Errorf("objects over the stream: %v, want ann 3 and ben 5", objects)
	}
	if !seen[model.StatusRunning] {
		t.Errorf("the stream showed only %v; the queued or running state was skipped", seen)
	}
	stop()

	// A browser reconnecting with the last id it saw gets only what changed after it: nothing
	// here, so the first event is the counts.
	resp, stop2 := openStream(t, e, "live", lastID)
	defer stop2()
	events = readEvents(t, resp)
	if ev := <-events; ev.event != "counts" || !strings.Contains(ev.data, `"Completed":2`) {
		t.Errorf("reconnect: first event %+v", ev)
	}
	select {
	case ev := <-events:
		t.Errorf("reconnect with Last-Event-ID %s re-sent %s %s", lastID, ev.event, ev.data)
	case <-time.After(2500 * time.Millisecond):
	}
}

func TestActivitySumsFinishedRunsAndListsFailures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	liveProject(t, e, "good", map[string]int{"ann": 3, "ben": 5}, true)
	liveProject(t, e, "bad", map[string]int{"cat": 1}, false) // no memory server: the run fails
	for _, p := range []string{"good", "bad"} {
		if err := e.admin.Do(ctx, "POST", "/api/v1/projects/"+p+"/passes", map[string]string{"type": "full"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	var act store.Activity
	for {
		if err := e.admin.Do(ctx, "GET", "/api/v1/activity?hours=6", nil, &act); err != nil {
			t.Fatal(err)
		}
		if len(act.Hours) == 6 && act.Hours[5].Runs == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("activity never showed 3 runs: %+v", act)
		}
		time.Sleep(100 * time.Millisecond)
	}
	last := act.Hours[5]
	if last.Objects != 8 || last.Bytes == 0 || !last.Start.Equal(time.Now().UTC().Truncate(time.Hour)) {
		t.Errorf("this hour: %+v, want 8 objects and some bytes", last)
	}
	if len(act.Errors) != 1 || act.Errors[0].SourceEmail != "cat@src.example" || act.Errors[0].Status != model.StatusFailed || !strings.Contains(act.Errors[0].Error, "does not exist") {
		t.Errorf("errors: %+v", act.Errors)
	}
	// A user who sees no project sees no activity.
	if err := e.admin.Do(ctx, "POST", "/api/v1/workgroups", map[string]any{"name": "Other"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Do(ctx, "POST", "/api/v1/users", map[string]any{"username": "olga", "password": "Olga-Password-1234", "workgroup": "Other", "role": "Owner"}, nil); err != nil {
		t.Fatal(err)
	}
	olga := e.tokenFor(t, "olga", "Olga-Password-1234")
	var none store.Activity
	if err := olga.Do(ctx, "GET", "/api/v1/activity", nil, &none); err != nil {
		t.Fatal(err)
	}
	runs := 0
	for _, h := range none.Hours {
		runs += h.Runs
	}
	if len(none.Hours) != 24 || runs != 0 || len(none.Errors) != 0 {
		t.Errorf("another workgroup's owner sees %d runs and %d errors", runs, len(none.Errors))
	}
	if err := e.admin.Do(ctx, "GET", "/api/v1/activity?hours=0", nil, nil); err == nil || !strings.Contains(err.Error(), "hours must be a number from 1 to 336") {
		t.Errorf("hours=0: %v", err)
	}
}
