package api

import (
	_ "embed"
	"net/http"

	"github.com/ferry-migrate/ferry/internal/auth"
)

//go:embed openapi.json
var openapiDoc []byte

func (s *Server) routes() []route {
	return []route{
		{"GET", "/healthz", public, s.healthz},
		{"GET", "/readyz", public, s.readyz},
		{"GET", "/api/v1/openapi.json", public, s.openapi},
		{"POST", "/api/v1/session", public, s.login},
		{"DELETE", "/api/v1/session", member, s.logout},
		{"GET", "/api/v1/me", member, s.me},

		{"GET", "/api/v1/tokens", member, s.listTokens},
		{"POST", "/api/v1/tokens", member, s.createToken},
		{"DELETE", "/api/v1/tokens/{id}", member, s.revokeToken},

		{"GET", "/api/v1/users", admin, s.listUsers},
		{"POST", "/api/v1/users", admin, s.createUser},
		{"PATCH", "/api/v1/users/{id}", admin, s.updateUser},

		{"GET", "/api/v1/workgroups", member, s.listWorkgroups},
		{"POST", "/api/v1/workgroups", admin, s.createWorkgroup},
		{"PATCH", "/api/v1/workgroups/{id}", member, s.updateWorkgroup},
		{"GET", "/api/v1/workgroups/{id}/members", member, s.listMembers},
		{"PUT", "/api/v1/workgroups/{id}/members/{user}", member, s.setMember},

		{"GET", "/api/v1/customers", member, s.listCustomers},
		{"POST", "/api/v1/customers", member, s.createCustomer},

		{"GET", "/api/v1/endpoints", member, s.listEndpoints},
		{"POST", "/api/v1/endpoints", member, s.createEndpoint},
		{"GET", "/api/v1/endpoints/{id}", member, s.getEndpoint},
		{"PUT", "/api/v1/endpoints/{id}/credentials", member, s.setEndpointCredentials},
		{"POST", "/api/v1/endpoints/{id}/verify", member, s.verifyEndpoint},

		{"GET", "/api/v1/projects", member, s.listProjects},
		{"POST", "/api/v1/projects", member, s.createProject},
		{"GET", "/api/v1/projects/{id}", member, s.getProject},
		{"PATCH", "/api/v1/projects/{id}", member, s.updateProject},
		{"GET", "/api/v1/projects/{id}/items", member, s.listItems},
		{"POST", "/api/v1/projects/{id}/items/import", member, s.importItems},
		{"GET", "/api/v1/projects/{id}/items/export", member, s.exportItems},
		{"GET", "/api/v1/projects/{id}/passes", member, s.listPasses},
		{"POST", "/api/v1/projects/{id}/passes", member, s.startPass},
		{"POST", "/api/v1/projects/{id}/stop", member, s.stopProject},
		{"GET", "/api/v1/projects/{id}/schedules", member, s.listSchedules},
		{"DELETE", "/api/v1/projects/{id}/schedules", member, s.cancelSchedules},
		{"GET", "/api/v1/projects/{id}/stats", member, s.projectStats},
		{"GET", "/api/v1/projects/{id}/stream", member, s.streamProject},
		{"GET", "/api/v1/activity", member, s.activity},
		{"GET", "/api/v1/projects/{id}/agent/tokens", member, s.listAgentTokens},
		{"POST", "/api/v1/projects/{id}/agent/tokens", member, s.createAgentToken},
		{"DELETE", "/api/v1/projects/{id}/agent/tokens/{token}", member, s.revokeAgentToken},
		{"GET", "/api/v1/projects/{id}/devices", member, s.listDevices},
		{"POST", "/api/v1/devices/{id}/revoke", member, s.revokeDevice},
		{"GET", "/api/v1/projects/{id}/agent/settings", member, s.agentSettings},
		{"PUT", "/api/v1/projects/{id}/agent/settings", member, s.setAgentSettings},
		{"PUT", "/api/v1/items/{id}/cutover", member, s.setCutover},
		{"POST", "/api/v1/devices/{id}/actions", member, s.deviceAction},
		{"GET", "/api/v1/devices/{id}/logs", member, s.deviceLogs},
		{"POST", "/api/v1/projects/{id}/agent/package", member, s.agentPackage},
		{"GET", "/api/v1/items/{id}", member, s.getItem},
		{"GET", "/api/v1/events", member, s.listEvents},
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	if err := s.st.Ping(r.Context()); err != nil {
		return writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "database": string(s.st.Dialect())})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openapiDoc)
	return err
}
