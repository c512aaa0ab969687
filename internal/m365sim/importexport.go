package m365sim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/throttle"
)

// Permissions of the mailbox import/export API.
const (
	PermMailboxFolderRead  = "MailboxFolder.Read.All"
	PermMailboxFolderWrite = "MailboxFolder.ReadWrite.All"
	PermMailboxItemRead    = "MailboxItem.Read.All"
	PermImportExport       = "MailboxItem.ImportExport.All"
)

// MaxExport is how many items one exportItems call accepts.
const MaxExport = 20

// ftsMagic starts the emulator's stand-in for Exchange's FastTransfer stream. The real format is
// opaque to clients too; what matters is that export then import round-trips every property.
const ftsMagic = "ferry-sim-fts/1\n"

func mailboxID(userID string) string { return "MBX:" + userID[:8] + "@" + userID[24:] }

// importHandlers registers the import/export routes.
func (s *Server) importHandlers() {
	s.mux.Handle("GET /v1.0/users/{id}/settings/exchange", s.graph("User.Read.All", s.exchangeSettings))
	s.mux.Handle("GET /v1.0/admin/exchange/mailboxes/{mbx}/folders", s.graph(PermMailboxFolderRead, s.mbxFolders))
	s.mux.Handle("GET /v1.0/admin/exchange/mailboxes/{mbx}/folders/{fid}/childFolders", s.graph(PermMailboxFolderRead, s.mbxFolders))
	s.mux.Handle("GET /v1.0/admin/exchange/mailboxes/{mbx}/folders/delta", s.graph(PermMailboxFolderRead, s.mbxFolderDelta))
	s.mux.Handle("POST /v1.0/admin/exchange/mailboxes/{mbx}/folders", s.graph(PermMailboxFolderWrite, s.mbxCreateFolder))
	s.mux.Handle("POST /v1.0/admin/exchange/mailboxes/{mbx}/folders/{fid}/childFolders", s.graph(PermMailboxFolderWrite, s.mbxCreateFolder))
	s.mux.Handle("PATCH /v1.0/admin/exchange/mailboxes/{mbx}/folders/{fid}", s.graph(PermMailboxFolderWrite, s.mbxUpdateFolder))
	s.mux.Handle("DELETE /v1.0/admin/exchange/mailboxes/{mbx}/folders/{fid}", s.graph(PermMailboxFolderWrite, s.mbxDeleteFolder))
	s.mux.Handle("GET /v1.0/admin/exchange/mailboxes/{mbx}/folders/{fid}/items", s.graph(PermMailboxItemRead, s.mbxItems))
	s.mux.Handle("GET /v1.0/admin/exchange/mailboxes/{mbx}/folders/{fid}/items/delta", s.graph(PermMailboxItemRead, s.mbxItems))
	s.mux.Handle("POST /v1.0/admin/exchange/mailboxes/{mbx}/exportItems", s.graph(PermImportExport, s.exportItems))
	s.mux.Handle("POST /v1.0/admin/exchange/mailboxes/{mbx}/createImportSession", s.graph(PermImportExport, s.createImportSession))
	s.mux.HandleFunc("POST /import/{session}", s.importItem)
}

func (s *Server) exchangeSettings(w http.ResponseWriter, r *http.Request, c caller) {
	s.mu.Lock()
	u, _ := s.mailboxOf(c.tenant, r.PathValue("id"))
	s.mu.Unlock()
	if u == nil {
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource '"+r.PathValue("id")+"' does not exist.")
		return
	}
	v := map[string]any{"id": u.ID, "primaryMailboxId": mailboxID(u.ID)}
	s.mu.Lock()
	if arch := c.tenant.ArchiveOf[u.ID]; arch != "" && isBeta(r) {
		v["inPlaceArchiveMailboxId"] = arch // documented in beta only
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, v)
}

// byMailboxID finds the mailbox behind an MBX: id; the lock must be held.
func (s *Server) byMailboxID(t *Tenant, mbx string) *mailbox {
	if mb := t.Archives[mbx]; mb != nil {
		return mb
	}
	for _, u := range t.Users {
		if mailboxID(u.ID) == mbx {
			_, mb := s.mailboxOf(t, u.ID)
			return mb
		}
	}
	return nil
}

func (s *Server) withMBX(w http.ResponseWriter, r *http.Request, c caller, fn func(mb *mailbox)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.byMailboxID(c.tenant, r.PathValue("mbx"))
	if mb == nil {
		graphError(w, http.StatusNotFound, "ErrorMailboxNotFound", "Mailbox '"+r.PathValue("mbx")+"' was not found.")
		return
	}
	fn(mb)
}

func (s *Server) mbxCreateFolder(w http.ResponseWriter, r *http.Request, c caller) {
	s.withMBX(w, r, c, func(mb *mailbox) { s.addFolder(w, r, mb, true) })
}

func (f *folder) mbxView(mb *mailbox) map[string]any {
	v := f.view(mb)
	delete(v, "unreadItemCount")
	delete(v, "isHidden")
	v["type"] = "IPF.Note"
	if f.Class != "" {
		v["type"] = f.Class
	}
	return v
}

func (s *Server) mbxFolders(w http.ResponseWriter, r *http.Request, c caller) {
	base := s.BaseURL()
	s.withMBX(w, r, c, func(mb *mailbox) {
		parent := mb.Folders[0].ParentID
		if fid := r.PathValue("fid"); fid != "" {
			f := mb.folder(fid)
			if f == nil {
				graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified folder was not found.")
				return
			}
			if s.expanded(w, r, base, r.PathValue("mbx"), f) {
				return
			}
			parent = f.ID
		}
		out := []map[string]any{}
		for _, f := range mb.Folders {
			if f.ParentID == parent {
				out = append(out, c.tenant.logical(f.mbxView(mb), f))
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out})
	})
}

// mbxFolderDelta returns the whole folder tree (every level) with a delta link; later calls with
// the link return the folders created or renamed since, and those deleted as @removed.
func (s *Server) mbxFolderDelta(w http.ResponseWriter, r *http.Request, c caller) {
	since, ok := deltaSince(w, r)
	if !ok {
		return
	}
	base := s.BaseURL()
	s.withMBX(w, r, c, func(mb *mailbox) {
		out := []map[string]any{}
		for _, f := range mb.Folders {
			if since < 0 || f.Touched > since {
				out = append(out, c.tenant.logical(f.mbxView(mb), f))
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

// mbxUpdateFolder renames a folder.
func (s *Server) mbxUpdateFolder(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		DisplayName string `json:"displayName"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || strings.TrimSpace(req.DisplayName) == "" {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "displayName is required.")
		return
	}
	s.withMBX(w, r, c, func(mb *mailbox) {
		f := mb.folder(r.PathValue("fid"))
		if f == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified folder was not found.")
			return
		}
		for _, o := range mb.Folders {
			if o != f && o.ParentID == f.ParentID && strings.EqualFold(o.DisplayName, req.DisplayName) {
				graphError(w, http.StatusConflict, "ErrorFolderExists", "A folder with the specified name already exists.")
				return
			}
		}
		mb.Seq++
		f.DisplayName, f.Touched = req.DisplayName, mb.Seq
		writeJSON(w, http.StatusOK, c.tenant.logical(f.mbxView(mb), f))
	})
}

// mbxDeleteFolder deletes a folder with its subfolders; well-known folders stay.
func (s *Server) mbxDeleteFolder(w http.ResponseWriter, r *http.Request, c caller) {
	s.withMBX(w, r, c, func(mb *mailbox) {
		f := mb.folder(r.PathValue("fid"))
		if f == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified folder was not found.")
			return
		}
		if f.WellKnown != "" {
			graphError(w, http.StatusForbidden, "ErrorDeleteDistinguishedFolder", "Distinguished folders cannot be deleted.")
			return
		}
		gone := map[string]bool{f.ID: true}
		for changed := true; changed; {
			changed = false
			for _, o := range mb.Folders {
				if gone[o.ParentID] && !gone[o.ID] {
					gone[o.ID], changed = true, true
				}
			}
		}
		mb.Seq++
		mb.Folders = slices.DeleteFunc(mb.Folders, func(o *folder) bool { return gone[o.ID] })
		for id := range gone {
			mb.RemovedFolders = append(mb.RemovedFolders, removal{id, mb.Seq})
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// mbxItems lists a folder's items; on .../items/delta, everything at first and then only what
// changed since the token, with @removed for deleted items.
func (s *Server) mbxItems(w http.ResponseWriter, r *http.Request, c caller) {
	delta := strings.HasSuffix(r.URL.Path, "/delta")
	since := -1
	if delta {
		var ok bool
		if since, ok = deltaSince(w, r); !ok {
			return
		}
	}
	base := s.BaseURL()
	s.withMBX(w, r, c, func(mb *mailbox) {
		f := mb.folder(r.PathValue("fid"))
		if f == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified folder was not found.")
			return
		}
		if s.expanded(w, r, base, r.PathValue("mbx"), f) {
			return
		}
		out := []map[string]any{}
		for _, m := range f.Messages {
			if m.Touched > since {
				typ := "IPM.Note"
				if m.Event != nil {
					typ = "IPM.Appointment"
				}
				out = append(out, map[string]any{"id": m.ID, "changeKey": strconv.Itoa(m.ChangeKey), "size": len(m.MIME), "type": typ,
					"categories": nonNil(m.Categories), "createdDateTime": m.Received.UTC().Format(time.RFC3339), "lastModifiedDateTime": m.Received.UTC().Format(time.RFC3339)})
			}
		}
		page := map[string]any{}
		if delta {
			if since >= 0 {
				for _, rm := range f.Removed {
					if rm.Seq > since {
						out = append(out, map[string]any{"id": rm.ID, "@removed": map[string]string{"reason": "deleted"}})
					}
				}
			}
			page["@odata.deltaLink"] = base + r.URL.Path + "?$deltatoken=" + strconv.Itoa(mb.Seq)
		}
		page["value"] = out
		writeJSON(w, http.StatusOK, page)
	})
}

// exportItems returns up to 20 items in the emulator's full-fidelity format.
func (s *Server) exportItems(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		ItemIDs []string `json:"ItemIds"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.ItemIDs) == 0 {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "ItemIds is required.")
		return
	}
	if len(req.ItemIDs) > MaxExport {
		graphError(w, http.StatusBadRequest, "ErrorExceededMaxItemCount", "At most 20 items can be exported in one request.")
		return
	}
	base := s.BaseURL()
	s.withMBX(w, r, c, func(mb *mailbox) {
		out := []map[string]any{}
		for _, id := range req.ItemIDs {
			_, m := s.findMessage(mb, id)
			if aux := c.tenant.auxHolding(mb, id); m == nil && aux != "" {
				// As documented: the item's folder moved to an auxiliary archive; ask there.
				s.archiveAnswers[1]++
				out = append(out, map[string]any{"itemId": id, "error": map[string]any{"code": "ErrorArchiveFolderMovedPermanently",
					"message": base + "/beta/admin/exchange/mailboxes/" + aux + "/exportItems"}})
				continue
			}
			if m == nil {
				out = append(out, map[string]any{"itemId": id, "error": map[string]any{"code": "ErrorItemNotFound", "message": "The specified item was not found."}})
				continue
			}
			blob, _ := json.Marshal(m)
			out = append(out, map[string]any{"itemId": m.ID, "changeKey": strconv.Itoa(m.ChangeKey),
				"data": base64.StdEncoding.EncodeToString(append([]byte(ftsMagic), blob...))})
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out})
	})
}

type importSession struct {
	tenant, app, mbx string
	expires          time.Time
}

func (s *Server) createImportSession(w http.ResponseWriter, r *http.Request, c caller) {
	base := s.BaseURL()
	s.withMBX(w, r, c, func(mb *mailbox) {
		var b [18]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		exp := s.now().Add(time.Hour)
		if s.sessions == nil {
			s.sessions = map[string]importSession{}
		}
		s.sessions[id] = importSession{tenant: c.tenant.ID, app: c.app.ClientID, mbx: r.PathValue("mbx"), expires: exp}
		writeJSON(w, http.StatusOK, map[string]any{"importUrl": base + "/import/" + id, "expirationDateTime": exp.UTC().Format(time.RFC3339Nano)})
	})
}

// importItem takes an item in full-fidelity format: the import URL carries its own authorization,
// so a request with an Authorization header is refused, as the service documents.
func (s *Server) importItem(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "Do not send an Authorization header to an import URL.")
		return
	}
	var req struct {
		FolderID  string `json:"FolderId"`
		Mode      string `json:"Mode"`
		Data      string `json:"Data"`
		ItemID    string `json:"ItemId"`
		ChangeKey string `json:"ChangeKey"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "Invalid JSON: "+err.Error())
		return
	}
	raw, err := base64.StdEncoding.DecodeString(req.Data)
	var item message
	if err != nil || !strings.HasPrefix(string(raw), ftsMagic) || json.Unmarshal(raw[len(ftsMagic):], &item) != nil {
		graphError(w, http.StatusBadRequest, "ErrorInvalidData", "Data is not an exported item.")
		return
	}
	s.mu.Lock()
	sess, ok := s.sessions[r.PathValue("session")]
	s.mu.Unlock()
	if !ok || s.now().After(sess.expires) {
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The import session has expired; create a new one.")
		return
	}
	// Imports count against the mailbox's limits like any other request of the app.
	key := throttle.Key{Tenant: sess.tenant, App: sess.app, Resource: strings.ToLower(sess.mbx)}
	release := s.admitted(w, key, requestBytes(r), 1)
	if release == nil {
		return
	}
	defer release()
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.byMailboxID(s.tenants[sess.tenant], sess.mbx)
	f := mb.folder(req.FolderID)
	if f == nil {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The folder was not found.")
		return
	}
	if f.Aux != "" {
		s.archiveAnswers[2]++
		// The documented answer carries no error code: only the mailbox the session must be for.
		writeJSON(w, http.StatusConflict, map[string]any{"Message": "Invalid import session. The target session is expected in mailbox " + f.Aux + "."})
		return
	}
	mb.Seq++
	switch req.Mode {
	case "create":
		if req.ItemID != "" || req.ChangeKey != "" {
			graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "ItemId and ChangeKey are not allowed in create mode.")
			return
		}
		item.ID, item.ChangeKey, item.Touched = stableID(f.ID, "msg", strconv.Itoa(mb.Seq)), 1, mb.Seq
		f.Messages = append(f.Messages, &item)
	case "update":
		_, m := s.findMessage(mb, req.ItemID)
		if m == nil || strconv.Itoa(m.ChangeKey) != req.ChangeKey {
			graphError(w, http.StatusConflict, "ErrorIrresolvableConflict", "ItemId and ChangeKey do not match an item in the folder.")
			return
		}
		id, ck := m.ID, m.ChangeKey
		*m = item
		m.ID, m.ChangeKey, m.Touched = id, ck+1, mb.Seq
		item = *m
	default:
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "Mode must be create or update.")
		return
	}
	s.dirty = true
	writeJSON(w, http.StatusOK, map[string]any{"itemId": item.ID, "changeKey": strconv.Itoa(item.ChangeKey)})
}
