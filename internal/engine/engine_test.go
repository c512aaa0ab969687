package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/connector/memory"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
)

type rig struct {
	st       *store.Store
	eng      *Engine
	src, dst *memory.Server
	project  model.Project
}

// newRig starts an engine over a project of n items, each mailbox holding msgs messages in INBOX
// and one in "Sent Items".
func newRig(t *testing.T, db storetest.DB, n, msgs, maxConc int) *rig {
	t.Helper()
	ctx := context.Background()
	st := db.Open(t)
	t.Cleanup(func() { st.Close() })
	tag := strings.ReplaceAll(t.Name(), "/", "-")
	r := &rig{st: st, src: memory.NewServer("src-"+tag, "pw"), dst: memory.NewServer("dst-"+tag, "")}
	wg, err := st.CreateWorkgroup(ctx, "Default", true)
	if err != nil {
		t.Fatal(err)
	}
	src, err := st.CreateEndpoint(ctx, model.Endpoint{WorkgroupID: wg.ID, Name: "src", Kind: memory.Kind, Settings: model.EndpointSettings{Host: "src-" + tag},
		Secret: &model.EndpointSecret{AdminPassword: "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := st.CreateEndpoint(ctx, model.Endpoint{WorkgroupID: wg.ID, Name: "dst", Kind: memory.Kind, Settings: model.EndpointSettings{Host: "dst-" + tag}})
	if err != nil {
		t.Fatal(err)
	}
	r.project, err = st.CreateProject(ctx, model.Project{WorkgroupID: wg.ID, Name: "p", Workload: model.WorkloadMailbox, SourceID: src.ID, TargetID: dst.ID,
		Options: model.ProjectOptions{MaxConcurrent: maxConc}, CreatedBy: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	in := make([]store.ItemInput, n)
	for i := range in {
		email := fmt.Sprintf("u%03d@example.com", i)
		in[i] = store.ItemInput{SourceEmail: email, TargetEmail: email}
		for m := 0; m < msgs; m++ {
			r.src.Add(email, "INBOX", message(email, m), `\Seen`)
		}
		r.src.Add(email, "Sent Items", message(email, 1000), `\Seen`, "$label1")
	}
	if _, err := st.ImportItems(ctx, r.project.ID, "tester", in); err != nil {
		t.Fatal(err)
	}
	r.eng, err = New(ctx, st, Config{Workers: 20, ScheduleEvery: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.eng.Shutdown(context.Background()) })
	return r
}

func message(email string, i int) []byte {
	return []byte(fmt.Sprintf("Message-ID: <%d.%s>\r\nFrom: a@example.com\r\nTo: %s\r\nSubject: test %d\r\n\r\nbody %d of %s\r\n", i, email, email, i, i, email))
}

// waitPass polls until every item of the project has left Queued/Running.
func (r *rig) waitIdle(t *testing.T, deadline time.Duration) map[model.ItemStatus]int {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		counts, err := r.st.StatusCounts(context.Background(), r.project.ID)
		if err != nil {
			t.Fatal(err)
		}
		if counts[model.StatusQueued]+counts[model.StatusRunning] == 0 {
			return counts
		}
		if time.Now().After(end) {
			t.Fatalf("items still active after %s: %v", deadline, counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *rig) start(t *testing.T, typ model.PassType, itemIDs ...string) model.Pass {
	t.Helper()
	p, _, err := r.eng.StartPass(context.Background(), store.PassRequest{ProjectID: r.project.ID, Type: typ, Actor: "tester", ItemIDs: itemIDs})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPassOf200ItemsRespectsMaxConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		r := newRig(t, db, 200, 2, 5)
		r.dst.SetDelay(2 * time.Millisecond)
		r.start(t, model.PassFull)
		counts := r.waitIdle(t, 3*time.Minute)
		if counts[model.StatusCompleted] != 200 {
			t.Fatalf("statuses = %v, want 200 Completed", counts)
		}
		if p := r.dst.Peak(); p > 5 || p < 2 {
			t.Fatalf("peak concurrent items = %d, want 2..5 (max-concurrent 5)", p)
		}
		if got := r.dst.Puts(); got != 600 {
			t.Fatalf("target received %d messages, want 600", got)
		}
		for i := 0; i < 200; i += 37 {
			email := fmt.Sprintf("u%03d@example.com", i)
			if r.dst.Count(email, "INBOX") != 2 || r.dst.Count(email, "Sent Items") != 1 {
				t.Fatalf("%s: INBOX %d, Sent Items %d; want 2 and 1", email, r.dst.Count(email, "INBOX"), r.dst.Count(email, "Sent Items"))
			}
		}
	})
}

func TestRepeatedPassesNeverDuplicate(t *testing.T) {
	r := newRig(t, storetest.SQLite(t), 3, 4, 3)
	for i := 0; i < 3; i++ {
		r.start(t, model.PassFull)
		if c := r.waitIdle(t, time.Minute); c[model.StatusCompleted] != 3 {
			t.Fatalf("pass %d: %v", i, c)
		}
	}
	if got := r.dst.Puts(); got != 15 {
		t.Fatalf("three passes wrote %d messages, want 15 (5 per mailbox, once)", got)
	}
	// A flag changed at the source reaches the target on the next delta, without a new copy.
	r.src.SetFlags("u001@example.com", "INBOX", 2, `\Seen`, `\Flagged`)
	r.start(t, model.PassFull)
	r.waitIdle(t, time.Minute)
	if got := r.dst.Flags("u001@example.com", "INBOX", 2); !slices.Equal(got, []string{`\Seen`, `\Flagged`}) {
		t.Fatalf("target flags = %v, want [\\Seen \\Flagged]", got)
	}
	if got := r.dst.Puts(); got != 15 {
		t.Fatalf("flag delta wrote %d messages, want still 15", got)
	}
}

func TestLostWatermarksDoNotDuplicate(t *testing.T) {
	db := storetest.SQLite(t)
	r := newRig(t, db, 1, 5, 1)
	r.start(t, model.PassFull)
	r.waitIdle(t, time.Minute)
	items, _, _ := r.st.Items(context.Background(), r.project.ID, store.ItemFilter{})
	// Forget every watermark and cursor, as if the state were lost.
	if _, err := r.st.DB().Exec(`DELETE FROM watermarks; DELETE FROM cursors`); err != nil {
		t.Fatal(err)
	}
	r.start(t, model.PassFull)
	r.waitIdle(t, time.Minute)
	if got := r.dst.Puts(); got != 6 {
		t.Fatalf("after losing watermarks the target got %d writes, want 6 (none repeated)", got)
	}
	if n, _ := r.st.CountWatermarks(context.Background(), items[0].ID); n != 6 {
		t.Fatalf("watermarks rebuilt = %d, want 6", n)
	}
}

func TestPerObjectErrorsDoNotStopThePass(t *testing.T) {
	r := newRig(t, storetest.SQLite(t), 1, 3, 1)
	r.src.Add("u000@example.com", "INBOX", []byte("Message-ID: <bad@x>\r\nX-Reject: yes\r\n\r\nrefused\r\n"))
	r.start(t, model.PassFull)
	r.waitIdle(t, time.Minute)
	items, _, _ := r.st.Items(context.Background(), r.project.ID, store.ItemFilter{})
	it := items[0]
	if it.Status != model.StatusCompletedWithErrors || it.Stats.Errors != 1 || it.Stats.Objects != 4 {
		t.Fatalf("item = %s %+v; want CompletedWithErrors, 1 error, 4 copied", it.Status, it.Stats)
	}
	errs, err := r.st.ObjectErrors(context.Background(), it.ID, 10)
	if err != nil || len(errs) != 1 || !strings.Contains(errs[0].Reason, "target refused the message: X-Reject header") {
		t.Fatalf("object errors = %+v, %v", errs, err)
	}
	// A retry pass picks up only items with errors.
	p := r.start(t, model.PassRetry)
	if p.Items != 1 {
		t.Fatalf("retry pass over %d items, want 1", p.Items)
	}
	r.waitIdle(t, time.Minute)
}

func TestStopRunningItem(t *testing.T) {
	r := newRig(t, storetest.SQLite(t), 1, 200, 1)
	r.dst.SetDelay(20 * time.Millisecond)
	r.start(t, model.PassFull)
	deadline := time.Now().Add(30 * time.Second)
	for r.dst.Puts() < 5 {
		if time.Now().After(deadline) {
			t.Fatal("copy never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	n, err := r.eng.Stop(context.Background(), r.project.ID, nil, "tester")
	if err != nil || n != 1 {
		t.Fatalf("stop = %d, %v", n, err)
	}
	if c := r.waitIdle(t, 30*time.Second); c[model.StatusStopped] != 1 {
		t.Fatalf("after stop: %v, want 1 Stopped", c)
	}
	copied := r.dst.Puts()
	if copied >= 201 {
		t.Fatalf("stop came too late: %d of 201 copied", copied)
	}
	// Resuming copies the rest exactly once.
	r.dst.SetDelay(0)
	r.start(t, model.PassRetry)
	if c := r.waitIdle(t, time.Minute); c[model.StatusCompleted] != 1 {
		t.Fatalf("after retry: %v", c)
	}
	if got := r.dst.Total("u000@example.com"); got != 201 {
		t.Fatalf("target holds %d messages, want 201", got)
	}
}

func TestScheduledRepeatUntilCutover(t *testing.T) {
	r := newRig(t, storetest.SQLite(t), 2, 1, 2)
	ctx := context.Background()
	now := time.Now().UTC()
	until := now.Add(90 * time.Minute)
	if _, err := r.eng.Schedule(ctx, model.Schedule{ProjectID: r.project.ID, PassType: model.PassFull, NextAt: now, Every: time.Hour, Until: &until, CreatedBy: "tester"}); err != nil {
		t.Fatal(err)
	}
	r.eng.fireDue(ctx, now)
	r.waitIdle(t, time.Minute)
	r.eng.fireDue(ctx, now.Add(30*time.Minute)) // not due: nothing happens
	r.eng.fireDue(ctx, now.Add(61*time.Minute)) // second occurrence
	r.waitIdle(t, time.Minute)
	r.eng.fireDue(ctx, now.Add(121*time.Minute)) // after cutover: ended
	passes, _ := r.st.Passes(ctx, r.project.ID, 10)
	if len(passes) != 2 {
		t.Fatalf("schedule started %d passes, want 2", len(passes))
	}
	scs, _ := r.st.Schedules(ctx, r.project.ID, false)
	if scs[0].Active {
		t.Fatal("schedule still active after its cutover time")
	}
	if got := r.dst.Puts(); got != 4 {
		t.Fatalf("target writes = %d, want 4", got)
	}
}

func TestVerifyPassReportsBadCredentials(t *testing.T) {
	r := newRig(t, storetest.SQLite(t), 2, 1, 2)
	ctx := context.Background()
	items, _, _ := r.st.Items(ctx, r.project.ID, store.ItemFilter{})
	if _, err := r.st.ImportItems(ctx, r.project.ID, "tester", []store.ItemInput{{SourceEmail: items[1].SourceEmail, TargetEmail: items[1].TargetEmail,
		Secret: &model.ItemSecret{SourcePassword: "wrong"}}}); err != nil {
		t.Fatal(err)
	}
	r.start(t, model.PassVerify)
	c := r.waitIdle(t, time.Minute)
	if c[model.StatusCompleted] != 1 || c[model.StatusFailed] != 1 {
		t.Fatalf("verify statuses = %v, want 1 Completed, 1 Failed", c)
	}
	it, _ := r.st.Item(ctx, items[1].ID)
	if !strings.Contains(it.LastError, "authentication failed") {
		t.Fatalf("last error = %q", it.LastError)
	}
	if r.dst.Puts() != 0 {
		t.Fatal("a verify pass copied messages")
	}
}

func TestShutdownCheckpointsAndResumes(t *testing.T) {
	db := storetest.SQLite(t)
	r := newRig(t, db, 3, 60, 3)
	r.dst.SetDelay(10 * time.Millisecond)
	r.start(t, model.PassFull)
	deadline := time.Now().Add(30 * time.Second)
	for r.dst.Puts() < 20 {
		if time.Now().After(deadline) {
			t.Fatal("copy never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.eng.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	counts, _ := r.st.StatusCounts(ctx, r.project.ID)
	if counts[model.StatusQueued] != 3 {
		t.Fatalf("after shutdown: %v, want all 3 back in Queued", counts)
	}
	written := r.dst.Puts()
	evs, _ := r.st.Events(ctx, "item/", 100)
	found := false
	for _, e := range evs {
		found = found || e.Detail == "server shutting down"
	}
	if !found {
		t.Fatal("no audit event records the shutdown")
	}
	// A new engine on the same database resumes from the checkpoints.
	eng, err := New(ctx, r.st, Config{Workers: 10, ScheduleEvery: time.Hour, Log: r.eng.log})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer eng.Shutdown(ctx)
	r.dst.SetDelay(0)
	if c := r.waitIdle(t, time.Minute); c[model.StatusCompleted] != 3 {
		t.Fatalf("after restart: %v", c)
	}
	for i := 0; i < 3; i++ {
		email := fmt.Sprintf("u%03d@example.com", i)
		if got := r.dst.Total(email); got != 61 {
			t.Fatalf("%s holds %d messages, want 61 (written before shutdown: %d)", email, got, written)
		}
	}
}

func TestDeletionsPropagateOnlyWhenAsked(t *testing.T) {
	r := newRig(t, storetest.SQLite(t), 1, 4, 1)
	ctx := context.Background()
	r.start(t, model.PassFull)
	r.waitIdle(t, time.Minute)
	r.src.Remove("u000@example.com", "INBOX", 2)
	r.start(t, model.PassFull)
	r.waitIdle(t, time.Minute)
	if got := r.dst.Count("u000@example.com", "INBOX"); got != 4 {
		t.Fatalf("without the option the target lost a message: %d, want 4", got)
	}
	opts := r.project.Options
	opts.PropagateDeletions = true
	if err := r.st.UpdateProjectOptions(ctx, r.project.ID, opts); err != nil {
		t.Fatal(err)
	}
	r.start(t, model.PassFull)
	r.waitIdle(t, time.Minute)
	if got := r.dst.Count("u000@example.com", "INBOX"); got != 3 {
		t.Fatalf("with propagate_deletions the target holds %d, want 3", got)
	}
	items, _, _ := r.st.Items(ctx, r.project.ID, store.ItemFilter{})
	if n, _ := r.st.CountWatermarks(ctx, items[0].ID); n != 4 {
		t.Fatalf("watermarks after the deletion = %d, want 4 (3 in INBOX, 1 in Sent Items)", n)
	}
	runs, _ := r.st.Runs(ctx, items[0].ID)
	if !strings.Contains(string(runs[0].Folders), `"deleted":1`) {
		t.Fatalf("run does not report the deletion: %s", runs[0].Folders)
	}
}

// TestTwoNodesShareTheBound runs two engines (as two worker nodes would) on one PostgreSQL
// database: together they never exceed the project's max-concurrent, and every item completes once.
func TestTwoNodesShareTheBound(t *testing.T) {
	db := storetest.Postgres(t)
	r := newRig(t, db, 60, 2, 3)
	r.dst.SetDelay(5 * time.Millisecond)
	ctx := context.Background()
	st2 := db.Open(t)
	defer st2.Close()
	second, err := New(ctx, st2, Config{Workers: 20, ScheduleEvery: time.Hour, Log: r.eng.log})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer second.Shutdown(ctx)
	r.start(t, model.PassFull)
	if c := r.waitIdle(t, 2*time.Minute); c[model.StatusCompleted] != 60 {
		t.Fatalf("statuses = %v, want 60 Completed", c)
	}
	if p := r.dst.Peak(); p > 3 {
		t.Fatalf("two nodes ran %d items at once, max-concurrent is 3", p)
	}
	if got := r.dst.Puts(); got != 180 {
		t.Fatalf("target received %d messages, want 180 (each once)", got)
	}
	if a, b := r.eng.Claimed(), second.Claimed(); a == 0 || b == 0 || a+b != 60 {
		t.Fatalf("node one ran %d items, node two %d; want both > 0 and 60 in all", a, b)
	}
}

// TestRunningItemPublishesProgress checks that a long item's totals reach its row while it runs,
// so live views show progress, and that the final totals are the run's own.
func TestRunningItemPublishesProgress(t *testing.T) {
	r := newRig(t, storetest.SQLite(t), 1, 60, 1)
	ctx := context.Background()
	if err := r.eng.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	eng, err := New(ctx, r.st, Config{Workers: 2, ScheduleEvery: time.Hour, ProgressEvery: 50 * time.Millisecond, Log: r.eng.log})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer eng.Shutdown(ctx)
	r.eng = eng
	r.dst.SetDelay(20 * time.Millisecond) // about 1.2 s for the mailbox
	r.start(t, model.PassFull)
	var midway []int64
	deadline := time.Now().Add(30 * time.Second)
	for {
		items, _, err := r.st.Items(ctx, r.project.ID, store.ItemFilter{})
		if err != nil {
			t.Fatal(err)
		}
		it := items[0]
		if it.Status == model.StatusRunning && it.Stats.Objects > 0 && it.Stats.Objects < 61 {
			if len(midway) == 0 || midway[len(midway)-1] != it.Stats.Objects {
				midway = append(midway, it.Stats.Objects)
			}
		}
		if it.Status.Terminal() {
			if it.Status != model.StatusCompleted || it.Stats.Objects != 61 {
				t.Fatalf("final: %s with %d objects, want Completed with 61", it.Status, it.Stats.Objects)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("item still %s", it.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(midway) < 2 || !slices.IsSorted(midway) {
		t.Errorf("running totals seen while the item ran: %v, want at least two, rising", midway)
	}
}

// A pass whose jobs were never queued (the queue failed after the pass was committed) is not left
// waiting for the next start: within a lease its runs get jobs and every item finishes.
func TestRunsWithoutJobsAreQueued(t *testing.T) {
	r := newRig(t, storetest.SQLite(t), 6, 2, 3)
	ctx := context.Background()
	// The store's half of StartPass, without the engine queueing the jobs.
	if _, _, _, err := r.st.StartPass(ctx, store.PassRequest{ProjectID: r.project.ID, Type: model.PassFull, Actor: "tester"}); err != nil {
		t.Fatal(err)
	}
	runs, err := r.st.UnqueuedRuns(ctx, 100)
	if err != nil || len(runs) != 6 {
		t.Fatalf("unqueued runs: %d %v, want 6", len(runs), err)
	}
	r.eng.rescue(ctx, time.Now())
	if counts := r.waitIdle(t, 30*time.Second); counts[model.StatusCompleted] != 6 {
		t.Fatalf("statuses %v, want 6 completed", counts)
	}
	if runs, _ := r.st.UnqueuedRuns(ctx, 100); len(runs) != 0 {
		t.Fatalf("%d runs still without a job", len(runs))
	}
}

// An item that takes several slices counts the work of all of them: its statistics, and the
// project's, equal what was copied, not only what the last slice copied.
func TestSlicesAddUp(t *testing.T) {
	r := newRig(t, storetest.SQLite(t), 2, 40, 2)
	ctx := context.Background()
	r.eng.Shutdown(ctx)
	eng, err := New(ctx, r.st, Config{Workers: 4, ScheduleEvery: time.Hour, SliceLimit: 150 * time.Millisecond, Log: r.eng.log})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Shutdown(context.Background()) })
	r.eng = eng
	r.dst.SetDelay(15 * time.Millisecond) // 41 messages an item: well over one slice
	r.start(t, model.PassFull)
	if counts := r.waitIdle(t, 60*time.Second); counts[model.StatusCompleted] != 2 {
		t.Fatalf("statuses %v, want 2 completed", counts)
	}
	items, _, err := r.st.Items(ctx, r.project.ID, store.ItemFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Stats.Objects != 41 || it.Stats.Missing != 0 || it.Stats.Extra != 0 || it.Stats.Matched != 41 {
			t.Errorf("%s: %+v, want 41 copied and 41 matched", it.SourceEmail, it.Stats)
		}
	}
	evs, _ := r.st.Events(ctx, "item/", 1000)
	slices := 0
	for _, e := range evs {
		if e.Action == "status.Queued" && e.Detail == "continues in a new slice" {
			slices++
		}
	}
	if slices == 0 {
		t.Fatal("no item needed a second slice: the test proves nothing")
	}
}
