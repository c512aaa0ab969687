package exo

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/graph"
)

// target writes a mailbox: through import sessions in Exchange's full-fidelity format, or, for a
// source that speaks only MIME, by creating each message from its parts (mimetarget.go).
type target struct {
	*mailbox
	side   connector.Side
	format connector.Format

	mu       sync.Mutex
	nodes    map[string]node // path -> folder, loaded at the first EnsureFolder
	byID     map[string]node
	sessions map[string]*graph.ImportSession // by mailbox id: the main one, and auxiliary archives
	home     map[string]string               // folder id -> the auxiliary archive holding its content
}

func (t *target) Formats() []connector.Format {
	switch {
	case t.archive:
		// Archives are written through the import/export API, which documents them.
		return []connector.Format{connector.FormatExchange}
	case !importExportOffered(t.side.Endpoint.Settings):
		return []connector.Format{connector.FormatItems, connector.FormatMIME}
	}
	return []connector.Format{connector.FormatExchange, connector.FormatItems, connector.FormatMIME}
}

func (t *target) UseFormat(f connector.Format) error {
	t.format = f
	return nil
}

// mime says whether mail arrives as MIME (from a MIME source, or alongside the workload APIs).
func (t *target) mime() bool {
	return t.format == connector.FormatMIME || t.format == connector.FormatItems
}

func (t *target) items() bool { return t.format == connector.FormatItems }

// itemAPI is the workload API of a target folder that is not mail, in the items format.
func (t *target) itemAPI(folderID string) (graph.ItemAPI, bool) {
	if !t.items() {
		return graph.ItemAPI{}, false
	}
	t.mu.Lock()
	class := t.byID[folderID].class
	t.mu.Unlock()
	return apiOf(class)
}

// A target reference carries the item's changeKey too: an update must name the version it replaces.
func ref(id, changeKey string) connector.TargetRef {
	return connector.TargetRef{ID: id + "|" + changeKey}
}

func splitRef(r connector.TargetRef) (id, changeKey string) {
	id, changeKey, _ = strings.Cut(r.ID, "|")
	return id, changeKey
}

func (t *target) load(ctx context.Context) error {
	if t.nodes != nil {
		return nil
	}
	tree := t.tree
	if t.items() {
		tree = t.itemTree
	}
	nodes, err := tree(ctx)
	if err != nil {
		return explain(err, t.side, "list the folders of "+t.user)
	}
	t.nodes, t.byID = map[string]node{}, map[string]node{}
	for _, n := range nodes {
		t.nodes[strings.ToLower(n.path)] = n
		t.byID[n.id] = n
	}
	return nil
}

// EnsureFolder finds or creates the folder at f.Path (a well-known folder by its role), creating
// missing parents with the folder's class.
func (t *target) EnsureFolder(ctx context.Context, f connector.Folder) (connector.FolderRef, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.load(ctx); err != nil {
		return connector.FolderRef{}, err
	}
	if a, ok := apiOf(f.Class); ok && t.items() {
		if n, ok := t.nodes[strings.ToLower(f.Path)]; ok {
			return connector.FolderRef{ID: n.id, Path: n.path}, nil
		}
		created, err := t.c.CreateItemFolder(ctx, a, t.user, strings.ReplaceAll(f.Path, "∕", "/"))
		if err != nil {
			return connector.FolderRef{}, explain(err, t.side, "create folder "+f.Path)
		}
		n := node{id: created.ID, path: f.Path, class: f.Class}
		t.nodes[strings.ToLower(f.Path)], t.byID[n.id] = n, n
		return connector.FolderRef{ID: n.id, Path: n.path}, nil
	}
	path := f.Path
	if f.Role != "" {
		for name, role := range roles {
			if role == f.Role {
				path = name
			}
		}
	}
	parts := strings.Split(path, "/")
	parent := ""
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		if n, ok := t.nodes[strings.ToLower(p)]; ok {
			parent = n.id
			continue
		}
		class := f.Class
		if class == "" {
			class = "IPF.Note"
		}
		var n node
		if t.items() {
			created, err := t.c.CreateMailFolder(ctx, t.user, parent, strings.ReplaceAll(parts[i], "∕", "/"))
			if err != nil {
				return connector.FolderRef{}, explain(err, t.side, "create folder "+p)
			}
			n = node{id: created.ID, parent: parent, path: p, class: "IPF.Note"}
		} else {
			created, err := t.c.CreateMailboxFolder(ctx, t.mbxID, parent, strings.ReplaceAll(parts[i], "∕", "/"), class)
			if err != nil {
				return connector.FolderRef{}, explain(err, t.side, "create folder "+p)
			}
			n = node{id: created.ID, parent: parent, path: p, class: created.Type}
		}
		t.nodes[strings.ToLower(p)], t.byID[n.id] = n, n
		parent = n.id
	}
	return connector.FolderRef{ID: parent, Path: path}, nil
}

// Lookup finds the copies stamped with the source item's id. Only mail folders can be searched by
// an extended property through Graph; elsewhere the watermarks alone prevent duplicates.
func (t *target) Lookup(ctx context.Context, dst connector.FolderRef, o connector.Object) ([]connector.TargetRef, error) {
	if a, ok := t.itemAPI(dst.ID); ok {
		return t.lookupItem(ctx, a, dst, o)
	}
	if !t.isMail(dst.ID) {
		return nil, nil
	}
	msgs, err := t.c.MessagesWithProperty(ctx, t.user, dst.ID, StampProperty, t.stampOf(o))
	if err != nil {
		return nil, explain(err, t.side, "look for copies in "+dst.Path)
	}
	out := make([]connector.TargetRef, len(msgs))
	for i, m := range msgs {
		out[i] = ref(m.ID, m.ChangeKey)
	}
	return out, nil
}

func (t *target) isMail(folderID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return isMail(t.byID[folderID].class)
}

// importItem uploads one item, opening (or, once expired, reopening) an import session. A folder
// whose content an auto-expanding archive moved is refused with 409 naming the auxiliary mailbox
// the session must be for: the item goes again through a session there.
func (t *target) importItem(ctx context.Context, folderID, mode, data, itemID, changeKey string) (string, string, error) {
	t.mu.Lock()
	mbx := t.mbxID
	if h := t.home[folderID]; h != "" {
		mbx = h
	}
	t.mu.Unlock()
	for attempt := 0; ; attempt++ {
		t.mu.Lock()
		sess := t.sessions[mbx]
		t.mu.Unlock()
		if sess == nil {
			s, err := t.c.CreateImportSession(ctx, mbx)
			if err != nil {
				return "", "", explain(err, t.side, "open an import session for "+t.user)
			}
			sess = &s
			t.mu.Lock()
			if t.sessions == nil {
				t.sessions = map[string]*graph.ImportSession{}
			}
			t.sessions[mbx] = sess
			t.mu.Unlock()
		}
		id, ck, err := t.c.ImportItem(ctx, *sess, folderID, mode, data, itemID, changeKey)
		if err != nil && attempt < 2 && graph.IsStatus(err, http.StatusUnauthorized) {
			t.mu.Lock()
			delete(t.sessions, mbx)
			t.mu.Unlock()
			continue
		}
		if aux := sessionMailbox.FindStringSubmatch(errText(err)); aux != nil && attempt < 2 && graph.IsStatus(err, http.StatusConflict) && aux[1] != mbx {
			mbx = aux[1]
			t.mu.Lock()
			if t.home == nil {
				t.home = map[string]string{}
			}
			t.home[folderID] = mbx
			t.mu.Unlock()
			continue
		}
		if err != nil {
			return "", "", explain(err, t.side, mode+" item in "+t.user)
		}
		return id, ck, nil
	}
}

// sessionMailbox finds the mailbox an import must go through in Exchange's 409 answer.
var sessionMailbox = regexp.MustCompile(`session is expected in mailbox (MBX:[^\s"]+?)\.?["\s}]`)

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error() + " "
}

func (t *target) Put(ctx context.Context, dst connector.FolderRef, o connector.Object, body io.Reader) (connector.TargetRef, error) {
	if a, ok := t.itemAPI(dst.ID); ok {
		return t.putItem(ctx, a, dst, o, body)
	}
	if t.mime() {
		return t.putMIME(ctx, dst, o, body)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return connector.TargetRef{}, err
	}
	id, ck, err := t.importItem(ctx, dst.ID, "create", base64.StdEncoding.EncodeToString(data), "", "")
	if err != nil {
		return connector.TargetRef{}, err
	}
	return t.stamp(ctx, dst, o, id, ck), nil
}

// stamp marks a copy with its source item's id (mail folders only) and returns its reference. The
// copy exists either way, so a failed stamp is not a failed copy: the watermark still records it.
func (t *target) stamp(ctx context.Context, dst connector.FolderRef, o connector.Object, id, ck string) connector.TargetRef {
	if t.isMail(dst.ID) {
		// Stamping makes a new version; the reference must name it for a later update.
		if m, err := t.c.SetMessageProperty(ctx, t.user, id, StampProperty, t.stampOf(o)); err == nil && m.ChangeKey != "" {
			ck = m.ChangeKey
		}
	}
	return ref(id, ck)
}

// Update replaces a copied item with the source's new version (import in update mode).
// A MIME source's message changes only in its flags: those are set on the copy.
func (t *target) Update(ctx context.Context, dst connector.FolderRef, r connector.TargetRef, o connector.Object, body io.Reader) (connector.TargetRef, error) {
	if a, ok := t.itemAPI(dst.ID); ok {
		return t.updateItem(ctx, a, dst, r, body)
	}
	if t.mime() {
		return r, t.SetFlags(ctx, dst, r, o)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return connector.TargetRef{}, err
	}
	id, ck := splitRef(r)
	nid, nck, err := t.importItem(ctx, dst.ID, "update", base64.StdEncoding.EncodeToString(data), id, ck)
	if err != nil {
		return connector.TargetRef{}, err
	}
	// The imported version replaces the whole item, the stamp with it.
	return t.stamp(ctx, dst, o, nid, nck), nil
}

// SetFlags carries a MIME source's flags over: read state, follow-up flag and categories. An
// Exchange source's changed item is imported again whole instead (Update).
func (t *target) SetFlags(ctx context.Context, dst connector.FolderRef, r connector.TargetRef, o connector.Object) error {
	if !t.mime() {
		return nil
	}
	var st decomposed
	st.state(time.Time{}, o.Flags)
	flag := "notFlagged"
	if st.msg.Flag != nil {
		flag = st.msg.Flag.FlagStatus
	}
	read := slices.ContainsFunc(o.Flags, func(f string) bool { return strings.EqualFold(f, `\Seen`) })
	id, _ := splitRef(r)
	if err := t.c.UpdateMessage(ctx, t.user, id, read, flag, st.msg.Categories); err != nil {
		return explain(err, t.side, "set the flags of message "+id)
	}
	return nil
}

func (t *target) Delete(ctx context.Context, dst connector.FolderRef, refs []connector.TargetRef) error {
	for _, r := range refs {
		id, _ := splitRef(r)
		_, err := t.c.Do(ctx, graph.Request{Method: http.MethodDelete, Path: "/users/" + url.PathEscape(t.user) + "/messages/" + url.PathEscape(id)}, nil)
		if err != nil && !graph.IsStatus(err, http.StatusNotFound) {
			return explain(err, t.side, "delete item "+id)
		}
	}
	return nil
}

func (t *target) Count(ctx context.Context, dst connector.FolderRef) (int, error) {
	t.mu.Lock()
	parent := t.byID[dst.ID].parent
	t.mu.Unlock()
	if a, ok := t.itemAPI(dst.ID); ok {
		n, err := t.countItems(ctx, a, dst.ID)
		if err != nil {
			return 0, explain(err, t.side, "count folder "+dst.Path)
		}
		return n, nil
	}
	var n int
	var found bool
	var err error
	if t.items() {
		folders, _ := t.c.MailFolders(ctx, t.user, parent)
		n, found, err = totalOf(folders, dst.ID, func(f graph.MailFolder) (string, int) { return f.ID, f.TotalItemCount })
	} else {
		folders, _ := t.c.MailboxFolders(ctx, t.mbxID, parent)
		n, found, err = totalOf(folders, dst.ID, func(f graph.MailboxFolder) (string, int) { return f.ID, f.TotalItemCount })
	}
	switch {
	case err != nil:
		return 0, explain(err, t.side, "count folder "+dst.Path)
	case !found:
		return 0, fmt.Errorf("folder %s vanished from the target", dst.Path)
	}
	return n, nil
}

// totalOf finds one folder's item count in a listing of it and its siblings.
func totalOf[T any](folders func(func(T, error) bool), id string, count func(T) (string, int)) (int, bool, error) {
	for f, err := range folders {
		if err != nil {
			return 0, false, err
		}
		if fid, n := count(f); fid == id {
			return n, true, nil
		}
	}
	return 0, false, nil
}

func (t *target) Close() error { return nil }
