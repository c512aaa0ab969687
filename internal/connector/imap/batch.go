package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/connector/imap/wire"
	"github.com/ferry-migrate/ferry/internal/model"
)

// Batches of small messages go in one MULTIAPPEND (RFC 3502): Dovecot's cost is mostly per APPEND
// command (a transaction on the folder's index and uidlist), so 50 messages in one command cost
// it about half of what 50 commands do. go-imap cannot send MULTIAPPEND, so a batch goes over a
// connection of its own, spoken by package wire, signed in and secured as the pool's are.
const batchSize = 50

// MaxBatch is batchSize when the server offers MULTIAPPEND, LITERAL+ (literals need no round trip
// each) and UIDPLUS (the new UIDs come back), else 0.
func (m *Mailbox) MaxBatch() int {
	c := m.p.caps
	if c.Has(imap.CapMultiAppend) && c.Has(imap.CapLiteralPlus) && c.Has(imap.CapUIDPlus) {
		return batchSize
	}
	return 0
}

// PutBatch appends objs in one MULTIAPPEND; the server stores all of them or none.
func (m *Mailbox) PutBatch(ctx context.Context, dst connector.FolderRef, objs []connector.Object, open func(i int) (io.Reader, int64, error)) ([]connector.TargetRef, error) {
	if len(objs) == 0 {
		return nil, nil
	}
	uids, err := m.batch(ctx, dst.ID, objs, open)
	if err != nil {
		if isNetErr(err) {
			m.forgetIndex(dst.ID) // the server may have stored the batch before the line dropped
			return nil, connector.Classify(connector.Transient, err)
		}
		return nil, err
	}
	if ix, err := m.index(ctx, dst); err == nil {
		for i, o := range objs {
			ix.add(o.MessageID, o.Size, uids[i])
		}
	}
	out := make([]connector.TargetRef, len(uids))
	for i, u := range uids {
		out[i] = connector.TargetRef{ID: strconv.FormatUint(uint64(u), 10)}
	}
	return out, nil
}

// batch sends one MULTIAPPEND on a batch connection, which counts against the mailbox's connections.
func (m *Mailbox) batch(ctx context.Context, mailbox string, objs []connector.Object, open func(i int) (io.Reader, int64, error)) ([]imap.UID, error) {
	select {
	case m.p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-m.p.sem }()
	rc, err := m.rawConn(ctx, mailbox)
	if err != nil {
		return nil, err
	}
	uids, err := rc.MultiAppend(mailbox, len(objs), func(i int) (wire.Message, error) {
		body, size, err := open(i)
		return wire.Message{ID: objs[i].ID, Flags: imapFlags(objs[i].Flags), Date: objs[i].Date, Size: size, Body: body}, err
	})
	if err != nil {
		rc.close() // whatever broke, the command may be half sent
		return nil, err
	}
	m.mu.Lock()
	m.raws = append(m.raws, rc)
	m.mu.Unlock()
	return uids, nil
}

// forgetIndex drops a folder's cached index, so the next lookup reads what the server holds.
func (m *Mailbox) forgetIndex(name string) {
	m.mu.Lock()
	delete(m.indexes, name)
	m.mu.Unlock()
}

// batchConn is a connection for batches: a wire connection holding one of the host's slots.
type batchConn struct {
	*wire.Conn
	release func()
}

func (rc *batchConn) close() {
	rc.Close()
	rc.release()
}

// rawConn returns an idle batch connection, preferring one with mailbox selected, or dials one.
func (m *Mailbox) rawConn(ctx context.Context, mailbox string) (*batchConn, error) {
	m.mu.Lock()
	pick := -1
	for i, rc := range m.raws {
		if pick < 0 || rc.Selected == mailbox {
			pick = i
		}
	}
	var rc *batchConn
	if pick >= 0 {
		rc = m.raws[pick]
		m.raws = append(m.raws[:pick], m.raws[pick+1:]...)
	}
	m.mu.Unlock()
	if rc == nil {
		var err error
		if rc, err = dialBatch(ctx, m.p.cf, m.p.caps); err != nil {
			return nil, err
		}
	}
	if err := rc.Select(mailbox); err != nil {
		rc.close()
		return nil, err
	}
	return rc, nil
}

func (m *Mailbox) closeRaws() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rc := range m.raws {
		rc.Logout()
		rc.release()
	}
	m.raws = nil
}

// dialBatch connects as dial does (host slot, security, certificate checks) and signs in with the
// same mechanism.
func dialBatch(ctx context.Context, cf Config, caps imap.CapSet) (*batchConn, error) {
	release, tc, err := cf.slotAndTLS(ctx)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", cf.addr())
	if err != nil {
		release()
		return nil, fmt.Errorf("connect to %s: %w", cf.addr(), err)
	}
	rc := &batchConn{Conn: wire.New(nc), release: release}
	if err := rc.open(ctx, cf, tc, caps); err != nil {
		rc.close()
		return nil, err
	}
	return rc, nil
}

func (rc *batchConn) open(ctx context.Context, cf Config, tc *tls.Config, caps imap.CapSet) error {
	if cf.implicitTLS() {
		if err := rc.Handshake(tc); err != nil {
			return err
		}
	}
	if err := rc.Greeting(); err != nil {
		return err
	}
	if cf.Security == model.SecuritySTARTTLS {
		if err := rc.StartTLS(tc); err != nil {
			return err
		}
	}
	sc, err := cf.mechanism(ctx, caps)
	if err == nil {
		if sc != nil {
			err = rc.Authenticate(sc)
		} else {
			err = rc.Login(cf.User, cf.Password)
		}
	}
	return cf.signInError(err)
}

// OpenBatch fetches a batch's bodies in one UID FETCH (BODY.PEEK[]), streaming each in turn. The
// server answers in UID order, as List gave them; a message gone since, or a body that does not
// come after its UID, is an error, and the engine then copies the batch one by one.
func (m *Mailbox) OpenBatch(ctx context.Context, f connector.Folder, objs []connector.Object) (func() (io.Reader, int64, error), func() error, error) {
	fi, err := m.info(ctx, f.Path)
	if err != nil {
		return nil, nil, err
	}
	uids := make([]imap.UID, len(objs))
	var set imap.UIDSet
	for i, o := range objs {
		if uids[i], err = parseID(o.ID); err != nil {
			return nil, nil, connector.Classify(connector.Permanent, err)
		}
		if i > 0 && uids[i] <= uids[i-1] {
			return nil, nil, fmt.Errorf("batch not in UID order at %s", o.ID)
		}
		set.AddNum(uids[i])
	}
	cn, err := m.p.get(ctx, fi.name)
	if err != nil {
		return nil, nil, err
	}
	if _, err := cn.sel(fi.name, true); err != nil {
		m.p.put(cn, err)
		return nil, nil, err
	}
	cmd := cn.c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	i, closed := 0, false
	next := func() (io.Reader, int64, error) {
		if i >= len(uids) {
			return nil, 0, errors.New("read past the end of a batch")
		}
		want := objs[i]
		msg := cmd.Next() // discards what is left of the previous message
		if msg == nil {
			return nil, 0, fmt.Errorf("message %s is gone from %q", want.ID, f.Path)
		}
		var uid imap.UID
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil {
					continue
				}
				// Only a UID ahead of the body proves whose body it is (Dovecot sends it first).
				if uid != uids[i] {
					return nil, 0, fmt.Errorf("message %s: the server sent UID %d with the body, so it may be gone from %q", want.ID, uid, f.Path)
				}
				i++
				return it.Literal, it.Literal.Size(), nil
			}
		}
		return nil, 0, fmt.Errorf("message %s came without its body: it may be gone from %q", want.ID, f.Path)
	}
	done := func() error {
		if closed {
			return nil
		}
		closed = true
		err := cmd.Close()
		m.p.put(cn, err)
		return err
	}
	return next, done, nil
}
