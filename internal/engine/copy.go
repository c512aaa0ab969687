package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

// State is where a mailbox copy keeps its watermarks, cursors and per-object errors. The store
// implements it; `ferry copy` uses a store in a state file.
type State interface {
	Watermarks(ctx context.Context, itemID, folder string) (map[string]model.Watermark, error)
	Cursor(ctx context.Context, itemID, folder string) (string, error)
	Checkpoint(ctx context.Context, itemID string, marks []model.Watermark, cursor *model.Cursor) error
	ForgetFolder(ctx context.Context, itemID, folder string) error
	ForgetObjects(ctx context.Context, itemID, folder string, sourceIDs []string) error
	AddObjectError(ctx context.Context, e store.ObjectError) error
}

// CopyOptions shape one mailbox copy.
type CopyOptions struct {
	ItemID, PassID string
	OlderThan      time.Duration // copy only objects older than this (prestage)
	NewerThan      time.Duration // copy only objects newer than this
	Include        []*regexp.Regexp
	Exclude        []*regexp.Regexp
	FolderMap      []FolderRule
	BatchSize      int  // watermarks per checkpoint
	Connections    int  // folders copied at once (the connectors pool their connections)
	DryRun         bool // count what would be copied, write nothing
	// PropagateDeletions removes from the target what was copied earlier and is gone from the
	// source. It needs a full listing of every folder, so such a pass does not use cursors.
	PropagateDeletions bool
	Now                func() time.Time
	Progress           func(Progress) // called after each object, from several goroutines; may be nil
}

// FolderRule renames source folders matching From to To (with $1-style references).
type FolderRule struct {
	From *regexp.Regexp
	To   string
}

// Progress is a running count during a copy.
type Progress struct {
	Folder string
	Stats  model.ItemStats
}

// FolderResult is the per-folder outcome of a copy, with its reconciliation.
type FolderResult struct {
	Source       string `json:"source"`
	Target       string `json:"target"`
	Copied       int64  `json:"copied"`
	Bytes        int64  `json:"bytes"`
	Updated      int64  `json:"updated"`
	Deleted      int64  `json:"deleted,omitempty"`
	Skipped      int64  `json:"skipped"`
	Errors       int64  `json:"errors"`
	SourceCount  int    `json:"source_count"`
	TargetCount  int    `json:"target_count"`
	Filtered     int    `json:"filtered"`             // left out by a date filter, so not expected at the target
	WouldCopy    int64  `json:"would_copy,omitempty"` // dry run: objects that a real pass would write
	Reconciled   bool   `json:"reconciled"`
	ErrorSummary string `json:"error,omitempty"`
}

// CompileOptions turns a project's text rules into compiled ones, naming the bad rule on error.
func CompileOptions(o model.ProjectOptions) (inc, exc []*regexp.Regexp, rules []FolderRule, err error) {
	compile := func(what, expr string) (*regexp.Regexp, error) {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("%s rule %q: %w", what, expr, err)
		}
		return re, nil
	}
	for _, e := range o.IncludeFolders {
		re, err := compile("include", e)
		if err != nil {
			return nil, nil, nil, err
		}
		inc = append(inc, re)
	}
	for _, e := range o.ExcludeFolders {
		re, err := compile("exclude", e)
		if err != nil {
			return nil, nil, nil, err
		}
		exc = append(exc, re)
	}
	for _, r := range o.FolderMap {
		re, err := compile("folder map", r.From)
		if err != nil {
			return nil, nil, nil, err
		}
		rules = append(rules, FolderRule{From: re, To: r.To})
	}
	return inc, exc, rules, nil
}

// targetPath applies include/exclude and mapping rules; ok is false for a folder left out.
func (o CopyOptions) targetPath(src string) (string, bool) {
	if len(o.Include) > 0 {
		in := false
		for _, re := range o.Include {
			in = in || re.MatchString(src)
		}
		if !in {
			return "", false
		}
	}
	for _, re := range o.Exclude {
		if re.MatchString(src) {
			return "", false
		}
	}
	for _, r := range o.FolderMap {
		if m := r.From.FindStringSubmatchIndex(src); m != nil && m[0] == 0 && m[1] == len(src) {
			return string(r.From.ExpandString(nil, r.To, src, m)), true
		}
	}
	return src, true
}

// CopyMailbox copies every folder of src to dst, skipping what watermarks say is already there and
// checking the target before each write so nothing is duplicated. Per-object errors are recorded
// and the copy goes on; a fatal error or a cancelled context stops it after a checkpoint.
func CopyMailbox(ctx context.Context, st State, src connector.MailboxSource, dst connector.MailboxTarget, o CopyOptions) (model.ItemStats, []FolderResult, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.Connections <= 0 {
		o.Connections = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	start := time.Now()
	t := &tally{progress: o.Progress}
	if _, err := connector.Negotiate(src, dst); err != nil {
		return t.total, nil, err
	}
	folders, err := src.Folders(ctx)
	if err != nil {
		return t.total, nil, fmt.Errorf("list source folders: %w", err)
	}
	type job struct {
		i     int
		f     connector.Folder
		tpath string
	}
	var jobs []job
	for _, f := range folders {
		if tpath, ok := o.targetPath(f.Path); ok {
			jobs = append(jobs, job{len(jobs), f, tpath})
		}
	}
	results := make([]FolderResult, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Connections)
	for _, j := range jobs {
		g.Go(func() error {
			res, err := copyFolder(gctx, st, src, dst, j.f, j.tpath, o, t)
			results[j.i] = res
			if err == nil {
				t.add(model.ItemStats{Folders: 1}, "")
			}
			return err
		})
	}
	err = g.Wait()
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total.Duration = time.Since(start).Milliseconds()
	return t.total, results, err
}

// tally sums statistics from folders copied in parallel.
type tally struct {
	mu       sync.Mutex
	total    model.ItemStats
	progress func(Progress)
}

func (t *tally) add(d model.ItemStats, folder string) {
	t.mu.Lock()
	t.total.Add(d)
	snap := t.total
	t.mu.Unlock()
	if t.progress != nil && folder != "" {
		t.progress(Progress{Folder: folder, Stats: snap})
	}
}

func copyFolder(ctx context.Context, st State, src connector.MailboxSource, dst connector.MailboxTarget, f connector.Folder, tpath string, o CopyOptions, t *tally) (FolderResult, error) {
	res := FolderResult{Source: f.Path, Target: tpath}
	tf := f
	tf.Path = tpath
	ref, err := dst.EnsureFolder(ctx, tf)
	if err != nil {
		return res, fmt.Errorf("create target folder %q: %w", tpath, err)
	}
	res.Target = ref.Path
	marks, err := st.Watermarks(ctx, o.ItemID, f.Path)
	if err != nil {
		return res, err
	}
	cur, err := st.Cursor(ctx, o.ItemID, f.Path)
	if err != nil {
		return res, err
	}
	// A date filter leaves objects behind that a cursor would never list again, so the cursor only
	// advances on unfiltered passes.
	filtering := o.OlderThan > 0 || o.NewerThan > 0
	if filtering || o.PropagateDeletions {
		cur = ""
	}
	listed := map[string]bool{} // source ids listed by this pass, for deletion propagation
	// Target objects already matched to a source object: a lookup must not hand them out twice.
	claimed := make(map[string]bool, len(marks))
	for _, w := range marks {
		claimed[w.TargetID] = true
	}
	objects, next := src.List(ctx, f, connector.Cursor(cur))
	var batch []model.Watermark
	flush := func(cursor *model.Cursor) error {
		// The checkpoint must land even when ctx is cancelled: it records work already done.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err := st.Checkpoint(cctx, o.ItemID, batch, cursor)
		batch = batch[:0]
		return err
	}
	fail := func(obj connector.Object, err error) error {
		res.Errors++
		t.add(model.ItemStats{Errors: 1}, f.Path)
		return st.AddObjectError(ctx, store.ObjectError{ItemID: o.ItemID, PassID: o.PassID, Folder: f.Path, SourceID: obj.ID, Reason: err.Error()})
	}
	// done records one object's copy; stop means the folder ends with err.
	done := func(obj connector.Object, w model.Watermark, err error) (stop bool, _ error) {
		if err != nil {
			if stop, rerr := objectError(ctx, err, func() error { return fail(obj, err) }); stop {
				flush(nil)
				return true, rerr
			}
			return false, nil
		}
		claimed[w.TargetID] = true
		batch = append(batch, w)
		if w.Hash != "" {
			res.Copied++
			res.Bytes += w.Size
			t.add(model.ItemStats{Objects: 1, Bytes: w.Size}, f.Path)
		} else {
			res.Skipped++
			t.add(model.ItemStats{Skipped: 1}, f.Path)
		}
		return false, nil
	}
	// New small messages wait for a batch when the target takes several in one request.
	maxBatch := 0
	bp, _ := dst.(connector.BatchPutter)
	if bp != nil && !o.DryRun {
		maxBatch = bp.MaxBatch()
	}
	var pending []connector.Object
	sendPending := func() (stop bool, _ error) {
		objs := pending
		pending = nil
		ws, errs := putBatch(ctx, src, dst, bp, f, ref, objs, claimed)
		for i, obj := range objs {
			if stop, err := done(obj, ws[i], errs[i]); stop {
				return true, err
			}
		}
		return false, nil
	}
	now := o.Now()
	for obj, err := range objects {
		if errors.Is(err, connector.ErrResync) {
			// The old ids are void: their watermarks would match nothing and would keep the
			// target's copies claimed, so forget them and let the lookup re-match everything.
			if err := st.ForgetFolder(ctx, o.ItemID, f.Path); err != nil {
				return res, err
			}
			clear(marks)
			clear(claimed)
			continue
		}
		if err != nil {
			if stop, serr := sendPending(); stop {
				return res, serr
			}
			if ferr := flush(nil); ferr != nil {
				return res, ferr
			}
			return res, fmt.Errorf("list %q: %w", f.Path, err)
		}
		listed[obj.ID] = true
		if (o.OlderThan > 0 && obj.Date.After(now.Add(-o.OlderThan))) || (o.NewerThan > 0 && obj.Date.Before(now.Add(-o.NewerThan))) {
			res.Filtered++
			continue
		}
		w, seen := marks[obj.ID]
		switch {
		case seen && w.Version == obj.Version:
			res.Skipped++
			t.add(model.ItemStats{Skipped: 1}, "")
			continue
		case o.DryRun:
			if !seen {
				res.WouldCopy++
			}
			continue
		case seen:
			if err := updateObject(ctx, src, dst, f, ref, &w, obj); err != nil {
				if stop, rerr := objectError(ctx, err, func() error { return fail(obj, err) }); stop {
					flush(nil)
					return res, rerr
				}
				continue
			}
			w.Version = obj.Version
			batch = append(batch, w)
			res.Updated++
		case maxBatch > 0 && batchable(obj):
			if pending = append(pending, obj); len(pending) >= maxBatch {
				if stop, err := sendPending(); stop {
					return res, err
				}
			}
		default:
			w, err := copyWithRetry(ctx, src, dst, f, ref, obj, claimed)
			if stop, err := done(obj, w, err); stop {
				return res, err
			}
		}
		if len(batch) >= o.BatchSize {
			if err := flush(nil); err != nil {
				return res, err
			}
		}
	}
	if len(pending) > 0 {
		if stop, err := sendPending(); stop {
			return res, err
		}
	}
	if o.DryRun {
		res.SourceCount = f.Messages
		return res, nil
	}
	if o.PropagateDeletions {
		if err := flush(nil); err != nil {
			return res, err
		}
		var refs []connector.TargetRef
		var ids []string
		for id, w := range marks {
			if !listed[id] && w.TargetID != "" {
				refs, ids = append(refs, connector.TargetRef{ID: w.TargetID}), append(ids, id)
			}
		}
		if len(refs) > 0 {
			if err := dst.Delete(ctx, ref, refs); err != nil {
				if stop, rerr := objectError(ctx, err, func() error { return fail(connector.Object{ID: "deletions"}, err) }); stop {
					return res, rerr
				}
			} else if err := st.ForgetObjects(ctx, o.ItemID, f.Path, ids); err != nil {
				return res, err
			} else {
				res.Deleted = int64(len(refs))
			}
		}
	}
	var cursor *model.Cursor
	if !filtering && !o.DryRun {
		cursor = &model.Cursor{ItemID: o.ItemID, Folder: f.Path, Value: string(next())}
	}
	if err := flush(cursor); err != nil {
		return res, err
	}
	res.SourceCount = f.Messages
	n, err := dst.Count(ctx, ref)
	if err != nil {
		return res, fmt.Errorf("count target folder %q: %w", tpath, err)
	}
	res.TargetCount = n
	res.Reconciled = res.TargetCount >= res.SourceCount-res.Filtered
	return res, nil
}

// objectError decides whether an object's error stops the folder (fatal, cancelled) or is recorded.
func objectError(ctx context.Context, err error, record func() error) (stop bool, _ error) {
	if ctx.Err() != nil {
		return true, ctx.Err()
	}
	switch connector.ClassOf(err) {
	case connector.Permanent:
		return false, record()
	case connector.Fatal:
		return true, err
	}
	// Transient errors that survived the connector's own retries count against the object; the
	// pass goes on and a retry pass picks the object up again.
	if rerr := record(); rerr != nil {
		return true, rerr
	}
	return false, nil
}

// copyWithRetry retries an object whose copy failed on a dropped connection, with backoff.
func copyWithRetry(ctx context.Context, src connector.MailboxSource, dst connector.MailboxTarget, f connector.Folder, ref connector.FolderRef, obj connector.Object, claimed map[string]bool) (model.Watermark, error) {
	for attempt := 1; ; attempt++ {
		w, err := copyObject(ctx, src, dst, f, ref, obj, claimed)
		if err == nil || attempt == 3 || connector.ClassOf(err) != connector.Transient || ctx.Err() != nil {
			return w, err
		}
		select {
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		case <-ctx.Done():
			return w, ctx.Err()
		}
	}
}

// updateObject carries a changed object's new version to the target: its flags, or the whole
// object for a target that rewrites changed objects (w.TargetID follows the new reference).
func updateObject(ctx context.Context, src connector.MailboxSource, dst connector.MailboxTarget, f connector.Folder, ref connector.FolderRef, w *model.Watermark, obj connector.Object) error {
	u, ok := dst.(connector.Updater)
	if !ok {
		return dst.SetFlags(ctx, ref, connector.TargetRef{ID: w.TargetID}, obj)
	}
	body, err := src.Open(ctx, f, obj)
	if err != nil {
		return fmt.Errorf("read source object %s: %w", obj.ID, err)
	}
	defer body.Close()
	nref, err := u.Update(ctx, ref, connector.TargetRef{ID: w.TargetID}, obj, body)
	if err != nil {
		return err
	}
	w.TargetID = nref.ID
	return nil
}

// copyObject writes one object unless the target already has it, hashing it on the way through.
// A watermark with an empty hash means the object was found at the target, not copied.
func copyObject(ctx context.Context, src connector.MailboxSource, dst connector.MailboxTarget, f connector.Folder, ref connector.FolderRef, obj connector.Object, claimed map[string]bool) (model.Watermark, error) {
	w := model.Watermark{Folder: f.Path, SourceID: obj.ID, Version: obj.Version, Size: obj.Size}
	if err := accept(dst, obj); err != nil {
		return w, err
	}
	if obj.MessageID == "" {
		// Without a Message-ID the content itself identifies the message: hash it first. A
		// source that could not list sizes learns the exact one on the way.
		h, n, err := hashSource(ctx, src, f, obj)
		if err != nil {
			return w, err
		}
		obj.Hash = h
		if obj.Size == 0 {
			obj.Size, w.Size = n, n
		}
	}
	if id, err := unclaimed(ctx, dst, ref, obj, claimed); err != nil || id != "" {
		w.TargetID = id
		return w, err
	}
	body, size, err := openSource(ctx, src, f, obj)
	if err != nil {
		return w, err
	}
	defer body.Close()
	obj.Size = size // the exact byte count being streamed, for APPEND's literal
	hr := hashing(body)
	tref, err := dst.Put(ctx, ref, obj, hr)
	if err != nil {
		return w, fmt.Errorf("write message %s: %w", obj.ID, err)
	}
	w.TargetID, w.Hash, w.Size = tref.ID, hexSum(hr.h), hr.n
	return w, nil
}

// accept asks a target that refuses some objects outright (connector.Acceptor) about obj.
func accept(dst connector.MailboxTarget, obj connector.Object) error {
	if a, ok := dst.(connector.Acceptor); ok {
		return a.Accept(obj)
	}
	return nil
}

// unclaimed returns the first target object that may be obj and that no other source object has
// claimed, or "" when the target lacks it.
func unclaimed(ctx context.Context, dst connector.MailboxTarget, ref connector.FolderRef, obj connector.Object, claimed map[string]bool) (string, error) {
	cands, err := dst.Lookup(ctx, ref, obj)
	if err != nil {
		return "", fmt.Errorf("look up target: %w", err)
	}
	for _, c := range cands {
		if !claimed[c.ID] {
			return c.ID, nil
		}
	}
	return "", nil
}

// openSource opens an object's body with the exact byte count it will stream, when the source
// knows it (an IMAP literal does), else the listed size.
func openSource(ctx context.Context, src connector.MailboxSource, f connector.Folder, obj connector.Object) (io.ReadCloser, int64, error) {
	body, err := src.Open(ctx, f, obj)
	if err != nil {
		return nil, 0, fmt.Errorf("read source message %s: %w", obj.ID, err)
	}
	if sz, ok := body.(interface{ Size() int64 }); ok {
		return body, sz.Size(), nil
	}
	return body, obj.Size, nil
}

func hashSource(ctx context.Context, src connector.MailboxSource, f connector.Folder, obj connector.Object) (string, int64, error) {
	body, err := src.Open(ctx, f, obj)
	if err != nil {
		return "", 0, fmt.Errorf("read source message %s: %w", obj.ID, err)
	}
	defer body.Close()
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return "", 0, connector.Classify(connector.Transient, fmt.Errorf("read source message %s: %w", obj.ID, err))
	}
	return hexSum(h), n, nil
}

// hashedReader counts and hashes what is read through it: what the target was given.
type hashedReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func hashing(r io.Reader) *hashedReader {
	h := sha256.New()
	return &hashedReader{r: io.TeeReader(r, h), h: h}
}

func (c *hashedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// ParseAge reads "90d", "12h" or "2w" as a duration; days and weeks are what administrators type.
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	unit := s[len(s)-1]
	if unit == 'd' || unit == 'w' {
		n, err := strconv.Atoi(s[:len(s)-1])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad age %q: want a number of days like 90d", s)
		}
		d := time.Duration(n) * 24 * time.Hour
		if unit == 'w' {
			d *= 7
		}
		return d, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad age %q: want a duration like 90d or 36h", s)
	}
	return d, nil
}

var errStopRequested = errors.New("stop requested")
