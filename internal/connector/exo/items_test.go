package exo_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/connector/exo"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/m365sim"
	"github.com/ferry-migrate/ferry/internal/model"
)

// TestItemsWhereImportExportIsNotOffered moves a mailbox in a cloud without the import/export API
// (US Government), with an app that has only the workload permissions: mail as MIME, events,
// contacts and tasks as JSON. Nothing is sent, every item arrives, a change is carried over, and
// lost watermarks copy nothing twice.
func TestItemsWhereImportExportIsNotOffered(t *testing.T) {
	r := newRig(t)
	for _, tenant := range []string{"contoso", "fabrikam"} {
		r.sim.AddApp(m365sim.TenantID(tenant), "workload-app", "w", nil, "User.Read.All", "Mail.ReadWrite", m365sim.PermCalendarsReadWrite,
			m365sim.PermContactsReadWrite, m365sim.PermTasksReadWrite)
	}
	gov := func(e model.Endpoint) model.Endpoint {
		e.Settings.Cloud, e.Settings.ClientID, e.Secret = "usgov", "workload-app", &model.EndpointSecret{ClientSecret: "w"}
		return e
	}
	src := connector.Side{Endpoint: gov(r.src), Email: "user00@contoso.com"}
	dst := connector.Side{Endpoint: gov(r.dst), Email: "user00@fabrikam.com"}
	for _, s := range []connector.Side{src, dst} {
		if err := (exo.Connector{}).Verify(ctx, s); err != nil {
			t.Fatalf("verify %s: %v", s.Email, err)
		}
	}
	pass := func() (model.ItemStats, []engine.FolderResult) { t.Helper(); return r.between(t, src, dst, "g") }
	stats, res := pass()
	if stats.Objects != 32 || stats.Errors != 0 {
		t.Fatalf("first pass: %+v, want 32 (24 messages, 3 events, 3 contacts, 2 tasks)", stats)
	}
	for _, f := range res {
		if !f.Reconciled || f.SourceCount != f.TargetCount {
			t.Errorf("folder %s: source %d, target %d", f.Source, f.SourceCount, f.TargetCount)
		}
	}
	if sent := r.sim.SentMail(); len(sent) != 0 {
		t.Fatalf("the copy sent %d messages: %+v", len(sent), sent)
	}

	tc := r.client(t, gov(r.dst), "user00@fabrikam.com")
	folder := func(a graph.ItemAPI, name string) string {
		t.Helper()
		fs, err := tc.ItemFolders(ctx, a, "user00@fabrikam.com")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Name == name {
				return f.ID
			}
		}
		t.Fatalf("the target has no %s folder %q: %+v", a.Name, name, fs)
		return ""
	}
	items := func(a graph.ItemAPI, folderID string) []graph.Item {
		t.Helper()
		var out []graph.Item
		seq, _ := tc.Items(ctx, a, "user00@fabrikam.com", folderID, "")
		for it, err := range seq {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, it)
		}
		return out
	}
	var kickoff, weekly graph.Item
	for _, e := range items(graph.CalendarAPI, folder(graph.CalendarAPI, "Calendar")) {
		switch e.String("subject") {
		case "Project kickoff":
			kickoff = e
		case "Weekly team sync":
			weekly = e
		}
	}
	if kickoff == nil || !strings.Contains(string(kickoff["body"]), "Attendees: Colleague 1 \\u003ccolleague1@contoso.com\\u003e (required), Colleague 2") &&
		!strings.Contains(string(kickoff["body"]), "Attendees: Colleague 1 <colleague1@contoso.com> (required), Colleague 2") {
		t.Errorf("the kickoff's attendees are not in its body: %s", kickoff["body"])
	}
	if weekly == nil || !strings.Contains(string(weekly["recurrence"]), `"weekly"`) || string(weekly["attendees"]) != "[]" {
		t.Errorf("the weekly meeting: recurrence %s, attendees %s; want weekly and none invited", weekly["recurrence"], weekly["attendees"])
	}
	contacts := items(graph.ContactAPI, folder(graph.ContactAPI, "Contacts"))
	if len(contacts) != 3 || !strings.Contains(string(contacts[0]["emailAddresses"]), "@partner") {
		t.Fatalf("contacts at the target: %d, first %v", len(contacts), contacts)
	}
	tasks := items(graph.TaskAPI, folder(graph.TaskAPI, "Tasks"))
	if len(tasks) != 2 || tasks[0].String("title") == "" || tasks[1].String("status") == "" {
		t.Fatalf("tasks at the target: %v", tasks)
	}

	if stats, _ := pass(); stats.Objects != 0 {
		t.Fatalf("a second pass copied %d", stats.Objects)
	}
	// A contact changed at the source is written over its copy.
	sc := r.client(t, gov(r.src), "user00@contoso.com")
	sfs, _ := sc.ItemFolders(ctx, graph.ContactAPI, "user00@contoso.com")
	var sContacts []graph.Item
	seq, _ := sc.Items(ctx, graph.ContactAPI, "user00@contoso.com", sfs[0].ID, "")
	for it, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		sContacts = append(sContacts, it)
	}
	if _, err := sc.UpdateItem(ctx, graph.ContactAPI, "user00@contoso.com", sfs[0].ID, sContacts[0].String("id"), map[string]string{"jobTitle": "Chief of Staff"}); err != nil {
		t.Fatal(err)
	}
	if _, res := pass(); updated(res) != 1 {
		t.Fatalf("the pass after a contact changed updated %d", updated(res))
	}
	found := false
	for _, c := range items(graph.ContactAPI, folder(graph.ContactAPI, "Contacts")) {
		var jt string
		json.Unmarshal(c["jobTitle"], &jt)
		found = found || jt == "Chief of Staff"
	}
	if !found {
		t.Error("the changed job title did not reach the copy")
	}
	// Lost watermarks: stamps (and tasks' linked resources) find every copy.
	for _, f := range res {
		r.st.ForgetFolder(ctx, r.item, f.Source)
		r.st.Checkpoint(ctx, r.item, nil, &model.Cursor{ItemID: r.item, Folder: f.Source, Value: ""})
	}
	if stats, _ := pass(); stats.Objects != 0 {
		t.Fatalf("after losing every watermark a pass copied %d", stats.Objects)
	}
	if got := len(items(graph.TaskAPI, folder(graph.TaskAPI, "Tasks"))); got != 2 {
		t.Fatalf("the target holds %d tasks after the lost watermarks, want 2", got)
	}

	// In the global cloud the administrator may choose the workload APIs too; a typo is named.
	global := r.src
	global.Settings.MailboxAPI, global.Settings.ClientID, global.Secret = "workload", "workload-app", &model.EndpointSecret{ClientSecret: "w"}
	if err := (exo.Connector{}).Verify(ctx, connector.Side{Endpoint: global, Email: "user00@contoso.com"}); err != nil {
		t.Fatalf("verify with mailbox_api workload and no import/export permission: %v", err)
	}
	global.Settings.MailboxAPI = "fast"
	if err := (exo.Connector{}).Verify(ctx, connector.Side{Endpoint: global, Email: "user00@contoso.com"}); err == nil || !strings.Contains(err.Error(), `mailbox_api "fast"`) {
		t.Fatalf("a bad mailbox_api: %v", err)
	}
}
