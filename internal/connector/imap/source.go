package imap

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"sort"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ferry-migrate/ferry/internal/connector"
)

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
