package imap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/ferry-migrate/ferry/internal/connector"
)

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
