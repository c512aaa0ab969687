package exo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/graph"
)

// maxMessage is the largest message Exchange Online can take: 150 MB, the ceiling its
// administrators can raise the message size limit to.
const maxMessage = graph.MaxAttachment

// inlineBudget is how much attachment content rides in the create request itself (base64 grows
// it by a third; Graph takes 4 MB a request).
const inlineBudget = 2 << 20

// maxRequest is Graph's limit on one request's body.
const maxRequest = 4 << 20

// stampOf is the value stamped on a copy to find it again. An Exchange item is its source id. A
// message from another protocol is what the engine knows it by, whatever the source's ids: its
// Message-ID and size, or its content hash when it has no Message-ID. So a source whose ids
// changed (an IMAP UIDVALIDITY reset) still finds every copy.
func (t *target) stampOf(o connector.Object) string {
	if !t.mime() {
		return o.ID
	}
	if o.Hash != "" {
		return "sha256:" + o.Hash
	}
	return "mid:" + o.MessageID + "|" + strconv.FormatInt(o.Size, 10)
}

// Accept refuses, before anything is read, a message larger than Exchange Online takes.
func (t *target) Accept(o connector.Object) error {
	if o.Size > maxMessage {
		return tooLarge(o.Size)
	}
	return nil
}

// putMIME creates a message from MIME: taken apart into a received (non-draft) message with its
// state and dates, small attachments in the same request, large ones through upload sessions.
// The stamp comes last, so an interrupted copy is never mistaken for a finished one; a copy that
// fails half-way is deleted.
func (t *target) putMIME(ctx context.Context, dst connector.FolderRef, o connector.Object, body io.Reader) (connector.TargetRef, error) {
	raw, err := os.CreateTemp("", "ferry-mime-*")
	if err != nil {
		return connector.TargetRef{}, err
	}
	defer os.Remove(raw.Name())
	defer raw.Close()
	n, err := io.Copy(raw, io.LimitReader(body, maxMessage+1))
	if err != nil {
		return connector.TargetRef{}, connector.Classify(connector.Transient, fmt.Errorf("read the message: %w", err))
	}
	if n > maxMessage {
		return connector.TargetRef{}, tooLarge(n)
	}
	d, err := decompose(raw, n, o.Date, o.Flags)
	if err != nil {
		return connector.TargetRef{}, err
	}
	defer d.Close()
	for _, p := range d.parts {
		if p.size > graph.MaxAttachment {
			return connector.TargetRef{}, connector.Classify(connector.Permanent, fmt.Errorf("attachment %q is %.1f MB; Outlook takes at most 150 MB an attachment", p.name, float64(p.size)/1e6))
		}
	}
	var later []part
	budget := int64(inlineBudget - len(d.msg.Body.Content) - len(prop(d.msg, propTransportHeaders)))
	for _, p := range d.parts {
		if p.size > budget {
			later = append(later, p)
			continue
		}
		data, err := io.ReadAll(d.content(p))
		if err != nil {
			return connector.TargetRef{}, err
		}
		budget -= p.size
		d.msg.Attachments = append(d.msg.Attachments, graph.NewFileAttachment(p.name, p.contentType, p.contentID, p.inline, data))
	}
	if js, _ := json.Marshal(d.msg); len(js) > maxRequest {
		// Escaping made the request too large: every attachment goes on its own.
		d.msg.Attachments, later = nil, d.parts
	}
	stamp := graph.ExtendedProperty{ID: StampProperty, Value: t.stampOf(o)}
	if len(later) == 0 {
		d.msg.SingleValueExtendedProperties = append(d.msg.SingleValueExtendedProperties, stamp)
	}
	m, err := t.c.CreateMessage(ctx, t.user, dst.ID, d.msg)
	if err != nil {
		return connector.TargetRef{}, explain(err, t.side, "create a message in "+dst.Path)
	}
	var notice error
	if d.unreadable != "" {
		notice = &connector.Notice{Reason: "kept whole as original.eml in a note: the message could not be read (" + d.unreadable + ")"}
	}
	if len(later) == 0 {
		return ref(m.ID, m.ChangeKey), notice
	}
	undo := func(err error) (connector.TargetRef, error) {
		// Best effort, outside the pass's context: a half-made copy must not stay behind.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		t.c.DeleteMessage(cctx, t.user, m.ID)
		return connector.TargetRef{}, err
	}
	for _, p := range later {
		var err error
		if p.size < graph.MaxInlineAttachment {
			var data []byte
			if data, err = io.ReadAll(d.content(p)); err == nil {
				err = t.c.AddAttachment(ctx, t.user, m.ID, graph.NewFileAttachment(p.name, p.contentType, p.contentID, p.inline, data))
			}
		} else {
			err = t.c.AttachLarge(ctx, t.user, m.ID, graph.AttachmentItem{Name: p.name, Size: p.size, ContentType: p.contentType, IsInline: p.inline, ContentID: p.contentID}, d.content(p))
		}
		if err != nil {
			return undo(explain(err, t.side, fmt.Sprintf("attach %q to a message in %s", p.name, dst.Path)))
		}
	}
	stamped, err := t.c.SetMessageProperty(ctx, t.user, m.ID, StampProperty, stamp.Value)
	if err != nil {
		return undo(explain(err, t.side, "stamp a message in "+dst.Path))
	}
	return ref(m.ID, stamped.ChangeKey), notice
}

func tooLarge(n int64) error {
	return connector.Classify(connector.Permanent, fmt.Errorf("message is %.1f MB; Exchange Online takes at most 150 MB a message", float64(n)/1e6))
}
