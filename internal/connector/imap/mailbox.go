package imap

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"

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
	raws    []*batchConn // idle MULTIAPPEND connections
}

type folderInfo struct {
	name    string // on the server
	role    string
	special bool // the role comes from SPECIAL-USE (or it is INBOX), not from the name
	status  *imap.StatusData
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
		role, special := roleOf(path, b.Attrs)
		folders[path] = &folderInfo{name: b.Mailbox, role: role, special: special, status: b.Status}
	}
	settleRoles(folders)
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

func (m *Mailbox) once(ctx context.Context, mailbox string, fn func(c *conn) error) error {
	c, err := m.p.get(ctx, mailbox)
	if err != nil {
		return err
	}
	err = fn(c)
	m.p.put(c, err)
	return err
}
