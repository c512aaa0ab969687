package m365sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Directory writes a migration makes at the target: users, and licences from the tenant's
// subscriptions, with Entra ID's rules (a verified domain, a unique name, a usage location before
// a licence, no more licences than bought).

// Directory permissions, as Microsoft names them.
const (
	PermUserReadWrite = "User.ReadWrite.All"
	PermOrgRead       = "Organization.Read.All"
)

// Sku is a subscription the tenant owns.
type Sku struct {
	SkuID      string `json:"skuId"`
	PartNumber string `json:"skuPartNumber"`
	Enabled    int    `json:"enabled"`
}

// License is a licence assigned to a user.
type License struct {
	SkuID         string   `json:"skuId"`
	DisabledPlans []string `json:"disabledPlans"`
}

// SeedSkus are the subscriptions every emulated tenant owns: Office 365 E3 and Exchange Online
// (Plan 1), by their real SKU ids.
var SeedSkus = []Sku{{SkuID: "6fd2c87f-b296-42f0-b197-1e91e994b900", PartNumber: "ENTERPRISEPACK", Enabled: 25},
	{SkuID: "4b9405b0-7788-4568-add1-99614e613b69", PartNumber: "EXCHANGESTANDARD", Enabled: 10}}

func (s *Server) directoryHandlers() {
	s.mux.Handle("GET /v1.0/subscribedSkus", s.graph(PermOrgRead, s.subscribedSkus))
	s.mux.Handle("POST /v1.0/users", s.graph(PermUserReadWrite, s.createUser))
	s.mux.Handle("POST /v1.0/users/{id}/assignLicense", s.graph(PermUserReadWrite, s.assignLicense))
}

// consumed counts the tenant's users holding a SKU; the lock must be held.
func (t *Tenant) consumed(skuID string) int {
	n := 0
	for _, u := range t.Users {
		if slices.ContainsFunc(u.AssignedLicenses, func(l License) bool { return l.SkuID == skuID }) {
			n++
		}
	}
	return n
}

func (s *Server) subscribedSkus(w http.ResponseWriter, r *http.Request, c caller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, k := range c.tenant.Skus {
		out = append(out, map[string]any{"id": c.tenant.ID + "_" + k.SkuID, "skuId": k.SkuID, "skuPartNumber": k.PartNumber,
			"capabilityStatus": "Enabled", "appliesTo": "User", "consumedUnits": c.tenant.consumed(k.SkuID),
			"prepaidUnits": map[string]int{"enabled": k.Enabled, "suspended": 0, "warning": 0}, "servicePlans": []any{}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		AccountEnabled    *bool   `json:"accountEnabled"`
		DisplayName       string  `json:"displayName"`
		MailNickname      string  `json:"mailNickname"`
		UserPrincipalName string  `json:"userPrincipalName"`
		UsageLocation     *string `json:"usageLocation"`
		EmployeeID        *string `json:"employeeId"`
		ImmutableID       *string `json:"onPremisesImmutableId"`
		PasswordProfile   *struct {
			Password                      string `json:"password"`
			ForceChangePasswordNextSignIn bool   `json:"forceChangePasswordNextSignIn"`
		} `json:"passwordProfile"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid JSON: "+err.Error())
		return
	}
	missing := ""
	switch {
	case req.AccountEnabled == nil:
		missing = "accountEnabled"
	case req.DisplayName == "":
		missing = "displayName"
	case req.MailNickname == "":
		missing = "mailNickname"
	case req.UserPrincipalName == "":
		missing = "userPrincipalName"
	case req.PasswordProfile == nil || req.PasswordProfile.Password == "":
		missing = "passwordProfile"
	}
	if missing != "" {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid value specified for property '"+missing+"' of resource 'User'.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, domain, _ := strings.Cut(strings.ToLower(req.UserPrincipalName), "@")
	if !slices.ContainsFunc(c.tenant.Domains, func(d string) bool { return strings.EqualFold(d, domain) }) {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.")
		return
	}
	for _, u := range c.tenant.Users {
		if strings.EqualFold(u.UserPrincipalName, req.UserPrincipalName) {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "Another object with the same value for property userPrincipalName already exists.")
			return
		}
	}
	u := &User{ID: stableID(c.tenant.ID, req.UserPrincipalName), DisplayName: req.DisplayName, UserPrincipalName: req.UserPrincipalName, Mail: req.UserPrincipalName,
		ProxyAddresses: []string{"SMTP:" + req.UserPrincipalName}, AccountEnabled: *req.AccountEnabled, UsageLocation: req.UsageLocation, EmployeeID: req.EmployeeID,
		OnPremisesImmutableID: req.ImmutableID, AssignedLicenses: []License{}}
	c.tenant.Users = append(c.tenant.Users, u)
	writeJSON(w, http.StatusCreated, u)
}

func (s *Server) assignLicense(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Add    []License `json:"addLicenses"`
		Remove []string  `json:"removeLicenses"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Add == nil || req.Remove == nil {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "addLicenses and removeLicenses are required (either may be empty).")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, _ := s.mailboxOf(c.tenant, r.PathValue("id"))
	if u == nil {
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", r.PathValue("id")))
		return
	}
	if len(req.Add) > 0 && (u.UsageLocation == nil || *u.UsageLocation == "") {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "License assignment cannot be done for user with invalid usage location.")
		return
	}
	for _, l := range req.Add {
		i := slices.IndexFunc(c.tenant.Skus, func(k Sku) bool { return k.SkuID == l.SkuID })
		if i < 0 {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "License "+l.SkuID+" does not correspond to a valid company License.")
			return
		}
		has := slices.ContainsFunc(u.AssignedLicenses, func(a License) bool { return a.SkuID == l.SkuID })
		if !has && c.tenant.consumed(l.SkuID) >= c.tenant.Skus[i].Enabled {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "License assignment failed because there are no available licenses.")
			return
		}
	}
	u.AssignedLicenses = slices.DeleteFunc(u.AssignedLicenses, func(a License) bool {
		return slices.Contains(req.Remove, a.SkuID) || slices.ContainsFunc(req.Add, func(l License) bool { return l.SkuID == a.SkuID })
	})
	for _, l := range req.Add {
		if l.DisabledPlans == nil {
			l.DisabledPlans = []string{}
		}
		u.AssignedLicenses = append(u.AssignedLicenses, l)
	}
	writeJSON(w, http.StatusOK, u)
}
