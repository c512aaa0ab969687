// Package memory is an in-memory mailbox connector for tests and demos of the engine. Mailboxes live
// in a process-wide set of named servers; an endpoint's host names the server.
package memory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/model"
)

// Kind is the endpoint kind this connector registers for.
const Kind model.EndpointKind = "memory"

// Message is a stored message.
type Message struct {
	UID   int
	Body  []byte
	Flags []string
	Date  time.Time
	MsgID string
	Mod   int // bumps when flags change
}

// Server is a named set of mailboxes.
type Server struct {
	mu        sync.Mutex
	mailboxes map[string]map[string][]*Message // email -> folder -> messages
	password  string
	dir       string // if set, written messages are also files here, so they survive a restart

	delay  atomic.Int64 // slept on every Put, to make runs observable
	modseq int          // bumped by every flag change, like IMAP CONDSTORE's HIGHESTMODSEQ
	// Hooks for tests.
	running, peak atomic.Int64
	puts          atomic.Int64
}

var (
	mu      sync.Mutex
	servers = map[string]*Server{}
)

// NewServer creates (or replaces) the named server; password "" accepts any.
func NewServer(name, password string) *Server {
	mu.Lock()
	defer mu.Unlock()
	s := &Server{mailboxes: map[string]map[string][]*Message{}, password: password}
	servers[name] = s
	return s
}

func lookup(name string) (*Server, error) {
	mu.Lock()
	defer mu.Unlock()
	s, ok := servers[name]
	if !ok {
		return nil, connector.Classify(connector.Fatal, fmt.Errorf("memory server %q does not exist", name))
	}
	return s, nil
}

// OpenDir creates the named server backed by dir: messages already there are loaded, and every
// message written is saved as dir/<email>/<folder>/<uid>.eml.
func OpenDir(name, password, dir string) (*Server, error) {
	s := NewServer(name, password)
	s.dir = dir
	boxes, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return s, os.MkdirAll(dir, 0o700)
	} else if err != nil {
		return nil, err
	}
	for _, box := range boxes {
		email, _ := url.PathUnescape(box.Name())
		folders, err := os.ReadDir(filepath.Join(dir, box.Name()))
		if err != nil {
			return nil, err
		}
		for _, fd := range folders {
			folder, _ := url.PathUnescape(fd.Name())
			files, err := os.ReadDir(filepath.Join(dir, box.Name(), fd.Name()))
			if err != nil {
				return nil, err
			}
			sort.Slice(files, func(i, j int) bool { return uidOf(files[i].Name()) < uidOf(files[j].Name()) })
			for _, f := range files {
				if !strings.HasSuffix(f.Name(), ".eml") {
					continue
				}
				body, err := os.ReadFile(filepath.Join(dir, box.Name(), fd.Name(), f.Name()))
				if err != nil {
					return nil, err
				}
				s.addLocked(email, folder, body, nil, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
			}
		}
	}
	return s, nil
}

func uidOf(name string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(name, ".eml"))
	return n
}

func (s *Server) save(email, folder string, msg *Message) error {
	d := filepath.Join(s.dir, url.PathEscape(email), url.PathEscape(folder))
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	// Write then rename, so a crash never leaves half a message behind.
	final := filepath.Join(d, strconv.Itoa(msg.UID)+".eml")
	if err := os.WriteFile(final+".tmp", msg.Body, 0o600); err != nil {
		return err
	}
	return os.Rename(final+".tmp", final)
}

// Messages returns copies of the bodies in a folder.
func (s *Server) Messages(email, folder string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, m := range s.mailboxes[email][folder] {
		out = append(out, append([]byte(nil), m.Body...))
	}
	return out
}

// Add appends a message to a folder of a mailbox, creating both as needed.
func (s *Server) Add(email, folder string, body []byte, flags ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(email, folder, body, flags, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
}

func (s *Server) addLocked(email, folder string, body []byte, flags []string, date time.Time) *Message {
	mb := s.mailboxes[email]
	if mb == nil {
		mb = map[string][]*Message{}
		s.mailboxes[email] = mb
	}
	m := &Message{UID: len(mb[folder]) + 1, Body: body, Flags: append([]string(nil), flags...), Date: date, MsgID: messageID(body)}
	mb[folder] = append(mb[folder], m)
	return m
}

// Count returns how many messages a folder holds.
func (s *Server) Count(email, folder string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mailboxes[email][folder])
}

// Total returns how many messages a mailbox holds.
func (s *Server) Total(email string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.mailboxes[email] {
		n += len(f)
	}
	return n
}

// SetDelay makes every Put wait d first, to make runs observable; safe while copies run.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// Peak is the largest number of mailboxes ever being written at once.
func (s *Server) Peak() int64 { return s.peak.Load() }

// Puts counts every message written.
func (s *Server) Puts() int64 { return s.puts.Load() }

// Connector implements connector.Connector over the named servers.
type Connector struct{}

func init() { connector.Register(Kind, Connector{}) }

func (Connector) open(sd connector.Side) (*Server, error) {
	s, err := lookup(sd.Endpoint.Settings.Host)
	if err != nil {
		return nil, err
	}
	pw := sd.Password
	if pw == "" && sd.Endpoint.Secret != nil {
		pw = sd.Endpoint.Secret.AdminPassword
	}
	if s.password != "" && pw != s.password {
		return nil, connector.Classify(connector.Fatal, fmt.Errorf("%s: authentication failed", sd.Email))
	}
	return s, nil
}

func (c Connector) Verify(ctx context.Context, sd connector.Side) error {
	_, err := c.open(sd)
	return err
}

func (c Connector) OpenSource(ctx context.Context, sd connector.Side) (connector.MailboxSource, error) {
	s, err := c.open(sd)
	if err != nil {
		return nil, err
	}
	return &mailbox{s: s, email: sd.Email}, nil
}

func (c Connector) OpenTarget(ctx context.Context, sd connector.Side) (connector.MailboxTarget, error) {
	s, err := c.open(sd)
	if err != nil {
		return nil, err
	}
	n := s.running.Add(1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return &mailbox{s: s, email: sd.Email, target: true}, nil
}

type mailbox struct {
	s      *Server
	email  string
	target bool
	closed bool
}

func (m *mailbox) Close() error {
	if m.target && !m.closed {
		m.s.running.Add(-1)
	}
	m.closed = true
	return nil
}

func (m *mailbox) Folders(ctx context.Context) ([]connector.Folder, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	var out []connector.Folder
	for path, msgs := range m.s.mailboxes[m.email] {
		out = append(out, connector.Folder{Path: path, Messages: len(msgs)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (m *mailbox) List(ctx context.Context, f connector.Folder, c connector.Cursor) (iter.Seq2[connector.Object, error], func() connector.Cursor) {
	// The cursor is "uid:modseq": messages above the uid are new, those above the modseq changed.
	m.s.mu.Lock()
	msgs := make([]*Message, 0, len(m.s.mailboxes[m.email][f.Path]))
	for _, msg := range m.s.mailboxes[m.email][f.Path] {
		cp := *msg
		msgs = append(msgs, &cp)
	}
	next := connector.Cursor(fmt.Sprintf("%d:%d", len(msgs), m.s.modseq))
	m.s.mu.Unlock()
	var sinceUID, sinceMod int
	fmt.Sscanf(string(c), "%d:%d", &sinceUID, &sinceMod)
	seq := func(yield func(connector.Object, error) bool) {
		for _, msg := range msgs {
			if msg.UID <= sinceUID && msg.Mod <= sinceMod {
				continue
			}
			if err := ctx.Err(); err != nil {
				yield(connector.Object{}, err)
				return
			}
			if !yield(object(msg), nil) {
				return
			}
		}
	}
	return seq, func() connector.Cursor { return next }
}

func object(msg *Message) connector.Object {
	return connector.Object{ID: strconv.Itoa(msg.UID), Version: strconv.Itoa(msg.Mod), Size: int64(len(msg.Body)),
		MessageID: msg.MsgID, Flags: msg.Flags, Date: msg.Date}
}

func (m *mailbox) Open(ctx context.Context, f connector.Folder, o connector.Object) (io.ReadCloser, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	uid, _ := strconv.Atoi(o.ID)
	msgs := m.s.mailboxes[m.email][f.Path]
	if uid < 1 || uid > len(msgs) {
		return nil, connector.Classify(connector.Permanent, fmt.Errorf("message %s vanished from %s", o.ID, f.Path))
	}
	return io.NopCloser(bytes.NewReader(msgs[uid-1].Body)), nil
}

func (m *mailbox) EnsureFolder(ctx context.Context, f connector.Folder) (connector.FolderRef, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	mb := m.s.mailboxes[m.email]
	if mb == nil {
		mb = map[string][]*Message{}
		m.s.mailboxes[m.email] = mb
	}
	if _, ok := mb[f.Path]; !ok {
		mb[f.Path] = nil
	}
	return connector.FolderRef{ID: f.Path, Path: f.Path}, nil
}

func (m *mailbox) Lookup(ctx context.Context, dst connector.FolderRef, o connector.Object) ([]connector.TargetRef, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	var out []connector.TargetRef
	for _, msg := range m.s.mailboxes[m.email][dst.Path] {
		if int64(len(msg.Body)) != o.Size {
			continue
		}
		if (o.MessageID != "" && msg.MsgID == o.MessageID) || (o.MessageID == "" && o.Hash != "" && Hash(msg.Body) == o.Hash) {
			out = append(out, connector.TargetRef{ID: strconv.Itoa(msg.UID)})
		}
	}
	return out, nil
}

func (m *mailbox) Put(ctx context.Context, dst connector.FolderRef, o connector.Object, body io.Reader) (connector.TargetRef, error) {
	if d := time.Duration(m.s.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return connector.TargetRef{}, ctx.Err()
		}
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return connector.TargetRef{}, err
	}
	if bytes.Contains(data, []byte("X-Reject: yes")) {
		return connector.TargetRef{}, connector.Classify(connector.Permanent, errors.New("target refused the message: X-Reject header"))
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	msg := m.s.addLocked(m.email, dst.Path, data, o.Flags, o.Date)
	if m.s.dir != "" {
		if err := m.s.save(m.email, dst.Path, msg); err != nil {
			return connector.TargetRef{}, err
		}
	}
	m.s.puts.Add(1)
	return connector.TargetRef{ID: strconv.Itoa(msg.UID)}, nil
}

func (m *mailbox) SetFlags(ctx context.Context, dst connector.FolderRef, ref connector.TargetRef, o connector.Object) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	uid, _ := strconv.Atoi(ref.ID)
	msgs := m.s.mailboxes[m.email][dst.Path]
	if uid < 1 || uid > len(msgs) {
		return connector.Classify(connector.Permanent, fmt.Errorf("target message %s vanished", ref.ID))
	}
	msgs[uid-1].Flags = append([]string(nil), o.Flags...)
	return nil
}

func (m *mailbox) Count(ctx context.Context, dst connector.FolderRef) (int, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return len(m.s.mailboxes[m.email][dst.Path]), nil
}

// Delete removes target messages; their UIDs stay taken, as on an IMAP server.
func (m *mailbox) Delete(ctx context.Context, dst connector.FolderRef, refs []connector.TargetRef) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	msgs := m.s.mailboxes[m.email][dst.Path]
	gone := map[int]bool{}
	for _, r := range refs {
		uid, _ := strconv.Atoi(r.ID)
		gone[uid] = true
	}
	kept := msgs[:0]
	for _, msg := range msgs {
		if !gone[msg.UID] {
			kept = append(kept, msg)
		}
	}
	m.s.mailboxes[m.email][dst.Path] = kept
	return nil
}

// Remove deletes a source message, as a user would between passes.
func (s *Server) Remove(email, folder string, uid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs := s.mailboxes[email][folder]
	for i, msg := range msgs {
		if msg.UID == uid {
			s.mailboxes[email][folder] = append(msgs[:i:i], msgs[i+1:]...)
			return
		}
	}
}

// SetFlags changes a source message's flags, as a user would between passes.
func (s *Server) SetFlags(email, folder string, uid int, flags ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := s.mailboxes[email][folder][uid-1]
	s.modseq++
	msg.Flags, msg.Mod = append([]string(nil), flags...), s.modseq
}

// Flags returns a message's flags.
func (s *Server) Flags(email, folder string, uid int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mailboxes[email][folder][uid-1].Flags...)
}

// messageID pulls the Message-ID header out of a raw message, crudely: enough for test data.
func messageID(body []byte) string {
	for _, line := range bytes.Split(body, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		if len(line) > 11 && bytes.EqualFold(line[:11], []byte("message-id:")) {
			return string(bytes.TrimSpace(line[11:]))
		}
	}
	return ""
}

// Hash is the content hash the engine records for a body.
func Hash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
