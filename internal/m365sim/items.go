package m365sim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Contacts, To Do tasks and calendars through their own APIs: the way to move them where the
// mailbox import/export API is not offered. They are items of the mailbox's contact, task and
// calendar folders, so the import/export API carries them too.

// Permissions of these APIs, as Microsoft names them.
const (
	PermContactsRead      = "Contacts.Read"
	PermContactsReadWrite = "Contacts.ReadWrite"
	PermTasksRead         = "Tasks.Read.All"
	PermTasksReadWrite    = "Tasks.ReadWrite.All"
)

// kind is an item type with its own API: the folder class that holds it, and the properties a
// client may write (anything else is refused, as Graph refuses unknown properties).
type kind struct {
	class, entity string
	writable      []string
}

var (
	contactKind = kind{"IPF.Contact", "contact", []string{"displayName", "givenName", "middleName", "surname", "nickName", "title", "emailAddresses",
		"businessPhones", "homePhones", "mobilePhone", "companyName", "department", "jobTitle", "officeLocation", "birthday", "personalNotes",
		"categories", "businessAddress", "homeAddress", "otherAddress", "imAddresses", "spouseName", "businessHomePage", "fileAs"}}
	taskKind = kind{"IPF.Task", "todoTask", []string{"title", "body", "importance", "status", "dueDateTime", "startDateTime", "completedDateTime",
		"reminderDateTime", "isReminderOn", "categories", "recurrence", "linkedResources"}}
)

func (k kind) parse(body []byte) (map[string]any, []ExtendedPropertyValue, error) {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil {
		//lint:ignore ST1005 Graph's own message, as Microsoft words it
		return nil, nil, fmt.Errorf("Invalid JSON: %v", err)
	}
	out := map[string]any{}
	var props []ExtendedPropertyValue
	for name, raw := range in {
		if strings.HasPrefix(name, "@odata.") {
			continue
		}
		if name == "singleValueExtendedProperties" && k.entity != "todoTask" {
			if err := json.Unmarshal(raw, &props); err != nil {
				return nil, nil, fmt.Errorf("singleValueExtendedProperties: %v", err)
			}
			continue
		}
		if !slices.Contains(k.writable, name) {
			//lint:ignore ST1005 Graph's own message, as Microsoft words it
			return nil, nil, fmt.Errorf("Could not find a property named '%s' on type 'microsoft.graph.%s'.", name, k.entity)
		}
		var v any
		json.Unmarshal(raw, &v)
		out[name] = v
	}
	return out, props, nil
}

// read reads an item's JSON with parse, answering the error itself.
func (k kind) read(w http.ResponseWriter, r *http.Request) (map[string]any, []ExtendedPropertyValue, bool) {
	body, err := readBody(w, r)
	if err != nil {
		return nil, nil, false
	}
	fields, props, err := k.parse(body)
	if err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return nil, nil, false
	}
	return fields, props, true
}

// ExtendedPropertyValue is a singleValueExtendedProperty as clients send it.
type ExtendedPropertyValue struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

func (m *message) itemView(f *folder, k kind, expand string) map[string]any {
	v := map[string]any{}
	for name, val := range m.Fields {
		if name != "linkedResources" || strings.Contains(expand, "linkedResources") {
			v[name] = val
		}
	}
	v["id"] = m.ID
	v["createdDateTime"] = m.Received.UTC().Format(time.RFC3339)
	v["lastModifiedDateTime"] = m.Received.Add(time.Duration(m.ChangeKey) * time.Millisecond).UTC().Format(time.RFC3339Nano)
	if k.entity == "todoTask" {
		v["@odata.etag"] = `W/"` + strconv.Itoa(m.ChangeKey) + `"`
	} else {
		v["changeKey"], v["parentFolderId"] = strconv.Itoa(m.ChangeKey), f.ID
	}
	if strings.Contains(expand, "singleValueExtendedProperties") {
		props := []map[string]string{}
		for id, val := range m.Props {
			props = append(props, map[string]string{"id": id, "value": val})
		}
		v["singleValueExtendedProperties"] = props
	}
	return v
}

func (s *Server) itemHandlers() {
	s.mux.Handle("GET /v1.0/users/{id}/contactFolders", s.graph(PermContactsRead, s.kindFolders(contactKind)))
	s.mux.Handle("POST /v1.0/users/{id}/contactFolders", s.graph(PermContactsReadWrite, s.kindCreateFolder(contactKind)))
	s.mux.Handle("GET /v1.0/users/{id}/contactFolders/{fid}/contacts", s.graph(PermContactsRead, s.kindList(contactKind)))
	s.mux.Handle("POST /v1.0/users/{id}/contactFolders/{fid}/contacts", s.graph(PermContactsReadWrite, s.kindCreate(contactKind)))
	s.mux.Handle("GET /v1.0/users/{id}/contacts/{mid}", s.graph(PermContactsRead, s.kindGet(contactKind)))
	s.mux.Handle("PATCH /v1.0/users/{id}/contacts/{mid}", s.graph(PermContactsReadWrite, s.kindUpdate(contactKind)))
	s.mux.Handle("GET /v1.0/users/{id}/todo/lists", s.graph(PermTasksRead, s.kindFolders(taskKind)))
	s.mux.Handle("POST /v1.0/users/{id}/todo/lists", s.graph(PermTasksReadWrite, s.kindCreateFolder(taskKind)))
	s.mux.Handle("GET /v1.0/users/{id}/todo/lists/{fid}/tasks", s.graph(PermTasksRead, s.kindList(taskKind)))
	s.mux.Handle("POST /v1.0/users/{id}/todo/lists/{fid}/tasks", s.graph(PermTasksReadWrite, s.kindCreate(taskKind)))
	s.mux.Handle("GET /v1.0/users/{id}/todo/lists/{fid}/tasks/{mid}", s.graph(PermTasksRead, s.kindGet(taskKind)))
	s.mux.Handle("PATCH /v1.0/users/{id}/todo/lists/{fid}/tasks/{mid}", s.graph(PermTasksReadWrite, s.kindUpdate(taskKind)))
	s.mux.Handle("GET /v1.0/users/{id}/calendars", s.graph(PermCalendarsRead, s.kindFolders(kind{class: "IPF.Appointment", entity: "calendar"})))
	s.mux.Handle("POST /v1.0/users/{id}/calendars", s.graph(PermCalendarsReadWrite, s.kindCreateFolder(kind{class: "IPF.Appointment", entity: "calendar"})))
	s.mux.Handle("GET /v1.0/users/{id}/calendars/{fid}/events", s.graph(PermCalendarsRead, s.calendarEvents))
	s.mux.Handle("POST /v1.0/users/{id}/calendars/{fid}/events", s.graph(PermCalendarsReadWrite, s.createEvent))
	s.mux.Handle("GET /v1.0/users/{id}/events/{mid}", s.graph(PermCalendarsRead, s.getEvent))
	s.mux.Handle("PATCH /v1.0/users/{id}/events/{mid}", s.graph(PermCalendarsReadWrite, s.updateEvent))
}

// folderView is a contact folder, a To Do list or a calendar as its API shows it.
func (f *folder) kindView(k kind) map[string]any {
	switch k.entity {
	case "todoTask":
		wk := "none"
		if f.WellKnown == "tasks" {
			wk = "defaultList"
		}
		return map[string]any{"id": f.ID, "displayName": f.DisplayName, "isOwner": true, "isShared": false, "wellknownListName": wk}
	case "calendar":
		return map[string]any{"id": f.ID, "name": f.DisplayName, "canEdit": true, "isDefaultCalendar": f.WellKnown == "calendar"}
	}
	return map[string]any{"id": f.ID, "displayName": f.DisplayName, "parentFolderId": f.ParentID}
}

func (s *Server) kindFolders(k kind) func(w http.ResponseWriter, r *http.Request, c caller) {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		s.withMailbox(w, r, c, func(mb *mailbox) {
			out := []map[string]any{}
			for _, f := range mb.Folders {
				if f.Class == k.class {
					out = append(out, f.kindView(k))
				}
			}
			writeJSON(w, http.StatusOK, map[string]any{"value": out})
		})
	}
}

func (s *Server) kindCreateFolder(k kind) func(w http.ResponseWriter, r *http.Request, c caller) {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		var req struct {
			DisplayName string `json:"displayName"`
			Name        string `json:"name"` // calendars
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || strings.TrimSpace(req.DisplayName+req.Name) == "" {
			graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "A name is required.")
			return
		}
		name := req.DisplayName + req.Name
		s.withMailbox(w, r, c, func(mb *mailbox) {
			for _, f := range mb.Folders {
				if f.Class == k.class && strings.EqualFold(f.DisplayName, name) {
					graphError(w, http.StatusConflict, "ErrorFolderExists", "A folder with the specified name already exists.")
					return
				}
			}
			mb.Seq++
			f := &folder{ID: stableID(mb.Folders[0].ParentID, k.class, name, strconv.Itoa(mb.Seq)), DisplayName: name, ParentID: mb.Folders[0].ParentID, Class: k.class, Touched: mb.Seq}
			mb.Folders = append(mb.Folders, f)
			writeJSON(w, http.StatusCreated, f.kindView(k))
		})
	}
}

// withKindFolder finds the folder {fid} of the kind's class.
func (s *Server) withKindFolder(w http.ResponseWriter, r *http.Request, c caller, k kind, fn func(mb *mailbox, f *folder)) {
	s.withMailbox(w, r, c, func(mb *mailbox) {
		f := mb.folder(r.PathValue("fid"))
		if f == nil || f.Class != k.class {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified folder was not found in the store.")
			return
		}
		fn(mb, f)
	})
}

func (s *Server) kindList(k kind) func(w http.ResponseWriter, r *http.Request, c caller) {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		s.listItems(w, r, c, k, func(m *message) bool { return m.Fields != nil },
			func(f *folder, m *message) map[string]any { return m.itemView(f, k, r.URL.Query().Get("$expand")) })
	}
}

// listItems answers one page of a kind's folder {fid}: the items keep accepts that the $filter
// matches, each as view shows it.
func (s *Server) listItems(w http.ResponseWriter, r *http.Request, c caller, k kind, keep func(*message) bool, view func(*folder, *message) map[string]any) {
	match, ok := propFilter(w, r)
	if !ok {
		return
	}
	top, skip, err := paging(r)
	if err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	base := s.BaseURL()
	s.withKindFolder(w, r, c, k, func(_ *mailbox, f *folder) {
		var all []*message
		for _, m := range f.Messages {
			if keep(m) && match(m) {
				all = append(all, m)
			}
		}
		writePage(w, r, base, len(all), top, skip, func(i int) map[string]any { return view(f, all[i]) })
	})
}

func (s *Server) kindCreate(k kind) func(w http.ResponseWriter, r *http.Request, c caller) {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		fields, props, ok := k.read(w, r)
		if !ok {
			return
		}
		if k.entity == "todoTask" && strings.TrimSpace(fmt.Sprint(fields["title"])) == "" {
			graphError(w, http.StatusBadRequest, "BadRequest", "A task needs a title.")
			return
		}
		s.withKindFolder(w, r, c, k, func(mb *mailbox, f *folder) {
			mb.Seq++
			m := &message{ID: stableID(f.ID, k.entity, strconv.Itoa(mb.Seq)), ChangeKey: 1, Touched: mb.Seq, Received: s.now(), Sent: s.now(),
				Flag: "notFlagged", Props: map[string]string{}, Fields: fields}
			m.Subject = fmt.Sprint(fields["displayName"])
			if k.entity == "todoTask" {
				m.Subject = fmt.Sprint(fields["title"])
			}
			for _, p := range props {
				m.Props[p.ID] = p.Value
			}
			f.Messages = append(f.Messages, m)
			writeJSON(w, http.StatusCreated, m.itemView(f, k, "linkedResources"))
		})
	}
}

// withKindItem finds the item {mid} of the kind anywhere in the mailbox.
func (s *Server) withKindItem(w http.ResponseWriter, r *http.Request, c caller, k kind, fn func(mb *mailbox, f *folder, m *message)) {
	s.withMailbox(w, r, c, func(mb *mailbox) {
		f, m := s.findMessage(mb, r.PathValue("mid"))
		if m == nil || f.Class != k.class || m.Fields == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
			return
		}
		fn(mb, f, m)
	})
}

func (s *Server) kindGet(k kind) func(w http.ResponseWriter, r *http.Request, c caller) {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		s.withKindItem(w, r, c, k, func(_ *mailbox, f *folder, m *message) {
			writeJSON(w, http.StatusOK, m.itemView(f, k, r.URL.Query().Get("$expand")))
		})
	}
}

func (s *Server) kindUpdate(k kind) func(w http.ResponseWriter, r *http.Request, c caller) {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		fields, props, ok := k.read(w, r)
		if !ok {
			return
		}
		s.withKindItem(w, r, c, k, func(mb *mailbox, f *folder, m *message) {
			for name, v := range fields {
				m.Fields[name] = v
			}
			for _, p := range props {
				m.Props[p.ID] = p.Value
			}
			mb.Seq++
			m.ChangeKey, m.Touched = m.ChangeKey+1, mb.Seq
			writeJSON(w, http.StatusOK, m.itemView(f, k, ""))
		})
	}
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var b strings.Builder
	if r.ContentLength > MaxMIME {
		graphError(w, http.StatusRequestEntityTooLarge, "ErrorRequestEntityTooLarge", "The request exceeds the 4 MB limit.")
		return nil, fmt.Errorf("too large")
	}
	_, err := io.Copy(&b, io.LimitReader(r.Body, MaxMIME+1))
	if err != nil || b.Len() > MaxMIME {
		graphError(w, http.StatusRequestEntityTooLarge, "ErrorRequestEntityTooLarge", "The request exceeds the 4 MB limit.")
		return nil, fmt.Errorf("too large")
	}
	return []byte(b.String()), nil
}

// writePage answers one page of n values with an @odata.nextLink while more remain.
func writePage(w http.ResponseWriter, r *http.Request, base string, n, top, skip int, value func(i int) map[string]any) {
	end := min(n, skip+top)
	out := []map[string]any{}
	for i := min(skip, n); i < end; i++ {
		out = append(out, value(i))
	}
	page := map[string]any{"value": out}
	if end < n {
		q := r.URL.Query()
		q.Set("$skiptoken", strconv.Itoa(end))
		page["@odata.nextLink"] = base + r.URL.Path + "?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, page)
}
