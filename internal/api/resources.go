package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

// chooseWorkgroup resolves the workgroup a new object goes into: the named one, or the caller's
// only (or first) workgroup, and checks the caller's role there.
func (s *Server) chooseWorkgroup(ctx context.Context, p auth.Principal, name string, min model.Role) (string, error) {
	ids, err := s.auth.Workgroups(ctx, p)
	if err != nil {
		return "", err
	}
	if name == "" {
		if len(ids) == 0 {
			return "", fmt.Errorf("%w: you are not in any workgroup", auth.ErrForbidden)
		}
		wgs, err := s.st.Workgroups(ctx, "")
		if err != nil {
			return "", err
		}
		// Prefer the Default workgroup when the caller is in several.
		chosen := ids[0]
		for _, wg := range wgs {
			if wg.Name == "Default" && contains(ids, wg.ID) {
				chosen = wg.ID
			}
		}
		return chosen, s.auth.Require(ctx, p, chosen, min)
	}
	wg, err := s.st.Workgroup(ctx, name)
	if err != nil || !contains(ids, wg.ID) {
		return "", fmt.Errorf("%w: workgroup %q", store.ErrNotFound, name)
	}
	return wg.ID, s.auth.Require(ctx, p, wg.ID, min)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (s *Server) listCustomers(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	ids, err := s.auth.Workgroups(r.Context(), p)
	if err != nil {
		return err
	}
	cs, err := s.st.Customers(r.Context(), ids)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(cs))
}

type customerRequest struct {
	Name      string `json:"name"`
	Domain    string `json:"domain"`
	Workgroup string `json:"workgroup,omitempty"`
}

// hostRE is a host name, an IPv4 address, or an IPv6 address with or without brackets: no spaces,
// no control characters, nothing that could end a protocol line.
var hostRE = regexp.MustCompile(`^(?:[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})|\[?[0-9A-Fa-f:.]+\]?)$`)

// validHost checks settings.host: for m365 endpoints an https URL (a national cloud's or the
// emulator's Graph), for every other kind a host name or address.
func validHost(kind model.EndpointKind, host string) error {
	if host == "" {
		return nil
	}
	if kind == model.KindM365 {
		u, err := url.Parse(host)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || !hostRE.MatchString(u.Hostname()) || strings.ContainsAny(host, " \t") {
			return badRequest("settings.host %q is not an http(s) URL of a Graph host", host)
		}
		return nil
	}
	if !hostRE.MatchString(host) {
		return badRequest("settings.host %q is not a host name or IP address", host)
	}
	return nil
}

var domainRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)

func (s *Server) createCustomer(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req customerRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validName("name", req.Name); err != nil {
		return err
	}
	if !domainRE.MatchString(req.Domain) {
		return badRequest("domain %q is not a valid email domain (like contoso.com)", req.Domain)
	}
	wg, err := s.chooseWorkgroup(r.Context(), p, req.Workgroup, model.RoleManager)
	if err != nil {
		return err
	}
	c, err := s.st.CreateCustomer(r.Context(), model.Customer{WorkgroupID: wg, Name: strings.TrimSpace(req.Name), Domain: strings.ToLower(req.Domain)})
	if err != nil {
		return err
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "customer/" + c.ID, Action: "customer.create", Outcome: "ok"})
	return writeJSON(w, http.StatusCreated, c)
}

// endpointRequest creates an endpoint. Credentials are write-only: accepted here, never returned.
type endpointRequest struct {
	Name        string                 `json:"name"`
	Kind        string                 `json:"kind"`
	Workgroup   string                 `json:"workgroup,omitempty"`
	Customer    string                 `json:"customer_id,omitempty"`
	Settings    model.EndpointSettings `json:"settings"`
	Domains     []string               `json:"domains,omitempty"`
	Credentials *model.EndpointSecret  `json:"credentials,omitempty"`
}

func validateEndpoint(req *endpointRequest) error {
	if err := validName("name", req.Name); err != nil {
		return err
	}
	kind := model.EndpointKind(req.Kind)
	known := kind == model.KindIMAP || kind == model.KindM365
	for _, k := range connector.Kinds() {
		known = known || k == kind
	}
	if !known {
		return badRequest("unknown endpoint kind %q: want imap or m365", req.Kind)
	}
	st := &req.Settings
	switch kind {
	case model.KindIMAP:
		if st.Host == "" {
			return badRequest("an imap endpoint needs settings.host")
		}
		if st.Security == "" {
			st.Security = model.SecurityTLS
		}
		if _, err := model.ParseSecurity(string(st.Security)); err != nil {
			return badRequest("%v", err)
		}
		if st.Port == 0 {
			st.Port = 993
			if st.Security != model.SecurityTLS {
				st.Port = 143
			}
		}
		if st.Port < 1 || st.Port > 65535 {
			return badRequest("port %d is out of range 1-65535", st.Port)
		}
	case model.KindM365:
		if st.Tenant == "" || st.ClientID == "" {
			return badRequest("an m365 endpoint needs settings.tenant and settings.client_id")
		}
	}
	if err := validHost(kind, st.Host); err != nil {
		return err
	}
	for field, v := range map[string]string{"settings.tenant": st.Tenant, "settings.client_id": st.ClientID, "settings.admin_user": st.AdminUser,
		"settings.auth": st.Auth, "settings.cloud": st.Cloud, "settings.mailbox_api": st.MailboxAPI} {
		if err := noControl(field, v); err != nil {
			return err
		}
	}
	for i, d := range req.Domains {
		req.Domains[i] = strings.ToLower(strings.TrimSpace(d))
		if !domainRE.MatchString(req.Domains[i]) {
			return badRequest("domain %q is not a valid email domain", d)
		}
	}
	return nil
}

func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req endpointRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validateEndpoint(&req); err != nil {
		return err
	}
	wg, err := s.chooseWorkgroup(r.Context(), p, req.Workgroup, model.RoleManager)
	if err != nil {
		return err
	}
	e, err := s.st.CreateEndpoint(r.Context(), model.Endpoint{WorkgroupID: wg, CustomerID: req.Customer, Name: strings.TrimSpace(req.Name),
		Kind: model.EndpointKind(req.Kind), Settings: req.Settings, Domains: req.Domains, Secret: req.Credentials})
	if err != nil {
		return err
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "endpoint/" + e.ID, Action: "endpoint.create", Outcome: "ok", Detail: e.Name})
	return writeJSON(w, http.StatusCreated, e)
}

func (s *Server) endpointFor(r *http.Request, p auth.Principal, min model.Role) (model.Endpoint, error) {
	ids, err := s.auth.Workgroups(r.Context(), p)
	if err != nil {
		return model.Endpoint{}, err
	}
	// An id names one endpoint; a name may be taken in several of the caller's workgroups, and then
	// it names none.
	var found []model.Endpoint
	for _, wg := range ids {
		e, err := s.st.Endpoint(r.Context(), wg, r.PathValue("id"))
		if err == nil && e.ID == r.PathValue("id") {
			return e, s.auth.Require(r.Context(), p, e.WorkgroupID, min)
		}
		if err == nil {
			found = append(found, e)
		} else if !store.IsNotFound(err) {
			return e, err
		}
	}
	switch len(found) {
	case 0:
		return model.Endpoint{}, fmt.Errorf("endpoint %q: %w", r.PathValue("id"), store.ErrNotFound)
	case 1:
		return found[0], s.auth.Require(r.Context(), p, found[0].WorkgroupID, min)
	}
	return model.Endpoint{}, fmt.Errorf("%w: endpoints named %q are in more than one of your workgroups; use the endpoint's id", store.ErrAmbiguous, r.PathValue("id"))
}

func (s *Server) listEndpoints(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	ids, err := s.auth.Workgroups(r.Context(), p)
	if err != nil {
		return err
	}
	es, err := s.st.Endpoints(r.Context(), ids)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(es))
}

func (s *Server) getEndpoint(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	e, err := s.endpointFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}

func (s *Server) setEndpointCredentials(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req model.EndpointSecret
	if err := decode(r, &req); err != nil {
		return err
	}
	e, err := s.endpointFor(r, p, model.RoleManager)
	if err != nil {
		return err
	}
	if err := s.st.SetEndpointSecret(r.Context(), e.ID, &req); err != nil {
		return err
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "endpoint/" + e.ID, Action: "endpoint.credentials", Outcome: "ok"})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// VerifyResult is the outcome of checking an endpoint's credentials.
type VerifyResult struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func (s *Server) verifyEndpoint(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	e, err := s.endpointFor(r, p, model.RoleOperator)
	if err != nil {
		return err
	}
	full, err := s.st.EndpointWithSecret(r.Context(), e.ID)
	if err != nil {
		return err
	}
	res := VerifyResult{OK: true, Detail: "credentials accepted"}
	c, err := connector.For(full.Kind)
	if err == nil {
		user := full.Settings.AdminUser
		err = c.Verify(r.Context(), connector.Side{Endpoint: full, Email: user, Login: user})
	}
	if err != nil {
		res = VerifyResult{OK: false, Detail: err.Error()}
	}
	outcome := "ok"
	if !res.OK {
		outcome = "failed"
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "endpoint/" + e.ID, Action: "endpoint.verify", Outcome: outcome, Detail: res.Detail})
	return writeJSON(w, http.StatusOK, res)
}

type projectRequest struct {
	Name      string                `json:"name"`
	Workload  string                `json:"workload"`
	Source    string                `json:"source"`
	Target    string                `json:"target"`
	Workgroup string                `json:"workgroup,omitempty"`
	Customer  string                `json:"customer_id,omitempty"`
	Options   *model.ProjectOptions `json:"options,omitempty"`
}

func validateOptions(o *model.ProjectOptions) error {
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = model.DefaultMaxConcurrent
	}
	if o.MaxConcurrent < 1 || o.MaxConcurrent > 1000 {
		return badRequest("max_concurrent %d is out of range 1-1000", o.MaxConcurrent)
	}
	if o.OlderThanDays < 0 || o.NewerThanDays < 0 {
		return badRequest("date filters must not be negative")
	}
	if _, _, _, err := engine.CompileOptions(*o); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req projectRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validName("name", req.Name); err != nil {
		return err
	}
	wl, err := model.ParseWorkload(req.Workload)
	if err != nil {
		return badRequest("%v", err)
	}
	opts := model.ProjectOptions{}
	if req.Options != nil {
		opts = *req.Options
	}
	if err := validateOptions(&opts); err != nil {
		return err
	}
	wg, err := s.chooseWorkgroup(r.Context(), p, req.Workgroup, model.RoleManager)
	if err != nil {
		return err
	}
	src, err := s.st.Endpoint(r.Context(), wg, req.Source)
	if err != nil || src.WorkgroupID != wg {
		return badRequest("source endpoint %q not found in this workgroup", req.Source)
	}
	dst, err := s.st.Endpoint(r.Context(), wg, req.Target)
	if err != nil || dst.WorkgroupID != wg {
		return badRequest("target endpoint %q not found in this workgroup", req.Target)
	}
	prj, err := s.st.CreateProject(r.Context(), model.Project{WorkgroupID: wg, CustomerID: req.Customer, Name: strings.TrimSpace(req.Name), Workload: wl,
		SourceID: src.ID, TargetID: dst.ID, Options: opts, CreatedBy: p.User.ID})
	if err != nil {
		return err
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "project/" + prj.ID, Action: "project.create", Outcome: "ok", Detail: prj.Name})
	return writeJSON(w, http.StatusCreated, prj)
}

// projectFor resolves {id} (id or name) to a project the caller may see, and checks min.
func (s *Server) projectFor(r *http.Request, p auth.Principal, min model.Role) (model.Project, error) {
	ids, err := s.auth.Workgroups(r.Context(), p)
	if err != nil {
		return model.Project{}, err
	}
	prj, err := s.st.Project(r.Context(), ids, r.PathValue("id"))
	if err != nil {
		return prj, fmt.Errorf("project %q: %w", r.PathValue("id"), err)
	}
	role, err := s.auth.ProjectRole(r.Context(), p, prj)
	if errors.Is(err, auth.ErrForbidden) {
		return prj, fmt.Errorf("project %q: %w", r.PathValue("id"), store.ErrNotFound)
	} else if err != nil {
		return prj, err
	}
	if !role.AtLeast(min) {
		return prj, fmt.Errorf("%w: needs %s on this project, you are %s", auth.ErrForbidden, min, role)
	}
	return prj, nil
}

// ProjectView is a project with its item counts by status.
type ProjectView struct {
	model.Project
	Counts map[model.ItemStatus]int `json:"counts"`
	Source string                   `json:"source"`
	Target string                   `json:"target"`
	Role   model.Role               `json:"role"` // the caller's role on this project
}

func (s *Server) view(ctx context.Context, prj model.Project, role model.Role) (ProjectView, error) {
	counts, err := s.st.StatusCounts(ctx, prj.ID)
	if err != nil {
		return ProjectView{}, err
	}
	v := ProjectView{Project: prj, Counts: counts, Role: role}
	if e, err := s.st.Endpoint(ctx, "", prj.SourceID); err == nil {
		v.Source = e.Name
	}
	if e, err := s.st.Endpoint(ctx, "", prj.TargetID); err == nil {
		v.Target = e.Name
	}
	return v, nil
}

// visibleProjects lists the projects the caller may see, with the caller's role on each.
func (s *Server) visibleProjects(ctx context.Context, p auth.Principal) ([]model.Project, []model.Role, error) {
	ids, err := s.auth.Workgroups(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	prjs, err := s.st.Projects(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	var out []model.Project
	var roles []model.Role
	for _, prj := range prjs {
		role, err := s.auth.ProjectRole(ctx, p, prj)
		if errors.Is(err, auth.ErrForbidden) {
			continue
		} else if err != nil {
			return nil, nil, err
		}
		out, roles = append(out, prj), append(roles, role)
	}
	return out, roles, nil
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prjs, roles, err := s.visibleProjects(r.Context(), p)
	if err != nil {
		return err
	}
	out := []ProjectView{}
	for i, prj := range prjs {
		v, err := s.view(r.Context(), prj, roles[i])
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	prj, err := s.projectFor(r, p, model.RoleReader)
	if err != nil {
		return err
	}
	role, err := s.auth.ProjectRole(r.Context(), p, prj)
	if err != nil {
		return err
	}
	v, err := s.view(r.Context(), prj, role)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) updateProject(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Options model.ProjectOptions `json:"options"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	prj, err := s.projectFor(r, p, model.RoleManager)
	if err != nil {
		return err
	}
	if err := validateOptions(&req.Options); err != nil {
		return err
	}
	if err := s.st.UpdateProjectOptions(r.Context(), prj.ID, req.Options); err != nil {
		return err
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "project/" + prj.ID, Action: "project.options", Outcome: "ok"})
	prj.Options = req.Options
	return writeJSON(w, http.StatusOK, prj)
}
