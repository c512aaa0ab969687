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
	order   map[string][]string          // folder path -> item ids in listing order, for batched export
	batches map[string]map[string][]byte // folder path -> the last exported batch, by item id
}

func (s *source) Formats() []connector.Format { return []connector.Format{connector.FormatExchange} }

func (s *source) UseFormat(f connector.Format) error {
	if f != connector.FormatExchange {
		return fmt.Errorf("exo source: format %s is not built yet", f)
	}
	s.format = f
	return nil
}

func (s *source) Folders(ctx context.Context) ([]connector.Folder, error) {
	nodes, err := s.tree(ctx)
	if err != nil {
		return nil, explain(err, s.side, "list the folders of "+s.user)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = map[string]string{}
	out := make([]connector.Folder, 0, len(nodes))
	for _, n := range nodes {
		s.ids[n.path] = n.id
		out = append(out, n.folder())
	}
	return out, nil
}

// List yields a folder's items, all of them or (with a cursor, the item delta link) those changed
// since. A delta link the service no longer knows starts a full listing: the watermarks keep it
// from copying anything twice.
func (s *source) List(ctx context.Context, f connector.Folder, c connector.Cursor) (iter.Seq2[connector.Object, error], func() connector.Cursor) {
	s.mu.Lock()
	id := s.ids[f.Path]
	s.order[f.Path] = nil
	s.mu.Unlock()
	var next func() string
	seq := func(yield func(connector.Object, error) bool) {
		if id == "" {
			yield(connector.Object{}, fmt.Errorf("folder %q is not in the mailbox's folder list", f.Path))
			return
		}
		link := string(c)
		for attempt := 0; ; attempt++ {
			items, nx := s.c.MailboxItemsDelta(ctx, s.mbxID, id, link)
			next = nx
			restart := false
			for it, err := range items {
				if err != nil {
					if link != "" && attempt == 0 && (graph.IsStatus(err, http.StatusGone) || graph.IsStatus(err, http.StatusBadRequest)) {
						restart = true
						break
					}
					yield(connector.Object{}, explain(err, s.side, "list folder "+f.Path))
					return
				}
				if it.Removed != nil {
					continue
				}
				s.mu.Lock()
				s.order[f.Path] = append(s.order[f.Path], it.ID)
				s.mu.Unlock()
				if !yield(connector.Object{ID: it.ID, Version: it.ChangeKey, Size: it.Size}, nil) {
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

// Open returns an item's full-fidelity data. Items are exported 20 at a time: the item asked for
// and the next ones of the listing, which the engine asks for next.
func (s *source) Open(ctx context.Context, f connector.Folder, o connector.Object) (io.ReadCloser, error) {
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
