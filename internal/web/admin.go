package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/model"
)

type endpointsData struct {
	Endpoints  []model.Endpoint
	Workgroups []model.Workgroup
	Kinds      []string
}

func (c *Console) endpoints(pg *page) error {
	d := endpointsData{Kinds: []string{string(model.KindIMAP), string(model.KindM365)}}
	for _, k := range connector.Kinds() {
		if k != model.KindIMAP && k != model.KindM365 {
			d.Kinds = append(d.Kinds, string(k))
		}
	}
	if err := pg.call("GET", "/api/v1/endpoints", nil, &d.Endpoints); err != nil {
		return err
	}
	if err := pg.call("GET", "/api/v1/workgroups", nil, &d.Workgroups); err != nil {
		return err
	}
	return pg.render(http.StatusOK, "endpoints", "endpoints", "Endpoints", d)
}

func (c *Console) createEndpoint(pg *page) error {
	if err := pg.r.ParseForm(); err != nil {
		return pg.redirect("/endpoints", true, "unreadable form: %v", err)
	}
	f := pg.r.PostForm
	st := model.EndpointSettings{Host: strings.TrimSpace(f.Get("host")), Security: model.Security(f.Get("security")), AdminUser: strings.TrimSpace(f.Get("admin_user")),
		Tenant: strings.TrimSpace(f.Get("tenant")), ClientID: strings.TrimSpace(f.Get("client_id")), Cloud: f.Get("cloud"), InsecureSkipVerify: f.Get("insecure") == "on"}
	if v := f.Get("port"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return pg.redirect("/endpoints", true, "port must be a number from 1 to 65535, got %q", v)
		}
		st.Port = n
	}
	// The form shows the fields of every kind; send only those of the chosen one.
	if model.EndpointKind(f.Get("kind")) == model.KindM365 {
		st.Host, st.Port, st.Security, st.AdminUser, st.InsecureSkipVerify = strings.TrimSpace(f.Get("graph_host")), 0, "", "", false
		st.CACert = strings.TrimSpace(f.Get("ca_cert"))
	} else {
		st.Tenant, st.ClientID, st.Cloud = "", "", ""
	}
	req := map[string]any{"name": f.Get("name"), "kind": f.Get("kind"), "workgroup": f.Get("workgroup"), "settings": st, "domains": splitComma(f.Get("domains"))}
	if sec := (model.EndpointSecret{AdminPassword: f.Get("admin_password"), ClientSecret: f.Get("client_secret")}); !sec.Empty() {
		req["credentials"] = sec
	}
	var e model.Endpoint
	if err := pg.call("POST", "/api/v1/endpoints", req, &e); err != nil {
		return pg.fail("/endpoints", err)
	}
	return pg.redirect("/endpoints", false, "Endpoint %s added. Verify it to check its credentials.", e.Name)
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c *Console) verifyEndpoint(pg *page) error {
	id := pg.r.PathValue("id")
	var res api.VerifyResult
	if err := pg.call("POST", "/api/v1/endpoints/"+url.PathEscape(id)+"/verify", nil, &res); err != nil {
		return pg.fail("/endpoints", err)
	}
	name := pg.r.PostFormValue("name")
	if !res.OK {
		return pg.redirect("/endpoints", true, "Verify %s failed: %s", name, res.Detail)
	}
	return pg.redirect("/endpoints", false, "Verify %s: %s", name, res.Detail)
}

type organisationData struct {
	Customers  []model.Customer
	Workgroups []model.Workgroup
	Names      map[string]string // workgroup id -> name
}

func (c *Console) organisation(pg *page) error {
	var d organisationData
	if err := pg.call("GET", "/api/v1/customers", nil, &d.Customers); err != nil {
		return err
	}
	if err := pg.call("GET", "/api/v1/workgroups", nil, &d.Workgroups); err != nil {
		return err
	}
	d.Names = map[string]string{}
	for _, wg := range d.Workgroups {
		d.Names[wg.ID] = wg.Name
	}
	return pg.render(http.StatusOK, "organisation", "organisation", "Customers and workgroups", d)
}

func (c *Console) createCustomer(pg *page) error {
	req := map[string]any{"name": pg.r.PostFormValue("name"), "domain": strings.TrimSpace(pg.r.PostFormValue("domain")), "workgroup": pg.r.PostFormValue("workgroup")}
	var cu model.Customer
	if err := pg.call("POST", "/api/v1/customers", req, &cu); err != nil {
		return pg.fail("/organisation", err)
	}
	return pg.redirect("/organisation", false, "Customer %s added.", cu.Name)
}

func (c *Console) createWorkgroup(pg *page) error {
	sharing := pg.r.PostFormValue("project_sharing") == "on"
	var wg model.Workgroup
	if err := pg.call("POST", "/api/v1/workgroups", map[string]any{"name": pg.r.PostFormValue("name"), "project_sharing": sharing}, &wg); err != nil {
		return pg.fail("/organisation", err)
	}
	return pg.redirect("/organisation", false, "Workgroup %s created.", wg.Name)
}

func (c *Console) setSharing(pg *page) error {
	on := pg.r.PostFormValue("project_sharing") == "on"
	var wg model.Workgroup
	if err := pg.call("PATCH", "/api/v1/workgroups/"+url.PathEscape(pg.r.PathValue("id")), map[string]any{"project_sharing": on}, &wg); err != nil {
		return pg.fail("/settings", err)
	}
	state := "off: members see only their own projects"
	if wg.ProjectSharing {
		state = "on: members see every project of the workgroup"
	}
	return pg.redirect("/settings", false, "Project sharing in %s is %s.", wg.Name, state)
}

func (c *Console) setMember(pg *page) error {
	user := strings.TrimSpace(pg.r.PostFormValue("user"))
	if user == "" {
		return pg.redirect("/settings", true, "name the user to add")
	}
	req := map[string]any{"role": pg.r.PostFormValue("role"), "active": pg.r.PostFormValue("remove") == ""}
	var m model.Member
	if err := pg.call("PUT", "/api/v1/workgroups/"+url.PathEscape(pg.r.PathValue("id"))+"/members/"+url.PathEscape(user), req, &m); err != nil {
		return pg.fail("/settings", err)
	}
	if !m.Active {
		return pg.redirect("/settings", false, "%s removed from the workgroup.", m.Username)
	}
	return pg.redirect("/settings", false, "%s is now %s.", m.Username, m.Role)
}

type workgroupMembers struct {
	model.Workgroup
	Members []model.Member
	Owner   bool // the caller may change members and sharing
}

type settingsData struct {
	Tokens     []model.Token
	NewToken   string
	Users      []model.User
	Workgroups []workgroupMembers
	Roles      []model.Role
}

func (c *Console) settings(pg *page) error { return c.renderSettings(pg, "") }

func (c *Console) renderSettings(pg *page, newToken string) error {
	d := settingsData{NewToken: newToken, Roles: []model.Role{model.RoleReader, model.RoleOperator, model.RoleManager, model.RoleOwner}}
	if err := pg.call("GET", "/api/v1/tokens", nil, &d.Tokens); err != nil {
		return err
	}
	if pg.p.User.Admin {
		if err := pg.call("GET", "/api/v1/users", nil, &d.Users); err != nil {
			return err
		}
	}
	var me struct {
		Workgroups []struct {
			model.Workgroup
			Role model.Role `json:"role"`
		} `json:"workgroups"`
	}
	if err := pg.call("GET", "/api/v1/me", nil, &me); err != nil {
		return err
	}
	var wgs []model.Workgroup
	if err := pg.call("GET", "/api/v1/workgroups", nil, &wgs); err != nil {
		return err
	}
	roles := map[string]model.Role{}
	for _, m := range me.Workgroups {
		roles[m.ID] = m.Role
	}
	for _, wg := range wgs {
		wm := workgroupMembers{Workgroup: wg, Owner: pg.p.User.Admin || roles[wg.ID] == model.RoleOwner}
		if err := pg.call("GET", "/api/v1/workgroups/"+url.PathEscape(wg.ID)+"/members", nil, &wm.Members); err != nil {
			return err
		}
		d.Workgroups = append(d.Workgroups, wm)
	}
	return pg.render(http.StatusOK, "settings", "settings", "Settings", d)
}

func (c *Console) createToken(pg *page) error {
	var out struct {
		Token string `json:"token"`
	}
	if err := pg.call("POST", "/api/v1/tokens", map[string]any{"name": pg.r.PostFormValue("name"), "expires": pg.r.PostFormValue("expires")}, &out); err != nil {
		return pg.fail("/settings", err)
	}
	// The token is shown on this one answer and nowhere else; it is not put in a redirect.
	return c.renderSettings(pg, out.Token)
}

func (c *Console) revokeToken(pg *page) error {
	if err := pg.call("DELETE", "/api/v1/tokens/"+url.PathEscape(pg.r.PathValue("id")), nil, nil); err != nil {
		return pg.fail("/settings", err)
	}
	return pg.redirect("/settings", false, "Token revoked.")
}

func (c *Console) createUser(pg *page) error {
	req := map[string]any{"username": strings.TrimSpace(pg.r.PostFormValue("username")), "password": pg.r.PostFormValue("password"),
		"admin": pg.r.PostFormValue("admin") == "on", "workgroup": pg.r.PostFormValue("workgroup"), "role": pg.r.PostFormValue("role")}
	var u model.User
	if err := pg.call("POST", "/api/v1/users", req, &u); err != nil {
		return pg.fail("/settings", err)
	}
	return pg.redirect("/settings", false, "User %s created.", u.Username)
}

func (c *Console) setDisabled(pg *page) error {
	disabled := pg.r.PostFormValue("disabled") == "true"
	var u model.User
	if err := pg.call("PATCH", "/api/v1/users/"+url.PathEscape(pg.r.PathValue("id")), map[string]any{"disabled": disabled}, &u); err != nil {
		return pg.fail("/settings", err)
	}
	if u.Disabled {
		return pg.redirect("/settings", false, "User %s disabled.", u.Username)
	}
	return pg.redirect("/settings", false, "User %s enabled.", u.Username)
}
