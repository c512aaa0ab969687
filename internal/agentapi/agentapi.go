// Package agentapi serves the workstation agent's side of the protocol under /agent/v1/: enrolment
// with a project's token and company key, and the device's periodic report. Administrators manage
// tokens and devices through the REST API.
package agentapi

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	// updates: the agent binaries (model.AgentBinary, each with a .version file beside it) and the
	// key that signs them; without a key no update is offered.
	mu       sync.RWMutex
	agentDir string
	signer   ed25519.PrivateKey
	// sums caches each binary's SHA-256 by path, size and modification time: every report of
	// every device would otherwise hash the whole binary again.
	sums map[string]fileSum
}

type fileSum struct {
	size    int64
	modTime time.Time
	sha256  string
}

// SetUpdates makes the server offer agents the binaries in dir, signed with key.
func (s *Server) SetUpdates(dir string, key ed25519.PrivateKey) {
	s.mu.Lock()
	s.agentDir, s.signer = dir, key
	s.mu.Unlock()
}

func (s *Server) updates() (string, ed25519.PrivateKey) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.agentDir, s.signer
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
	mux.HandleFunc("GET /agent/v1/update/{os}/{arch}", s.download)
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
	if err == nil {
		resp.Update, err = s.offer(f)
	}
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
	resp.Target, err = s.target(ctx, d, set, it, found)
	return resp, err
}

// target says what the device is switched to: its user's addresses (from the item when there is
// one), and the tenants, from the settings or else the project's Microsoft 365 endpoints.
func (s *Server) target(ctx context.Context, d model.Device, set model.AgentSettings, it model.Item, found bool) (*model.AgentTarget, error) {
	t := &model.AgentTarget{SourceEmail: d.UserEmail, TargetEmail: d.UserEmail, SourceTenantID: set.SourceTenantID, TargetTenantID: set.TargetTenantID,
		OutlookProfile: set.OutlookProfile, ReattachPST: set.ReattachPST, EntraLeave: set.EntraLeave, CloseAppsAfter: set.CloseAppsAfter}
	if found {
		t.SourceEmail, t.TargetEmail = it.SourceEmail, it.TargetEmail
	}
	if t.OutlookProfile == "" {
		t.OutlookProfile = t.TargetEmail
	}
	if t.OutlookProfile == "" {
		t.OutlookProfile = "Outlook (migrated)"
	}
	if t.CloseAppsAfter <= 0 {
		t.CloseAppsAfter = model.DefaultCloseAppsAfter
	}
	if t.SourceTenantID != "" && t.TargetTenantID != "" {
		return t, nil
	}
	prj, err := s.st.Project(ctx, nil, d.ProjectID)
	if err != nil {
		return nil, err
	}
	for _, e := range []struct {
		id  string
		out *string
	}{{prj.SourceID, &t.SourceTenantID}, {prj.TargetID, &t.TargetTenantID}} {
		if *e.out != "" || e.id == "" {
			continue
		}
		ep, err := s.st.Endpoint(ctx, prj.WorkgroupID, e.id)
		if err != nil {
			return nil, err
		}
		if ep.Kind == model.KindM365 && model.IsTenantID(ep.Settings.Tenant) {
			*e.out = strings.ToLower(ep.Settings.Tenant)
		}
	}
	return t, nil
}

// offer names a newer agent for the reporting build's platform, signed, or nil.
func (s *Server) offer(f model.DeviceFacts) (*model.AgentUpdate, error) {
	dir, signer := s.updates()
	goos, goarch, ok := strings.Cut(f.Platform, "/")
	if signer == nil || !ok || strings.ContainsAny(goos+goarch, `/\.`) {
		return nil, nil
	}
	path := filepath.Join(dir, model.AgentBinary(goos, goarch))
	v, err := os.ReadFile(path + ".version")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	version := strings.TrimSpace(string(v))
	if version == "" || version == f.AgentVersion {
		return nil, nil
	}
	sum, err := s.fileSHA256(path)
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(signer, model.AgentUpdateMessage(f.Platform, version, sum))
	return &model.AgentUpdate{Version: version, URL: "/agent/v1/update/" + goos + "/" + goarch, SHA256: sum, Signature: base64.StdEncoding.EncodeToString(sig)}, nil
}

func (s *Server) fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	s.mu.RLock()
	c, ok := s.sums[path]
	s.mu.RUnlock()
	if ok && c.size == fi.Size() && c.modTime.Equal(fi.ModTime()) {
		return c.sha256, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	s.mu.Lock()
	if s.sums == nil {
		s.sums = map[string]fileSum{}
	}
	s.sums[path] = fileSum{fi.Size(), fi.ModTime(), sum}
	s.mu.Unlock()
	return sum, nil
}

// download serves an agent binary to an enrolled device.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.device(w, r); !ok {
		return
	}
	dir, _ := s.updates()
	goos, goarch := r.PathValue("os"), r.PathValue("arch")
	if dir == "" || strings.ContainsAny(goos+goarch, `/\.`) {
		problem(w, http.StatusNotFound, "no agent binary for "+goos+"/"+goarch)
		return
	}
	f, err := os.Open(filepath.Join(dir, model.AgentBinary(goos, goarch)))
	if err != nil {
		problem(w, http.StatusNotFound, "no agent binary for "+goos+"/"+goarch)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	io.Copy(w, f)
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
	for name, v := range map[string]string{"hostname": f.Hostname, "os_version": f.OSVersion, "user_name": f.UserName, "user_email": f.UserEmail, "agent_version": f.AgentVersion, "platform": f.Platform} {
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
