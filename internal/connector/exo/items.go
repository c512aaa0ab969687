package exo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/model"
)

// Where Microsoft does not offer the mailbox import/export API (its availability tables list the
// global service only: not US Government L4 or L5, nor China), a mailbox moves through the
// workload APIs instead (connector.FormatItems): mail as MIME, created again as received
// messages; calendars, contacts and To Do tasks as their Graph JSON, each writable property
// carried over. What that loses is in docs/EXCHANGE.md.

// importExportOffered says whether the endpoint may use the mailbox import/export API: its cloud
// has it, and the administrator did not choose the workload APIs (for mailboxes the import/export
// API refuses, say).
func importExportOffered(st model.EndpointSettings) bool {
	return st.MailboxAPI != "workload" && (st.Cloud == "" || strings.EqualFold(st.Cloud, "global"))
}

// itemAPIs maps the folder classes that are not mail to their APIs, in listing order.
var itemAPIs = []struct {
	class string
	api   graph.ItemAPI
}{{"IPF.Appointment", graph.CalendarAPI}, {"IPF.Contact", graph.ContactAPI}, {"IPF.Task", graph.TaskAPI}}

func apiOf(class string) (graph.ItemAPI, bool) {
	for _, a := range itemAPIs {
		if a.class == class {
			return a.api, true
		}
	}
	return graph.ItemAPI{}, false
}

// itemTree lists the mailbox through the workload APIs: the mail folder tree, then calendars,
// contact folders and To Do lists (one level each). A name already taken by a mail folder gets
// the kind in brackets, so every folder has a path of its own.
func (m *mailbox) itemTree(ctx context.Context) ([]node, error) {
	var out []node
	var walk func(parent, prefix string) error
	walk = func(parent, prefix string) error {
		folders, _ := m.c.MailFolders(ctx, m.user, parent)
		var kids []node
		for f, err := range folders {
			if err != nil {
				return err
			}
			kids = append(kids, node{id: f.ID, parent: parent, path: prefix + pathPart(f.DisplayName), class: "IPF.Note", count: f.TotalItemCount})
		}
		for _, k := range kids {
			out = append(out, k)
			if err := walk(k.id, k.path+"/"); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk("", ""); err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for _, n := range out {
		taken[strings.ToLower(n.path)] = true
	}
	for _, a := range itemAPIs {
		folders, err := m.c.ItemFolders(ctx, a.api, m.user)
		if err != nil {
			return nil, err
		}
		for _, f := range folders {
			path := pathPart(f.Name)
			if taken[strings.ToLower(path)] {
				path += " (" + a.api.Name + "s)"
			}
			taken[strings.ToLower(path)] = true
			n := node{id: f.ID, path: path, class: a.class}
			if n.count, err = m.countItems(ctx, a.api, f.ID); err != nil {
				return nil, err
			}
			out = append(out, n)
		}
	}
	return out, nil
}

func (m *mailbox) countItems(ctx context.Context, a graph.ItemAPI, folder string) (int, error) {
	n := 0
	items, _ := m.c.Items(ctx, a, m.user, folder, graph.Query("$select", "id"))
	for _, err := range items {
		if err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// listItems yields every item of a calendar, contact folder or task list. Their APIs offer no
// delta for a single folder that all three share, so each pass lists the folder whole; the
// watermarks' versions (changeKey, or a task's etag) skip what did not change.
func (s *source) listItems(ctx context.Context, a graph.ItemAPI, f connector.Folder, id string) (iter.Seq2[connector.Object, error], func() connector.Cursor) {
	seq := func(yield func(connector.Object, error) bool) {
		items, _ := s.c.Items(ctx, a, s.user, id, "")
		for it, err := range items {
			if err != nil {
				yield(connector.Object{}, explain(err, s.side, "list "+f.Path))
				return
			}
			o := connector.Object{ID: it.String("id"), Version: it.String("changeKey")}
			if o.Version == "" {
				o.Version = it.String("@odata.etag")
			}
			if t, err := timeOf(it.String("createdDateTime")); err == nil {
				o.Date = t
			}
			if !yield(o, nil) {
				return
			}
		}
	}
	return seq, func() connector.Cursor { return "" }
}

// openItem reads an item's writable properties: what a copy is made of.
func (s *source) openItem(ctx context.Context, a graph.ItemAPI, folderID string, o connector.Object) (io.ReadCloser, error) {
	it, err := s.c.GetItem(ctx, a, s.user, folderID, o.ID)
	if err != nil {
		return nil, explain(err, s.side, "read "+a.Name+" "+o.ID)
	}
	data, err := json.Marshal(a.WritableOf(it))
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// itemBody turns what a source sent into the JSON to write, stamped with the source id on create.
// An event's attendees go into its body as text: created as attendees, each would be sent a
// meeting request, and a migration must send nothing.
func itemBody(a graph.ItemAPI, body io.Reader, stamp string) (map[string]json.RawMessage, error) {
	var v map[string]json.RawMessage
	if err := json.NewDecoder(body).Decode(&v); err != nil {
		return nil, connector.Classify(connector.Permanent, fmt.Errorf("%s: not JSON: %w", a.Name, err))
	}
	for k := range v {
		if !slices.Contains(a.Writable, k) {
			delete(v, k)
		}
	}
	if raw, ok := v["attendees"]; ok && a.Name == "event" {
		delete(v, "attendees")
		if note := attendeeNote(raw); note != "" {
			v["body"] = prependBody(v["body"], note)
		}
	}
	if stamp != "" {
		if a.Name == "task" {
			v["linkedResources"], _ = json.Marshal([]map[string]string{{"applicationName": "Ferry", "displayName": "Migrated item", "externalId": stamp}})
		} else {
			v["singleValueExtendedProperties"], _ = json.Marshal([]graph.ExtendedProperty{{ID: StampProperty, Value: stamp}})
		}
	}
	return v, nil
}

func timeOf(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// attendeeNote lists an event's attendees as a line of text.
func attendeeNote(raw json.RawMessage) string {
	var list []struct {
		Type         string `json:"type"`
		EmailAddress struct {
			Name    string `json:"name"`
			Address string `json:"address"`
		} `json:"emailAddress"`
	}
	if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
		return ""
	}
	var parts []string
	for _, a := range list {
		p := a.EmailAddress.Address
		if a.EmailAddress.Name != "" {
			p = a.EmailAddress.Name + " <" + p + ">"
		}
		parts = append(parts, p+" ("+a.Type+")")
	}
	return "Attendees: " + strings.Join(parts, ", ")
}

func prependBody(raw json.RawMessage, note string) json.RawMessage {
	b := graph.ItemBody{ContentType: "text"}
	json.Unmarshal(raw, &b)
	if strings.EqualFold(b.ContentType, "html") {
		b.Content = "<p>" + html.EscapeString(note) + "</p>" + b.Content
	} else {
		b.Content = note + "\n\n" + b.Content
	}
	out, _ := json.Marshal(b)
	return out
}

// lookupItem finds a copy by its stamp: an extended property on events and contacts, the
// external id of a linked resource on tasks (which have no extended properties).
func (t *target) lookupItem(ctx context.Context, a graph.ItemAPI, dst connector.FolderRef, o connector.Object) ([]connector.TargetRef, error) {
	var query string
	if a.Name == "task" {
		query = graph.Query("$expand", "linkedResources")
	} else {
		q := strings.ReplaceAll(o.ID, "'", "''")
		query = graph.Query("$filter", "singleValueExtendedProperties/any(ep: ep/id eq '"+StampProperty+"' and ep/value eq '"+q+"')")
	}
	var out []connector.TargetRef
	items, _ := t.c.Items(ctx, a, t.user, dst.ID, query)
	for it, err := range items {
		if err != nil {
			return nil, explain(err, t.side, "look for copies in "+dst.Path)
		}
		if a.Name == "task" {
			var links []struct{ ExternalID string }
			json.Unmarshal(it["linkedResources"], &links)
			if !slices.ContainsFunc(links, func(l struct{ ExternalID string }) bool { return l.ExternalID == o.ID }) {
				continue
			}
		}
		out = append(out, connector.TargetRef{ID: it.String("id")})
	}
	return out, nil
}

// putItem creates an event, contact or task from the source's JSON.
func (t *target) putItem(ctx context.Context, a graph.ItemAPI, dst connector.FolderRef, o connector.Object, body io.Reader) (connector.TargetRef, error) {
	v, err := itemBody(a, body, o.ID)
	if err != nil {
		return connector.TargetRef{}, err
	}
	it, err := t.c.CreateItem(ctx, a, t.user, dst.ID, v)
	if err != nil {
		return connector.TargetRef{}, explain(err, t.side, "create a "+a.Name+" in "+dst.Path)
	}
	return connector.TargetRef{ID: it.String("id")}, nil
}

// updateItem writes a changed item's properties over its copy.
func (t *target) updateItem(ctx context.Context, a graph.ItemAPI, dst connector.FolderRef, r connector.TargetRef, body io.Reader) (connector.TargetRef, error) {
	v, err := itemBody(a, body, "")
	if err != nil {
		return connector.TargetRef{}, err
	}
	if _, err := t.c.UpdateItem(ctx, a, t.user, dst.ID, r.ID, v); err != nil {
		return connector.TargetRef{}, explain(err, t.side, "update a "+a.Name+" in "+dst.Path)
	}
	return r, nil
}
