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
	"time"

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
	BatchSize      int // watermarks per checkpoint
	Now            func() time.Time
	Progress       func(Progress) // called after each object; may be nil
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
	Skipped      int64  `json:"skipped"`
	Errors       int64  `json:"errors"`
	SourceCount  int    `json:"source_count"`
	TargetCount  int    `json:"target_count"`
	Filtered     int    `json:"filtered"` // left out by a date filter, so not expected at the target
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
	if o.Now == nil {
		o.Now = time.Now
	}
	start := o.Now()
	var total model.ItemStats
	folders, err := src.Folders(ctx)
	if err != nil {
		return total, nil, fmt.Errorf("list source folders: %w", err)
	}
	var results []FolderResult
	for _, f := range folders {
		tpath, ok := o.targetPath(f.Path)
		if !ok {
			continue
		}
		res, err := copyFolder(ctx, st, src, dst, f, tpath, o, &total)
		results = append(results, res)
		if err != nil {
			total.Duration = time.Since(start).Milliseconds()
			return total, results, err
		}
		total.Folders++
	}
	total.Duration = time.Since(start).Milliseconds()
	return total, results, nil
}

func copyFolder(ctx context.Context, st State, src connector.MailboxSource, dst connector.MailboxTarget, f connector.Folder, tpath string, o CopyOptions, total *model.ItemStats) (FolderResult, error) {
	res := FolderResult{Source: f.Path, Target: tpath}
	tf := f
	tf.Path = tpath
	ref, err := dst.EnsureFolder(ctx, tf)
	if err != nil {
		return res, fmt.Errorf("create target folder %q: %w", tpath, err)
	}
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
	if filtering {
		cur = ""
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
		total.Errors++
		return st.AddObjectError(ctx, store.ObjectError{ItemID: o.ItemID, PassID: o.PassID, Folder: f.Path, SourceID: obj.ID, Reason: err.Error()})
	}
	now := o.Now()
	for obj, err := range objects {
		if err != nil {
			if ferr := flush(nil); ferr != nil {
				return res, ferr
			}
			return res, fmt.Errorf("list %q: %w", f.Path, err)
		}
		if (o.OlderThan > 0 && obj.Date.After(now.Add(-o.OlderThan))) || (o.NewerThan > 0 && obj.Date.Before(now.Add(-o.NewerThan))) {
			res.Filtered++
			continue
		}
		w, seen := marks[obj.ID]
		switch {
		case seen && w.Version == obj.Version:
			res.Skipped++
			total.Skipped++
			continue
		case seen:
			if err := dst.SetFlags(ctx, ref, connector.TargetRef{ID: w.TargetID}, obj); err != nil {
				if stop, rerr := objectError(ctx, err, func() error { return fail(obj, err) }); stop {
					flush(nil)
					return res, rerr
				}
				continue
			}
			w.Version = obj.Version
			batch = append(batch, w)
			res.Updated++
		default:
			w, err := copyObject(ctx, src, dst, f, ref, obj)
			if err != nil {
				if stop, rerr := objectError(ctx, err, func() error { return fail(obj, err) }); stop {
					flush(nil)
					return res, rerr
				}
				continue
			}
			batch = append(batch, w)
			if w.Hash != "" {
				res.Copied++
				res.Bytes += w.Size
				total.Objects++
				total.Bytes += w.Size
			} else {
				res.Skipped++
				total.Skipped++
			}
		}
		if len(batch) >= o.BatchSize {
			if err := flush(nil); err != nil {
				return res, err
			}
		}
		if o.Progress != nil {
			o.Progress(Progress{Folder: f.Path, Stats: *total})
		}
	}
	var cursor *model.Cursor
	if !filtering {
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

// copyObject writes one object unless the target already has it, hashing it on the way through.
// A watermark with an empty hash means the object was found at the target, not copied.
func copyObject(ctx context.Context, src connector.MailboxSource, dst connector.MailboxTarget, f connector.Folder, ref connector.FolderRef, obj connector.Object) (model.Watermark, error) {
	w := model.Watermark{Folder: f.Path, SourceID: obj.ID, Version: obj.Version, Size: obj.Size}
	if tref, found, err := dst.Lookup(ctx, ref, obj); err != nil {
		return w, fmt.Errorf("look up target: %w", err)
	} else if found {
		w.TargetID = tref.ID
		return w, nil
	}
	body, err := src.Open(ctx, f, obj)
	if err != nil {
		return w, fmt.Errorf("read source message %s: %w", obj.ID, err)
	}
	defer body.Close()
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(body, h)}
	tref, err := dst.Put(ctx, ref, obj, cr)
	if err != nil {
		return w, fmt.Errorf("write message %s: %w", obj.ID, err)
	}
	w.TargetID, w.Hash, w.Size = tref.ID, hexSum(h), cr.n
	return w, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
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
