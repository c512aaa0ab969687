package store

import (
	"context"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
)

// Watermarks returns the watermarks of one folder of an item, keyed by source id.
func (s *Store) Watermarks(ctx context.Context, itemID, folder string) (map[string]model.Watermark, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT source_id, version, target_id, hash, size, updated_at FROM watermarks WHERE item_id = ? AND folder = ?`), itemID, folder)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]model.Watermark{}
	for rows.Next() {
		w := model.Watermark{ItemID: itemID, Folder: folder}
		var updated string
		if err := rows.Scan(&w.SourceID, &w.Version, &w.TargetID, &w.Hash, &w.Size, &updated); err != nil {
			return nil, err
		}
		w.UpdatedAt = parseTS(updated)
		out[w.SourceID] = w
	}
	return out, rows.Err()
}

// CountWatermarks counts an item's watermarks (all folders).
func (s *Store) CountWatermarks(ctx context.Context, itemID string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT count(*) FROM watermarks WHERE item_id = ?`), itemID).Scan(&n)
	return n, err
}

// Cursor returns the change marker of a folder, or "" if none.
func (s *Store) Cursor(ctx context.Context, itemID, folder string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT value FROM cursors WHERE item_id = ? AND folder = ?`), itemID, folder).Scan(&v)
	if err = classify(err); err == ErrNotFound {
		return "", nil
	}
	return v, err
}

// Checkpoint commits a batch of watermarks, and optionally a folder's new cursor, together: a crash
// loses at most the batch in flight.
func (s *Store) Checkpoint(ctx context.Context, itemID string, marks []model.Watermark, cursor *model.Cursor) error {
	if len(marks) == 0 && cursor == nil {
		return nil
	}
	now := ts(time.Now())
	return s.InTx(ctx, func(tx *Tx) error {
		for _, w := range marks {
			// Delete-then-insert is an upsert both engines accept in the same words.
			if _, err := s.exec(ctx, tx.tx, `DELETE FROM watermarks WHERE item_id = ? AND folder = ? AND source_id = ?`, itemID, w.Folder, w.SourceID); err != nil {
				return err
			}
			if _, err := s.exec(ctx, tx.tx, `INSERT INTO watermarks (item_id, folder, source_id, version, target_id, hash, size, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				itemID, w.Folder, w.SourceID, w.Version, w.TargetID, w.Hash, w.Size, now); err != nil {
				return err
			}
		}
		if cursor != nil {
			if _, err := s.exec(ctx, tx.tx, `DELETE FROM cursors WHERE item_id = ? AND folder = ?`, itemID, cursor.Folder); err != nil {
				return err
			}
			if _, err := s.exec(ctx, tx.tx, `INSERT INTO cursors (item_id, folder, value, updated_at) VALUES (?, ?, ?, ?)`, itemID, cursor.Folder, cursor.Value, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// ForgetFolder deletes a folder's watermarks and cursor, when the source says its ids changed.
func (s *Store) ForgetFolder(ctx context.Context, itemID, folder string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := s.exec(ctx, tx.tx, `DELETE FROM watermarks WHERE item_id = ? AND folder = ?`, itemID, folder); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx.tx, `DELETE FROM cursors WHERE item_id = ? AND folder = ?`, itemID, folder)
		return err
	})
}

// ForgetObjects deletes the watermarks of objects removed from the target.
func (s *Store) ForgetObjects(ctx context.Context, itemID, folder string, sourceIDs []string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		for _, id := range sourceIDs {
			if _, err := s.exec(ctx, tx.tx, `DELETE FROM watermarks WHERE item_id = ? AND folder = ? AND source_id = ?`, itemID, folder, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// ObjectError records why one object could not be copied; the pass goes on.
type ObjectError struct {
	ItemID, PassID, Folder, SourceID, Reason string
	At                                       time.Time
}

// AddObjectError stores a per-object error.
func (s *Store) AddObjectError(ctx context.Context, e ObjectError) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO object_errors (id, item_id, pass_id, folder, source_id, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		timeID("oer", e.At), e.ItemID, e.PassID, e.Folder, e.SourceID, e.Reason, ts(e.At))
	return err
}

// ObjectErrors lists an item's per-object errors, newest first.
func (s *Store) ObjectErrors(ctx context.Context, itemID string, limit int) ([]ObjectError, error) {
	if limit <= 0 {
		limit = 200
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT item_id, pass_id, folder, source_id, reason, at FROM object_errors WHERE item_id = ? ORDER BY id DESC LIMIT ?`), itemID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ObjectError
	for rows.Next() {
		var e ObjectError
		var at string
		if err := rows.Scan(&e.ItemID, &e.PassID, &e.Folder, &e.SourceID, &e.Reason, &at); err != nil {
			return nil, err
		}
		e.At = parseTS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
