// Package agentapi serves the workstation agent's side of the protocol under /agent/v1/: enrolment
// with a project's token and company key, and the device's periodic report. Administrators manage
// tokens and devices through the REST API.
package agentapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

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

// ReportResponse tells the agent when to come back. Tasks come with the cutover work.
type ReportResponse struct {
	PollSeconds int `json:"poll_seconds"`
}

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
	d, err := s.auth.AuthenticateDevice(r)
	if errors.Is(err, auth.ErrUnauthenticated) {
		problem(w, http.StatusUnauthorized, err.Error())
		return
	} else if err != nil {
		s.log.Error("agent report", "err", err)
		problem(w, http.StatusInternalServerError, "internal error; the server log has details")
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
	writeJSON(w, http.StatusOK, ReportResponse{PollSeconds: PollSeconds})
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
