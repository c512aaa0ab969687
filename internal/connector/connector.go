// Package connector defines what every protocol implements, and the registry that finds the
// implementation for an endpoint kind. Adding a protocol = one package that calls Register.
package connector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sort"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
)

// Side is one end of one item's migration: the endpoint and the mailbox or user on it.
type Side struct {
	Endpoint model.Endpoint // with its Secret opened
	Email    string
	Login    string // defaults to Email
	Password string // per-item password; empty means use the endpoint's admin credentials
	// Token, when set, gives a fresh OAuth access token for each sign-in (XOAUTH2), so a
	// migration that outlives one token (about an hour at Google and Microsoft) can still
	// reconnect. It is set only by the command line, which runs the administrator's command.
	Token func(context.Context) (string, error)
	// Workload is what is moved: the mailbox (the default) or its archive.
	Workload model.Workload
}

// Folder is a mailbox folder, its path using "/" between levels whatever the server's separator.
type Folder struct {
	Path     string `json:"path"`
	Role     string `json:"role,omitempty"` // inbox, sent, drafts, trash, junk, archive
	Messages int    `json:"messages"`
	// Class is Exchange's folder type (IPF.Note, IPF.Appointment, IPF.Contact, IPF.Task…); empty
	// for a server that has only mail folders.
	Class string `json:"class,omitempty"`
}

// Object is one message (or item) as listed by a source.
type Object struct {
	ID        string    // stable within the folder (IMAP UIDVALIDITY/UID, Graph id)
	Version   string    // changes when flags or content change (MODSEQ, changeKey)
	Size      int64     // bytes
	MessageID string    // Message-ID header, if any
	Flags     []string  // IMAP-style: \Seen, \Flagged, keywords
	Date      time.Time // received (internal) date
	Hash      string    // SHA-256 of the content, set by the engine for messages without a Message-ID
}

// Cursor is an opaque per-folder change marker; "" means enumerate everything.
type Cursor string

// ErrResync, yielded by List before the objects, says the folder's previous ids are void (an IMAP
// UIDVALIDITY change): the engine forgets the folder's watermarks and matches every object against
// the target again. It is a signal, not a failure; the listing goes on.
var ErrResync = errors.New("folder ids changed: full re-check")

// FolderRef is a folder as the target knows it.
type FolderRef struct {
	ID   string
	Path string
}

// TargetRef is a written object as the target knows it.
type TargetRef struct{ ID string }

// MailboxSource reads a mailbox.
type MailboxSource interface {
	Folders(ctx context.Context) ([]Folder, error)
	// List yields the folder's objects, or only those changed since c; the returned function gives the
	// cursor to store once the listing has been consumed without error.
	List(ctx context.Context, f Folder, c Cursor) (iter.Seq2[Object, error], func() Cursor)
	Open(ctx context.Context, f Folder, o Object) (io.ReadCloser, error)
	Close() error
}

// MailboxTarget writes a mailbox.
type MailboxTarget interface {
	EnsureFolder(ctx context.Context, f Folder) (FolderRef, error)
	// Lookup lists the target objects that may be o (Message-ID and size, content hash when o.Hash
	// is set, or a stamped source id), so a lost watermark never becomes a duplicate. The engine takes
	// the first one no other source object has claimed: two identical source messages stay two.
	Lookup(ctx context.Context, dst FolderRef, o Object) ([]TargetRef, error)
	Put(ctx context.Context, dst FolderRef, o Object, body io.Reader) (TargetRef, error)
	SetFlags(ctx context.Context, dst FolderRef, ref TargetRef, o Object) error
	// Delete removes objects from the target, when deletions at the source are propagated.
	Delete(ctx context.Context, dst FolderRef, refs []TargetRef) error
	Count(ctx context.Context, dst FolderRef) (int, error)
	Close() error
}

// Format is how an object's content travels from source to target.
type Format string

const (
	// FormatMIME is an RFC 5322 message, what every mail server speaks.
	FormatMIME Format = "mime"
	// FormatExchange is Exchange's full-fidelity item format, from exportItems to an import
	// session: every item type and property, calendar items without sending invitations.
	FormatExchange Format = "exchange"
	// FormatItems is Microsoft 365's workload APIs, where the import/export API is not offered:
	// mail as MIME, calendar items, contacts and tasks as their Graph JSON.
	FormatItems Format = "items"
)

// Formats is implemented by sources and targets that speak more than MIME.
type Formats interface {
	// Formats lists the formats the side can read or write, best first.
	Formats() []Format
	// UseFormat fixes the format for the rest of the copy.
	UseFormat(Format) error
}

// Negotiate picks the best format both sides speak (the target's order wins) and tells both. A
// side that does not implement Formats speaks MIME only.
func Negotiate(src MailboxSource, dst MailboxTarget) (Format, error) {
	formats := func(v any) []Format {
		if f, ok := v.(Formats); ok {
			return f.Formats()
		}
		return []Format{FormatMIME}
	}
	have := formats(src)
	for _, f := range formats(dst) {
		for _, g := range have {
			if f != g {
				continue
			}
			for _, side := range []any{src, dst} {
				if s, ok := side.(Formats); ok {
					if err := s.UseFormat(f); err != nil {
						return "", err
					}
				}
			}
			return f, nil
		}
	}
	return "", Classify(Fatal, fmt.Errorf("the source speaks %v and the target %v: no format in common", have, formats(dst)))
}

// Updater is a target that rewrites a changed object whole (Exchange's import in update mode)
// instead of only its flags. It returns the object's new reference.
type Updater interface {
	Update(ctx context.Context, dst FolderRef, ref TargetRef, o Object, body io.Reader) (TargetRef, error)
}

// Acceptor is a target that refuses some objects outright (too large, say): the engine asks it
// before reading anything from the source, and records the refusal as the object's error.
type Acceptor interface {
	Accept(o Object) error
}

// Connector opens sources and targets of one endpoint kind.
type Connector interface {
	// Verify checks credentials and access for one side; the error says what is missing.
	Verify(ctx context.Context, s Side) error
	OpenSource(ctx context.Context, s Side) (MailboxSource, error)
	OpenTarget(ctx context.Context, s Side) (MailboxTarget, error)
}

var (
	mu       sync.RWMutex
	registry = map[model.EndpointKind]Connector{}
)

// Register makes a connector available for an endpoint kind.
func Register(kind model.EndpointKind, c Connector) {
	mu.Lock()
	defer mu.Unlock()
	registry[kind] = c
}

// ErrNoConnector means this build has no connector for the kind.
var ErrNoConnector = errors.New("no connector")

// For returns the connector of an endpoint kind.
func For(kind model.EndpointKind) (Connector, error) {
	mu.RLock()
	defer mu.RUnlock()
	if c, ok := registry[kind]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w for endpoint kind %q in this build (have: %v)", ErrNoConnector, kind, kindsLocked())
}

// Kinds lists the registered kinds.
func Kinds() []model.EndpointKind {
	mu.RLock()
	defer mu.RUnlock()
	return kindsLocked()
}

func kindsLocked() []model.EndpointKind {
	out := make([]model.EndpointKind, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// BatchPutter is a target that stores several objects in one request (IMAP's MULTIAPPEND), which
// costs its server far less per object than one request each.
type BatchPutter interface {
	// MaxBatch is how many objects of at most MaxBatchObject bytes one PutBatch takes; 0 means
	// the target cannot batch now.
	MaxBatch() int
	// PutBatch stores objs in order, all or none, streaming object i's body from open(i) with its
	// exact size. On an error the engine stores each object on its own.
	PutBatch(ctx context.Context, dst FolderRef, objs []Object, open func(i int) (io.Reader, int64, error)) ([]TargetRef, error)
}

// MaxBatchObject is the largest object worth batching: above it the bytes cost more than the request.
const MaxBatchObject = 1 << 20

// BatchOpener is a source that streams several objects' bodies in one request, for a batch.
type BatchOpener interface {
	// OpenBatch asks for objs' bodies at once. next returns the next one's body, in objs' order,
	// with its exact size; it is valid until the following call. done ends the request.
	OpenBatch(ctx context.Context, f Folder, objs []Object) (next func() (io.Reader, int64, error), done func() error, err error)
}
