package imap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/model"
)

// Connector implements connector.Connector for endpoint kind imap.
type Connector struct{}

func init() { connector.Register(model.KindIMAP, Connector{}) }

// Verify signs in and lists the folders.
func (Connector) Verify(ctx context.Context, s connector.Side) error {
	m, err := Open(ctx, configFor(s))
	if err != nil {
		return err
	}
	defer m.Close()
	_, err = m.Folders(ctx)
	return err
}

func (Connector) OpenSource(ctx context.Context, s connector.Side) (connector.MailboxSource, error) {
	return Open(ctx, configFor(s))
}

func (Connector) OpenTarget(ctx context.Context, s connector.Side) (connector.MailboxTarget, error) {
	return Open(ctx, configFor(s))
}

// Mailbox is one IMAP mailbox, usable as source and as target, safe for concurrent use by folder.
type Mailbox struct {
	p *pool

	mu      sync.Mutex
	delim   rune
	listed  bool
	folders map[string]*folderInfo // by canonical path
	indexes map[string]*targetIndex
	raws    []*rawConn // idle MULTIAPPEND connections
}

type folderInfo struct {
	name   string // on the server
	role   string
	status *imap.StatusData
}

// Open signs in to a mailbox.
func Open(ctx context.Context, cf Config) (*Mailbox, error) {
	p, err := newPool(ctx, cf)
	if err != nil {
		return nil, err
	}
	return &Mailbox{p: p, delim: '/', folders: map[string]*folderInfo{}, indexes: map[string]*targetIndex{}}, nil
}

// Close logs out every connection.
func (m *Mailbox) Close() error {
	m.closeRaws()
	m.p.close()
	return nil
}

// Caps reports the server's capabilities.
func (m *Mailbox) Caps() imap.CapSet { return m.p.caps }

func (m *Mailbox) condstore() bool { return m.p.caps.Has(imap.CapCondStore) }

// Folders lists the selectable folders with their roles and message counts, in one LIST when the
// server offers LIST-STATUS.
func (m *Mailbox) Folders(ctx context.Context) ([]connector.Folder, error) {
	if err := m.list(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []connector.Folder
	for path, fi := range m.folders {
		f := connector.Folder{Path: path, Role: fi.role}
		if fi.status != nil && fi.status.NumMessages != nil {
			f.Messages = int(*fi.status.NumMessages)
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (m *Mailbox) list(ctx context.Context) error {
	opts := &imap.ListOptions{}
	if m.p.caps.Has(imap.CapSpecialUse) {
		opts.ReturnSpecialUse = true
	}
	withStatus := m.p.caps.Has(imap.CapListStatus) || m.p.caps.Has(imap.CapIMAP4rev2)
	if withStatus {
		opts.ReturnStatus = m.statusOptions()
	}
	var boxes []*imap.ListData
	err := m.p.do(ctx, "", func(c *conn) error {
		var err error
		boxes, err = c.c.List("", "*", opts).Collect()
		return err
	})
	if err != nil {
		return fmt.Errorf("list folders: %w", err)
	}
	folders := map[string]*folderInfo{}
	var delim rune = '/'
	for _, b := range boxes {
		if b.Delim != 0 {
			delim = b.Delim
		}
		skip := false
		for _, a := range b.Attrs {
			skip = skip || strings.EqualFold(string(a), string(imap.MailboxAttrNoSelect)) || strings.EqualFold(string(a), string(imap.MailboxAttrNonExistent))
		}
		if skip {
			continue
		}
		path := canonical(b.Mailbox, b.Delim)
		folders[path] = &folderInfo{name: b.Mailbox, role: roleOf(path, b.Attrs), status: b.Status}
	}
	if !withStatus {
		for _, fi := range folders {
			fi := fi
			err := m.p.do(ctx, "", func(c *conn) error {
				var err error
				fi.status, err = c.c.Status(fi.name, m.statusOptions()).Wait()
				return err
			})
			if err != nil {
				return fmt.Errorf("status of %q: %w", fi.name, err)
			}
		}
	}
	m.mu.Lock()
	m.folders, m.delim, m.listed = folders, delim, true
	m.mu.Unlock()
	return nil
}

func (m *Mailbox) statusOptions() *imap.StatusOptions {
	return &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: m.condstore()}
}

func (m *Mailbox) info(ctx context.Context, path string) (*folderInfo, error) {
	m.mu.Lock()
	fi, listed := m.folders[path], m.listed
	m.mu.Unlock()
	if fi == nil && !listed {
		if err := m.list(ctx); err != nil {
			return nil, err
		}
		m.mu.Lock()
		fi = m.folders[path]
		m.mu.Unlock()
	}
	if fi == nil {
		return nil, connector.Classify(connector.Permanent, fmt.Errorf("folder %q does not exist", path))
	}
	return fi, nil
}

// cursor is what a folder's change marker holds.
type cursor struct {
	validity uint32
	next     imap.UID
	modseq   uint64
}

func parseCursor(c connector.Cursor) (cursor, bool) {
	var cu cursor
	_, err := fmt.Sscanf(string(c), "v=%d,n=%d,m=%d", &cu.validity, &cu.next, &cu.modseq)
	return cu, err == nil
}

func (cu cursor) String() string {
	return fmt.Sprintf("v=%d,n=%d,m=%d", cu.validity, cu.next, cu.modseq)
}

// List yields a folder's messages: all of them, or with a cursor only those new (UID above UIDNEXT)
// or changed (MODSEQ above HIGHESTMODSEQ, with CONDSTORE). An unchanged folder costs no command
// beyond the LIST that Folders made. A changed UIDVALIDITY means the old ids are void: everything is
// listed again, and the target lookup keeps that from duplicating anything.
func (m *Mailbox) List(ctx context.Context, f connector.Folder, c connector.Cursor) (iter.Seq2[connector.Object, error], func() connector.Cursor) {
	next := c
	seq := func(yield func(connector.Object, error) bool) {
		fi, err := m.info(ctx, f.Path)
		if err != nil {
			yield(connector.Object{}, err)
			return
		}
		prev, havePrev := parseCursor(c)
		if st := fi.status; havePrev && st != nil && st.UIDValidity == prev.validity && st.UIDNext == prev.next &&
			(!m.condstore() || st.HighestModSeq == prev.modseq) {
			return // unchanged since the last pass
		}
		var msgs []*imapclient.FetchMessageBuffer
		var now cursor
		err = m.p.do(ctx, fi.name, func(cn *conn) error {
			sd, err := cn.c.Select(fi.name, &imap.SelectOptions{ReadOnly: true, CondStore: m.condstore()}).Wait()
			if err != nil {
				cn.selected = ""
				return err
			}
			cn.selected, cn.readOnly = fi.name, true
			now = cursor{validity: sd.UIDValidity, next: sd.UIDNext, modseq: sd.HighestModSeq}
			if sd.NumMessages == 0 {
				return nil
			}
			opts := &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true, ModSeq: m.condstore(),
				BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}}}
			set := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
			if havePrev && prev.validity == sd.UIDValidity {
				if m.condstore() && prev.modseq > 0 {
					opts.ChangedSince = prev.modseq
				} else if prev.next > 1 {
					set = imap.UIDSet{imap.UIDRange{Start: prev.next, Stop: 0}}
				}
			}
			msgs, err = cn.c.Fetch(set, opts).Collect()
			return err
		})
		if err != nil {
			yield(connector.Object{}, fmt.Errorf("fetch %q: %w", fi.name, err))
			return
		}
		next = connector.Cursor(now.String())
		if havePrev && prev.validity != now.validity {
			if !yield(connector.Object{}, connector.ErrResync) {
				return
			}
		}
		for _, msg := range msgs {
			o := connector.Object{ID: fmt.Sprintf("%d/%d", now.validity, msg.UID), Size: msg.RFC822Size, Date: msg.InternalDate,
				MessageID: headerMessageID(bodyOf(msg)), Flags: flagStrings(msg.Flags), Version: version(msg)}
			if !yield(o, nil) {
				return
			}
		}
	}
	return seq, func() connector.Cursor { return next }
}

func bodyOf(msg *imapclient.FetchMessageBuffer) []byte {
	if len(msg.BodySection) == 0 {
		return nil
	}
	return msg.BodySection[0].Bytes
}

// version changes when the message's flags change: its MODSEQ, or without CONDSTORE its flags.
func version(msg *imapclient.FetchMessageBuffer) string {
	if msg.ModSeq > 0 {
		return strconv.FormatUint(msg.ModSeq, 10)
	}
	fl := flagStrings(msg.Flags)
	sort.Strings(fl)
	return strings.Join(fl, " ")
}

// flagStrings drops \Recent, which a client cannot set.
func flagStrings(fl []imap.Flag) []string {
	out := make([]string, 0, len(fl))
	for _, f := range fl {
		if !strings.EqualFold(string(f), `\Recent`) {
			out = append(out, string(f))
		}
	}
	return out
}

func imapFlags(fl []string) []imap.Flag {
	out := make([]imap.Flag, 0, len(fl))
	for _, f := range fl {
		if !strings.EqualFold(f, `\Recent`) {
			out = append(out, imap.Flag(f))
		}
	}
	return out
}

// headerMessageID extracts the Message-ID from a header block, unfolding continuation lines.
func headerMessageID(h []byte) string {
	lines := bytes.Split(bytes.ReplaceAll(h, []byte("\r\n"), []byte("\n")), []byte("\n"))
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if len(l) < 11 || !bytes.EqualFold(l[:11], []byte("message-id:")) {
			continue
		}
		v := string(l[11:])
		for i+1 < len(lines) && len(lines[i+1]) > 0 && (lines[i+1][0] == ' ' || lines[i+1][0] == '\t') {
			i++
			v += string(lines[i])
		}
		return strings.TrimSpace(v)
	}
	return ""
}

func parseID(id string) (imap.UID, error) {
	_, uid, ok := strings.Cut(id, "/")
	n, err := strconv.ParseUint(uid, 10, 32)
	if !ok || err != nil {
		return 0, fmt.Errorf("bad message id %q", id)
	}
	return imap.UID(n), nil
}

// Open streams one message's exact bytes (BODY.PEEK[], so the source stays unread).
func (m *Mailbox) Open(ctx context.Context, f connector.Folder, o connector.Object) (io.ReadCloser, error) {
	fi, err := m.info(ctx, f.Path)
	if err != nil {
		return nil, err
	}
	uid, err := parseID(o.ID)
	if err != nil {
		return nil, connector.Classify(connector.Permanent, err)
	}
	for attempt := 0; ; attempt++ {
		cn, err := m.p.get(ctx, fi.name)
		if err != nil {
			return nil, err
		}
		if _, err := cn.sel(fi.name, true); err != nil {
			m.p.put(cn, err)
			if isNetErr(err) && attempt < 3 {
				continue
			}
			return nil, err
		}
		cmd := cn.c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		if r := firstLiteral(cmd); r != nil {
			return &body{LiteralReader: r, cmd: cmd, cn: cn, p: m.p}, nil
		}
		err = cmd.Close()
		m.p.put(cn, err)
		if err != nil && isNetErr(err) && attempt < 3 {
			continue
		}
		if err == nil {
			err = fmt.Errorf("message %s is gone from %q", o.ID, f.Path)
		}
		return nil, connector.Classify(connector.Permanent, err)
	}
}

func firstLiteral(cmd *imapclient.FetchCommand) imap.LiteralReader {
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			if bs, ok := item.(imapclient.FetchItemDataBodySection); ok && bs.Literal != nil {
				return bs.Literal
			}
		}
	}
	return nil
}

// body is a message being streamed; closing it finishes the FETCH and frees the connection.
type body struct {
	imap.LiteralReader
	cmd  *imapclient.FetchCommand
	cn   *conn
	p    *pool
	done bool
}

func (b *body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	io.Copy(io.Discard, b.LiteralReader)
	err := b.cmd.Close()
	b.p.put(b.cn, err)
	return err
}

// targetIndex maps what a target folder already holds, for dedupe: Message-ID and size, and for
// messages without a Message-ID, size alone (confirmed by hash).
type targetIndex struct {
	mu     sync.Mutex
	byID   map[string][]imap.UID
	bySize map[int64][]imap.UID
}

func indexKey(msgID string, size int64) string { return msgID + "\x00" + strconv.FormatInt(size, 10) }

// EnsureFolder creates the target folder if needed. A folder with a well-known role goes to the
// target's folder of that role (a German "Gesendete Objekte" lands in the target's Sent).
func (m *Mailbox) EnsureFolder(ctx context.Context, f connector.Folder) (connector.FolderRef, error) {
	if err := m.ensureListed(ctx); err != nil {
		return connector.FolderRef{}, err
	}
	m.mu.Lock()
	path := f.Path
	if f.Role != "" {
		for p, fi := range m.folders {
			if fi.role == f.Role {
				path = p
				break
			}
		}
	}
	fi := m.folders[path]
	delim := m.delim
	m.mu.Unlock()
	if fi == nil {
		name := serverName(path, delim)
		err := m.p.do(ctx, "", func(c *conn) error {
			err := c.c.Create(name, nil).Wait()
			if err != nil && strings.Contains(strings.ToUpper(err.Error()), "ALREADYEXISTS") {
				return nil
			}
			if err == nil {
				c.c.Subscribe(name).Wait()
			}
			return err
		})
		if err != nil {
			return connector.FolderRef{}, fmt.Errorf("create folder %q: %w", name, err)
		}
		fi = &folderInfo{name: name, role: f.Role}
		m.mu.Lock()
		m.folders[path] = fi
		m.mu.Unlock()
	}
	return connector.FolderRef{ID: fi.name, Path: path}, nil
}

func (m *Mailbox) ensureListed(ctx context.Context) error {
	m.mu.Lock()
	listed := m.listed
	m.mu.Unlock()
	if listed {
		return nil
	}
	return m.list(ctx)
}

// index loads (once) what a target folder holds.
func (m *Mailbox) index(ctx context.Context, dst connector.FolderRef) (*targetIndex, error) {
	m.mu.Lock()
	ix := m.indexes[dst.ID]
	fi := m.folders[dst.Path]
	m.mu.Unlock()
	if ix != nil {
		return ix, nil
	}
	ix = &targetIndex{byID: map[string][]imap.UID{}, bySize: map[int64][]imap.UID{}}
	if fi == nil || fi.status == nil || fi.status.NumMessages == nil || *fi.status.NumMessages > 0 {
		err := m.p.do(ctx, dst.ID, func(c *conn) error {
			if _, err := c.sel(dst.ID, false); err != nil {
				return err
			}
			if c.c.Mailbox() != nil && c.c.Mailbox().NumMessages == 0 {
				return nil
			}
			msgs, err := c.c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, RFC822Size: true,
				BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}}}).Collect()
			for _, msg := range msgs {
				ix.add(headerMessageID(bodyOf(msg)), msg.RFC822Size, msg.UID)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("index target folder %q: %w", dst.ID, err)
		}
	}
	m.mu.Lock()
	if have := m.indexes[dst.ID]; have != nil {
		ix = have
	} else {
		m.indexes[dst.ID] = ix
	}
	m.mu.Unlock()
	return ix, nil
}

// add indexes a target message by Message-ID and size, and by size alone: a source that cannot
// give a Message-ID with an exact size (Exchange as MIME) is matched by size and content hash.
func (ix *targetIndex) add(msgID string, size int64, uid imap.UID) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if msgID != "" {
		ix.byID[indexKey(msgID, size)] = append(ix.byID[indexKey(msgID, size)], uid)
	}
	ix.bySize[size] = append(ix.bySize[size], uid)
}

// Lookup lists the target messages that may be o: same Message-ID and size; without a Message-ID,
// same size and content hash (o.Hash, which the engine sets for such messages).
func (m *Mailbox) Lookup(ctx context.Context, dst connector.FolderRef, o connector.Object) ([]connector.TargetRef, error) {
	ix, err := m.index(ctx, dst)
	if err != nil {
		return nil, err
	}
	ix.mu.Lock()
	byID := append([]imap.UID(nil), ix.byID[indexKey(o.MessageID, o.Size)]...)
	cands := append([]imap.UID(nil), ix.bySize[o.Size]...)
	ix.mu.Unlock()
	if o.MessageID != "" {
		return refs(byID), nil
	}
	if o.Hash == "" || len(cands) == 0 {
		return nil, nil
	}
	var found []imap.UID
	err = m.p.do(ctx, dst.ID, func(c *conn) error {
		found = found[:0]
		if _, err := c.sel(dst.ID, false); err != nil {
			return err
		}
		var set imap.UIDSet
		for _, u := range cands {
			set.AddNum(u)
		}
		cmd := c.c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			var muid imap.UID
			var sum string
			for item := msg.Next(); item != nil; item = msg.Next() {
				switch it := item.(type) {
				case imapclient.FetchItemDataUID:
					muid = it.UID
				case imapclient.FetchItemDataBodySection:
					h := sha256.New()
					io.Copy(h, it.Literal)
					sum = hex.EncodeToString(h.Sum(nil))
				}
			}
			if sum == o.Hash {
				found = append(found, muid)
			}
		}
		return cmd.Close()
	})
	sort.Slice(found, func(i, j int) bool { return found[i] < found[j] })
	return refs(found), err
}

func refs(uids []imap.UID) []connector.TargetRef {
	out := make([]connector.TargetRef, len(uids))
	for i, u := range uids {
		out[i] = connector.TargetRef{ID: strconv.FormatUint(uint64(u), 10)}
	}
	return out
}

// Put APPENDs the message byte for byte with its flags and internal date; UIDPLUS gives its UID.
func (m *Mailbox) Put(ctx context.Context, dst connector.FolderRef, o connector.Object, r io.Reader) (connector.TargetRef, error) {
	var uid imap.UID
	// No retry here: the body can be read once. A dropped connection is Transient and the engine
	// retries the whole object.
	err := m.once(ctx, dst.ID, func(c *conn) error {
		// Dovecot appends to the selected folder at half the cost of appending to another one,
		// which it must open and close for every message.
		if _, err := c.sel(dst.ID, false); err != nil {
			return err
		}
		cmd := c.c.Append(dst.ID, o.Size, &imap.AppendOptions{Flags: imapFlags(o.Flags), Time: o.Date})
		n, err := io.Copy(cmd, r)
		if err != nil {
			cmd.Close()
			return err
		}
		if n != o.Size {
			cmd.Close()
			return connector.Classify(connector.Permanent, fmt.Errorf("message is %d bytes, the source said %d", n, o.Size))
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		data, err := cmd.Wait()
		if err != nil {
			return err
		}
		uid = data.UID
		return nil
	})
	if err != nil {
		if isNetErr(err) {
			// The body was consumed: the engine retries the whole object, and looks it up again
			// first, since the server may have stored it before the line dropped.
			m.forgetIndex(dst.ID)
			return connector.TargetRef{}, connector.Classify(connector.Transient, err)
		}
		return connector.TargetRef{}, classify(err)
	}
	if ix, err := m.index(ctx, dst); err == nil {
		ix.add(o.MessageID, o.Size, uid)
	}
	return connector.TargetRef{ID: strconv.FormatUint(uint64(uid), 10)}, nil
}

func (m *Mailbox) once(ctx context.Context, mailbox string, fn func(c *conn) error) error {
	c, err := m.p.get(ctx, mailbox)
	if err != nil {
		return err
	}
	err = fn(c)
	m.p.put(c, err)
	return err
}

// SetFlags replaces the target message's flags with the source's.
func (m *Mailbox) SetFlags(ctx context.Context, dst connector.FolderRef, ref connector.TargetRef, o connector.Object) error {
	n, err := strconv.ParseUint(ref.ID, 10, 32)
	if err != nil || n == 0 {
		return connector.Classify(connector.Permanent, fmt.Errorf("target message id %q unknown (no UIDPLUS?)", ref.ID))
	}
	return classify(m.p.do(ctx, dst.ID, func(c *conn) error {
		if _, err := c.sel(dst.ID, false); err != nil {
			return err
		}
		return c.c.Store(imap.UIDSetNum(imap.UID(n)), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: imapFlags(o.Flags)}, nil).Close()
	}))
}

// Delete marks the messages \Deleted and expunges them (with UIDPLUS, only those).
func (m *Mailbox) Delete(ctx context.Context, dst connector.FolderRef, refs []connector.TargetRef) error {
	if len(refs) == 0 {
		return nil
	}
	// A plain EXPUNGE would also remove messages that arrived with \Deleted set: only UID EXPUNGE
	// removes exactly these.
	if !m.p.caps.Has(imap.CapUIDPlus) {
		return connector.Classify(connector.Permanent, errors.New("the target lacks UIDPLUS, so deletions cannot be propagated without risk to other messages"))
	}
	var set imap.UIDSet
	for _, r := range refs {
		n, err := strconv.ParseUint(r.ID, 10, 32)
		if err != nil || n == 0 {
			continue
		}
		set.AddNum(imap.UID(n))
	}
	return m.p.do(ctx, dst.ID, func(c *conn) error {
		if _, err := c.sel(dst.ID, false); err != nil {
			return err
		}
		if err := c.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return err
		}
		return c.c.UIDExpunge(set).Close()
	})
}

// Count returns how many messages a target folder holds now.
func (m *Mailbox) Count(ctx context.Context, dst connector.FolderRef) (int, error) {
	var n int
	err := m.p.do(ctx, "", func(c *conn) error {
		if c.selected == dst.ID {
			// Dovecot answers STATUS on the selected folder from this session's view, which has
			// not yet seen what other connections appended (batches): bring it up to date.
			if err := c.c.Noop().Wait(); err != nil {
				return err
			}
		}
		st, err := c.c.Status(dst.ID, &imap.StatusOptions{NumMessages: true}).Wait()
		if err == nil && st.NumMessages != nil {
			n = int(*st.NumMessages)
		}
		return err
	})
	return n, err
}
