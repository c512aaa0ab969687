package engine

import (
	"context"
	"fmt"
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
		if errs[i] = accept(dst, obj); errs[i] != nil {
			continue
		}
		id, err := unclaimed(ctx, dst, ref, obj, claimed)
		switch {
		case err != nil:
			errs[i] = err
		case id != "":
			ws[i].TargetID, claimed[id] = id, true // a later copy of the same message must not match it too
		default:
			send = append(send, i)
		}
	}
	if len(send) == 0 {
		return ws, errs
	}
	sent := make([]connector.Object, len(send))
	for k, i := range send {
		sent[k] = objs[i]
	}
	bodies := make([]*hashedReader, len(send))
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
	open := func(k int) (io.Reader, int64, error) {
		var r io.Reader
		var size int64
		var err error
		if together {
			if next == nil {
				if next, done, err = bo.OpenBatch(ctx, f, sent); err != nil {
					return nil, 0, fmt.Errorf("read source messages: %w", err)
				}
			}
			if r, size, err = next(); err != nil {
				return nil, 0, fmt.Errorf("read source message %s: %w", sent[k].ID, err)
			}
		} else {
			closeBodies()
			if body, size, err = openSource(ctx, src, f, sent[k]); err != nil {
				return nil, 0, err
			}
			r = body
		}
		bodies[k] = hashing(r)
		return bodies[k], size, nil
	}
	refs, err := bp.PutBatch(ctx, ref, sent, open)
	closeBodies()
	if err == nil && len(refs) == len(send) {
		for k, i := range send {
			ws[i].TargetID, ws[i].Hash, ws[i].Size = refs[k].ID, hexSum(bodies[k].h), bodies[k].n
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
			claimed[ws[i].TargetID] = true // the next object's lookup must not match it too
		}
	}
	return ws, errs
}
