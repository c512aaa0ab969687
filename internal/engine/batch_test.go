package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/connector/memory"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
)

// batcher adds all-or-nothing batches to a memory target: a batch holding a message the target
// refuses fails whole, as a MULTIAPPEND does.
type batcher struct {
	connector.MailboxTarget
	batches, batched int
}

func (b *batcher) MaxBatch() int { return 3 }

func (b *batcher) PutBatch(ctx context.Context, dst connector.FolderRef, objs []connector.Object, open func(i int) (io.Reader, int64, error)) ([]connector.TargetRef, error) {
	bodies := make([][]byte, len(objs))
	for i := range objs {
		r, size, err := open(i)
		if err != nil {
			return nil, err
		}
		if bodies[i], err = io.ReadAll(r); err != nil {
			return nil, err
		}
		if int64(len(bodies[i])) != size || bytes.Contains(bodies[i], []byte("X-Reject: yes")) {
			return nil, errors.New("NO batch refused")
		}
	}
	refs := make([]connector.TargetRef, len(objs))
	for i, o := range objs {
		ref, err := b.MailboxTarget.Put(ctx, dst, o, bytes.NewReader(bodies[i]))
		if err != nil {
			return nil, err
		}
		refs[i] = ref
	}
	b.batches++
	b.batched += len(objs)
	return refs, nil
}

func TestBatchesFallBackAndNeverDuplicate(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, storetest.SQLite(t), 1, 7, 1) // messages 0-6 in INBOX, one in Sent Items
	items, _, err := r.st.Items(ctx, r.project.ID, store.ItemFilter{})
	if err != nil {
		t.Fatal(err)
	}
	item, who := items[0].ID, items[0].SourceEmail
	r.src.Add(who, "INBOX", message(who, 3)) // a second, identical copy of message 3: it stays two
	r.src.Add(who, "INBOX", []byte("Message-ID: <bad@x>\r\nX-Reject: yes\r\n\r\nrefused\r\n"))
	side := func(host, pw string) connector.Side {
		return connector.Side{Email: who, Password: pw, Endpoint: model.Endpoint{Settings: model.EndpointSettings{Host: host}}}
	}
	tag := strings.ReplaceAll(t.Name(), "/", "-")
	src, err := memory.Connector{}.OpenSource(ctx, side("src-"+tag, "pw"))
	if err != nil {
		t.Fatal(err)
	}
	inner, err := memory.Connector{}.OpenTarget(ctx, side("dst-"+tag, ""))
	if err != nil {
		t.Fatal(err)
	}
	dst := &batcher{MailboxTarget: inner}
	for pass := 1; pass <= 3; pass++ {
		stats, res, err := CopyMailbox(ctx, r.st, src, dst, CopyOptions{ItemID: item, PassID: "p", Connections: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.dst.Count(who, "INBOX"); got != 8 {
			t.Fatalf("pass %d: target holds %d, want 8 (the refused one missing, no duplicates)", pass, got)
		}
		if pass == 1 && (stats.Objects != 9 || stats.Errors != 1) {
			t.Fatalf("pass 1: copied %d with %d errors, want 9 (8 and Sent Items' one) and 1", stats.Objects, stats.Errors)
		}
		if pass > 1 && stats.Objects != 0 {
			t.Fatalf("pass %d copied %d again", pass, stats.Objects)
		}
		for _, r := range res {
			if r.Source == "INBOX" && (r.Reconciled || r.TargetCount != 8) {
				t.Fatalf("pass %d: reconciliation %+v should show one missing", pass, r)
			}
		}
	}
	// Batches of 3 in INBOX: the first two went whole, the third (with the refused message)
	// failed and its messages went one by one; Sent Items' one message made a batch of its own.
	if dst.batches != 3 || dst.batched != 7 {
		t.Fatalf("%d batches carried %d messages, want 3 and 7", dst.batches, dst.batched)
	}
	errs, err := r.st.ObjectErrors(ctx, item, 10)
	if err != nil || len(errs) != 1 || !strings.Contains(errs[0].Reason, "target refused the message: X-Reject header") {
		t.Fatalf("object errors = %+v, %v", errs, err)
	}
}
