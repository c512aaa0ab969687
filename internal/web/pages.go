package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/api/client"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, err := c.auth.Authenticate(r); err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	v := view{Title: "Sign in", Data: map[string]string{"Next": safeNext(r.URL.Query().Get("next"))}}
	v.Flash = takeFlash(w, r)
	if err := c.render(w, http.StatusOK, "login", v); err != nil {
		c.renderError(w, r, err)
	}
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxSignInForm)
	if err := r.ParseForm(); err != nil {
		c.renderError(w, r, &client.Problem{Status: http.StatusRequestEntityTooLarge, Title: "Request Entity Too Large", Detail: "the sign-in form is too large"})
		return
	}
	next := safeNext(r.PostFormValue("next"))
	body, _ := json.Marshal(map[string]string{"username": r.PostFormValue("username"), "password": r.PostFormValue("password")})
	err := c.do(r.Context(), r, http.MethodPost, "/api/v1/session", bytes.NewReader(body), "application/json", "", nil, w)
	if err != nil {
		p, ok := err.(*client.Problem)
		if !ok || p.Status >= 500 {
			c.renderError(w, r, err)
			return
		}
		v := view{Title: "Sign in", Flash: &flash{Error: true, Text: p.Detail}, Data: map[string]string{"Next": next, "Username": r.PostFormValue("username")}}
		c.render(w, p.Status, "login", v)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// maxSignInForm is the most the sign-in form may send: a name, a password and where to go next.
const maxSignInForm = 8 << 10

// safeNext keeps the after-sign-in redirect on this site: a path, with no scheme, no host, no
// backslash, white space or control character (which browsers drop or turn into "//host"), and
// cleaned, so what is sent is what was checked.
func safeNext(next string) string {
	for _, c := range next {
		if c < 0x20 || c == 0x7f || c == '\\' || unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	p := path.Clean(u.EscapedPath())
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		p += "#" + u.EscapedFragment()
	}
	return p
}

func (c *Console) logout(pg *page) error {
	if err := c.do(pg.r.Context(), pg.r, http.MethodDelete, "/api/v1/session", nil, "", pg.r.PostFormValue("csrf_token"), nil, pg.w); err != nil {
		return err
	}
	http.Redirect(pg.w, pg.r, "/login", http.StatusSeeOther)
	return nil
}

type dashboardData struct {
	Projects []api.ProjectView
	Activity store.Activity
	Chart    chart
	Names    map[string]string // project id -> name, for the error list
}

func (c *Console) dashboard(pg *page) error {
	var d dashboardData
	if err := pg.call("GET", "/api/v1/projects", nil, &d.Projects); err != nil {
		return err
	}
	if err := pg.call("GET", "/api/v1/activity?hours=24", nil, &d.Activity); err != nil {
		return err
	}
	d.Chart = throughputChart(d.Activity.Hours)
	d.Names = map[string]string{}
	for _, p := range d.Projects {
		d.Names[p.ID] = p.Name
	}
	return pg.render(http.StatusOK, "dashboard", "dashboard", "Dashboard", d)
}

type newProjectData struct {
	Endpoints  []model.Endpoint
	Workgroups []model.Workgroup
	Workloads  []model.Workload
	Form       url.Values
}

func (c *Console) newProject(pg *page) error {
	d := newProjectData{Workloads: model.Workloads, Form: pg.r.URL.Query()}
	if err := pg.call("GET", "/api/v1/endpoints", nil, &d.Endpoints); err != nil {
		return err
	}
	if err := pg.call("GET", "/api/v1/workgroups", nil, &d.Workgroups); err != nil {
		return err
	}
	return pg.render(http.StatusOK, "project_new", "dashboard", "New project", d)
}

func (c *Console) createProject(pg *page) error {
	if err := pg.r.ParseForm(); err != nil {
		return pg.redirect("/projects/new", true, "unreadable form: %v", err)
	}
	f := pg.r.PostForm
	opts := model.ProjectOptions{IncludeFolders: lines(f.Get("include_folders")), ExcludeFolders: lines(f.Get("exclude_folders"))}
	if v := f.Get("max_concurrent"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return pg.redirect("/projects/new", true, "maximum concurrent migrations must be a number, got %q", v)
		}
		opts.MaxConcurrent = n
	}
	req := map[string]any{"name": f.Get("name"), "workload": f.Get("workload"), "source": f.Get("source"), "target": f.Get("target"),
		"workgroup": f.Get("workgroup"), "options": opts}
	var prj model.Project
	if err := pg.call("POST", "/api/v1/projects", req, &prj); err != nil {
		return pg.fail("/projects/new", err)
	}
	return pg.redirect("/projects/"+url.PathEscape(prj.ID), false, "Project %s created. Import its items from a CSV file next.", prj.Name)
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// itemQuery is the items table's filter, sort and page, read from the URL.
type itemQuery struct {
	Status, Q, Sort string
	Page, Per       int
}

var perPage = []int{25, 50, 100, 200}

func readItemQuery(q url.Values) itemQuery {
	iq := itemQuery{Status: q.Get("status"), Q: q.Get("q"), Sort: q.Get("sort"), Page: 1, Per: 50}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		iq.Page = n
	}
	if n, err := strconv.Atoi(q.Get("per")); err == nil {
		for _, p := range perPage {
			if n == p {
				iq.Per = n
			}
		}
	}
	return iq
}

// api is the query of the API's items call for this view.
func (iq itemQuery) api() string {
	v := url.Values{}
	if iq.Status != "" {
		v.Set("status", iq.Status)
	}
	if iq.Q != "" {
		v.Set("q", iq.Q)
	}
	if iq.Sort != "" {
		v.Set("sort", iq.Sort)
	}
	v.Set("limit", strconv.Itoa(iq.Per))
	v.Set("offset", strconv.Itoa((iq.Page-1)*iq.Per))
	return v.Encode()
}

// Link is this view's URL with some parameters changed; the page resets unless it is set.
func (iq itemQuery) Link(kv ...string) string {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("status", iq.Status)
	set("q", iq.Q)
	set("sort", iq.Sort)
	if iq.Per != 50 {
		v.Set("per", strconv.Itoa(iq.Per))
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Del(kv[i])
		set(kv[i], kv[i+1])
	}
	if s := v.Encode(); s != "" {
		return "?" + s
	}
	return "?"
}

// SortLink toggles the sort on a column: ascending first, then descending.
func (iq itemQuery) SortLink(col string) string {
	if iq.Sort == col {
		return iq.Link("sort", "-"+col)
	}
	return iq.Link("sort", col)
}

// AriaSort is the column's aria-sort value.
func (iq itemQuery) AriaSort(col string) string {
	switch iq.Sort {
	case col:
		return "ascending"
	case "-" + col:
		return "descending"
	}
	return "none"
}

type projectData struct {
	Project     api.ProjectView
	Items       api.ItemPage
	Query       itemQuery
	Pages       int
	PerPage     []int
	Schedules   []model.Schedule
	Passes      []model.Pass
	Total       int
	ImportError *client.Problem
}

func (c *Console) project(pg *page) error {
	return c.renderProject(pg, http.StatusOK, nil)
}

func (c *Console) renderProject(pg *page, status int, importErr *client.Problem) error {
	id := url.PathEscape(pg.r.PathValue("id"))
	d := projectData{Query: readItemQuery(pg.r.URL.Query()), PerPage: perPage, ImportError: importErr}
	if err := pg.call("GET", "/api/v1/projects/"+id, nil, &d.Project); err != nil {
		return err
	}
	if err := pg.call("GET", "/api/v1/projects/"+id+"/items?"+d.Query.api(), nil, &d.Items); err != nil {
		return err
	}
	if err := pg.call("GET", "/api/v1/projects/"+id+"/schedules", nil, &d.Schedules); err != nil {
		return err
	}
	if err := pg.call("GET", "/api/v1/projects/"+id+"/passes", nil, &d.Passes); err != nil {
		return err
	}
	if len(d.Passes) > 5 {
		d.Passes = d.Passes[:5]
	}
	for _, n := range d.Project.Counts {
		d.Total += n
	}
	d.Pages = (d.Items.Total + d.Query.Per - 1) / d.Query.Per
	return pg.render(status, "project", "dashboard", d.Project.Name, d)
}

// selected resolves the items an action applies to: the ticked rows, or every item matching the
// filter the page showed when "all matching" was chosen, or none (the API then takes them all).
func (pg *page) selected(id string) ([]string, error) {
	f := pg.r.PostForm
	if f.Get("scope") != "filter" {
		return f["items"], nil
	}
	q := url.Values{"limit": {"10000"}}
	for _, k := range []string{"status", "q"} {
		if v := f.Get(k); v != "" {
			q.Set(k, v)
		}
	}
	var page api.ItemPage
	if err := pg.call("GET", "/api/v1/projects/"+url.PathEscape(id)+"/items?"+q.Encode(), nil, &page); err != nil {
		return nil, err
	}
	if len(page.Items) == 0 {
		return nil, &client.Problem{Status: http.StatusBadRequest, Detail: "no item matches the filter"}
	}
	out := make([]string, len(page.Items))
	for i, it := range page.Items {
		out[i] = it.SourceEmail
	}
	return out, nil
}

func (c *Console) startPass(pg *page) error {
	id := pg.r.PathValue("id")
	back := "/projects/" + url.PathEscape(id) + pg.r.PostFormValue("back")
	items, err := pg.selected(id)
	if err != nil {
		return pg.fail(back, err)
	}
	f := pg.r.PostForm
	req := api.PassRequest{Type: f.Get("type"), Items: items}
	if f.Get("schedule") != "" {
		req.Type = f.Get("schedule_type")
		if f.Get("at") == "" {
			return pg.redirect(back, true, "choose when the scheduled pass starts")
		}
		if req.At, err = localTime(f.Get("at"), f.Get("tz_offset")); err != nil {
			return pg.redirect(back, true, "start time: %v", err)
		}
		if req.Until, err = localTime(f.Get("until"), f.Get("tz_offset")); err != nil {
			return pg.redirect(back, true, "cutover time: %v", err)
		}
		req.Repeat = f.Get("repeat")
	}
	if req.Type == "prestage" {
		if req.OlderThan = f.Get("older_than"); req.OlderThan == "" {
			req.OlderThan = "30d"
		}
	}
	var res api.PassResponse
	if err := pg.call("POST", "/api/v1/projects/"+url.PathEscape(id)+"/passes", req, &res); err != nil {
		return pg.fail(back, err)
	}
	scope := "every applicable item"
	if len(items) > 0 {
		scope = plural(len(items), "selected item")
	}
	switch {
	case res.Schedule != nil:
		return pg.redirect(back, false, "%s pass scheduled for %s for %s.", title(req.Type), when(res.Schedule.NextAt), scope)
	case res.Pass != nil:
		msg := fmt.Sprintf("%s pass started for %s.", title(req.Type), plural(res.Pass.Items, "item"))
		if len(res.Skipped) > 0 {
			msg += fmt.Sprintf(" %s skipped (already queued or running).", plural(len(res.Skipped), "item"))
		}
		return pg.redirect(back, false, "%s", msg)
	}
	return pg.redirect(back, false, "done")
}

func (c *Console) stop(pg *page) error {
	id := pg.r.PathValue("id")
	back := "/projects/" + url.PathEscape(id) + pg.r.PostFormValue("back")
	items, err := pg.selected(id)
	if err != nil {
		return pg.fail(back, err)
	}
	var res map[string]int
	if err := pg.call("POST", "/api/v1/projects/"+url.PathEscape(id)+"/stop", map[string]any{"items": items}, &res); err != nil {
		return pg.fail(back, err)
	}
	return pg.redirect(back, false, "Stopped %s; %s cancelled.", plural(res["stopped"], "item"), plural(res["schedules_cancelled"], "schedule"))
}

func (c *Console) cancelSchedules(pg *page) error {
	id := pg.r.PathValue("id")
	back := "/projects/" + url.PathEscape(id)
	var res map[string]int
	if err := pg.call("DELETE", "/api/v1/projects/"+url.PathEscape(id)+"/schedules", nil, &res); err != nil {
		return pg.fail(back, err)
	}
	return pg.redirect(back, false, "%s cancelled.", plural(res["schedules_cancelled"], "schedule"))
}

// agentPackage downloads the project's agent package, as the API builds it; the previous
// package's token is revoked.
func (c *Console) agentPackage(pg *page) error {
	id := pg.r.PathValue("id")
	var raw rawAnswer
	if err := pg.call("POST", "/api/v1/projects/"+url.PathEscape(id)+"/agent/package", map[string]string{"os": pg.r.PostFormValue("os")}, &raw); err != nil {
		return pg.fail("/projects/"+url.PathEscape(id), err)
	}
	for _, h := range []string{"Content-Type", "Content-Disposition"} {
		pg.w.Header().Set(h, raw.header.Get(h))
	}
	pg.w.Header().Set("Cache-Control", "no-store") // it holds a live token
	_, err := pg.w.Write(raw.body)
	return err
}

// importCSV hands the uploaded file to the API as it is. A rejected file is shown with its bad
// lines on the project page itself, not in a one-line flash.
func (c *Console) importCSV(pg *page) error {
	id := pg.r.PathValue("id")
	back := "/projects/" + url.PathEscape(id)
	file, hdr, err := pg.r.FormFile("csv")
	if err != nil {
		return pg.redirect(back, true, "choose a CSV file to import")
	}
	defer file.Close()
	var res api.ImportResponse
	err = pg.call("POST", "/api/v1/projects/"+url.PathEscape(id)+"/items/import", file, &res)
	if p, ok := err.(*client.Problem); ok && p.Status == http.StatusUnprocessableEntity {
		p.Detail = hdr.Filename + ": " + p.Detail
		return c.renderProject(pg, http.StatusUnprocessableEntity, p)
	} else if err != nil {
		return pg.fail(back, err)
	}
	return pg.redirect(back, false, "Imported %s: %s, %d new, %d updated.", hdr.Filename, plural(res.Lines, "line"), res.Created, res.Updated)
}

type itemData struct {
	Detail  api.ItemDetail
	Project api.ProjectView
	Folders []folderRow
}

func (c *Console) item(pg *page) error {
	var d itemData
	if err := pg.call("GET", "/api/v1/items/"+url.PathEscape(pg.r.PathValue("id")), nil, &d.Detail); err != nil {
		return err
	}
	if err := pg.call("GET", "/api/v1/projects/"+url.PathEscape(d.Detail.Item.ProjectID), nil, &d.Project); err != nil {
		return err
	}
	d.Folders = latestFolders(d.Detail.Runs)
	return pg.render(http.StatusOK, "item", "dashboard", d.Detail.Item.SourceEmail, d)
}

// localTime turns a datetime-local value ("2026-12-01T22:00") and the browser's offset from UTC in
// minutes (JavaScript's getTimezoneOffset: positive west of Greenwich) into RFC 3339 UTC.
func localTime(v, offset string) (string, error) {
	if v == "" {
		return "", nil
	}
	t, err := time.Parse("2006-01-02T15:04", v)
	if err != nil {
		if t, err = time.Parse("2006-01-02T15:04:05", v); err != nil {
			return "", fmt.Errorf("want a date and time like 2026-12-01T22:00, got %q", v)
		}
	}
	if offset != "" {
		min, err := strconv.Atoi(offset)
		if err != nil || min < -14*60 || min > 14*60 {
			return "", fmt.Errorf("bad time zone offset %q", offset)
		}
		t = t.Add(time.Duration(min) * time.Minute)
	}
	return t.UTC().Format(time.RFC3339), nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// title capitalises a pass type for the start of a sentence.
func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
