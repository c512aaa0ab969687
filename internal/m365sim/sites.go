package m365sim

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// SharePoint sites as Graph shows them: read, searched, and their document libraries as drives.
// Graph v1.0 creates no sites (a team or group makes one), so a migration finds its target sites.

// PermSitesRead reads every site.
const PermSitesRead = "Sites.Read.All"

// Site is a SharePoint site.
type Site struct {
	ID          string   `json:"id"` // hostname,site collection id,web id
	Name        string   `json:"name"`
	DisplayName string   `json:"displayName"`
	WebURL      string   `json:"webUrl"`
	Drives      []string `json:"drives"` // document libraries, the first is the default
}

func (s *Server) siteHandlers() {
	s.mux.Handle("GET /v1.0/sites", s.graph(PermSitesRead, s.searchSites))
	s.mux.Handle("GET /v1.0/sites/{sid}", s.graph(PermSitesRead, s.getSite))
	s.mux.Handle("GET /v1.0/sites/{sid}/drives", s.graph(PermSitesRead, s.siteDrives))
	s.mux.Handle("GET /v1.0/sites/{sid}/drive", s.graph(PermSitesRead, s.siteDrive))
}

// AddSite creates a site with a document library ("Documents") and returns the site's id.
func (s *Server) AddSite(tenantID, name, displayName string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenants[strings.ToLower(tenantID)]
	host := strings.Split(t.Domains[0], ".")[0] + ".sharepoint.com"
	id := host + "," + stableID(t.ID, "site", name) + "," + stableID(t.ID, "web", name)
	if t.Drives == nil {
		t.Drives = map[string]*drive{}
	}
	did := "b!" + stableID(id, "Documents")
	t.Drives[did] = &drive{ID: did, Owner: "site:" + id, Items: []*driveItem{{ID: stableID(did, "root"), Name: "root", Folder: true, Version: 1, CVersion: 1, Created: s.now(), Modified: s.now()}}}
	t.Sites = append(t.Sites, &Site{ID: id, Name: name, DisplayName: displayName, WebURL: "https://" + host + "/sites/" + name, Drives: []string{did}})
	s.dirty = true
	return id
}

func (st *Site) view() map[string]any {
	host, _, _ := strings.Cut(st.ID, ",")
	return map[string]any{"id": st.ID, "name": st.Name, "displayName": st.DisplayName, "webUrl": st.WebURL,
		"siteCollection": map[string]string{"hostname": host}, "createdDateTime": time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)}
}

// site finds a site by id, or by hostname:/sites/name; the lock must be held.
func (t *Tenant) site(ref string) *Site {
	for _, st := range t.Sites {
		host, _, _ := strings.Cut(st.ID, ",")
		if st.ID == ref || ref == host+":/sites/"+st.Name {
			return st
		}
	}
	return nil
}

// searchSites answers ?search=: every site whose name or title holds the term.
func (s *Server) searchSites(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query().Get("search")
	if q == "" {
		graphError(w, http.StatusBadRequest, "invalidRequest", "Listing sites needs ?search=.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, st := range c.tenant.Sites {
		if q == "*" || strings.Contains(strings.ToLower(st.Name+" "+st.DisplayName), strings.ToLower(q)) {
			out = append(out, st.view())
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

func (s *Server) withSite(w http.ResponseWriter, r *http.Request, c caller, fn func(st *Site)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := c.tenant.site(r.PathValue("sid"))
	if st == nil {
		graphError(w, http.StatusNotFound, "itemNotFound", fmt.Sprintf("Requested site %q could not be found.", r.PathValue("sid")))
		return
	}
	fn(st)
}

func (s *Server) getSite(w http.ResponseWriter, r *http.Request, c caller) {
	s.withSite(w, r, c, func(st *Site) { writeJSON(w, http.StatusOK, st.view()) })
}

func libraryView(id string) map[string]any {
	return map[string]any{"id": id, "driveType": "documentLibrary", "name": "Documents"}
}

func (s *Server) siteDrives(w http.ResponseWriter, r *http.Request, c caller) {
	s.withSite(w, r, c, func(st *Site) {
		out := []map[string]any{}
		for _, d := range st.Drives {
			out = append(out, libraryView(d))
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out})
	})
}

func (s *Server) siteDrive(w http.ResponseWriter, r *http.Request, c caller) {
	s.withSite(w, r, c, func(st *Site) { writeJSON(w, http.StatusOK, libraryView(st.Drives[0])) })
}
