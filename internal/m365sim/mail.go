package m365sim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Mail permissions, as Microsoft names them.
const (
	PermMailRead      = "Mail.Read"
	PermMailReadWrite = "Mail.ReadWrite"
)

// MaxMIME is the largest message accepted in one POST; bigger ones need upload sessions (413).
const MaxMIME = 4 << 20

type mailbox struct {
	Folders []*folder `json:"folders"`
	Seq     int       `json:"seq"`
	Owner   string    `json:"owner,omitempty"` // an archive's user
	// RemovedFolders are deleted folders, for the folder delta's @removed.
	RemovedFolders []removal `json:"removedFolders,omitempty"`
	Aux            bool      `json:"aux,omitempty"` // an auxiliary archive mailbox
}

type folder struct {
	ID          string     `json:"id"`
	DisplayName string     `json:"displayName"`
	ParentID    string     `json:"parentFolderId"`
	WellKnown   string     `json:"wellKnown,omitempty"`
	Class       string     `json:"class,omitempty"` // IPF.Note when empty; IPF.Appointment, IPF.Contact, IPF.Task, IPF.StickyNote
	Messages    []*message `json:"messages"`
	Removed     []removal  `json:"removed,omitempty"` // for delta's @removed
	Aux         string     `json:"aux,omitempty"`     // in a main archive: the auxiliary mailbox holding the content
	Touched     int        `json:"touched,omitempty"` // the mailbox's sequence number at creation or rename, for folder delta
}

type removal struct {
	ID  string `json:"id"`
	Seq int    `json:"seq"`
}

type message struct {
	ID                string            `json:"id"`
	ChangeKey         int               `json:"changeKey"`
	Touched           int               `json:"touched"` // the mailbox's sequence number at the last change, for delta
	MIME              []byte            `json:"mime"`
	IsRead            bool              `json:"isRead"`
	IsDraft           bool              `json:"isDraft"`
	Flag              string            `json:"flag"`
	Categories        []string          `json:"categories"`
	Received          time.Time         `json:"received"`
	Sent              time.Time         `json:"sent"`
	InternetMessageID string            `json:"internetMessageId"`
	Subject           string            `json:"subject"`
	Props             map[string]string `json:"props"`             // singleValueExtendedProperties by id
	Event             *event            `json:"event,omitempty"`   // set on items of calendar folders
	Compose           *composed         `json:"compose,omitempty"` // set on messages created from JSON
	Fields            map[string]any    `json:"fields,omitempty"`  // a contact's or task's properties
}

var wellKnown = []struct{ name, display string }{
	{"inbox", "Inbox"}, {"sentitems", "Sent Items"}, {"drafts", "Drafts"}, {"deleteditems", "Deleted Items"},
	{"junkemail", "Junk Email"}, {"archive", "Archive"}, {"calendar", "Calendar"}, {"contacts", "Contacts"}, {"tasks", "Tasks"},
}

func (s *Server) mailboxOf(t *Tenant, userID string) (*User, *mailbox) {
	if mb := t.Archives[userID]; mb != nil {
		// The mail API reaches an archive by its mailbox id.
		for _, u := range t.Users {
			if u.ID == mb.Owner {
				return u, mb
			}
		}
	}
	id := strings.ToLower(userID)
	for _, u := range t.Users {
		if u.ID == id || strings.ToLower(u.UserPrincipalName) == id {
			if t.Mailboxes == nil {
				t.Mailboxes = map[string]*mailbox{}
			}
			mb := t.Mailboxes[u.ID]
			if mb == nil {
				mb = &mailbox{}
				for _, wk := range wellKnown {
					f := &folder{ID: stableID(u.ID, "folder", wk.name), DisplayName: wk.display, WellKnown: wk.name, ParentID: stableID(u.ID, "root")}
					f.Class = map[string]string{"calendar": "IPF.Appointment", "contacts": "IPF.Contact", "tasks": "IPF.Task"}[wk.name]
					mb.Folders = append(mb.Folders, f)
				}
				t.Mailboxes[u.ID] = mb
			}
			return u, mb
		}
	}
	return nil, nil
}

func (mb *mailbox) folder(id string) *folder {
	for _, f := range mb.Folders {
		if f.ID == id || strings.EqualFold(f.WellKnown, id) {
			return f
		}
	}
	return nil
}

func (f *folder) view(mb *mailbox) map[string]any {
	children, unread := 0, 0
	for _, c := range mb.Folders {
		if c.ParentID == f.ID {
			children++
		}
	}
	for _, m := range f.Messages {
		if !m.IsRead {
			unread++
		}
	}
	return map[string]any{"id": f.ID, "displayName": f.DisplayName, "parentFolderId": f.ParentID, "childFolderCount": children,
		"unreadItemCount": unread, "totalItemCount": len(f.Messages), "isHidden": false}
}

func (m *message) view(f *folder) map[string]any {
	v := map[string]any{"id": m.ID, "changeKey": strconv.Itoa(m.ChangeKey), "subject": m.Subject, "internetMessageId": m.InternetMessageID,
		"receivedDateTime": m.Received.UTC().Format(time.RFC3339), "sentDateTime": m.Sent.UTC().Format(time.RFC3339),
		"isRead": m.IsRead, "isDraft": m.IsDraft, "categories": nonNil(m.Categories), "parentFolderId": f.ID,
		"hasAttachments": bytes.Contains(bytes.ToLower(m.MIME), []byte("content-disposition: attachment")),
		"flag":           map[string]any{"flagStatus": m.Flag}}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// mailHandlers registers the mail routes.
func (s *Server) mailHandlers() {
	s.mux.Handle("GET /v1.0/users/{id}/mailFolders", s.graph(PermMailRead, s.listFolders))
	s.mux.Handle("GET /v1.0/users/{id}/mailFolders/{fid}/childFolders", s.graph(PermMailRead, s.listFolders))
	s.mux.Handle("GET /v1.0/users/{id}/mailFolders/delta", s.graph(PermMailRead, s.mailFoldersDelta))
	s.mux.Handle("POST /v1.0/users/{id}/mailFolders", s.graph(PermMailReadWrite, s.createFolder))
	s.mux.Handle("POST /v1.0/users/{id}/mailFolders/{fid}/childFolders", s.graph(PermMailReadWrite, s.createFolder))
	s.mux.Handle("POST /v1.0/users/{id}/mailFolders/{fid}/messages", s.graph(PermMailReadWrite, s.createMessage))
	s.mux.Handle("GET /v1.0/users/{id}/mailFolders/{fid}/messages/delta", s.graph(PermMailRead, s.messagesDelta))
	s.mux.Handle("GET /v1.0/users/{id}/mailFolders/{fid}/messages", s.graph(PermMailRead, s.listMessages))
	s.mux.Handle("GET /v1.0/users/{id}/messages/{mid}/$value", s.graph(PermMailRead, s.messageMIME))
	s.mux.Handle("GET /v1.0/users/{id}/messages/{mid}", s.graph(PermMailRead, s.getMessage))
	s.mux.Handle("PATCH /v1.0/users/{id}/messages/{mid}", s.graph(PermMailReadWrite, s.updateMessage))
	s.mux.Handle("DELETE /v1.0/users/{id}/messages/{mid}", s.graph(PermMailReadWrite, s.deleteMessage))
}

// withMailbox resolves the user's mailbox under the server lock, answering 404 itself.
func (s *Server) withMailbox(w http.ResponseWriter, r *http.Request, c caller, fn func(mb *mailbox)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, mb := s.mailboxOf(c.tenant, r.PathValue("id"))
	if u == nil {
		graphError(w, http.StatusNotFound, "ErrorInvalidUser", "The requested user '"+r.PathValue("id")+"' is invalid.")
		return
	}
	fn(mb)
}

func (s *Server) listFolders(w http.ResponseWriter, r *http.Request, c caller) {
	s.withMailbox(w, r, c, func(mb *mailbox) {
		parent := ""
		if fid := r.PathValue("fid"); fid != "" {
			f := mb.folder(fid)
			if f == nil {
				graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
				return
			}
			parent = f.ID
		}
		var out []map[string]any
		for _, f := range mb.Folders {
			// mailFolders holds mail folders only; calendars and the like are other resources.
			if !isMailClass(f.Class) {
				continue
			}
			if (parent == "" && f.ParentID == mb.Folders[0].ParentID) || (parent != "" && f.ParentID == parent) {
				out = append(out, c.tenant.logical(f.view(mb), f))
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out})
	})
}

// mailFoldersDelta lists every mail folder (all levels), then those created or renamed since the
// token and, as @removed, those deleted.
func (s *Server) mailFoldersDelta(w http.ResponseWriter, r *http.Request, c caller) {
	since, ok := deltaSince(w, r)
	if !ok {
		return
	}
	base := s.BaseURL()
	s.withMailbox(w, r, c, func(mb *mailbox) {
		out := []map[string]any{}
		for _, f := range mb.Folders {
			if isMailClass(f.Class) && (since < 0 || f.Touched > since) {
				out = append(out, c.tenant.logical(f.view(mb), f))
			}
		}
		for _, rm := range mb.RemovedFolders {
			if since >= 0 && rm.Seq > since {
				out = append(out, map[string]any{"id": rm.ID, "@removed": map[string]string{"reason": "deleted"}})
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out, "@odata.deltaLink": base + r.URL.Path + "?$deltatoken=" + strconv.Itoa(mb.Seq)})
	})
}

func isMailClass(class string) bool { return class == "" || strings.HasPrefix(class, "IPF.Note") }

func (s *Server) createFolder(w http.ResponseWriter, r *http.Request, c caller) {
	s.withMailbox(w, r, c, func(mb *mailbox) { s.addFolder(w, r, mb, false) })
}

// addFolder creates a folder from a request body under the root or {fid}; mbx says which API's
// view of a folder to answer with (the import/export API's carries the folder type).
func (s *Server) addFolder(w http.ResponseWriter, r *http.Request, mb *mailbox, mbx bool) {
	var req struct {
		DisplayName string `json:"displayName"`
		Type        string `json:"type"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || strings.TrimSpace(req.DisplayName) == "" {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "displayName is required.")
		return
	}
	if req.Type != "" && !slices.Contains(folderClasses, req.Type) {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", fmt.Sprintf("type %q is not a folder type: want one of %s.", req.Type, strings.Join(folderClasses, ", ")))
		return
	}
	parent := mb.Folders[0].ParentID
	if fid := r.PathValue("fid"); fid != "" {
		f := mb.folder(fid)
		if f == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
			return
		}
		parent = f.ID
	}
	for _, f := range mb.Folders {
		if f.ParentID == parent && strings.EqualFold(f.DisplayName, req.DisplayName) {
			graphError(w, http.StatusConflict, "ErrorFolderExists", "A folder with the specified name already exists.")
			return
		}
	}
	mb.Seq++
	f := &folder{ID: stableID(parent, req.DisplayName, strconv.Itoa(mb.Seq)), DisplayName: req.DisplayName, ParentID: parent, Touched: mb.Seq}
	if req.Type != "IPF.Note" {
		f.Class = req.Type
	}
	mb.Folders = append(mb.Folders, f)
	if mbx {
		writeJSON(w, http.StatusCreated, f.mbxView(mb))
		return
	}
	writeJSON(w, http.StatusCreated, f.view(mb))
}

// folderClasses are the folder types the import/export API knows.
var folderClasses = []string{"IPF.Note", "IPF.Appointment", "IPF.Contact", "IPF.Task", "IPF.StickyNote"}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request, c caller) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 2*MaxMIME))
	if err != nil {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", err.Error())
		return
	}
	m := &message{IsDraft: true, Props: map[string]string{}, Received: s.now(), Sent: s.now(), Flag: "notFlagged"}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		mime, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(body)))
		if err != nil {
			graphError(w, http.StatusBadRequest, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
			return
		}
		if len(mime) > MaxMIME {
			graphError(w, http.StatusRequestEntityTooLarge, "ErrorRequestEntityTooLarge", "The message exceeds the size allowed for one request; use an upload session.")
			return
		}
		msg, err := mail.ReadMessage(bytes.NewReader(mime))
		if err != nil {
			graphError(w, http.StatusBadRequest, "ErrorMimeContentInvalid", "The MIME content is invalid: "+err.Error())
			return
		}
		m.MIME, m.Subject, m.InternetMessageID = mime, msg.Header.Get("Subject"), msg.Header.Get("Message-ID")
		if d, err := msg.Header.Date(); err == nil {
			m.Sent, m.Received = d, d
		}
	} else {
		if len(body) > MaxMIME {
			graphError(w, http.StatusRequestEntityTooLarge, "ErrorRequestEntityTooLarge", "The request exceeds the 4 MB limit; attach large files through upload sessions.")
			return
		}
		var req messageRequest
		if err := json.Unmarshal(body, &req); err != nil {
			graphError(w, http.StatusBadRequest, "BadRequest", "Invalid JSON: "+err.Error())
			return
		}
		if status, code, msg := m.fromJSON(req); status != 0 {
			graphError(w, status, code, msg)
			return
		}
	}
	s.withMailbox(w, r, c, func(mb *mailbox) {
		f := mb.folder(r.PathValue("fid"))
		if f == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified folder was not found in the store.")
			return
		}
		mb.Seq++
		m.ID = stableID(f.ID, "msg", strconv.Itoa(mb.Seq))
		m.ChangeKey, m.Touched = 1, mb.Seq
		f.Messages = append(f.Messages, m)
		writeJSON(w, http.StatusCreated, m.view(f))
	})
}

func (s *Server) findMessage(mb *mailbox, id string) (*folder, *message) {
	for _, f := range mb.Folders {
		for _, m := range f.Messages {
			if m.ID == id {
				return f, m
			}
		}
	}
	return nil, nil
}

// withMessage finds the message {mid} of the user's mailbox under the lock, answering 404 itself.
func (s *Server) withMessage(w http.ResponseWriter, r *http.Request, c caller, fn func(mb *mailbox, f *folder, m *message)) {
	base := s.BaseURL()
	s.withMailbox(w, r, c, func(mb *mailbox) {
		f, m := s.findMessage(mb, r.PathValue("mid"))
		if aux := c.tenant.auxHolding(mb, r.PathValue("mid")); m == nil && aux != "" {
			s.expanded(w, r, base, r.PathValue("id"), &folder{Aux: aux})
			return
		}
		if m == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
			return
		}
		fn(mb, f, m)
	})
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request, c caller) {
	s.withMessage(w, r, c, func(_ *mailbox, f *folder, m *message) { writeJSON(w, http.StatusOK, m.view(f)) })
}

func (s *Server) messageMIME(w http.ResponseWriter, r *http.Request, c caller) {
	s.withMessage(w, r, c, func(_ *mailbox, _ *folder, m *message) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(m.MIME)
	})
}

func (s *Server) updateMessage(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		IsRead     *bool     `json:"isRead"`
		Categories *[]string `json:"categories"`
		Flag       *struct {
			FlagStatus string `json:"flagStatus"`
		} `json:"flag"`
		Props []struct {
			ID    string `json:"id"`
			Value string `json:"value"`
		} `json:"singleValueExtendedProperties"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", "Invalid JSON: "+err.Error())
		return
	}
	for _, p := range req.Props {
		if strings.EqualFold(p.ID, "Integer 0x0E07") {
			// Exchange takes PidTagMessageFlags only before an item's first save.
			graphError(w, http.StatusBadRequest, "ErrorInvalidPropertySet", "PidTagMessageFlags can be set only when the item is created.")
			return
		}
	}
	if req.Flag != nil && !slices.Contains([]string{"notFlagged", "flagged", "complete"}, req.Flag.FlagStatus) {
		graphError(w, http.StatusBadRequest, "ErrorInvalidArgument", fmt.Sprintf("flagStatus %q is not valid.", req.Flag.FlagStatus))
		return
	}
	s.withMessage(w, r, c, func(mb *mailbox, f *folder, m *message) {
		if req.IsRead != nil {
			m.IsRead = *req.IsRead
		}
		if req.Categories != nil {
			m.Categories = *req.Categories
		}
		if req.Flag != nil {
			m.Flag = req.Flag.FlagStatus
		}
		for _, p := range req.Props {
			if m.Props == nil {
				m.Props = map[string]string{}
			}
			m.Props[p.ID] = p.Value
		}
		mb.Seq++
		m.ChangeKey, m.Touched = m.ChangeKey+1, mb.Seq
		writeJSON(w, http.StatusOK, m.view(f))
	})
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request, c caller) {
	s.withMessage(w, r, c, func(mb *mailbox, f *folder, m *message) {
		mb.Seq++
		f.Messages = slices.DeleteFunc(f.Messages, func(x *message) bool { return x == m })
		f.Removed = append(f.Removed, removal{m.ID, mb.Seq})
		w.WriteHeader(http.StatusNoContent)
	})
}

// messagesDelta returns every message of a folder, then only what changed since the delta link's
// token: new or changed (changeKey above the token's) and removed.
func (s *Server) messagesDelta(w http.ResponseWriter, r *http.Request, c caller) {
	since, ok := deltaSince(w, r)
	if !ok {
		return
	}
	expand, ok := expandProps(w, r)
	if !ok {
		return
	}
	base := s.BaseURL() // before withMailbox takes the lock
	s.withMailbox(w, r, c, func(mb *mailbox) {
		f := mb.folder(r.PathValue("fid"))
		if f == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified folder was not found in the store.")
			return
		}
		if s.expanded(w, r, base, r.PathValue("id"), f) {
			return
		}
		// The sync state is the mailbox's sequence number: everything touched after it.
		var out []map[string]any
		for _, m := range f.Messages {
			if m.Touched > since {
				v := m.view(f)
				if expand != nil {
					v["singleValueExtendedProperties"] = expand(m)
				}
				out = append(out, v)
			}
		}
		if since >= 0 {
			for _, rm := range f.Removed {
				if rm.Seq > since {
					out = append(out, map[string]any{"id": rm.ID, "@removed": map[string]string{"reason": "deleted"}})
				}
			}
		}
		// The link keeps the query's $select and $expand, as Graph's sync state does.
		q := url.Values{}
		for _, k := range []string{"$select", "$expand"} {
			if v := r.URL.Query().Get(k); v != "" {
				q.Set(k, v)
			}
		}
		q.Set("$deltatoken", strconv.Itoa(mb.Seq))
		writeJSON(w, http.StatusOK, map[string]any{"value": nonNilMaps(out),
			"@odata.deltaLink": base + r.URL.Path + "?" + strings.ReplaceAll(q.Encode(), "%24", "$")})
	})
}

// expandProps reads $expand=singleValueExtendedProperties, with or without ($filter=id eq '…'):
// nil when the request does not ask for them, else what gives a message's properties.
func expandProps(w http.ResponseWriter, r *http.Request) (func(*message) []map[string]string, bool) {
	e := strings.TrimSpace(r.URL.Query().Get("$expand"))
	if e == "" {
		return nil, true
	}
	rest, ok := strings.CutPrefix(e, "singleValueExtendedProperties")
	if !ok {
		graphError(w, http.StatusBadRequest, "BadRequest", "The emulator expands only singleValueExtendedProperties.")
		return nil, false
	}
	want := ""
	if rest != "" {
		m := expandFilterRE.FindStringSubmatch(rest)
		if m == nil {
			graphError(w, http.StatusBadRequest, "BadRequest", "The emulator takes singleValueExtendedProperties($filter=id eq '…').")
			return nil, false
		}
		want = strings.ReplaceAll(m[1], "''", "'")
	}
	return func(msg *message) []map[string]string {
		props := []map[string]string{}
		keys := make([]string, 0, len(msg.Props))
		for k := range msg.Props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if want == "" || strings.EqualFold(k, want) {
				props = append(props, map[string]string{"id": k, "value": msg.Props[k]})
			}
		}
		return props
	}, true
}

var expandFilterRE = regexp.MustCompile(`^\(\$filter=id eq '((?:[^']|'')*)'\)$`)

func nonNilMaps(m []map[string]any) []map[string]any {
	if m == nil {
		return []map[string]any{}
	}
	return m
}

// Filters the emulator understands on a folder's messages: the two a migration tool uses to find
// what it wrote before.
var (
	propFilterRE = regexp.MustCompile(`^singleValueExtendedProperties/any\((\w+):\s*(\w+)/id eq '((?:[^']|'')*)' and (\w+)/value eq '((?:[^']|'')*)'\)$`)
	imidFilterRE = regexp.MustCompile(`^internetMessageId eq '((?:[^']|'')*)'$`)
)

// propFilter reads the $filter forms the emulator understands on items: an extended property's
// value, or internetMessageId. Without $filter everything matches; a form it does not know is
// answered 400 (ok false).
func propFilter(w http.ResponseWriter, r *http.Request) (match func(*message) bool, ok bool) {
	f := strings.TrimSpace(r.URL.Query().Get("$filter"))
	if f == "" {
		return func(*message) bool { return true }, true
	}
	unq := func(v string) string { return strings.ReplaceAll(v, "''", "'") }
	if m := propFilterRE.FindStringSubmatch(f); m != nil && m[1] == m[2] && m[1] == m[4] {
		id, val := unq(m[3]), unq(m[5])
		return func(msg *message) bool {
			for k, v := range msg.Props {
				if strings.EqualFold(k, id) && v == val {
					return true
				}
			}
			return false
		}, true
	}
	if m := imidFilterRE.FindStringSubmatch(f); m != nil {
		id := unq(m[1])
		return func(msg *message) bool { return msg.InternetMessageID == id }, true
	}
	graphError(w, http.StatusBadRequest, "ErrorInvalidUrlQueryFilter", "The emulator supports $filter on singleValueExtendedProperties/any(ep: ep/id eq '…' and ep/value eq '…') and internetMessageId eq '…'.")
	return nil, false
}

// listMessages lists a folder's messages, paged, optionally filtered by an extended property's
// value or by internetMessageId; $expand=singleValueExtendedProperties returns the properties.
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, c caller) {
	top, skip, err := paging(r)
	if err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	match, ok := propFilter(w, r)
	if !ok {
		return
	}
	expand, ok := expandProps(w, r)
	if !ok {
		return
	}
	base := s.BaseURL()
	s.withMailbox(w, r, c, func(mb *mailbox) {
		f := mb.folder(r.PathValue("fid"))
		if f == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified folder was not found in the store.")
			return
		}
		if s.expanded(w, r, base, r.PathValue("id"), f) {
			return
		}
		var all []*message
		for _, m := range f.Messages {
			if match(m) {
				all = append(all, m)
			}
		}
		end := min(len(all), skip+top)
		out := []map[string]any{}
		for _, m := range all[min(skip, len(all)):end] {
			v := m.view(f)
			if expand != nil {
				v["singleValueExtendedProperties"] = expand(m)
			}
			out = append(out, v)
		}
		page := map[string]any{"value": out}
		if end < len(all) {
			q := r.URL.Query()
			q.Set("$skiptoken", strconv.Itoa(end))
			page["@odata.nextLink"] = base + r.URL.Path + "?" + q.Encode()
		}
		writeJSON(w, http.StatusOK, page)
	})
}

// deltaSince reads a delta request's $deltatoken (the mailbox's sequence number when the link was
// issued): -1 without one. A token the emulator did not issue is answered 410, as Graph does.
func deltaSince(w http.ResponseWriter, r *http.Request) (int, bool) {
	tok := r.URL.Query().Get("$deltatoken")
	if tok == "" {
		return -1, true
	}
	n, err := strconv.Atoi(tok)
	if err != nil {
		graphError(w, http.StatusGone, "SyncStateNotFound", "The sync state could not be found; start a new delta query.")
		return 0, false
	}
	return n, true
}
