package m365sim

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Archive mailboxes, as Microsoft documents them (beta: "Handle archive mailbox redirects"): the
// archive has its own id (inPlaceArchiveMailboxId in /beta/users/{id}/settings/exchange) and keeps
// the whole folder tree; an auto-expanding archive moves a folder's content to an auxiliary
// mailbox. Reads of such an expanded folder (its listing, items, delta, messages) answer 308 to
// the same path under the auxiliary mailbox's id; exportItems gives those items the error
// ErrorArchiveFolderMovedPermanently with the auxiliary exportItems URL; an import into it
// through the main archive's session is refused 409, naming the mailbox the session must be for.
// Folders are created and changed through the main archive only.

// archiveIDs are a user's archive mailboxes: the main archive first, then the auxiliaries.
func archiveID(userID string, n int) string {
	return fmt.Sprintf("MBX:%s@%s", stableID(userID, "archive", fmt.Sprint(n))[:8], userID[24:])
}

// AddArchive gives a user an empty archive mailbox and returns its id.
func (s *Server) AddArchive(tenantID, upn string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenants[strings.ToLower(tenantID)]
	u, _ := s.mailboxOf(t, upn)
	if t.ArchiveOf == nil {
		t.ArchiveOf, t.Archives = map[string]string{}, map[string]*mailbox{}
	}
	if id := t.ArchiveOf[u.ID]; id != "" {
		return id
	}
	id := archiveID(u.ID, 0)
	t.ArchiveOf[u.ID] = id
	// An archive's tree starts with its own Deleted Items; well-known names do not address it.
	t.Archives[id] = &mailbox{Owner: u.ID, Folders: []*folder{{ID: stableID(id, "folder", "deleteditems"), DisplayName: "Deleted Items", ParentID: stableID(id, "root")}}}
	s.dirty = true
	return id
}

// ArchiveFolder adds a mail folder at the top of a user's archive and returns its id.
func (s *Server) ArchiveFolder(tenantID, upn, name string) string {
	id := s.AddArchive(tenantID, upn)
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.tenants[strings.ToLower(tenantID)].Archives[id]
	f := &folder{ID: stableID(id, "folder", name), DisplayName: name, ParentID: mb.Folders[0].ParentID}
	mb.Folders = append(mb.Folders, f)
	s.dirty = true
	return f.ID
}

// ArchiveAnswers counts what the archive's expanded folders made the emulator answer: redirects
// (308), exported items that moved (ErrorArchiveFolderMovedPermanently), refused imports (409).
func (s *Server) ArchiveAnswers() (redirects, moved, conflicts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.archiveAnswers[0], s.archiveAnswers[1], s.archiveAnswers[2]
}

// ArchiveMailboxes lists the ids of a user's archive mailboxes: the main archive, then its
// auxiliaries in the order they were made.
func (s *Server) ArchiveMailboxes(tenantID, upn string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenants[strings.ToLower(tenantID)]
	u, _ := s.mailboxOf(t, upn)
	if u == nil || t.ArchiveOf[u.ID] == "" {
		return nil
	}
	out := []string{t.ArchiveOf[u.ID]}
	for n := 1; t.Archives[archiveID(u.ID, n)] != nil; n++ {
		out = append(out, archiveID(u.ID, n))
	}
	return out
}

// Expand moves an archive folder's content to a new auxiliary mailbox, as auto-expanding
// archiving does, and returns the auxiliary mailbox's id.
func (s *Server) Expand(tenantID, upn, folderID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenants[strings.ToLower(tenantID)]
	u, _ := s.mailboxOf(t, upn)
	if u == nil || t.ArchiveOf[u.ID] == "" {
		return "", fmt.Errorf("%s has no archive", upn)
	}
	main := t.Archives[t.ArchiveOf[u.ID]]
	f := main.folder(folderID)
	if f == nil || f.Aux != "" {
		return "", fmt.Errorf("folder %s is not in the main archive, or already expanded", folderID)
	}
	n := 1
	for t.Archives[archiveID(u.ID, n)] != nil {
		n++
	}
	auxID := archiveID(u.ID, n)
	moved := &folder{ID: f.ID, DisplayName: f.DisplayName, ParentID: f.ParentID, Class: f.Class, Messages: f.Messages}
	t.Archives[auxID] = &mailbox{Owner: u.ID, Aux: true, Folders: []*folder{moved}, Seq: main.Seq}
	f.Messages, f.Aux = nil, auxID
	s.dirty = true
	return auxID, nil
}

// expanded answers 308 for a read of an expanded folder of a main archive, to the same path
// under the auxiliary mailbox's id; it reports whether it answered.
func (s *Server) expanded(w http.ResponseWriter, r *http.Request, base, mbxID string, f *folder) bool {
	if f == nil || f.Aux == "" {
		return false
	}
	path := strings.Replace(r.URL.Path, mbxID, f.Aux, 1)
	if api, ok := r.Context().Value(apiVersion{}).(string); ok {
		path = "/" + api + strings.TrimPrefix(path, "/v1.0")
	}
	loc := base + path
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	s.archiveAnswers[0]++
	w.Header().Set("Location", loc)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusPermanentRedirect)
	return true
}

// auxHolding finds the auxiliary mailbox that holds a message of an archive; the lock must be held.
func (t *Tenant) auxHolding(main *mailbox, msgID string) string {
	for id, mb := range t.Archives {
		if mb.Aux && mb.Owner == main.Owner {
			for _, f := range mb.Folders {
				if slices.ContainsFunc(f.Messages, func(m *message) bool { return m.ID == msgID }) {
					return id
				}
			}
		}
	}
	return ""
}

// apiVersion marks a request that came in under /beta.
type apiVersion struct{}

// versioned serves /beta like /v1.0: the emulator's routes are the same; what differs (the
// archive's id in settings/exchange) asks the request.
func (s *Server) versioned(r *http.Request) *http.Request {
	rest, ok := strings.CutPrefix(r.URL.Path, "/beta/")
	if !ok {
		return r
	}
	r = r.WithContext(context.WithValue(r.Context(), apiVersion{}, "beta"))
	r.URL.Path = "/v1.0/" + rest
	r.URL.RawPath = ""
	return r
}

func isBeta(r *http.Request) bool {
	v, _ := r.Context().Value(apiVersion{}).(string)
	return v == "beta"
}

// logical sets an expanded folder's counts to its content's, which the auxiliary mailbox holds:
// the main archive shows the folder as if it were whole.
func (t *Tenant) logical(v map[string]any, f *folder) map[string]any {
	if f.Aux == "" {
		return v
	}
	if aux := t.Archives[f.Aux]; aux != nil {
		if af := aux.folder(f.ID); af != nil {
			v["totalItemCount"] = len(af.Messages)
			if _, ok := v["unreadItemCount"]; ok {
				unread := 0
				for _, m := range af.Messages {
					if !m.IsRead {
						unread++
					}
				}
				v["unreadItemCount"] = unread
			}
		}
	}
	return v
}
