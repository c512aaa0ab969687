package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
	"regexp"
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
	Source      string `json:"source"`
	Target      string `json:"target"`
	Copied      int64  `json:"copied"`
	Bytes       int64  `json:"bytes"`
	Updated     int64  `json:"updated"`
	Deleted     int64  `json:"deleted,omitempty"`
	Skipped     int64  `json:"skipped"`
	Errors      int64  `json:"errors"`
	SourceCount int    `json:"source_count"`
	TargetCount int    `json:"target_count"`
	Filtered    int    `json:"filtered"`             // left out by a date filter, so not expected at the target
	WouldCopy   int64  `json:"would_copy,omitempty"` // dry run: objects that a real pass would write
	// Matched, Missing and Extra compare the target's count with what it should hold (the source's
	// less what a date filter left out): extras are no match, so both must be zero to reconcile.
	Matched      int    `json:"matched"`
	Missing      int    `json:"missing"`
	Extra        int    `json:"extra"`
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

// Selects reports whether the include and exclude rules leave any of folders to copy.
func (o CopyOptions) Selects(folders []connector.Folder) bool {
	for _, f := range folders {
		if _, ok := o.targetPath(f.Path); ok {
			return true
		}
	}
	return false
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

// folderCopy is the copy of one source folder into its target folder during a pass: it walks the
// source listing once, skips what watermarks say is there, carries changed objects over, copies
// new ones (in batches where the target takes them), records per-object errors, checkpoints
// watermarks and the cursor in small batches, and reconciles the counts at the end.
type folderCopy struct {
	st  State
	src connector.MailboxSource
	dst connector.MailboxTarget
	f   connector.Folder // the source folder
	ref connector.FolderRef
	o   CopyOptions
	t   *tally
	res FolderResult

	marks   map[string]model.Watermark // by source id, as the last pass left them
	claimed map[string]bool            // target ids matched to a source object: a lookup must not hand them out twice
	listed  map[string]bool            // source ids this pass listed, for deletion propagation
	batch   []model.Watermark          // watermarks waiting for the next checkpoint

	bp       connector.BatchPutter // set when the target takes several new objects in one request
	maxBatch int
	pending  []connector.Object // new small objects waiting for a batch
}

func copyFolder(ctx context.Context, st State, src connector.MailboxSource, dst connector.MailboxTarget, f connector.Folder, tpath string, o CopyOptions, t *tally) (FolderResult, error) {
	c := &folderCopy{st: st, src: src, dst: dst, f: f, o: o, t: t, res: FolderResult{Source: f.Path, Target: tpath}, listed: map[string]bool{}}
	err := c.run(ctx, tpath)
	return c.res, err
}

func (c *folderCopy) run(ctx context.Context, tpath string) error {
	tf := c.f
	tf.Path = tpath
	ref, err := c.dst.EnsureFolder(ctx, tf)
	if err != nil {
		return fmt.Errorf("create target folder %q: %w", tpath, err)
	}
	c.ref, c.res.Target = ref, ref.Path
	if c.marks, err = c.st.Watermarks(ctx, c.o.ItemID, c.f.Path); err != nil {
		return err
	}
	cur, err := c.st.Cursor(ctx, c.o.ItemID, c.f.Path)
	if err != nil {
		return err
	}
	// A date filter leaves objects behind that a cursor would never list again, so the cursor only
	// advances on unfiltered passes.
	filtering := c.o.OlderThan > 0 || c.o.NewerThan > 0
	if filtering || c.o.PropagateDeletions {
		cur = ""
	}
	c.claimed = make(map[string]bool, len(c.marks))
	for _, w := range c.marks {
		c.claimed[w.TargetID] = true
	}
	if bp, ok := c.dst.(connector.BatchPutter); ok && !c.o.DryRun {
		c.bp, c.maxBatch = bp, bp.MaxBatch()
	}
	objects, next := c.src.List(ctx, c.f, connector.Cursor(cur))
	if err := c.walk(ctx, objects); err != nil {
		return err
	}
	if c.o.DryRun {
		c.res.SourceCount = c.f.Messages
		return nil
	}
	if c.o.PropagateDeletions {
		if err := c.deleteUnlisted(ctx); err != nil {
			return err
		}
	}
	var cursor *model.Cursor
	if !filtering {
		cursor = &model.Cursor{ItemID: c.o.ItemID, Folder: c.f.Path, Value: string(next())}
	}
	if err := c.flush(ctx, cursor); err != nil {
		return err
	}
	c.res.SourceCount = c.f.Messages
	n, err := c.dst.Count(ctx, c.ref)
	if err != nil {
		return fmt.Errorf("count target folder %q: %w", tpath, err)
	}
	c.res.TargetCount = n
	expected := c.res.SourceCount - c.res.Filtered
	c.res.Matched = min(expected, n)
	c.res.Missing, c.res.Extra = expected-c.res.Matched, n-c.res.Matched
	c.res.Reconciled = c.res.Missing == 0 && c.res.Extra == 0
	c.t.add(model.ItemStats{Matched: int64(c.res.Matched), Missing: int64(c.res.Missing), Extra: int64(c.res.Extra)}, "")
	return nil
}

// walk handles every object the source lists.
func (c *folderCopy) walk(ctx context.Context, objects iter.Seq2[connector.Object, error]) error {
	now := c.o.Now()
	for obj, err := range objects {
		if errors.Is(err, connector.ErrResync) {
			// The old ids are void: their watermarks would match nothing and would keep the
			// target's copies claimed, so forget them and let the lookup re-match everything.
			if err := c.st.ForgetFolder(ctx, c.o.ItemID, c.f.Path); err != nil {
				return err
			}
			clear(c.marks)
			clear(c.claimed)
			continue
		}
		if err != nil {
			if stop, serr := c.sendPending(ctx); stop {
				return serr
			}
			if ferr := c.flush(ctx, nil); ferr != nil {
				return ferr
			}
			return fmt.Errorf("list %q: %w", c.f.Path, err)
		}
		c.listed[obj.ID] = true
		if (c.o.OlderThan > 0 && obj.Date.After(now.Add(-c.o.OlderThan))) || (c.o.NewerThan > 0 && obj.Date.Before(now.Add(-c.o.NewerThan))) {
			c.res.Filtered++
			continue
		}
		if stop, err := c.object(ctx, obj); stop {
			return err
		}
		if len(c.batch) >= c.o.BatchSize {
			if err := c.flush(ctx, nil); err != nil {
				return err
			}
		}
	}
	if len(c.pending) > 0 {
		if stop, err := c.sendPending(ctx); stop {
			return err
		}
	}
	return nil
}

// object skips, updates, queues or copies one listed object; stop means the folder ends with err.
func (c *folderCopy) object(ctx context.Context, obj connector.Object) (stop bool, _ error) {
	w, seen := c.marks[obj.ID]
	switch {
	case seen && w.Version == obj.Version:
		c.res.Skipped++
		c.t.add(model.ItemStats{Skipped: 1}, "")
	case c.o.DryRun:
		if !seen {
			c.res.WouldCopy++
		}
	case seen:
		if err := updateObject(ctx, c.src, c.dst, c.f, c.ref, &w, obj); err != nil {
			return c.objectFailed(ctx, obj, err)
		}
		w.Version = obj.Version
		c.batch = append(c.batch, w)
		c.res.Updated++
	case c.maxBatch > 0 && batchable(obj):
		if c.pending = append(c.pending, obj); len(c.pending) >= c.maxBatch {
			return c.sendPending(ctx)
		}
	default:
		w, err := copyWithRetry(ctx, c.src, c.dst, c.f, c.ref, obj, c.claimed)
		return c.done(ctx, obj, w, err)
	}
	return false, nil
}

// sendPending copies the objects waiting for a batch.
func (c *folderCopy) sendPending(ctx context.Context) (stop bool, _ error) {
	objs := c.pending
	c.pending = nil
	ws, errs := putBatch(ctx, c.src, c.dst, c.bp, c.f, c.ref, objs, c.claimed)
	for i, obj := range objs {
		if stop, err := c.done(ctx, obj, ws[i], errs[i]); stop {
			return true, err
		}
	}
	return false, nil
}

// done records one object's copy: copied, found at the target, or failed. A copy made with a
// notice counts as copied, and the notice goes to the report as the object's error.
func (c *folderCopy) done(ctx context.Context, obj connector.Object, w model.Watermark, err error) (stop bool, _ error) {
	if connector.IsNotice(err) {
		if ferr := c.fail(ctx, obj, err); ferr != nil {
			return true, ferr
		}
		err = nil
	}
	if err != nil {
		return c.objectFailed(ctx, obj, err)
	}
	c.claimed[w.TargetID] = true
	c.batch = append(c.batch, w)
	if w.Hash != "" {
		c.res.Copied++
		c.res.Bytes += w.Size
		c.t.add(model.ItemStats{Objects: 1, Bytes: w.Size}, c.f.Path)
	} else {
		c.res.Skipped++
		c.t.add(model.ItemStats{Skipped: 1}, c.f.Path)
	}
	return false, nil
}

// objectFailed records an object's error, or ends the folder (after a checkpoint) when the error
// is one that stops it.
func (c *folderCopy) objectFailed(ctx context.Context, obj connector.Object, err error) (stop bool, _ error) {
	stop, rerr := objectError(ctx, err, func() error { return c.fail(ctx, obj, err) })
	if stop {
		c.flush(ctx, nil)
	}
	return stop, rerr
}

func (c *folderCopy) fail(ctx context.Context, obj connector.Object, err error) error {
	c.res.Errors++
	c.t.add(model.ItemStats{Errors: 1}, c.f.Path)
	return c.st.AddObjectError(ctx, store.ObjectError{ItemID: c.o.ItemID, PassID: c.o.PassID, Folder: c.f.Path, SourceID: obj.ID, Reason: err.Error()})
}

// flush checkpoints the waiting watermarks, and the cursor when given.
func (c *folderCopy) flush(ctx context.Context, cursor *model.Cursor) error {
	// The checkpoint must land even when ctx is cancelled: it records work already done.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := c.st.Checkpoint(cctx, c.o.ItemID, c.batch, cursor)
	c.batch = c.batch[:0]
	return err
}

// deleteUnlisted deletes at the target what was copied before and is no longer at the source.
func (c *folderCopy) deleteUnlisted(ctx context.Context) error {
	if err := c.flush(ctx, nil); err != nil {
		return err
	}
	var refs []connector.TargetRef
	var ids []string
	for id, w := range c.marks {
		if !c.listed[id] && w.TargetID != "" {
			refs, ids = append(refs, connector.TargetRef{ID: w.TargetID}), append(ids, id)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	if err := c.dst.Delete(ctx, c.ref, refs); err != nil {
		if stop, rerr := objectError(ctx, err, func() error { return c.fail(ctx, connector.Object{ID: "deletions"}, err) }); stop {
			return rerr
		}
		return nil
	}
	if err := c.st.ForgetObjects(ctx, c.o.ItemID, c.f.Path, ids); err != nil {
		return err
	}
	c.res.Deleted = int64(len(refs))
	return nil
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
		if err == nil || connector.IsNotice(err) || attempt == 3 || connector.ClassOf(err) != connector.Transient || ctx.Err() != nil {
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
	if err != nil && !connector.IsNotice(err) {
		return w, fmt.Errorf("write message %s: %w", obj.ID, err)
	}
	w.TargetID, w.Hash, w.Size = tref.ID, hexSum(hr.h), hr.n
	return w, err
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

var errStopRequested = errors.New("stop requested")
