package exo

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"iter"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/graph"
)

// source reads a mailbox in Exchange's full-fidelity format.
type source struct {
	*mailbox
	side   connector.Side
	format connector.Format

	mu      sync.Mutex
	ids     map[string]string            // folder path -> folder id
	classes map[string]string            // folder path -> folder class
	order   map[string][]string          // folder path -> item ids in listing order, for batched export
	batches map[string]map[string][]byte // folder path -> the last exported batch, by item id
}

// The source reads Exchange's own format for an Exchange target, and MIME for any other.
func (s *source) Formats() []connector.Format {
	if !importExportOffered(s.side.Endpoint.Settings) && !s.archive {
		return []connector.Format{connector.FormatItems, connector.FormatMIME}
	}
	return []connector.Format{connector.FormatExchange, connector.FormatItems, connector.FormatMIME}
}

func (s *source) UseFormat(f connector.Format) error {
	s.format = f
	return nil
}

// mime says whether mail is read as MIME (for a MIME target, or alongside the workload APIs).
func (s *source) mime() bool {
	return s.format == connector.FormatMIME || s.format == connector.FormatItems
}

func (s *source) items() bool { return s.format == connector.FormatItems }

func (s *source) Folders(ctx context.Context) ([]connector.Folder, error) {
	tree := s.tree
	if s.items() {
		tree = s.itemTree
	}
	nodes, err := tree(ctx)
	if err != nil {
		return nil, explain(err, s.side, "list the folders of "+s.user)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids, s.classes = map[string]string{}, map[string]string{}
	out := make([]connector.Folder, 0, len(nodes))
	for _, n := range nodes {
		if s.format == connector.FormatMIME && !isMail(n.class) {
			continue // calendars, contacts and tasks have no MIME form
		}
		s.ids[n.path], s.classes[n.path] = n.id, n.class
		out = append(out, n.folder())
	}
	return out, nil
}

// List yields a folder's items, all of them or (with a cursor, the delta link) those changed
// since: full-fidelity items for an Exchange target, messages with their state for a MIME one.
func (s *source) List(ctx context.Context, f connector.Folder, c connector.Cursor) (iter.Seq2[connector.Object, error], func() connector.Cursor) {
	s.mu.Lock()
	id := s.ids[f.Path]
	s.order[f.Path] = nil
	class := s.classes[f.Path]
	s.mu.Unlock()
	if a, ok := apiOf(class); ok && s.items() {
		return s.listItems(ctx, a, f, id)
	}
	if s.mime() {
		// Graph gives no MIME size in a listing, so the Message-ID is left out: the engine then
		// identifies each new message by its content hash and exact size, which it reads first.
		return listDelta(ctx, s, f, id, c, func(link string) (func(func(graph.Message, error) bool), func() string) {
			return s.c.MessagesDelta(ctx, s.user, id, link)
		}, func(m graph.Message) (connector.Object, bool) {
			o := connector.Object{ID: m.ID, Version: m.ChangeKey, Flags: imapFlags(m)}
			if m.ReceivedDateTime != nil {
				o.Date = *m.ReceivedDateTime
			}
			return o, m.Removed == nil
		})
	}
	return listDelta(ctx, s, f, id, c, func(link string) (func(func(graph.MailboxItem, error) bool), func() string) {
		return s.c.MailboxItemsDelta(ctx, s.mbxID, id, link)
	}, func(it graph.MailboxItem) (connector.Object, bool) {
		if it.Removed != nil {
			return connector.Object{}, false
		}
		s.mu.Lock()
		s.order[f.Path] = append(s.order[f.Path], it.ID) // the export batches follow this order
		s.mu.Unlock()
		o := connector.Object{ID: it.ID, Version: it.ChangeKey, Size: it.Size}
		if it.CreatedDateTime != nil {
			o.Date = *it.CreatedDateTime
		}
		return o, true
	})
}

// listDelta runs a delta query from the cursor and yields the objects that object makes of its
// entries (skipping those it rejects: removals). A delta link the service no longer knows starts
// a full listing: the watermarks keep it from copying anything twice.
func listDelta[T any](ctx context.Context, s *source, f connector.Folder, id string, c connector.Cursor,
	query func(link string) (func(func(T, error) bool), func() string), object func(T) (connector.Object, bool)) (iter.Seq2[connector.Object, error], func() connector.Cursor) {
	var next func() string
	seq := func(yield func(connector.Object, error) bool) {
		if id == "" {
			yield(connector.Object{}, fmt.Errorf("folder %q is not in the mailbox's folder list", f.Path))
			return
		}
		link := string(c)
		for attempt := 0; ; attempt++ {
			entries, nx := query(link)
			next = nx
			restart := false
			for e, err := range entries {
				if err != nil {
					if link != "" && attempt == 0 && (graph.IsStatus(err, http.StatusGone) || graph.IsStatus(err, http.StatusBadRequest)) {
						restart = true
						break
					}
					yield(connector.Object{}, explain(err, s.side, "list folder "+f.Path))
					return
				}
				if o, ok := object(e); ok && !yield(o, nil) {
					return
				}
			}
			if !restart {
				return
			}
			link = ""
		}
	}
	return seq, func() connector.Cursor {
		if next == nil {
			return ""
		}
		return connector.Cursor(next())
	}
}

// imapFlags maps a message's state to IMAP flags: read is \Seen, a follow-up flag is \Flagged,
// a draft \Draft, replied (to all) \Answered, forwarded $Forwarded, and each category a keyword
// (spaces and other characters IMAP forbids in a keyword become _).
func imapFlags(m graph.Message) []string {
	var flags []string
	if m.IsRead {
		flags = append(flags, `\Seen`)
	}
	if m.IsDraft {
		flags = append(flags, `\Draft`)
	}
	for _, p := range m.SingleValueExtendedProperties {
		if strings.EqualFold(p.ID, graph.PropLastVerb) {
			switch p.Value {
			case graph.VerbReply, graph.VerbReplyAll:
				flags = append(flags, `\Answered`)
			case graph.VerbForward:
				flags = append(flags, "$Forwarded")
			}
		}
	}
	if m.Flag != nil && m.Flag.FlagStatus == "flagged" {
		flags = append(flags, `\Flagged`)
	}
	for _, c := range m.Categories {
		flags = append(flags, keyword(c))
	}
	return flags
}

func keyword(category string) string {
	b := []byte(category)
	for i, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			b[i] = '_'
		}
	}
	return string(b)
}

// Open returns an item's full-fidelity data. Items are exported 20 at a time: the item asked for
// and the next ones of the listing, which the engine asks for next.
func (s *source) Open(ctx context.Context, f connector.Folder, o connector.Object) (io.ReadCloser, error) {
	s.mu.Lock()
	class, id := s.classes[f.Path], s.ids[f.Path]
	s.mu.Unlock()
	if a, ok := apiOf(class); ok && s.items() {
		return s.openItem(ctx, a, id, o)
	}
	if s.mime() {
		// Streamed as the service serves it: a message is never held whole.
		rc, err := s.c.MessageMIME(ctx, s.user, o.ID)
		if err != nil {
			return nil, explain(err, s.side, "read message "+o.ID)
		}
		return rc, nil
	}
	s.mu.Lock()
	data, ok := s.batches[f.Path][o.ID]
	var ids []string
	if !ok {
		s.batches[f.Path] = map[string][]byte{} // the folder's previous batch was consumed or skipped
		order := s.order[f.Path]
		i := slices.Index(order, o.ID)
		if i < 0 {
			ids = []string{o.ID}
		} else {
			ids = order[i:min(len(order), i+graph.MaxExport)]
		}
	}
	s.mu.Unlock()
	if !ok {
		items, err := s.c.ExportItems(ctx, s.mbxID, ids)
		if err != nil {
			return nil, explain(err, s.side, "export items of "+s.user)
		}
		s.mu.Lock()
		for _, it := range items {
			if it.Error != nil {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(it.Data)
			if err != nil {
				s.mu.Unlock()
				return nil, connector.Classify(connector.Permanent, fmt.Errorf("item %s: exported data is not base64: %w", it.ItemID, err))
			}
			s.batches[f.Path][it.ItemID] = raw
		}
		data, ok = s.batches[f.Path][o.ID]
		s.mu.Unlock()
		if !ok {
			reason := "not in the export answer"
			for _, it := range items {
				if it.ItemID == o.ID && it.Error != nil {
					reason = it.Error.Code + ": " + it.Error.Message
				}
			}
			return nil, connector.Classify(connector.Permanent, fmt.Errorf("export item %s: %s", o.ID, reason))
		}
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (s *source) Close() error { return nil }
