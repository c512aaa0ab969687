package exo_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/connector/exo"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/m365sim"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
)

var ctx = context.Background()

// rig is the emulator with a seeded source tenant (contoso) and an empty target (fabrikam), and
// a state store for one item.
type rig struct {
	sim      *m365sim.Server
	srv      *httptest.Server
	src, dst model.Endpoint
	st       *store.Store
	item     string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	sim := m365sim.New()
	srv := httptest.NewTLSServer(sim)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	sim.Apply(m365sim.Seed{Tenants: []string{"contoso", "fabrikam"}, Users: 3, Messages: 24})
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	ep := func(tenant string) model.Endpoint {
		return model.Endpoint{Name: tenant, Kind: model.KindM365,
			Settings: model.EndpointSettings{Tenant: tenant + ".onmicrosoft.com", ClientID: m365sim.SeedClientID, Host: srv.URL, CACert: ca},
			Secret:   &model.EndpointSecret{ClientSecret: m365sim.SeedSecret(tenant)}}
	}
	r := &rig{sim: sim, srv: srv, src: ep("contoso"), dst: ep("fabrikam")}
	r.st = storetest.SQLite(t).Open(t)
	t.Cleanup(func() { r.st.Close() })
	wg, _ := r.st.CreateWorkgroup(ctx, "w", true)
	e, _ := r.st.CreateEndpoint(ctx, model.Endpoint{WorkgroupID: wg.ID, Name: "e", Kind: model.KindM365})
	prj, err := r.st.CreateProject(ctx, model.Project{WorkgroupID: wg.ID, Name: "p", Workload: model.WorkloadMailbox, SourceID: e.ID, TargetID: e.ID, CreatedBy: "t"})
	if err != nil {
		t.Fatal(err)
	}
	r.st.ImportItems(ctx, prj.ID, "t", []store.ItemInput{{SourceEmail: "user00@contoso.com", TargetEmail: "user00@fabrikam.com"}})
	items, _, _ := r.st.Items(ctx, prj.ID, store.ItemFilter{})
	r.item = items[0].ID
	return r
}

func (r *rig) client(t *testing.T, e model.Endpoint, user string) *graph.Client {
	t.Helper()
	c, err := exo.Client(e, user)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pass runs one pass of user00 from contoso to user00 of fabrikam.
func (r *rig) pass(passID string) (model.ItemStats, []engine.FolderResult, error) {
	src, err := exo.Connector{}.OpenSource(ctx, connector.Side{Endpoint: r.src, Email: "user00@contoso.com"})
	if err != nil {
		return model.ItemStats{}, nil, err
	}
	dst, err := exo.Connector{}.OpenTarget(ctx, connector.Side{Endpoint: r.dst, Email: "user00@fabrikam.com"})
	if err != nil {
		return model.ItemStats{}, nil, err
	}
	return engine.CopyMailbox(ctx, r.st, src, dst, engine.CopyOptions{ItemID: r.item, PassID: passID, Connections: 4})
}

// between runs one pass from one Exchange side to another, failing the test on a pass error.
func (r *rig) between(t *testing.T, src, dst connector.Side, passID string) (model.ItemStats, []engine.FolderResult) {
	t.Helper()
	s, err := exo.Connector{}.OpenSource(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	d, err := exo.Connector{}.OpenTarget(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	stats, res, err := engine.CopyMailbox(ctx, r.st, s, d, engine.CopyOptions{ItemID: r.item, PassID: passID, Connections: 3})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	return stats, res
}

func (r *rig) copyOnce(t *testing.T) (model.ItemStats, []engine.FolderResult) {
	t.Helper()
	stats, res, err := r.pass("pass")
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	return stats, res
}

// walkFolders calls fn for every folder of a user's mailbox, parents first, with its path.
func walkFolders(t *testing.T, c *graph.Client, user string, fn func(path string, f graph.MailboxFolder)) {
	t.Helper()
	set, err := c.ExchangeSettings(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(parent, prefix string)
	walk = func(parent, prefix string) {
		folders, _ := c.MailboxFolders(ctx, set.PrimaryMailboxID, parent)
		for f, err := range folders {
			if err != nil {
				t.Fatal(err)
			}
			fn(prefix+f.DisplayName, f)
			walk(f.ID, prefix+f.DisplayName+"/")
		}
	}
	walk("", "")
}

// eachMessage calls fn for every message of a mail folder, with its MIME as the service serves it.
func eachMessage(t *testing.T, c *graph.Client, user, folder string, fn func(m graph.Message, mime []byte)) {
	t.Helper()
	msgs, _ := c.MessagesDelta(ctx, user, folder, "")
	for m, err := range msgs {
		if err != nil {
			t.Fatal(err)
		}
		rc, err := c.MessageMIME(ctx, user, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		mime, _ := io.ReadAll(rc)
		rc.Close()
		fn(m, mime)
	}
}

// content is what a mailbox holds, folder by folder: per message its MIME and state, sorted.
func content(t *testing.T, c *graph.Client, user string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	walkFolders(t, c, user, func(path string, f graph.MailboxFolder) {
		out[path] = []string{}
		if f.Type != "IPF.Note" {
			return
		}
		eachMessage(t, c, user, f.ID, func(m graph.Message, mime []byte) {
			out[path] = append(out[path], fmt.Sprintf("read=%v flag=%s cats=%v received=%s\n%s", m.IsRead, m.Flag.FlagStatus, m.Categories, m.ReceivedDateTime.UTC(), mime))
		})
		slices.Sort(out[path])
	})
	return out
}

func TestExchangeToExchange(t *testing.T) {
	r := newRig(t)
	sc := r.client(t, r.src, "user00@contoso.com")
	// Nested folders, a message read and flagged with categories, and a calendar folder.
	q1, err := sc.CreateMailFolder(ctx, "user00@contoso.com", "", "Projects")
	if err != nil {
		t.Fatal(err)
	}
	q1, err = sc.CreateMailFolder(ctx, "user00@contoso.com", q1.ID, "Q1 / 2026")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		m, err := sc.CreateMessageFromMIME(ctx, "user00@contoso.com", q1.ID, []byte(fmt.Sprintf("Message-ID: <q%d@contoso.com>\r\nSubject: plan %d\r\n\r\nbody %d\r\n", i, i, i)))
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := sc.UpdateMessage(ctx, "user00@contoso.com", m.ID, true, "flagged", []string{"Red", "Finance"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	set, _ := sc.ExchangeSettings(ctx, "user00@contoso.com")
	if _, err := sc.CreateMailboxFolder(ctx, set.PrimaryMailboxID, "", "Team calendar", "IPF.Appointment"); err != nil {
		t.Fatal(err)
	}
	want := content(t, sc, "user00@contoso.com")

	stats, res := r.copyOnce(t)
	if stats.Objects != 35 {
		t.Errorf("first pass copied %d objects, want 35 (24 seeded messages, 3 in Projects/Q1 ∕ 2026, 3 events, 3 contacts, 2 tasks)", stats.Objects)
	}
	for _, f := range res {
		if !f.Reconciled || f.SourceCount != f.TargetCount {
			t.Errorf("folder %s: source %d, target %d", f.Source, f.SourceCount, f.TargetCount)
		}
	}
	dc := r.client(t, r.dst, "user00@fabrikam.com")
	got := content(t, dc, "user00@fabrikam.com")
	for path, msgs := range want {
		if !slices.Equal(got[path], msgs) {
			t.Errorf("folder %s: target holds %d messages unlike the source's %d (or with other content)", path, len(got[path]), len(msgs))
		}
	}
	// Calendar items keep their attendees and recurrence, and no invitation went out.
	src, dst := events(t, sc, "user00@contoso.com"), events(t, dc, "user00@fabrikam.com")
	if len(src) != 3 || !slices.Equal(src, dst) {
		t.Errorf("events: source %d, target %d, equal %v:\n%v\n%v", len(src), len(dst), slices.Equal(src, dst), src, dst)
	}
	if joined := strings.Join(dst, "\n"); !strings.Contains(joined, "Weekly team sync") || !strings.Contains(joined, "every 1 weekly on [monday wednesday]") ||
		!strings.Contains(joined, "required:Colleague 3<colleague3@contoso.com>") || !strings.Contains(joined, "optional:Colleague 2<colleague2@contoso.com>") {
		t.Errorf("the target's events lack their recurrence or attendees:\n%s", joined)
	}
	if sent := r.sim.SentMail(); len(sent) != 0 {
		t.Errorf("the migration sent %d messages: %+v", len(sent), sent)
	}
	dset, _ := dc.ExchangeSettings(ctx, "user00@fabrikam.com")
	folders, _ := dc.MailboxFolders(ctx, dset.PrimaryMailboxID, "")
	for f, err := range folders {
		if err == nil && f.DisplayName == "Team calendar" && f.Type != "IPF.Appointment" {
			t.Errorf("the calendar folder arrived as %s", f.Type)
		}
	}

	// Repeated passes copy nothing again.
	for pass := 2; pass <= 3; pass++ {
		if stats, _ := r.copyOnce(t); stats.Objects != 0 || stats.Errors != 0 {
			t.Errorf("pass %d: %+v, want nothing copied", pass, stats)
		}
	}
	if again := content(t, dc, "user00@fabrikam.com"); !mapsEqual(again, got) {
		t.Error("repeated passes changed the target")
	}

	// A changed item is updated in place.
	inbox, _ := sc.MessagesDelta(ctx, "user00@contoso.com", "inbox", "")
	var changed graph.Message
	for m := range inbox {
		changed = m
		break
	}
	if err := sc.UpdateMessage(ctx, "user00@contoso.com", changed.ID, !changed.IsRead, "complete", []string{"Blue"}); err != nil {
		t.Fatal(err)
	}
	_, res = r.copyOnce(t)
	updated := 0
	for _, f := range res {
		updated += int(f.Updated)
	}
	if updated != 1 {
		t.Errorf("delta after one change updated %d items, want 1", updated)
	}
	if got, want := content(t, dc, "user00@fabrikam.com"), content(t, sc, "user00@contoso.com"); !mapsEqual(got, want) {
		t.Error("after the update the target differs from the source")
	}

	// Lost watermarks: the stamped source ids find the copies.
	if err := r.st.ForgetFolder(ctx, r.item, "Inbox"); err != nil {
		t.Fatal(err)
	}
	if err := r.st.Checkpoint(ctx, r.item, nil, &model.Cursor{ItemID: r.item, Folder: "Inbox", Value: ""}); err != nil {
		t.Fatal(err)
	}
	if stats, _ := r.copyOnce(t); stats.Objects != 0 {
		t.Errorf("after losing the Inbox watermarks a pass copied %d objects, want 0", stats.Objects)
	}
	if again := content(t, dc, "user00@fabrikam.com"); len(again["Inbox"]) != len(want["Inbox"]) {
		t.Errorf("Inbox holds %d messages after the lost watermarks, want %d", len(again["Inbox"]), len(want["Inbox"]))
	}
}

// events describes a user's events, sorted: subject, times, attendees, recurrence.
func events(t *testing.T, c *graph.Client, user string) []string {
	t.Helper()
	var out []string
	evs, _ := c.Events(ctx, user)
	for e, err := range evs {
		if err != nil {
			t.Fatal(err)
		}
		d := fmt.Sprintf("%s %s %s–%s %s allday=%v", e.Subject, e.ICalUID, e.Start.DateTime, e.End.DateTime, e.Start.TimeZone, e.IsAllDay)
		for _, a := range e.Attendees {
			d += fmt.Sprintf(" %s:%s<%s>", a.Type, a.EmailAddress.Name, a.EmailAddress.Address)
		}
		if rc := e.Recurrence; rc != nil {
			d += fmt.Sprintf(" every %d %s on %v from %s to %s", rc.Pattern.Interval, rc.Pattern.Type, rc.Pattern.DaysOfWeek, rc.Range.StartDate, rc.Range.EndDate)
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestVerifyNamesWhatIsMissing(t *testing.T) {
	r := newRig(t)
	if err := (exo.Connector{}).Verify(ctx, connector.Side{Endpoint: r.dst, Email: "user01@fabrikam.com"}); err != nil {
		t.Fatalf("verify a good side: %v", err)
	}
	// An endpoint alone (no mailbox): sign-in and directory access.
	if err := (exo.Connector{}).Verify(ctx, connector.Side{Endpoint: r.dst}); err != nil {
		t.Fatalf("verify the endpoint: %v", err)
	}
	r.sim.AddApp(m365sim.TenantID("fabrikam"), "no-directory", "pw", nil, "Mail.ReadWrite")
	nodir := r.dst
	nodir.Settings.ClientID, nodir.Secret = "no-directory", &model.EndpointSecret{ClientSecret: "pw"}
	if err := (exo.Connector{}).Verify(ctx, connector.Side{Endpoint: nodir}); err == nil || !strings.Contains(err.Error(), "app no-directory lacks User.Read.All") {
		t.Errorf("verify an endpoint whose app cannot read users: %v", err)
	}
	// An app without the import/export permission.
	r.sim.AddApp(m365sim.TenantID("fabrikam"), "reader-app", "pw", nil, "User.Read.All", "Mail.ReadWrite", "MailboxSettings.Read", m365sim.PermMailboxFolderRead)
	weak := r.dst
	weak.Settings.ClientID, weak.Secret = "reader-app", &model.EndpointSecret{ClientSecret: "pw"}
	err := (exo.Connector{}).Verify(ctx, connector.Side{Endpoint: weak, Email: "user01@fabrikam.com"})
	if err == nil || !strings.Contains(err.Error(), "app reader-app lacks MailboxItem.ImportExport.All") {
		t.Errorf("verify without the import/export permission: %v", err)
	}
	if err := (exo.Connector{}).Verify(ctx, connector.Side{Endpoint: r.dst, Email: "nobody@fabrikam.com"}); err == nil || !strings.Contains(err.Error(), "mailbox nobody@fabrikam.com does not exist in tenant fabrikam.onmicrosoft.com") {
		t.Errorf("verify a missing mailbox: %v", err)
	}
	bad := r.dst
	bad.Secret = &model.EndpointSecret{ClientSecret: "wrong"}
	if err := (exo.Connector{}).Verify(ctx, connector.Side{Endpoint: bad, Email: "user01@fabrikam.com"}); err == nil || connector.ClassOf(err) != connector.Fatal ||
		!strings.Contains(err.Error(), "sign-in of app ferry-sim-app to tenant fabrikam.onmicrosoft.com failed: AADSTS7000215: Invalid client secret provided") {
		t.Errorf("verify with a wrong secret: %v (class %v), want a fatal error", err, connector.ClassOf(err))
	}
}

// TestFaultsLeaveExactCounts copies with one Graph request in ten failing (503 or a dropped
// connection): retries and watermarks still give every folder exactly the source's count.
func TestFaultsLeaveExactCounts(t *testing.T) {
	r := newRig(t)
	r.sim.SetFaults(m365sim.Faults{ErrorRate: 0.05, ResetRate: 0.05, Seed: 7})
	var res []engine.FolderResult
	for pass := 1; pass <= 2; pass++ {
		// A pass may end early on a fault the retries could not absorb; the next one finishes.
		var err error
		if _, res, err = r.pass(fmt.Sprint(pass)); err == nil {
			break
		}
		t.Logf("pass %d: %v", pass, err)
	}
	errs, resets := r.sim.Injected()
	if errs+resets == 0 {
		t.Fatal("no fault was injected")
	}
	r.sim.SetFaults(m365sim.Faults{})
	sc, dc := r.client(t, r.src, "user00@contoso.com"), r.client(t, r.dst, "user00@fabrikam.com")
	want, got := content(t, sc, "user00@contoso.com"), content(t, dc, "user00@fabrikam.com")
	if !mapsEqual(got, want) {
		for path := range want {
			t.Errorf("%s: target %d, source %d", path, len(got[path]), len(want[path]))
		}
	}
	t.Logf("%d errors and %d resets injected; folders %d", errs, resets, len(res))
}

// TestPrestageByDate copies only the items older than a cutoff (prestage), then the rest in a
// full pass, Exchange to Exchange.
func TestPrestageByDate(t *testing.T) {
	r := newRig(t)
	// The seed's messages arrive every 37 minutes from 2025-01-06 09:00; events on 2025-01-06.
	cutoff := time.Date(2025, 1, 6, 15, 0, 0, 0, time.UTC)
	now := func() time.Time { return cutoff.Add(90 * 24 * time.Hour) }
	run := func(o engine.CopyOptions) model.ItemStats {
		t.Helper()
		src, err := exo.Connector{}.OpenSource(ctx, connector.Side{Endpoint: r.src, Email: "user00@contoso.com"})
		if err != nil {
			t.Fatal(err)
		}
		dst, err := exo.Connector{}.OpenTarget(ctx, connector.Side{Endpoint: r.dst, Email: "user00@fabrikam.com"})
		if err != nil {
			t.Fatal(err)
		}
		o.ItemID, o.PassID, o.Connections, o.Now = r.item, "p", 4, now
		stats, _, err := engine.CopyMailbox(ctx, r.st, src, dst, o)
		if err != nil {
			t.Fatal(err)
		}
		return stats
	}
	// 09:00 + 37 min × k < 15:00 for k = 0…9: ten messages, and the events, contacts and tasks of
	// that morning.
	if st := run(engine.CopyOptions{OlderThan: 90 * 24 * time.Hour}); st.Objects != 18 {
		t.Fatalf("prestage copied %d items, want 18 (10 messages, 3 events, 3 contacts and 2 tasks before the cutoff)", st.Objects)
	}
	if st := run(engine.CopyOptions{}); st.Objects != 14 {
		t.Fatalf("the full pass after prestage copied %d items, want the other 14 (32 in all)", st.Objects)
	}
	sc, dc := r.client(t, r.src, "user00@contoso.com"), r.client(t, r.dst, "user00@fabrikam.com")
	if !mapsEqual(content(t, sc, "user00@contoso.com"), content(t, dc, "user00@fabrikam.com")) {
		t.Error("after prestage and full pass the target differs from the source")
	}
}
