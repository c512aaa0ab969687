package imap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ferry-migrate/ferry/internal/connector"
)

// targetIndex maps what a target folder already holds, for dedupe: Message-ID and size, and for
// messages without a Message-ID, size alone (confirmed by hash).
type targetIndex struct {
	mu     sync.Mutex
	byID   map[string][]imap.UID
	bySize map[int64][]imap.UID
}

func indexKey(msgID string, size int64) string { return msgID + "\x00" + strconv.FormatInt(size, 10) }

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
