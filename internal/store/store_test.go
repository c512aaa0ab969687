package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/secret"
	"github.com/ferry-migrate/ferry/internal/store"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
)

var ctx = context.Background()

// fixture creates a workgroup, two endpoints and a project.
func fixture(t *testing.T, st *store.Store) (model.Workgroup, model.Project) {
	t.Helper()
	wg, err := st.CreateWorkgroup(ctx, "Default", true)
	if err != nil {
		t.Fatal(err)
	}
	src, err := st.CreateEndpoint(ctx, model.Endpoint{WorkgroupID: wg.ID, Name: "old", Kind: model.KindIMAP,
		Settings: model.EndpointSettings{Host: "imap.old.example", Port: 993, Security: model.SecurityTLS, AdminUser: "admin@old.example"},
		Secret:   &model.EndpointSecret{AdminPassword: "Sup3r-Secret-Endpoint-Pw"}})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := st.CreateEndpoint(ctx, model.Endpoint{WorkgroupID: wg.ID, Name: "new", Kind: model.KindIMAP, Settings: model.EndpointSettings{Host: "imap.new.example"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.CreateProject(ctx, model.Project{WorkgroupID: wg.ID, Name: "acme", Workload: model.WorkloadMailbox, SourceID: src.ID, TargetID: dst.ID,
		Options: model.ProjectOptions{MaxConcurrent: 2}, CreatedBy: "usr_x"})
	if err != nil {
		t.Fatal(err)
	}
	return wg, p
}

func importN(t *testing.T, st *store.Store, projectID string, n int) {
	t.Helper()
	in := make([]store.ItemInput, n)
	for i := range in {
		in[i] = store.ItemInput{SourceEmail: fmt.Sprintf("user%04d@old.example", i), TargetEmail: fmt.Sprintf("user%04d@new.example", i)}
	}
	res, err := st.ImportItems(ctx, projectID, "tester", in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != n {
		t.Fatalf("created %d items, want %d", res.Created, n)
	}
}

func TestRestartLosesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		st := db.Open(t)
		wg, p := fixture(t, st)
		importN(t, st, p.ID, 25)
		pass, runs, _, err := st.StartPass(ctx, store.PassRequest{ProjectID: p.ID, Type: model.PassFull, Actor: "tester"})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 25 {
			t.Fatalf("runs = %d, want 25", len(runs))
		}
		mark := model.Watermark{Folder: "INBOX", SourceID: "7:1", Version: "3", TargetID: "t1", Hash: "abc", Size: 42}
		if err := st.Checkpoint(ctx, runs[0].ItemID, []model.Watermark{mark}, &model.Cursor{Folder: "INBOX", Value: "uidnext=2"}); err != nil {
			t.Fatal(err)
		}
		st.Close()

		st = db.Open(t) // restart: migrations are re-run and must be a no-op
		defer st.Close()
		items, total, err := st.Items(ctx, p.ID, store.ItemFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if total != 25 || len(items) != 25 {
			t.Fatalf("after restart: %d items (total %d), want 25", len(items), total)
		}
		for _, it := range items {
			if it.Status != model.StatusQueued || it.LastPassID != pass.ID {
				t.Fatalf("item %s: status %s pass %s, want Queued in %s", it.SourceEmail, it.Status, it.LastPassID, pass.ID)
			}
		}
		marks, err := st.Watermarks(ctx, runs[0].ItemID, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		if got := marks["7:1"]; got.TargetID != "t1" || got.Hash != "abc" || got.Size != 42 || got.Version != "3" {
			t.Fatalf("watermark after restart = %+v", got)
		}
		if c, _ := st.Cursor(ctx, runs[0].ItemID, "INBOX"); c != "uidnext=2" {
			t.Fatalf("cursor after restart = %q", c)
		}
		got, err := st.Workgroup(ctx, wg.Name)
		if err != nil || got.ID != wg.ID {
			t.Fatalf("workgroup after restart: %+v %v", got, err)
		}
		evs, err := st.Events(ctx, "item/", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 25 {
			t.Fatalf("audit trail has %d item events, want 25 (one Queued per item)", len(evs))
		}
	})
}

func TestCredentialsAreSealed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		st := db.Open(t)
		defer st.Close()
		_, p := fixture(t, st)
		res, err := st.ImportItems(ctx, p.ID, "tester", []store.ItemInput{{SourceEmail: "a@old.example", TargetEmail: "a@new.example",
			Secret: &model.ItemSecret{SourcePassword: "Item-Password-Zebra-991"}}})
		if err != nil || res.Created != 1 {
			t.Fatalf("import: %+v %v", res, err)
		}
		eps, err := st.Endpoints(ctx, []string{p.WorkgroupID})
		if err != nil {
			t.Fatal(err)
		}
		var src model.Endpoint
		for _, e := range eps {
			if e.Name == "old" {
				src = e
			}
		}
		if !src.HasSecret || src.Secret != nil {
			t.Fatalf("listed endpoint: HasSecret=%v Secret=%v; want true and nil", src.HasSecret, src.Secret)
		}
		full, err := st.EndpointWithSecret(ctx, src.ID)
		if err != nil || full.Secret.AdminPassword != "Sup3r-Secret-Endpoint-Pw" {
			t.Fatalf("opened endpoint secret = %+v, %v", full.Secret, err)
		}
		items, _, _ := st.Items(ctx, p.ID, store.ItemFilter{})
		it, err := st.ItemWithSecret(ctx, items[0].ID)
		if err != nil || it.Secret.SourcePassword != "Item-Password-Zebra-991" {
			t.Fatalf("opened item secret = %+v, %v", it.Secret, err)
		}
		if db.Name != "sqlite" {
			return
		}
		st.Close()
		// Nothing on disk, database or WAL, holds either password.
		files, _ := filepath.Glob(filepath.Join(db.DataDir, "ferry.db*"))
		if len(files) == 0 {
			t.Fatal("no database files found")
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, pw := range []string{"Sup3r-Secret-Endpoint-Pw", "Item-Password-Zebra-991"} {
				if bytes.Contains(data, []byte(pw)) {
					t.Fatalf("%s contains the plaintext password %q", filepath.Base(f), pw)
				}
			}
		}
	})
}

func TestRekey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		st := db.Open(t)
		defer st.Close()
		_, p := fixture(t, st)
		newKey := secret.GenerateKey()
		next, err := secret.NewKeyring(newKey, db.Key)
		if err != nil {
			t.Fatal(err)
		}
		n, err := st.Rekey(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("re-sealed %d values, want 1 (one endpoint has credentials)", n)
		}
		onlyNew, err := secret.NewKeyring(newKey)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		db.Keys = onlyNew
		st2 := db.Open(t)
		defer st2.Close()
		e, err := st2.Endpoint(ctx, p.WorkgroupID, "old")
		if err != nil {
			t.Fatal(err)
		}
		full, err := st2.EndpointWithSecret(ctx, e.ID)
		if err != nil || full.Secret.AdminPassword != "Sup3r-Secret-Endpoint-Pw" {
			t.Fatalf("after rotation, opening with only the new key: %+v %v", full.Secret, err)
		}
	})
}

func TestImportUpsertsAndRejectsNothingPartially(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		st := db.Open(t)
		defer st.Close()
		_, p := fixture(t, st)
		importN(t, st, p.ID, 3)
		res, err := st.ImportItems(ctx, p.ID, "tester", []store.ItemInput{
			{SourceEmail: "USER0001@old.example", TargetEmail: "changed@new.example"},
			{SourceEmail: "fresh@old.example", TargetEmail: "fresh@new.example"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Created != 1 || res.Updated != 1 {
			t.Fatalf("import result %+v, want 1 created 1 updated", res)
		}
		items, total, _ := st.Items(ctx, p.ID, store.ItemFilter{Emails: []string{"user0001@OLD.example"}})
		if total != 1 || items[0].TargetEmail != "changed@new.example" {
			t.Fatalf("updated item = %+v (total %d)", items, total)
		}
		// Paging, sorting and text filter.
		page, total, err := st.Items(ctx, p.ID, store.ItemFilter{Sort: "-source", Limit: 2, Offset: 1})
		if err != nil || total != 4 || len(page) != 2 || page[0].SourceEmail != "user0001@old.example" {
			t.Fatalf("page = %v total %d err %v", page, total, err)
		}
		if _, n, _ := st.Items(ctx, p.ID, store.ItemFilter{Text: "FRESH"}); n != 1 {
			t.Fatalf("text filter matched %d, want 1", n)
		}
		if _, _, err := st.Items(ctx, p.ID, store.ItemFilter{Sort: "password"}); !errors.Is(err, store.ErrBadFilter) || !strings.Contains(err.Error(), `unknown sort "password"`) {
			t.Fatalf("unknown sort: %v, want ErrBadFilter naming it", err)
		}
	})
}

func TestClaimBoundsConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		st := db.Open(t)
		defer st.Close()
		_, p := fixture(t, st) // max_concurrent 2
		importN(t, st, p.ID, 4)
		pass, runs, _, err := st.StartPass(ctx, store.PassRequest{ProjectID: p.ID, Type: model.PassFull, Actor: "tester"})
		if err != nil {
			t.Fatal(err)
		}
		var got []store.Claim
		for _, r := range runs {
			c, err := st.ClaimItem(ctx, pass.ID, r.ItemID, "node-a", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, c)
		}
		want := []store.Claim{store.Claimed, store.Claimed, store.NoSlot, store.NoSlot}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("claims = %v, want %v", got, want)
		}
		// A second node cannot steal a held item.
		if c, _ := st.ClaimItem(ctx, pass.ID, runs[0].ItemID, "node-b", time.Minute); c != store.NoSlot {
			t.Fatalf("node-b claimed an item node-a holds: %v", c)
		}
		if err := st.FinishRun(ctx, pass.ID, runs[0].ItemID, model.StatusCompleted, model.ItemStats{Objects: 5, Bytes: 500}, nil, ""); err != nil {
			t.Fatal(err)
		}
		if c, _ := st.ClaimItem(ctx, pass.ID, runs[2].ItemID, "node-b", time.Minute); c != store.Claimed {
			t.Fatalf("freed slot not claimable: %v", c)
		}
		if c, _ := st.ClaimItem(ctx, pass.ID, runs[0].ItemID, "node-a", time.Minute); c != store.Gone {
			t.Fatalf("finished run claim = %v, want Gone", c)
		}
		// Stop: the queued run stops at once, the running ones are asked to.
		stopped, err := st.RequestStop(ctx, p.ID, nil, "tester")
		if err != nil || len(stopped) != 3 {
			t.Fatalf("stop touched %d runs (%v), want 3", len(stopped), err)
		}
		it, _ := st.Item(ctx, runs[3].ItemID)
		if it.Status != model.StatusStopped {
			t.Fatalf("queued item after stop: %s", it.Status)
		}
		stop, err := st.RenewLease(ctx, runs[1].ItemID, "node-a", time.Minute)
		if err != nil || !stop {
			t.Fatalf("running item: stop=%v err=%v, want stop requested", stop, err)
		}
		if _, err := st.RenewLease(ctx, runs[1].ItemID, "node-b", time.Minute); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("renewing someone else's lease: %v", err)
		}
		it, _ = st.Item(ctx, runs[0].ItemID)
		if it.Stats.Objects != 5 || it.Stats.Bytes != 500 || it.Status != model.StatusCompleted {
			t.Fatalf("finished item = %+v", it)
		}
	})
}

func TestTokensAndSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		st := db.Open(t)
		defer st.Close()
		u, err := st.CreateUser(ctx, "alice", "hash", false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateUser(ctx, "alice", "hash", false); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate user: %v, want ErrConflict", err)
		}
		exp := time.Now().Add(time.Hour)
		tok, err := st.CreateToken(ctx, u.ID, "ci", "h1", &exp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.TokenByHash(ctx, "h1")
		if err != nil || got.ID != tok.ID || !got.Usable(time.Now()) {
			t.Fatalf("token = %+v, %v", got, err)
		}
		if err := st.RevokeToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		got, _ = st.TokenByHash(ctx, "h1")
		if got.Usable(time.Now()) {
			t.Fatal("revoked token still usable")
		}
		if got.Usable(time.Now()) || got.RevokedAt == nil {
			t.Fatalf("revoked token = %+v", got)
		}
		sess := model.Session{ID: "s1", UserID: u.ID, CSRF: "c", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := st.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if s, err := st.Session(ctx, "s1"); err != nil || s.CSRF != "c" {
			t.Fatalf("session = %+v %v", s, err)
		}
		if err := st.SetUserDisabled(ctx, u.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Session(ctx, "s1"); !store.IsNotFound(err) {
			t.Fatalf("session of a disabled user: %v, want not found", err)
		}
	})
}

func TestSchedulesFireOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		st := db.Open(t)
		defer st.Close()
		_, p := fixture(t, st)
		start := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
		until := start.Add(150 * time.Minute)
		sc, err := st.CreateSchedule(ctx, model.Schedule{ProjectID: p.ID, PassType: model.PassFull, NextAt: start, Every: time.Hour, Until: &until, CreatedBy: "tester"})
		if err != nil {
			t.Fatal(err)
		}
		due, _ := st.DueSchedules(ctx, time.Now())
		if len(due) != 1 {
			t.Fatalf("due = %d, want 1", len(due))
		}
		fired, err := st.AdvanceSchedule(ctx, due[0], time.Now())
		if err != nil || !fired {
			t.Fatalf("first advance fired=%v err=%v", fired, err)
		}
		if again, _ := st.AdvanceSchedule(ctx, due[0], time.Now()); again {
			t.Fatal("the same occurrence fired twice")
		}
		all, _ := st.Schedules(ctx, p.ID, false)
		if len(all) != 1 || !all[0].NextAt.Equal(start.Add(time.Hour)) || !all[0].Active {
			t.Fatalf("after first fire: %+v, want next at %s", all, start.Add(time.Hour))
		}
		// Fire the remaining occurrences: the third (start+3h) would fall after until, so it ends.
		later := start.Add(2*time.Hour + time.Second)
		due, _ = st.DueSchedules(ctx, later)
		st.AdvanceSchedule(ctx, due[0], later)
		all, _ = st.Schedules(ctx, p.ID, false)
		if all[0].Active {
			t.Fatalf("schedule %s still active after its cutover time: %+v", sc.ID, all[0])
		}
	})
}

// Stop reaches items whose node died: one whose lease ran out stops at once, and one asked to stop
// while its node was dying stops when another node's rescued job claims it.
func TestStopReachesItemsOfDeadNodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		st := db.Open(t)
		defer st.Close()
		_, p := fixture(t, st) // max_concurrent 2
		importN(t, st, p.ID, 2)
		pass, runs, _, err := st.StartPass(ctx, store.PassRequest{ProjectID: p.ID, Type: model.PassFull, Actor: "tester"})
		if err != nil {
			t.Fatal(err)
		}
		// node-a claims both with a short lease, then dies: the first lease runs out unrenewed.
		if c, _ := st.ClaimItem(ctx, pass.ID, runs[0].ItemID, "node-a", 50*time.Millisecond); c != store.Claimed {
			t.Fatal("claim 0")
		}
		if c, _ := st.ClaimItem(ctx, pass.ID, runs[1].ItemID, "node-a", 400*time.Millisecond); c != store.Claimed {
			t.Fatal("claim 1")
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := st.RequestStop(ctx, p.ID, nil, "tester"); err != nil {
			t.Fatal(err)
		}
		if it, _ := st.Item(ctx, runs[0].ItemID); it.Status != model.StatusStopped {
			t.Fatalf("item of a dead node after stop: %s, want Stopped", it.Status)
		}
		if it, _ := st.Item(ctx, runs[1].ItemID); it.Status != model.StatusRunning {
			t.Fatalf("item with a live lease after stop: %s, want Running until its worker stops it", it.Status)
		}
		// node-a dies before its next renewal would have seen the request; once the lease has run
		// out, node-b's claim (a rescued job) stops the item.
		time.Sleep(400 * time.Millisecond)
		if c, _ := st.ClaimItem(ctx, pass.ID, runs[1].ItemID, "node-b", time.Minute); c != store.Gone {
			t.Fatalf("node-b's claim of an item asked to stop: %v, want Gone", c)
		}
		if it, _ := st.Item(ctx, runs[1].ItemID); it.Status != model.StatusStopped {
			t.Fatalf("item asked to stop whose node died: %s, want Stopped", it.Status)
		}
	})
}
