package api

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/age"
	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/itemcsv"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

// ItemPage is one page of a project's items.
type ItemPage struct {
	Items  []model.Item `json:"items"`
	Total  int          `json:"total"`
	Limit  int          `json:"limit"`
	Offset int          `json:"offset"`
}

func (s *Server) listItems(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	f, err := itemFilter(r)
	if err != nil {
		return err
	}
	items, total, err := s.st.Items(r.Context(), prj.ID, f)
	if errors.Is(err, store.ErrBadFilter) {
		return badRequest("%s", strings.TrimPrefix(err.Error(), store.ErrBadFilter.Error()+": "))
	} else if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ItemPage{Items: items, Total: total, Limit: f.Limit, Offset: f.Offset})
}

func itemFilter(r *http.Request) (store.ItemFilter, error) {
	q := r.URL.Query()
	f := store.ItemFilter{Text: q.Get("q"), Sort: q.Get("sort"), Emails: splitList(q.Get("items"))}
	if st := q.Get("status"); st != "" {
		s, err := model.ParseStatus(st)
		if err != nil {
			return f, badRequest("%v", err)
		}
		f.Status = s
	}
	for name, dst := range map[string]*int{"limit": &f.Limit, "offset": &f.Offset} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return f, badRequest("%s must be a non-negative number, got %q", name, v)
			}
			*dst = n
		}
	}
	if f.Limit > 10000 {
		f.Limit = 10000
	}
	return f, nil
}

// ImportResponse reports what an import did.
type ImportResponse struct {
	store.ImportResult
	Lines int `json:"lines"`
}

// maxListedErrors is how many bad lines a rejected CSV's answer lists.
const maxListedErrors = 100

func (s *Server) importItems(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleManager)
	if err != nil {
		return err
	}
	rows, err := itemcsv.Parse(r.Body)
	var ce *itemcsv.Error
	if errors.As(err, &ce) {
		// The first maxListedErrors bad lines, and how many there are: a file of 100,000 bad
		// lines must not get a 10 MB answer.
		lines := make([]map[string]any, min(len(ce.Lines), maxListedErrors))
		for i := range lines {
			lines[i] = map[string]any{"line": ce.Lines[i].Line, "reason": ce.Lines[i].Reason}
		}
		s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "project/" + prj.ID, Action: "items.import", Outcome: "rejected",
			Detail: fmt.Sprintf("%d bad lines", len(ce.Lines))})
		return &httpError{status: http.StatusUnprocessableEntity, detail: fmt.Sprintf("CSV rejected, nothing imported: %d bad lines", len(ce.Lines)),
			ext: map[string]any{"errors": lines, "errors_total": len(ce.Lines)}}
	} else if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("CSV rejected, nothing imported: %v", err)
	}
	in := make([]store.ItemInput, len(rows))
	for i, row := range rows {
		in[i] = store.ItemInput{SourceEmail: row.SourceEmail, TargetEmail: row.TargetEmail, SourceLogin: row.SourceLogin, TargetLogin: row.TargetLogin}
		if row.SourcePassword != "" || row.TargetPassword != "" {
			in[i].Secret = &model.ItemSecret{SourcePassword: row.SourcePassword, TargetPassword: row.TargetPassword}
		}
	}
	res, err := s.st.ImportItems(r.Context(), prj.ID, p.Name(), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ImportResponse{ImportResult: res, Lines: len(rows)})
}

func (s *Server) exportItems(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	f, err := itemFilter(r)
	if err != nil {
		return err
	}
	items, _, err := s.st.Items(r.Context(), prj.ID, f)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", prj.Name+"-items.csv"))
	cw := csv.NewWriter(w)
	cw.Write([]string{"source_email", "target_email", "source_login", "target_login", "status", "folders", "objects", "bytes", "errors", "last_error"})
	for _, it := range items {
		cw.Write([]string{it.SourceEmail, it.TargetEmail, it.SourceLogin, it.TargetLogin, string(it.Status),
			strconv.FormatInt(it.Stats.Folders, 10), strconv.FormatInt(it.Stats.Objects, 10), strconv.FormatInt(it.Stats.Bytes, 10),
			strconv.FormatInt(it.Stats.Errors, 10), it.LastError})
	}
	cw.Flush()
	return cw.Error()
}

// PassRequest starts or schedules a pass.
type PassRequest struct {
	Type      string   `json:"type"`
	Items     []string `json:"items,omitempty"`      // source addresses; empty = all applicable
	OlderThan string   `json:"older_than,omitempty"` // "90d", prestage only
	At        string   `json:"at,omitempty"`         // RFC 3339; empty = now
	Repeat    string   `json:"repeat,omitempty"`     // e.g. "24h": repeat until Until
	Until     string   `json:"until,omitempty"`      // RFC 3339 cutover time
}

// PassResponse is a started pass or a stored schedule.
type PassResponse struct {
	Pass     *model.Pass     `json:"pass,omitempty"`
	Skipped  []string        `json:"skipped,omitempty"`
	Schedule *model.Schedule `json:"schedule,omitempty"`
}

func (s *Server) startPass(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req PassRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	prj, err := s.projectFor(r, p, model.RoleOperator)
	if err != nil {
		return err
	}
	typ, err := model.ParsePassType(req.Type)
	if err != nil {
		return badRequest("%v", err)
	}
	olderThan, err := age.Parse(req.OlderThan)
	if err != nil {
		return badRequest("older_than: %v", err)
	}
	if olderThan > 0 && typ != model.PassPrestage {
		return badRequest("older_than applies to prestage passes only")
	}
	days := int(olderThan / (24 * time.Hour))
	var itemIDs []string
	if len(req.Items) > 0 {
		items, _, err := s.st.Items(r.Context(), prj.ID, store.ItemFilter{Emails: req.Items})
		if err != nil {
			return err
		}
		found := map[string]bool{}
		for _, it := range items {
			itemIDs = append(itemIDs, it.ID)
			found[strings.ToLower(it.SourceEmail)] = true
		}
		var missing []string
		for _, e := range req.Items {
			if !found[strings.ToLower(strings.TrimSpace(e))] {
				missing = append(missing, e)
			}
		}
		if len(missing) > 0 {
			return badRequest("not items of project %s: %s", prj.Name, strings.Join(missing, ", "))
		}
	}
	if req.At != "" || req.Repeat != "" {
		sc := model.Schedule{ProjectID: prj.ID, PassType: typ, ItemIDs: itemIDs, OlderThan: days, NextAt: time.Now().UTC(), CreatedBy: p.Name()}
		if req.At != "" {
			if sc.NextAt, err = time.Parse(time.RFC3339, req.At); err != nil {
				return badRequest("at: want an RFC 3339 time like 2026-12-01T22:00:00Z, got %q", req.At)
			}
		}
		if req.Repeat != "" {
			if sc.Every, err = age.Parse(req.Repeat); err != nil || sc.Every < time.Minute {
				return badRequest("repeat: want an interval of at least 1m, like 24h, got %q", req.Repeat)
			}
			if req.Until == "" {
				return badRequest("repeat needs until: the cutover time when continuous sync stops")
			}
		}
		if req.Until != "" {
			u, err := time.Parse(time.RFC3339, req.Until)
			if err != nil {
				return badRequest("until: want an RFC 3339 time, got %q", req.Until)
			}
			if !u.After(sc.NextAt) {
				return badRequest("until (%s) must be after the first run (%s)", req.Until, sc.NextAt.Format(time.RFC3339))
			}
			sc.Until = &u
		}
		sc, err := s.eng.Schedule(r.Context(), sc)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusAccepted, PassResponse{Schedule: &sc})
	}
	pass, skipped, err := s.eng.StartPass(r.Context(), store.PassRequest{ProjectID: prj.ID, Type: typ, Actor: p.Name(), ItemIDs: itemIDs, OlderThan: days})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, PassResponse{Pass: &pass, Skipped: skipped})
}

func (s *Server) listPasses(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	ps, err := s.st.Passes(r.Context(), prj.ID, 100)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(ps))
}

func (s *Server) stopProject(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Items []string `json:"items,omitempty"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	prj, err := s.projectFor(r, p, model.RoleOperator)
	if err != nil {
		return err
	}
	var ids []string
	if len(req.Items) > 0 {
		items, _, err := s.st.Items(r.Context(), prj.ID, store.ItemFilter{Emails: req.Items})
		if err != nil {
			return err
		}
		if len(items) != len(req.Items) {
			return badRequest("%d of the %d addresses are not items of project %s", len(req.Items)-len(items), len(req.Items), prj.Name)
		}
		for _, it := range items {
			ids = append(ids, it.ID)
		}
	}
	n, err := s.eng.Stop(r.Context(), prj.ID, ids, p.Name())
	if err != nil {
		return err
	}
	cancelled := 0
	if len(ids) == 0 {
		if cancelled, err = s.st.CancelSchedules(r.Context(), prj.ID, p.Name()); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, map[string]int{"stopped": n, "schedules_cancelled": cancelled})
}

func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	scs, err := s.st.Schedules(r.Context(), prj.ID, false)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(scs))
}

func (s *Server) cancelSchedules(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleOperator)
	if err != nil {
		return err
	}
	n, err := s.st.CancelSchedules(r.Context(), prj.ID, p.Name())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]int{"schedules_cancelled": n})
}

// StatsResponse is a project's statistics: per item and in total.
type StatsResponse struct {
	Project string                   `json:"project"`
	Counts  map[model.ItemStatus]int `json:"counts"`
	Total   model.ItemStats          `json:"total"`
	Items   []model.Item             `json:"items"`
}

func (s *Server) projectStats(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	items, _, err := s.st.Items(r.Context(), prj.ID, store.ItemFilter{})
	if err != nil {
		return err
	}
	counts, err := s.st.StatusCounts(r.Context(), prj.ID)
	if err != nil {
		return err
	}
	res := StatsResponse{Project: prj.Name, Counts: counts, Items: items}
	for _, it := range items {
		res.Total.Add(it.Stats)
	}
	return writeJSON(w, http.StatusOK, res)
}

// ItemDetail is an item with its pass history, per-object errors and audit trail.
type ItemDetail struct {
	Item   model.Item          `json:"item"`
	Runs   []model.Run         `json:"runs"`
	Errors []store.ObjectError `json:"errors"`
	Events []model.Event       `json:"events"`
}

func (s *Server) getItem(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	it, err := s.st.Item(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	prj, err := s.st.Project(r.Context(), nil, it.ProjectID)
	if err != nil {
		return err
	}
	if _, err := s.auth.ProjectRole(r.Context(), p, prj); err != nil {
		return fmt.Errorf("item %q: %w", r.PathValue("id"), store.ErrNotFound)
	}
	d := ItemDetail{Item: it}
	if d.Runs, err = s.st.Runs(r.Context(), it.ID); err != nil {
		return err
	}
	if d.Errors, err = s.st.ObjectErrors(r.Context(), it.ID, 200); err != nil {
		return err
	}
	if d.Events, err = s.st.Events(r.Context(), "item/"+it.ID, 200); err != nil {
		return err
	}
	d.Runs, d.Errors, d.Events = nonNil(d.Runs), nonNil(d.Errors), nonNil(d.Events)
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	object := r.URL.Query().Get("object")
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if !p.User.Admin {
		// Non-administrators read the trail of one project they can see, by its id alone.
		id, ok := strings.CutPrefix(object, "project/")
		if !ok || id == "" {
			return errStatus(http.StatusForbidden, "only administrators may read the whole audit trail; pass object=project/<id>")
		}
		r.SetPathValue("id", id)
		prj, err := s.projectFor(r, p, model.RoleReader)
		if err != nil {
			return err
		}
		object = "project/" + prj.ID
	}
	evs, err := s.st.Events(r.Context(), object, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(evs))
}
