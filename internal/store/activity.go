package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
)

// Activity is what the dashboard shows: throughput by hour and the latest failures.
type Activity struct {
	Hours  []HourBucket  `json:"hours"`
	Errors []RecentError `json:"errors"`
}

// HourBucket sums the runs that finished within one hour.
type HourBucket struct {
	Start   time.Time `json:"start"`
	Runs    int       `json:"runs"`
	Objects int64     `json:"objects"`
	Bytes   int64     `json:"bytes"`
}

// RecentError is a run that failed or finished with errors.
type RecentError struct {
	ProjectID   string           `json:"project_id"`
	ItemID      string           `json:"item_id"`
	SourceEmail string           `json:"source_email"`
	Status      model.ItemStatus `json:"status"`
	Error       string           `json:"error"`
	At          time.Time        `json:"at"`
}

// Activity sums the runs of the given projects that finished in the last hours, one bucket per
// hour (oldest first, empty hours included), and lists up to maxErrors of the newest failures.
func (s *Store) Activity(ctx context.Context, projectIDs []string, hours, maxErrors int, now time.Time) (Activity, error) {
	now = now.UTC()
	first := now.Truncate(time.Hour).Add(-time.Duration(hours-1) * time.Hour)
	out := Activity{Hours: make([]HourBucket, hours), Errors: []RecentError{}}
	for i := range out.Hours {
		out.Hours[i].Start = first.Add(time.Duration(i) * time.Hour)
	}
	if len(projectIDs) == 0 {
		return out, nil
	}
	args := append(anys(projectIDs), ts(first))
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT r.finished_at, r.stats, r.status, r.error, i.project_id, i.id, i.source_email
		FROM runs r JOIN items i ON i.id = r.item_id
		WHERE i.project_id IN (`+placeholders(len(projectIDs))+`) AND r.finished_at IS NOT NULL AND r.finished_at >= ?
		ORDER BY r.finished_at DESC`), args...)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var fin, stats, status string
		var e RecentError
		if err := rows.Scan(&fin, &stats, &status, &e.Error, &e.ProjectID, &e.ItemID, &e.SourceEmail); err != nil {
			return out, err
		}
		at := parseTS(fin)
		if i := int(at.Sub(first) / time.Hour); i >= 0 && i < hours {
			var st model.ItemStats
			json.Unmarshal([]byte(stats), &st)
			b := &out.Hours[i]
			b.Runs++
			b.Objects += st.Objects
			b.Bytes += st.Bytes
		}
		e.Status, e.At = model.ItemStatus(status), at
		if (e.Status == model.StatusFailed || e.Status == model.StatusCompletedWithErrors) && len(out.Errors) < maxErrors {
			out.Errors = append(out.Errors, e)
		}
	}
	return out, rows.Err()
}
