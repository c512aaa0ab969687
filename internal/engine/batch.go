package engine

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/model"
)

// batchable reports whether a new object may wait for a batch: it has a Message-ID (one without
// is hashed before its lookup) and a known size small enough for batching to pay.
func batchable(obj connector.Object) bool {
	return obj.MessageID != "" && obj.Size > 0 && obj.Size <= connector.MaxBatchObject
}

// putBatch copies objects as copyObject does, but sends those the target lacks in one request.
// If that request fails, each of them is copied on its own, so a bad message costs only itself
// and the target's lookup keeps a batch the server did store from being stored twice.
func putBatch(ctx context.Context, src connector.MailboxSource, dst connector.MailboxTarget, bp connector.BatchPutter, f connector.Folder, ref connector.FolderRef, objs []connector.Object, claimed map[string]bool) ([]model.Watermark, []error) {
	ws := make([]model.Watermark, len(objs))
	errs := make([]error, len(objs))
	var send []int // indexes into objs of what the target lacks
	for i, obj := range objs {
		ws[i] = model.Watermark{Folder: f.Path, SourceID: obj.ID, Version: obj.Version, Size: obj.Size}
		if a, ok := dst.(connector.Acceptor); ok {
			if errs[i] = a.Accept(obj); errs[i] != nil {
				continue
			}
		}
		cands, err := dst.Lookup(ctx, ref, obj)
		if err != nil {
			errs[i] = fmt.Errorf("look up target: %w", err)
			continue
		}
		found := false
		for _, c := range cands {
			if !claimed[c.ID] {
				ws[i].TargetID, claimed[c.ID], found = c.ID, true, true
				break
			}
		}
		if !found {
			send = append(send, i)
		}
	}
	if len(send) == 0 {
		return ws, errs
	}
	sent := make([]connector.Object, len(send))
	hashes := make([]hash.Hash, len(send))
	counts := make([]*countingReader, len(send))
	// Bodies come in one request from a source that can (BatchOpener), else one Open each.
	bo, together := src.(connector.BatchOpener)
	var next func() (io.Reader, int64, error)
	var done func() error
	var body io.ReadCloser
	closeBodies := func() {
		if body != nil {
			body.Close() // frees the source connection for the next message
			body = nil
		}
		if done != nil {
			done()
			done = nil
		}
	}
	defer closeBodies()
	for k, i := range send {
		sent[k] = objs[i]
	}
	open := func(k int) (io.Reader, int64, error) {
		obj := sent[k]
		var r io.Reader
		size := obj.Size
		if together {
			if next == nil {
				n, d, err := bo.OpenBatch(ctx, f, sent)
				if err != nil {
					return nil, 0, fmt.Errorf("read source messages: %w", err)
				}
				next, done = n, d
			}
			b, sz, err := next()
			if err != nil {
				return nil, 0, fmt.Errorf("read source message %s: %w", obj.ID, err)
			}
			r, size = b, sz
		} else {
			closeBodies()
			b, err := src.Open(ctx, f, obj)
			if err != nil {
				return nil, 0, fmt.Errorf("read source message %s: %w", obj.ID, err)
			}
			body, r = b, b
			if sz, ok := b.(interface{ Size() int64 }); ok {
				size = sz.Size()
			}
		}
		hashes[k] = sha256.New()
		counts[k] = &countingReader{r: io.TeeReader(r, hashes[k])}
		return counts[k], size, nil
	}
	refs, err := bp.PutBatch(ctx, ref, sent, open)
	closeBodies()
	if err == nil && len(refs) == len(send) {
		for k, i := range send {
			ws[i].TargetID, ws[i].Hash, ws[i].Size = refs[k].ID, hexSum(hashes[k]), counts[k].n
			claimed[refs[k].ID] = true
		}
		return ws, errs
	}
	for _, i := range send {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			continue
		}
		ws[i], errs[i] = copyWithRetry(ctx, src, dst, f, ref, objs[i], claimed)
		if errs[i] == nil {
			claimed[ws[i].TargetID] = true
		}
	}
	return ws, errs
}
