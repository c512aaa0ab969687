package m365sim

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/internal/throttle"
)

// Server is one listener holding several tenants.
type Server struct {
	mu            sync.Mutex
	base          string
	tenants       map[string]*Tenant // by id and by every domain
	limits        throttle.Limits
	spLimits      throttle.Limits // per app per tenant, for drives
	windows       map[throttle.Key]*window
	rejected      [3]int // 429s by limit: concurrency, requests, bytes
	now           func() time.Time
	mux           *http.ServeMux
	dirty         bool // state changed since the last save
	faults        *faultState
	tokenLife     time.Duration
	sessions      map[string]importSession
	uploads       map[string]*uploadSession
	driveSessions map[string]*driveSession
	// archiveAnswers counts 308s, moved-item export errors and 409s of expanded archive folders.
	archiveAnswers [3]int
}

// Tenant is one emulated organisation.
type Tenant struct {
	ID        string              `json:"id"`
	Domains   []string            `json:"domains"`
	Apps      map[string]*App     `json:"apps"`
	Users     []*User             `json:"users"`
	Mailboxes map[string]*mailbox `json:"mailboxes"`           // by user id, created on first use
	ArchiveOf map[string]string   `json:"archiveOf,omitempty"` // user id -> main archive's mailbox id
	Archives  map[string]*mailbox `json:"archives,omitempty"`  // by mailbox id: main archives and auxiliaries
	Drives    map[string]*drive   `json:"drives,omitempty"`    // by drive id
	Skus      []Sku               `json:"skus,omitempty"`      // subscriptions
	Sites     []*Site             `json:"sites,omitempty"`
	Teams     []*team             `json:"teams,omitempty"`
	Sent      []SentMail          `json:"sent,omitempty"`
}

// User is a directory user (with a mailbox, later).
type User struct {
	ID                    string    `json:"id"`
	DisplayName           string    `json:"displayName"`
	UserPrincipalName     string    `json:"userPrincipalName"`
	Mail                  string    `json:"mail"`
	ProxyAddresses        []string  `json:"proxyAddresses"`
	OnPremisesImmutableID *string   `json:"onPremisesImmutableId"`
	EmployeeID            *string   `json:"employeeId"`
	AccountEnabled        bool      `json:"accountEnabled"`
	UsageLocation         *string   `json:"usageLocation"`
	AssignedLicenses      []License `json:"assignedLicenses"`
}

// New returns an empty emulator enforcing Microsoft's Outlook limits per app per mailbox.
func New() *Server {
	s := &Server{tenants: map[string]*Tenant{}, limits: throttle.Outlook, spLimits: throttle.SharePointTenant(1000),
		windows: map[throttle.Key]*window{}, now: time.Now, mux: http.NewServeMux(), tokenLife: DefaultTokenLifetime}
	s.mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.tokenEndpoint)
	s.mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.openIDConfiguration)
	s.mux.Handle("GET /v1.0/users", s.graph("User.Read.All", s.listUsers))
	s.mux.Handle("GET /v1.0/users/{id}", s.graph("User.Read.All", s.getUser))
	s.mailHandlers()
	s.composeHandlers()
	s.itemHandlers()
	s.driveHandlers()
	s.directoryHandlers()
	s.siteHandlers()
	s.teamHandlers()
	s.importHandlers()
	s.calendarHandlers()
	return s
}

// SetBaseURL tells the emulator the URL it is reached at (token audiences and nextLinks use it).
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	s.base = strings.TrimRight(u, "/")
	s.mu.Unlock()
}

// BaseURL is the URL the emulator is reached at.
func (s *Server) BaseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

// SetSharePointLimits replaces the per app per tenant limits of drive traffic.
func (s *Server) SetSharePointLimits(l throttle.Limits) {
	s.mu.Lock()
	s.spLimits = l
	s.windows = map[throttle.Key]*window{}
	s.mu.Unlock()
}

// SetLimits replaces the per app per mailbox limits; benchmarks shrink the windows with Scale.
func (s *Server) SetLimits(l throttle.Limits) {
	s.mu.Lock()
	s.limits = l
	s.windows = map[throttle.Key]*window{}
	s.mu.Unlock()
}

// SetTokenLifetime sets how long new access tokens last; a short one tests token expiry.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	s.tokenLife = d
	s.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, s.versioned(r))
}

// AddTenant creates a tenant with its domains (the first is the default).
func (s *Server) AddTenant(id string, domains ...string) *Tenant {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &Tenant{ID: id, Domains: domains, Apps: map[string]*App{}, Skus: slices.Clone(SeedSkus)}
	s.tenants[id] = t
	for _, d := range domains {
		s.tenants[strings.ToLower(d)] = t
	}
	s.dirty = true
	return t
}

func (s *Server) tenant(idOrDomain string) *Tenant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tenants[strings.ToLower(idOrDomain)]
}

// AddApp registers an app with a secret and/or certificate and its application permissions.
func (s *Server) AddApp(tenantID, clientID, secret string, cert *x509.Certificate, permissions ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app := &App{ClientID: clientID, Secret: secret, Permissions: permissions}
	if cert != nil {
		app.CertDER = cert.Raw
	}
	s.tenants[tenantID].Apps[clientID] = app
	s.dirty = true
}

// AddUser adds a user; ids are stable, derived from the tenant and the user principal name.
func (s *Server) AddUser(tenantID, upn, displayName string) *User {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenants[tenantID]
	u := &User{ID: stableID(tenantID, upn), DisplayName: displayName, UserPrincipalName: upn, Mail: upn,
		ProxyAddresses: []string{"SMTP:" + upn}, AccountEnabled: true, AssignedLicenses: []License{}}
	t.Users = append(t.Users, u)
	s.dirty = true
	return u
}

// caller is who a Graph request comes from.
type caller struct {
	tenant *Tenant
	app    *App
}

// graph wraps a Graph handler: bearer token, permission, throttling.
func (s *Server) graph(permission string, h func(w http.ResponseWriter, r *http.Request, c caller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("request-id", stableID("req", r.URL.String()+s.now().String()))
		if s.inject(w) {
			return
		}
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		t, signed := parseToken(bearer)
		c := caller{tenant: s.tenant(t.tenant)}
		if c.tenant != nil {
			s.mu.Lock()
			c.app = c.tenant.Apps[t.app]
			s.mu.Unlock()
		}
		switch {
		case !ok || !signed || c.app == nil:
			graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty or invalid.")
			return
		case s.now().After(t.expires):
			graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
			return
		}
		if !grants(c.app.Permissions, permission) {
			graphError(w, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation. The app lacks "+permission+".")
			return
		}
		key, cost := throttle.Key{Tenant: c.tenant.ID, App: c.app.ClientID, Resource: resourceOf(r)}, 1
		if ru, ok := driveCost(r); ok {
			key.Resource, cost = sharePoint, ru
		}
		release := s.admitted(w, key, requestBytes(r), cost)
		if release == nil {
			return
		}
		defer release()
		h(w, r, c)
		if r.Method != http.MethodGet {
			s.mu.Lock()
			s.dirty = true
			s.mu.Unlock()
		}
	})
}

// grants reports whether the app's permissions include want; a ReadWrite permission includes Read.
func grants(perms []string, want string) bool {
	if slices.Contains(perms, want) {
		return true
	}
	if base, ok := strings.CutSuffix(want, ".Read.All"); ok {
		return slices.Contains(perms, base+".ReadWrite.All")
	}
	if base, ok := strings.CutSuffix(want, ".Read"); ok {
		return slices.Contains(perms, base+".ReadWrite")
	}
	return false
}

func requestBytes(r *http.Request) int64 {
	if r.Method == http.MethodGet || r.ContentLength < 0 {
		return 0
	}
	return r.ContentLength
}

// resourceOf is the mailbox (or user) a request is about, for per-mailbox limits.
func resourceOf(r *http.Request) string {
	p := strings.TrimPrefix(r.URL.Path, "/v1.0/")
	if rest, ok := strings.CutPrefix(p, "admin/exchange/mailboxes/"); ok {
		return strings.ToLower(strings.Split(rest, "/")[0])
	}
	if rest, ok := strings.CutPrefix(p, "users/"); ok {
		return strings.ToLower(strings.Split(rest, "/")[0])
	}
	return "tenant"
}

func graphError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg,
		"innerError": map[string]any{"date": time.Now().UTC().Format(time.RFC3339)}}})
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, c caller) {
	s.mu.Lock()
	users := slices.Clone(c.tenant.Users)
	s.mu.Unlock()
	sort.Slice(users, func(i, j int) bool { return users[i].ID < users[j].ID })
	top, skip, err := paging(r)
	if err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	end := min(len(users), skip+top)
	page := map[string]any{"@odata.context": s.BaseURL() + "/v1.0/$metadata#users"}
	vals := make([]map[string]any, 0, end-skip)
	for _, u := range users[min(skip, len(users)):end] {
		v, err := selectFields(u, r.URL.Query().Get("$select"))
		if err != nil {
			graphError(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		vals = append(vals, v)
	}
	page["value"] = vals
	if end < len(users) {
		q := r.URL.Query()
		q.Set("$skiptoken", strconv.Itoa(end))
		page["@odata.nextLink"] = s.BaseURL() + r.URL.Path + "?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, c caller) {
	id := strings.ToLower(r.PathValue("id"))
	s.mu.Lock()
	var found *User
	for _, u := range c.tenant.Users {
		if u.ID == id || strings.ToLower(u.UserPrincipalName) == id {
			found = u
		}
	}
	s.mu.Unlock()
	if found == nil {
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", r.PathValue("id")))
		return
	}
	v, err := selectFields(found, r.URL.Query().Get("$select"))
	if err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// paging reads $top (default 100, at most 999) and the $skiptoken this emulator issues.
func paging(r *http.Request) (top, skip int, err error) {
	top = 100
	if v := r.URL.Query().Get("$top"); v != "" {
		if top, err = strconv.Atoi(v); err != nil || top < 1 || top > 999 {
			//lint:ignore ST1005 Graph's own message, as Microsoft words it
			return 0, 0, fmt.Errorf("Invalid page size specified: '%s'. Must be between 1 and 999 inclusive.", v)
		}
	}
	if v := r.URL.Query().Get("$skiptoken"); v != "" {
		if skip, err = strconv.Atoi(v); err != nil || skip < 0 {
			return 0, 0, fmt.Errorf("invalid $skiptoken")
		}
	}
	return top, skip, nil
}

// selectFields applies $select: only the named properties (and id) are returned; an unknown name
// is an error, as Graph answers.
func selectFields(v any, sel string) (map[string]any, error) {
	data, _ := json.Marshal(v)
	var all map[string]any
	json.Unmarshal(data, &all)
	if sel == "" {
		return all, nil
	}
	out := map[string]any{"id": all["id"]}
	for _, f := range strings.Split(sel, ",") {
		f = strings.TrimSpace(f)
		val, ok := all[f]
		if !ok {
			//lint:ignore ST1005 Graph's own message, as Microsoft words it
			return nil, fmt.Errorf("Could not find a property named '%s' on type 'microsoft.graph.user'.", f)
		}
		out[f] = val
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
