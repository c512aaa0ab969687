package m365sim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/graph/quickxor"
	"github.com/ferry-migrate/ferry/internal/throttle"
)

// OneDrive, by Microsoft's rules: every user has a drive; items have eTags (any change) and cTags
// (content changes) and a quickXorHash; a drive delta with a token lists what changed and what
// was deleted; content downloads from a pre-authenticated URL; an upload session takes chunks in
// order, each a multiple of 320 KiB (the last excepted) and at most 60 MiB; sharing is
// permissions and invitations, sent only when asked.

// File permissions, as Microsoft names them.
const (
	PermFilesRead      = "Files.Read.All"
	PermFilesReadWrite = "Files.ReadWrite.All"
)

// Upload limits of OneDrive and SharePoint.
const (
	MaxSimpleUpload = 250 << 20
	ChunkMultiple   = 320 << 10
	MaxChunk        = 60 << 20
)

type drive struct {
	ID    string       `json:"id"`
	Owner string       `json:"owner"`
	Items []*driveItem `json:"items"` // the root first
	Seq   int          `json:"seq"`
}

type driveItem struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	ParentID string    `json:"parentId,omitempty"`
	Folder   bool      `json:"folder,omitempty"`
	Content  []byte    `json:"content,omitempty"`
	Version  int       `json:"version"`  // eTag: any change
	CVersion int       `json:"cversion"` // cTag: content changes
	Created  time.Time `json:"created"`
	Modified time.Time `json:"modified"`
	Touched  int       `json:"touched"` // the drive's sequence number at the last change, for delta
	Deleted  bool      `json:"deleted,omitempty"`
	Perms    []perm    `json:"perms,omitempty"`
}

type perm struct {
	ID    string   `json:"id"`
	Email string   `json:"email"`
	Roles []string `json:"roles"`
}

// driveOf returns a user's drive, made on first use; the lock must be held.
func (s *Server) driveOf(t *Tenant, userID string) *drive {
	u, _ := s.mailboxOf(t, userID)
	if u == nil {
		return nil
	}
	if t.Drives == nil {
		t.Drives = map[string]*drive{}
	}
	id := "b!" + stableID(u.ID, "drive")
	if d := t.Drives[id]; d != nil {
		return d
	}
	d := &drive{ID: id, Owner: u.ID, Items: []*driveItem{{ID: stableID(id, "root"), Name: "root", Folder: true, Version: 1, CVersion: 1, Created: s.now(), Modified: s.now()}}}
	t.Drives[id] = d
	return d
}

func (d *drive) item(id string) *driveItem {
	for _, it := range d.Items {
		if it.ID == id && !it.Deleted {
			return it
		}
	}
	return nil
}

func (d *drive) child(parent, name string) *driveItem {
	for _, it := range d.Items {
		if it.ParentID == parent && !it.Deleted && strings.EqualFold(it.Name, name) {
			return it
		}
	}
	return nil
}

// path is the item's parent path as Graph writes it: /drive/root:/a/b.
func (d *drive) path(it *driveItem) string {
	var parts []string
	for p := d.item(it.ParentID); p != nil && p.ParentID != ""; p = d.item(p.ParentID) {
		parts = append([]string{p.Name}, parts...)
	}
	return "/drive/root:" + strings.TrimSuffix("/"+strings.Join(parts, "/"), "/")
}

func (d *drive) touch(it *driveItem, content bool, now time.Time) {
	d.Seq++
	it.Version++
	if content {
		it.CVersion++
	}
	it.Touched, it.Modified = d.Seq, now
}

func (d *drive) view(it *driveItem, base string) map[string]any {
	v := map[string]any{"id": it.ID, "name": it.Name, "eTag": fmt.Sprintf(`"{%s},%d"`, it.ID, it.Version), "cTag": fmt.Sprintf(`"c:{%s},%d"`, it.ID, it.CVersion),
		"size": len(it.Content), "createdDateTime": it.Created.UTC().Format(time.RFC3339), "lastModifiedDateTime": it.Modified.UTC().Format(time.RFC3339),
		"fileSystemInfo": map[string]string{"createdDateTime": it.Created.UTC().Format(time.RFC3339), "lastModifiedDateTime": it.Modified.UTC().Format(time.RFC3339)}}
	if it.Deleted {
		return map[string]any{"id": it.ID, "name": it.Name, "deleted": map[string]string{"state": "deleted"}, "parentReference": map[string]string{"driveId": d.ID, "id": it.ParentID}}
	}
	if it.ParentID == "" {
		v["root"] = map[string]any{}
	} else {
		v["parentReference"] = map[string]string{"driveId": d.ID, "id": it.ParentID, "path": d.path(it)}
	}
	if it.Folder {
		n := 0
		for _, c := range d.Items {
			if c.ParentID == it.ID && !c.Deleted {
				n++
			}
		}
		v["folder"] = map[string]int{"childCount": n}
		v["size"] = 0
	} else {
		h := quickxor.New()
		h.Write(it.Content)
		v["file"] = map[string]any{"mimeType": "application/octet-stream", "hashes": map[string]string{"quickXorHash": base64.StdEncoding.EncodeToString(h.Sum(nil))}}
		v["@microsoft.graph.downloadUrl"] = base + "/download/" + url.PathEscape(d.ID) + "/" + url.PathEscape(it.ID) + "?v=" + strconv.Itoa(it.CVersion)
	}
	return v
}

func (s *Server) driveHandlers() {
	s.mux.Handle("GET /v1.0/users/{id}/drive", s.graph(PermFilesRead, s.userDrive))
	s.mux.Handle("GET /v1.0/drives/{did}/root/delta", s.graph(PermFilesRead, s.driveDelta))
	s.mux.Handle("GET /v1.0/drives/{did}/items/{iid}", s.graph(PermFilesRead, s.driveItemGet))
	s.mux.Handle("GET /v1.0/drives/{did}/items/{iid}/children", s.graph(PermFilesRead, s.driveChildren))
	s.mux.Handle("GET /v1.0/drives/{did}/items/{iid}/permissions", s.graph(PermFilesRead, s.drivePermissions))
	s.mux.Handle("POST /v1.0/drives/{did}/items/{iid}/invite", s.graph(PermFilesReadWrite, s.driveInvite))
	s.mux.Handle("POST /v1.0/drives/{did}/items/{iid}/children", s.graph(PermFilesReadWrite, s.driveCreateFolder))
	// PUT …/items/{parent}:/{name}:/content and POST …/items/{parent}:/{name}:/createUploadSession.
	s.mux.Handle("PUT /v1.0/drives/{did}/items/{rest...}", s.graph(PermFilesReadWrite, s.driveUpload))
	s.mux.Handle("POST /v1.0/drives/{did}/items/{rest...}", s.graph(PermFilesReadWrite, s.driveCreateSession))
	s.mux.Handle("DELETE /v1.0/drives/{did}/items/{iid}", s.graph(PermFilesReadWrite, s.driveDelete))
	s.mux.HandleFunc("PUT /upload/drive/{session}", s.driveChunk)
	s.mux.HandleFunc("GET /upload/drive/{session}", s.driveSessionStatus)
	s.mux.HandleFunc("GET /download/{did}/{iid}", s.driveDownload)
}

// withDrive finds the drive {did} of the caller's tenant.
func (s *Server) withDrive(w http.ResponseWriter, r *http.Request, c caller, fn func(d *drive)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := c.tenant.Drives[r.PathValue("did")]
	if d == nil {
		graphError(w, http.StatusNotFound, "itemNotFound", "The drive does not exist.")
		return
	}
	fn(d)
}

func (s *Server) withDriveItem(w http.ResponseWriter, r *http.Request, c caller, id string, fn func(d *drive, it *driveItem)) {
	s.withDrive(w, r, c, func(d *drive) {
		it := d.item(id)
		if id == "root" {
			it = d.Items[0]
		}
		if it == nil {
			graphError(w, http.StatusNotFound, "itemNotFound", "The resource could not be found.")
			return
		}
		fn(d, it)
	})
}

func (s *Server) userDrive(w http.ResponseWriter, r *http.Request, c caller) {
	s.mu.Lock()
	d := s.driveOf(c.tenant, r.PathValue("id"))
	s.mu.Unlock()
	if d == nil {
		graphError(w, http.StatusNotFound, "itemNotFound", "The user has no drive.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": d.ID, "driveType": "business", "name": "OneDrive"})
}

// driveDelta lists every item at first (the root included), then what changed since the token,
// deletions as items with "deleted"; pages of at most 200.
func (s *Server) driveDelta(w http.ResponseWriter, r *http.Request, c caller) {
	since := -1
	if tok := r.URL.Query().Get("token"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil {
			graphError(w, http.StatusGone, "resyncRequired", "The delta token is not valid; start again without one.")
			return
		}
		since = n
	}
	skip, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	base := s.BaseURL()
	s.withDrive(w, r, c, func(d *drive) {
		var out []map[string]any
		for _, it := range d.Items {
			if it.Touched > since && (!it.Deleted || since >= 0) || (since < 0 && it.ParentID == "") {
				out = append(out, d.view(it, base))
			}
		}
		end := min(len(out), skip+200)
		page := map[string]any{"value": nonNilMaps(out[min(skip, len(out)):end])}
		q := url.Values{}
		if since >= 0 {
			q.Set("token", strconv.Itoa(since))
		}
		if end < len(out) {
			q.Set("$skiptoken", strconv.Itoa(end))
			page["@odata.nextLink"] = base + r.URL.Path + "?" + q.Encode()
		} else {
			page["@odata.deltaLink"] = base + r.URL.Path + "?token=" + strconv.Itoa(d.Seq)
		}
		writeJSON(w, http.StatusOK, page)
	})
}

func (s *Server) driveItemGet(w http.ResponseWriter, r *http.Request, c caller) {
	base := s.BaseURL()
	s.withDriveItem(w, r, c, r.PathValue("iid"), func(d *drive, it *driveItem) { writeJSON(w, http.StatusOK, d.view(it, base)) })
}

func (s *Server) driveChildren(w http.ResponseWriter, r *http.Request, c caller) {
	base := s.BaseURL()
	s.withDriveItem(w, r, c, r.PathValue("iid"), func(d *drive, parent *driveItem) {
		out := []map[string]any{}
		for _, it := range d.Items {
			if it.ParentID == parent.ID && !it.Deleted {
				out = append(out, d.view(it, base))
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out})
	})
}

func (s *Server) driveCreateFolder(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Name     string          `json:"name"`
		Folder   json.RawMessage `json:"folder"`
		Conflict string          `json:"@microsoft.graph.conflictBehavior"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Folder == nil || badName(req.Name) != "" {
		graphError(w, http.StatusBadRequest, "invalidRequest", "A folder needs a valid name and a folder facet. "+badName(req.Name))
		return
	}
	base := s.BaseURL()
	s.withDriveItem(w, r, c, r.PathValue("iid"), func(d *drive, parent *driveItem) {
		if ex := d.child(parent.ID, req.Name); ex != nil {
			if req.Conflict == "fail" || req.Conflict == "" {
				graphError(w, http.StatusConflict, "nameAlreadyExists", "The specified item name already exists.")
				return
			}
		}
		d.Seq++
		it := &driveItem{ID: stableID(d.ID, "item", strconv.Itoa(d.Seq)), Name: req.Name, ParentID: parent.ID, Folder: true, Created: s.now()}
		d.Items = append(d.Items, it)
		d.touch(it, true, s.now())
		writeJSON(w, http.StatusCreated, d.view(it, base))
	})
}

// badName says why a name is not allowed in OneDrive, or "".
func badName(n string) string {
	switch {
	case strings.TrimSpace(n) == "":
		return "The name is empty."
	case strings.ContainsAny(n, `"*:<>?/\|`):
		return `Names may not contain " * : < > ? / \ |.`
	case strings.HasSuffix(n, ".") || strings.HasPrefix(n, " ") || strings.HasSuffix(n, " "):
		return "Names may not start or end with a space or end with a dot."
	}
	return ""
}

var colonPath = regexp.MustCompile(`^([^/:]+):/([^:]+):/(content|createUploadSession)$`)

// driveTarget reads {parent}:/{name}:/{action} from the path.
func driveTarget(w http.ResponseWriter, r *http.Request) (parent, name, action string, ok bool) {
	m := colonPath.FindStringSubmatch(r.PathValue("rest"))
	if m == nil {
		graphError(w, http.StatusBadRequest, "invalidRequest", "Use items/{parent-id}:/{file name}:/content or :/createUploadSession.")
		return "", "", "", false
	}
	name, err := url.PathUnescape(m[2])
	if err != nil || badName(name) != "" {
		graphError(w, http.StatusBadRequest, "invalidRequest", "The file name is not valid. "+badName(name))
		return "", "", "", false
	}
	return m[1], name, m[3], true
}

// put writes a file's content under a parent, replacing one of the same name; the lock is held.
func (s *Server) put(d *drive, parent *driveItem, name string, data []byte, fsi fsInfo) *driveItem {
	it := d.child(parent.ID, name)
	if it == nil {
		d.Seq++
		it = &driveItem{ID: stableID(d.ID, "item", strconv.Itoa(d.Seq)), Name: name, ParentID: parent.ID, Created: s.now()}
		d.Items = append(d.Items, it)
	}
	it.Content = data
	d.touch(it, true, s.now())
	if fsi.Created != nil {
		it.Created = *fsi.Created
	}
	if fsi.Modified != nil {
		it.Modified = *fsi.Modified
	}
	return it
}

type fsInfo struct {
	Created  *time.Time `json:"createdDateTime"`
	Modified *time.Time `json:"lastModifiedDateTime"`
}

func (s *Server) driveUpload(w http.ResponseWriter, r *http.Request, c caller) {
	parentID, name, action, ok := driveTarget(w, r)
	if !ok || action != "content" {
		if ok {
			graphError(w, http.StatusMethodNotAllowed, "invalidRequest", "PUT takes :/content.")
		}
		return
	}
	if r.ContentLength > MaxSimpleUpload {
		graphError(w, http.StatusRequestEntityTooLarge, "requestTooLarge", "Simple uploads are limited to 250 MB; use an upload session.")
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxSimpleUpload+1))
	if err != nil || len(data) > MaxSimpleUpload {
		graphError(w, http.StatusRequestEntityTooLarge, "requestTooLarge", "Simple uploads are limited to 250 MB; use an upload session.")
		return
	}
	base := s.BaseURL()
	s.withDriveItem(w, r, c, parentID, func(d *drive, parent *driveItem) {
		if !parent.Folder {
			graphError(w, http.StatusBadRequest, "invalidRequest", "The parent is not a folder.")
			return
		}
		writeJSON(w, http.StatusCreated, d.view(s.put(d, parent, name, data, fsInfo{}), base))
	})
}

type driveSession struct {
	tenant, app, drive, parent, name string
	fsi                              fsInfo
	data                             []byte
	size                             int64
	expires                          time.Time
}

func (s *Server) driveCreateSession(w http.ResponseWriter, r *http.Request, c caller) {
	parentID, name, action, ok := driveTarget(w, r)
	if !ok || action != "createUploadSession" {
		if ok {
			graphError(w, http.StatusMethodNotAllowed, "invalidRequest", "POST takes :/createUploadSession.")
		}
		return
	}
	var req struct {
		Item struct {
			FileSystemInfo fsInfo `json:"fileSystemInfo"`
		} `json:"item"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	base := s.BaseURL()
	s.withDriveItem(w, r, c, parentID, func(d *drive, parent *driveItem) {
		id := newID() + newID()
		exp := s.now().Add(24 * time.Hour)
		if s.driveSessions == nil {
			s.driveSessions = map[string]*driveSession{}
		}
		s.driveSessions[id] = &driveSession{tenant: c.tenant.ID, app: c.app.ClientID, drive: d.ID, parent: parent.ID, name: name, fsi: req.Item.FileSystemInfo, size: -1, expires: exp}
		writeJSON(w, http.StatusOK, map[string]any{"uploadUrl": base + "/upload/drive/" + id, "expirationDateTime": exp.UTC().Format(time.RFC3339Nano), "nextExpectedRanges": []string{"0-"}})
	})
}

func (s *Server) driveSessionStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sess := s.driveSessions[r.PathValue("session")]
	var have int
	if sess != nil {
		have = len(sess.data)
	}
	s.mu.Unlock()
	if sess == nil {
		graphError(w, http.StatusNotFound, "itemNotFound", "The upload session does not exist or has expired.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"expirationDateTime": sess.expires.UTC().Format(time.RFC3339Nano), "nextExpectedRanges": []string{strconv.Itoa(have) + "-"}})
}

// driveChunk takes one range of a drive upload: in order, a multiple of 320 KiB unless it is the
// last, at most 60 MiB, without the token. The last range answers 201 with the driveItem.
func (s *Server) driveChunk(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		graphError(w, http.StatusUnauthorized, "unauthenticated", "Do not send an Authorization header to an upload URL.")
		return
	}
	s.mu.Lock()
	sess := s.driveSessions[r.PathValue("session")]
	s.mu.Unlock()
	if sess == nil || s.now().After(sess.expires) {
		graphError(w, http.StatusNotFound, "itemNotFound", "The upload session does not exist or has expired.")
		return
	}
	first, last, total, ok := contentRange(w, r, "invalidRange")
	if !ok {
		return
	}
	n := last - first + 1
	switch {
	case n <= 0 || last >= total || (sess.size >= 0 && total != sess.size):
		graphError(w, http.StatusBadRequest, "invalidRange", "The range does not fit the file.")
		return
	case n > MaxChunk:
		graphError(w, http.StatusRequestEntityTooLarge, "requestTooLarge", "Each chunk carries at most 60 MiB.")
		return
	case last != total-1 && n%ChunkMultiple != 0:
		graphError(w, http.StatusBadRequest, "invalidRange", "Every chunk but the last must be a multiple of 320 KiB.")
		return
	case r.ContentLength != n:
		graphError(w, http.StatusBadRequest, "invalidRange", "Content-Length does not match the range.")
		return
	}
	key := throttle.Key{Tenant: sess.tenant, App: sess.app, Resource: sharePoint}
	release := s.admitted(w, key, n, throttle.CostWrite)
	if release == nil {
		return
	}
	defer release()
	data, err := io.ReadAll(io.LimitReader(r.Body, n))
	if err != nil || int64(len(data)) != n {
		graphError(w, http.StatusBadRequest, "invalidRequest", "The body ended before the range did.")
		return
	}
	base := s.BaseURL()
	s.mu.Lock()
	defer s.mu.Unlock()
	if first != int64(len(sess.data)) {
		graphError(w, http.StatusRequestedRangeNotSatisfiable, "invalidRange", fmt.Sprintf("Expected the range starting at %d.", len(sess.data)))
		return
	}
	sess.size = total
	sess.data = append(sess.data, data...)
	if int64(len(sess.data)) < total {
		writeJSON(w, http.StatusAccepted, map[string]any{"expirationDateTime": sess.expires.UTC().Format(time.RFC3339Nano), "nextExpectedRanges": []string{strconv.Itoa(len(sess.data)) + "-"}})
		return
	}
	delete(s.driveSessions, r.PathValue("session"))
	d := s.tenants[sess.tenant].Drives[sess.drive]
	parent := d.item(sess.parent)
	if parent == nil {
		graphError(w, http.StatusNotFound, "itemNotFound", "The parent folder is gone.")
		return
	}
	s.dirty = true
	writeJSON(w, http.StatusCreated, d.view(s.put(d, parent, sess.name, sess.data, sess.fsi), base))
}

// driveDelete removes an item (a folder with what it holds); delta reports it as deleted.
func (s *Server) driveDelete(w http.ResponseWriter, r *http.Request, c caller) {
	s.withDriveItem(w, r, c, r.PathValue("iid"), func(d *drive, it *driveItem) {
		if it.ParentID == "" {
			graphError(w, http.StatusBadRequest, "invalidRequest", "The root cannot be deleted.")
			return
		}
		var del func(x *driveItem)
		del = func(x *driveItem) {
			for _, c := range d.Items {
				if c.ParentID == x.ID && !c.Deleted {
					del(c)
				}
			}
			x.Deleted = true
			d.touch(x, false, s.now())
		}
		del(it)
		w.WriteHeader(http.StatusNoContent)
	})
}

// driveDownload serves content at the pre-authenticated URL: no token is needed or wanted.
func (s *Server) driveDownload(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var data []byte
	found := false
	for _, t := range s.tenants {
		if d := t.Drives[r.PathValue("did")]; d != nil {
			if it := d.item(r.PathValue("iid")); it != nil && !it.Folder && strconv.Itoa(it.CVersion) == r.URL.Query().Get("v") {
				data, found = it.Content, true
			}
		}
	}
	s.mu.Unlock()
	if !found {
		graphError(w, http.StatusNotFound, "itemNotFound", "The download URL is not valid (the content changed, or the item is gone).")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}

func (d *drive) permViews(it *driveItem) []map[string]any {
	owner := map[string]any{"id": "owner", "roles": []string{"owner"}, "grantedToV2": map[string]any{"user": map[string]string{"id": d.Owner}}}
	out := []map[string]any{owner}
	for _, p := range it.Perms {
		out = append(out, p.view())
	}
	return out
}

// view shows an invitation's permission: who it was for is the invitation's email.
func (p perm) view() map[string]any {
	return map[string]any{"id": p.ID, "roles": p.Roles, "grantedToV2": map[string]any{"user": map[string]string{"displayName": p.Email}},
		"invitation": map[string]any{"email": p.Email, "signInRequired": true}}
}

func (s *Server) drivePermissions(w http.ResponseWriter, r *http.Request, c caller) {
	s.withDriveItem(w, r, c, r.PathValue("iid"), func(d *drive, it *driveItem) {
		writeJSON(w, http.StatusOK, map[string]any{"value": d.permViews(it)})
	})
}

// driveInvite grants roles to people; with sendInvitation true the service mails them, which the
// sent-mail record keeps.
func (s *Server) driveInvite(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Recipients []struct {
			Email string `json:"email"`
		} `json:"recipients"`
		Roles          []string `json:"roles"`
		RequireSignIn  bool     `json:"requireSignIn"`
		SendInvitation *bool    `json:"sendInvitation"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Recipients) == 0 || len(req.Roles) == 0 {
		graphError(w, http.StatusBadRequest, "invalidRequest", "An invitation needs recipients and roles.")
		return
	}
	for _, role := range req.Roles {
		if role != "read" && role != "write" {
			graphError(w, http.StatusBadRequest, "invalidRequest", fmt.Sprintf("Role %q is not read or write.", role))
			return
		}
	}
	s.withDriveItem(w, r, c, r.PathValue("iid"), func(d *drive, it *driveItem) {
		var out []map[string]any
		var to []string
		for _, rc := range req.Recipients {
			d.Seq++
			p := perm{ID: stableID(it.ID, "perm", rc.Email, strconv.Itoa(d.Seq)), Email: rc.Email, Roles: req.Roles}
			it.Perms = append(it.Perms, p)
			to = append(to, rc.Email)
			out = append(out, p.view())
		}
		d.touch(it, false, s.now())
		if req.SendInvitation == nil || *req.SendInvitation {
			c.tenant.Sent = append(c.tenant.Sent, SentMail{To: to, Subject: it.Name, Kind: "sharingInvitation", At: s.now()})
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out})
	})
}
