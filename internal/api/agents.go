package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/model"
)

// AgentTokenResponse is a new enrolment token: its value and the project's company key, shown once
// for the agent package.
type AgentTokenResponse struct {
	Token      string           `json:"token"`
	CompanyKey string           `json:"company_key"`
	Info       model.AgentToken `json:"info"`
}

func (s *Server) createAgentToken(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Name    string `json:"name"`
		Expires string `json:"expires"` // "30d"; default 30 days
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validName("name", req.Name); err != nil {
		return err
	}
	ttl := 30 * 24 * time.Hour
	if req.Expires != "" {
		d, err := engine.ParseAge(req.Expires)
		if err != nil || d <= 0 {
			return badRequest("expires: want a duration like 30d or 12h, got %q", req.Expires)
		}
		ttl = d
	}
	prj, err := s.projectFor(r, p, model.RoleManager)
	if err != nil {
		return err
	}
	key, err := s.st.CompanyKey(r.Context(), prj.ID)
	if err != nil {
		return err
	}
	plain, t, err := s.auth.CreateAgentToken(r.Context(), p, prj.ID, strings.TrimSpace(req.Name), ttl)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, AgentTokenResponse{Token: plain, CompanyKey: key, Info: t})
}

func (s *Server) listAgentTokens(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	ts, err := s.st.AgentTokens(r.Context(), prj.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ts)
}

func (s *Server) revokeAgentToken(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleManager)
	if err != nil {
		return err
	}
	if err := s.st.RevokeAgentToken(r.Context(), prj.ID, r.PathValue("token")); err != nil {
		return err
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "project/" + prj.ID, Action: "agent.token.revoke", Outcome: "ok", Detail: r.PathValue("token")})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	ds, err := s.st.Devices(r.Context(), prj.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ds)
}

func (s *Server) revokeDevice(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	d, err := s.st.Device(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	// The device's project decides who may act on it; a device of a hidden project is not found.
	r.SetPathValue("id", d.ProjectID)
	prj, err := s.projectFor(r, p, model.RoleOperator)
	if err != nil {
		return err
	}
	if err := s.st.RevokeDevice(r.Context(), d.ID); err != nil {
		return err
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "project/" + prj.ID, Action: "agent.device.revoke", Outcome: "ok", Detail: d.Hostname})
	d, err = s.st.Device(r.Context(), d.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}
