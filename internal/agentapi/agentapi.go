// Package agentapi serves the workstation agent's side of the protocol under /agent/v1/: enrolment
// with a project's token and company key, and the device's periodic report. Administrators manage
// tokens and devices through the REST API.
package agentapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

// PollSeconds is how often an agent should report, before its own jitter.
const PollSeconds = 60

// Server handles agent requests.
type Server struct {
	st   *store.Store
	auth *auth.Service
	log  *slog.Logger
}

// New returns the agent protocol's server.
func New(st *store.Store, au *auth.Service, log *slog.Logger) *Server {
	return &Server{st: st, auth: au, log: log}
}

// Register adds the agent routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /agent/v1/enrol", s.enrol)
	mux.HandleFunc("POST /agent/v1/report", s.report)
	mux.HandleFunc("POST /agent/v1/tasks", s.taskStatus)
	mux.HandleFunc("POST /agent/v1/logs", s.logs)
}

// EnrolRequest is what an agent sends once, with the values from its agent.json.
type EnrolRequest struct {
	Token      string            `json:"token"`
	CompanyKey string            `json:"company_key"`
	Device     model.DeviceFacts `json:"device"`
}

// EnrolResponse carries the device's own credential: the agent keeps it and forgets the token.
type EnrolResponse struct {
	DeviceID    string `json:"device_id"`
	Credential  string `json:"credential"`
	PollSeconds int    `json:"poll_seconds"`
}

// ReportResponse is the answer to a report: the agent's instructions.
type ReportResponse = model.AgentInstructions

func (s *Server) enrol(w http.ResponseWriter, r *http.Request) {
	var req EnrolRequest
	if err := decode(w, r, &req); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkFacts(req.Device); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	d, cred, err := s.auth.Enrol(r.Context(), req.Token, req.CompanyKey, req.Device)
	switch {
	case errors.Is(err, auth.ErrEnrolRefused):
		problem(w, http.StatusUnauthorized, err.Error())
		return
	case err != nil:
		s.log.Error("agent enrol", "err", err)
		problem(w, http.StatusInternalServerError, "internal error; the server log has details")
		return
	}
	writeJSON(w, http.StatusCreated, EnrolResponse{DeviceID: d.ID, Credential: cred, PollSeconds: PollSeconds})
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	d, ok := s.device(w, r)
	if !ok {
		return
	}
	var f model.DeviceFacts
	if err := decode(w, r, &f); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkFacts(f); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.st.ReportDevice(r.Context(), d.ID, f); err != nil {
		s.log.Error("agent report", "device", d.ID, "err", err)
		problem(w, http.StatusInternalServerError, "internal error; the server log has details")
		return
	}
	resp, err := s.Instructions(r.Context(), d, time.Now())
	if err != nil {
		s.log.Error("agent report", "device", d.ID, "err", err)
		problem(w, http.StatusInternalServerError, "internal error; the server log has details")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// Instructions decides what a device is told: its tasks are released when the administrator
// forced them, or when its user's item has migrated and the item's cutover time (if any) has
// come; a hold keeps them back whatever else holds.
func (s *Server) Instructions(ctx context.Context, d model.Device, now time.Time) (ReportResponse, error) {
	resp := ReportResponse{PollSeconds: PollSeconds}
	rel, err := s.st.DeviceRelease(ctx, d.ID)
	if err != nil {
		return resp, err
	}
	it, found, err := s.st.ItemForUser(ctx, d.ProjectID, d.UserEmail)
	if err != nil {
		return resp, err
	}
	if found {
		if resp.CutoverAt, err = s.st.Cutover(ctx, it.ID); err != nil {
			return resp, err
		}
	}
	migrated := found && (it.Status == model.StatusCompleted || it.Status == model.StatusCompletedWithErrors)
	switch {
	case rel == model.ReleaseHeld:
		resp.Waiting = "held by an administrator"
	case rel == model.ReleaseForced:
		resp.Released = true
	case !found:
		resp.Waiting = "no item of the project has the user " + d.UserEmail
	case !migrated:
		resp.Waiting = "the mailbox of " + d.UserEmail + " has not finished migrating (" + string(it.Status) + ")"
	case resp.CutoverAt != nil && now.Before(*resp.CutoverAt):
		resp.Waiting = "the cutover time has not come"
	default:
		resp.Released = true
	}
	if !resp.Released {
		return resp, nil
	}
	set, err := s.st.AgentSettings(ctx, d.ProjectID)
	if err != nil {
		return resp, err
	}
	if resp.Tasks, err = s.st.DeviceTasks(ctx, d.ID, set.Steps()); err != nil {
		return resp, err
	}
	resp.PreScript, resp.PostScript = set.PreScript, set.PostScript
	resp.Prompt = &model.AgentPrompt{CompanyName: set.CompanyName, Text: set.PromptText, LogoURL: set.LogoURL}
	return resp, nil
}

// TaskReport is an agent's word on one task.
type TaskReport struct {
	Task   string          `json:"task"`
	Status model.TaskState `json:"status"`
	Detail string          `json:"detail,omitempty"`
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) (model.Device, bool) {
	d, err := s.auth.AuthenticateDevice(r)
	if errors.Is(err, auth.ErrUnauthenticated) {
		problem(w, http.StatusUnauthorized, err.Error())
		return d, false
	} else if err != nil {
		s.log.Error("agent", "err", err)
		problem(w, http.StatusInternalServerError, "internal error; the server log has details")
		return d, false
	}
	return d, true
}

func (s *Server) taskStatus(w http.ResponseWriter, r *http.Request) {
	d, ok := s.device(w, r)
	if !ok {
		return
	}
	var req TaskReport
	if err := decode(w, r, &req); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	set, err := s.st.AgentSettings(r.Context(), d.ProjectID)
	if err != nil {
		problem(w, http.StatusInternalServerError, "internal error; the server log has details")
		return
	}
	switch {
	case !slices.Contains(set.Steps(), req.Task):
		problem(w, http.StatusBadRequest, fmt.Sprintf("task %q is not one of this project's tasks (%s)", req.Task, strings.Join(set.Steps(), ", ")))
		return
	case !req.Status.Valid():
		problem(w, http.StatusBadRequest, fmt.Sprintf("status %q: want Waiting, Running, Complete, Skipped or Error", req.Status))
		return
	case len(req.Detail) > 2000:
		problem(w, http.StatusBadRequest, "detail is longer than 2000 characters")
		return
	}
	if err := s.st.SetTaskStatus(r.Context(), d.ID, req.Task, req.Status, req.Detail); err != nil {
		s.log.Error("agent task", "device", d.ID, "err", err)
		problem(w, http.StatusInternalServerError, "internal error; the server log has details")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// LogUpload is a batch of an agent's log lines.
type LogUpload struct {
	Lines []string `json:"lines"`
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	d, ok := s.device(w, r)
	if !ok {
		return
	}
	var req LogUpload
	if err := decode(w, r, &req); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Lines) == 0 || len(req.Lines) > 500 {
		problem(w, http.StatusBadRequest, "send 1 to 500 lines at a time")
		return
	}
	for i, l := range req.Lines {
		if len(l) > 4000 {
			req.Lines[i] = l[:4000] + " …(cut)"
		}
	}
	if err := s.st.AddDeviceLogs(r.Context(), d.ID, req.Lines); err != nil {
		s.log.Error("agent logs", "device", d.ID, "err", err)
		problem(w, http.StatusInternalServerError, "internal error; the server log has details")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkFacts refuses reports a console could not show sensibly.
func checkFacts(f model.DeviceFacts) error {
	if strings.TrimSpace(f.Hostname) == "" {
		return errors.New("device.hostname is required")
	}
	for name, v := range map[string]string{"hostname": f.Hostname, "os_version": f.OSVersion, "user_name": f.UserName, "user_email": f.UserEmail, "agent_version": f.AgentVersion} {
		if len(v) > 256 {
			return fmt.Errorf("%s is longer than 256 characters", name)
		}
	}
	if len(f.Software) > 32 {
		return errors.New("software lists more than 32 products")
	}
	return nil
}

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	return nil
}

// problem writes an RFC 9457 problem document, as the REST API does.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
