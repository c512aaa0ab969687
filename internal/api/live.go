package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

// liveItem is what a live view needs to redraw one row.
type liveItem struct {
	ID          string           `json:"id"`
	SourceEmail string           `json:"source_email"`
	Status      model.ItemStatus `json:"status"`
	Stats       model.ItemStats  `json:"stats"`
	LastError   string           `json:"last_error,omitempty"`
}

// streamInterval is how often the stream looks for changed items; a var so tests may shorten it.
var streamInterval = time.Second

// streamProject sends a project's progress as server-sent events: "counts" (items by status) at
// once and after every change, and "items" with the rows that changed. The event id is the time
// of the last change seen, so a reconnecting browser (Last-Event-ID) misses nothing.
func (s *Server) streamProject(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	// A stream outlives any write deadline the server may set.
	rc.SetWriteDeadline(time.Time{})
	since := time.Now().Add(-2 * time.Second)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if n, err := strconv.ParseInt(id, 10, 64); err == nil {
			since = time.Unix(0, n)
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	send := func(event string, id time.Time, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", id.UnixNano(), event, data); err != nil {
			return err
		}
		return rc.Flush()
	}
	counts, err := s.st.StatusCounts(r.Context(), prj.ID)
	if err != nil {
		return err
	}
	if err := send("counts", since, counts); err != nil {
		return nil // the browser went away
	}
	resume, sent := since, map[string]time.Time{}
	tick := time.NewTicker(streamInterval)
	defer tick.Stop()
	idle := 0
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
		}
		// Look back a second further than the last change seen: a row committed late with an
		// earlier timestamp is still caught, and rows already sent are skipped.
		items, _, err := s.st.Items(r.Context(), prj.ID, store.ItemFilter{ChangedAfter: since.Add(-time.Second), Sort: "updated", Limit: 1000})
		if err != nil {
			return nil
		}
		var changed []liveItem
		for _, it := range items {
			if !it.UpdatedAt.After(resume) {
				continue // the browser had this before it reconnected
			}
			if at, ok := sent[it.ID]; ok && at.Equal(it.UpdatedAt) {
				continue
			}
			sent[it.ID] = it.UpdatedAt
			changed = append(changed, liveItem{it.ID, it.SourceEmail, it.Status, it.Stats, it.LastError})
			if it.UpdatedAt.After(since) {
				since = it.UpdatedAt
			}
		}
		if len(changed) == 0 {
			if idle++; idle*int(streamInterval) >= int(15*time.Second) {
				idle = 0
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
					return nil
				}
			}
			continue
		}
		idle = 0
		if err := send("items", since, changed); err != nil {
			return nil
		}
		if counts, err = s.st.StatusCounts(r.Context(), prj.ID); err != nil {
			return nil
		}
		if err := send("counts", since, counts); err != nil {
			return nil
		}
	}
}

// activity is the dashboard's data: throughput by hour over the caller's projects and their
// latest failures.
func (s *Server) activity(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	hours := 24
	if v := r.URL.Query().Get("hours"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 24*14 {
			return badRequest("hours must be a number from 1 to 336, got %q", v)
		}
		hours = n
	}
	prjs, _, err := s.visibleProjects(r.Context(), p)
	if err != nil {
		return err
	}
	ids := make([]string, len(prjs))
	for i, prj := range prjs {
		ids[i] = prj.ID
	}
	act, err := s.st.Activity(r.Context(), ids, hours, 20, time.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, act)
}
