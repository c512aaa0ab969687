package api

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/auth"
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
	ttl, err := lifetime(req.Expires, 30*24*time.Hour, auth.MaxTokenLifetime)
	if err != nil {
		return err
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

// DeviceView is a device with its administrator's release and its tasks' states.
type DeviceView struct {
	model.Device
	Release model.Release      `json:"release,omitempty"`
	Tasks   []model.DeviceTask `json:"tasks"`
}

func (s *Server) deviceView(r *http.Request, d model.Device, tasks []string) (DeviceView, error) {
	v := DeviceView{Device: d}
	var err error
	if v.Release, err = s.st.DeviceRelease(r.Context(), d.ID); err != nil {
		return v, err
	}
	v.Tasks, err = s.st.DeviceTasks(r.Context(), d.ID, tasks)
	return v, err
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
	set, err := s.st.AgentSettings(r.Context(), prj.ID)
	if err != nil {
		return err
	}
	out := []DeviceView{}
	for _, d := range ds {
		v, err := s.deviceView(r, d, set.Steps())
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

// deviceFor finds a device and checks the caller's role on its project: a device of a project
// the caller cannot see is not found.
func (s *Server) deviceFor(r *http.Request, p auth.Principal, min model.Role) (model.Device, model.Project, error) {
	d, err := s.st.Device(r.Context(), r.PathValue("id"))
	if err != nil {
		return d, model.Project{}, err
	}
	r.SetPathValue("id", d.ProjectID)
	prj, err := s.projectFor(r, p, min)
	return d, prj, err
}

func (s *Server) agentSettings(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	set, err := s.st.AgentSettings(r.Context(), prj.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, set)
}

func (s *Server) setAgentSettings(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var set model.AgentSettings
	if err := decode(r, &set); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, t := range set.Tasks {
		if !slices.Contains(model.AgentTasks, t) {
			return badRequest("tasks: %q is not a task; want some of %s", t, strings.Join(model.AgentTasks, ", "))
		}
		if seen[t] {
			return badRequest("tasks: %q is listed twice", t)
		}
		seen[t] = true
	}
	// Tasks always run in their own order, whatever order they were chosen in.
	var ordered []string
	for _, t := range model.AgentTasks {
		if seen[t] {
			ordered = append(ordered, t)
		}
	}
	set.Tasks = ordered
	if len(set.PromptText) > 4000 || len(set.CompanyName) > 200 {
		return badRequest("prompt_text is limited to 4000 characters and company_name to 200")
	}
	if len(set.PreScript) > 32<<10 || len(set.PostScript) > 32<<10 {
		return badRequest("pre_script and post_script are limited to 32 KiB each")
	}
	if set.LogoURL != "" && !strings.HasPrefix(set.LogoURL, "https://") && !strings.HasPrefix(set.LogoURL, "data:image/") {
		return badRequest("logo_url: want an https:// URL or a data:image/… URL")
	}
	for name, id := range map[string]string{"source_tenant_id": set.SourceTenantID, "target_tenant_id": set.TargetTenantID} {
		if id != "" && !model.IsTenantID(id) {
			return badRequest("%s: %q is not a tenant id; want the directory id, a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47", name, id)
		}
	}
	if strings.ContainsAny(set.OutlookProfile, `\/:*?"<>|`) || len(set.OutlookProfile) > 64 {
		return badRequest("outlook_profile: at most 64 characters, without any of \\ / : * ? \" < > |")
	}
	if set.CloseAppsAfter < 0 || set.CloseAppsAfter > 86400 {
		return badRequest("close_apps_after_seconds: want 0 (the default, %d) to 86400", model.DefaultCloseAppsAfter)
	}
	prj, err := s.projectFor(r, p, model.RoleManager)
	if err != nil {
		return err
	}
	if err := s.st.SetAgentSettings(r.Context(), prj.ID, set); err != nil {
		return err
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "project/" + prj.ID, Action: "agent.settings", Outcome: "ok", Detail: strings.Join(set.Tasks, ",")})
	return writeJSON(w, http.StatusOK, set)
}

// setCutover sets when an item's workstation may be switched over (UTC; null clears it).
func (s *Server) setCutover(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		At *time.Time `json:"at"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	it, err := s.st.Item(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	r.SetPathValue("id", it.ProjectID)
	prj, err := s.projectFor(r, p, model.RoleOperator)
	if err != nil {
		return err
	}
	if req.At != nil {
		utc := req.At.UTC()
		req.At = &utc
	}
	if err := s.st.SetCutover(r.Context(), it.ID, req.At); err != nil {
		return err
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "project/" + prj.ID, Action: "agent.cutover", Outcome: "ok", Detail: it.SourceEmail})
	return writeJSON(w, http.StatusOK, map[string]any{"item": it.ID, "cutover_at": req.At})
}

// deviceAction: start (release the tasks now), stop (hold them), restart (run them again from
// the first), complete (mark them all done).
func (s *Server) deviceAction(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Action string `json:"action"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	d, prj, err := s.deviceFor(r, p, model.RoleOperator)
	if err != nil {
		return err
	}
	set, err := s.st.AgentSettings(r.Context(), prj.ID)
	if err != nil {
		return err
	}
	ctx := r.Context()
	switch req.Action {
	case "start":
		err = s.st.SetDeviceRelease(ctx, d.ID, model.ReleaseForced)
	case "stop":
		err = s.st.SetDeviceRelease(ctx, d.ID, model.ReleaseHeld)
	case "restart":
		if err = s.st.SetAllTasks(ctx, d.ID, set.Steps(), model.TaskWaiting, "restarted by "+p.Name()); err == nil {
			err = s.st.SetDeviceRelease(ctx, d.ID, model.ReleaseAuto)
		}
	case "complete":
		err = s.st.SetAllTasks(ctx, d.ID, set.Steps(), model.TaskComplete, "marked complete by "+p.Name())
	default:
		return badRequest("action: want start, stop, restart or complete, got %q", req.Action)
	}
	if err != nil {
		return err
	}
	s.st.Event(ctx, model.Event{Actor: p.Name(), Object: "project/" + prj.ID, Action: "agent.device." + req.Action, Outcome: "ok", Detail: d.Hostname})
	v, err := s.deviceView(r, d, set.Steps())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) deviceLogs(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	d, _, err := s.deviceFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	logs, err := s.st.DeviceLogs(r.Context(), d.ID, 1000)
	if err != nil {
		return err
	}
	if logs == nil {
		logs = []model.DeviceLog{}
	}
	return writeJSON(w, http.StatusOK, logs)
}

func (s *Server) revokeDevice(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	d, prj, err := s.deviceFor(r, p, model.RoleOperator)
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
