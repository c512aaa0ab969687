// Package model holds Ferry's domain types and their state machines. It does no I/O.
package model

import (
	"encoding/json"
	"fmt"
	"time"
)

// Role is a member's role in a workgroup. Higher roles include the rights of lower ones.
type Role string

const (
	RoleReader   Role = "Reader"
	RoleOperator Role = "Operator"
	RoleManager  Role = "Manager"
	RoleOwner    Role = "Owner"
)

var roleRank = map[Role]int{RoleReader: 1, RoleOperator: 2, RoleManager: 3, RoleOwner: 4}

// ParseRole accepts a role name in any case.
func ParseRole(s string) (Role, error) {
	for r := range roleRank {
		if equalFold(string(r), s) {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q: want Owner, Manager, Operator or Reader", s)
}

// AtLeast reports whether r grants everything min grants.
func (r Role) AtLeast(min Role) bool { return roleRank[r] >= roleRank[min] && roleRank[r] > 0 }

// Workload is what a project moves.
type Workload string

const (
	WorkloadMailbox    Workload = "mailbox"
	WorkloadArchive    Workload = "archive"
	WorkloadOneDrive   Workload = "onedrive"
	WorkloadSharePoint Workload = "sharepoint"
	WorkloadTeams      Workload = "teams"
)

// Workloads lists every workload in display order.
var Workloads = []Workload{WorkloadMailbox, WorkloadArchive, WorkloadOneDrive, WorkloadSharePoint, WorkloadTeams}

func ParseWorkload(s string) (Workload, error) {
	for _, w := range Workloads {
		if string(w) == s {
			return w, nil
		}
	}
	return "", fmt.Errorf("unknown workload %q: want mailbox, archive, onedrive, sharepoint or teams", s)
}

// EndpointKind names the protocol family of an endpoint; a connector registers for each.
type EndpointKind string

const (
	KindIMAP EndpointKind = "imap"
	KindM365 EndpointKind = "m365"
)

// Security is how an IMAP-like endpoint protects its connection.
type Security string

const (
	SecurityNone     Security = "none"
	SecuritySTARTTLS Security = "starttls"
	SecurityTLS      Security = "tls"
)

func ParseSecurity(s string) (Security, error) {
	switch Security(s) {
	case SecurityNone, SecuritySTARTTLS, SecurityTLS:
		return Security(s), nil
	}
	return "", fmt.Errorf("unknown security %q: want none, starttls or tls", s)
}

// PassType is the kind of pass run over items.
type PassType string

const (
	PassVerify   PassType = "verify"
	PassPrestage PassType = "prestage"
	PassFull     PassType = "full"
	PassRetry    PassType = "retry"
)

func ParsePassType(s string) (PassType, error) {
	switch PassType(s) {
	case PassVerify, PassPrestage, PassFull, PassRetry:
		return PassType(s), nil
	}
	return "", fmt.Errorf("unknown pass %q: want verify, prestage, full or retry", s)
}

// Workgroup groups people and the projects they share.
type Workgroup struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	ProjectSharing bool      `json:"project_sharing"`
	CreatedAt      time.Time `json:"created_at"`
}

// Member is a user's role in a workgroup.
type Member struct {
	WorkgroupID string `json:"workgroup_id"`
	UserID      string `json:"user_id"`
	Username    string `json:"username"`
	Role        Role   `json:"role"`
	Active      bool   `json:"active"`
}

// User is a local account. PasswordHash never leaves the store layer.
type User struct {
	ID           string    `json:"id"`
	Username     string    `json:"username"`
	Admin        bool      `json:"admin"`
	Disabled     bool      `json:"disabled"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}

// Token is an API token; only its hash is stored.
type Token struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	Name       string     `json:"name"`
	Hash       string     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Usable reports whether the token may authenticate at now.
func (t Token) Usable(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// Session is a console sign-in.
type Session struct {
	ID        string    `json:"-"` // hash of the cookie value
	UserID    string    `json:"user_id"`
	CSRF      string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Customer is the company a project is done for.
type Customer struct {
	ID          string    `json:"id"`
	WorkgroupID string    `json:"workgroup_id"`
	Name        string    `json:"name"`
	Domain      string    `json:"domain"`
	CreatedAt   time.Time `json:"created_at"`
}

// Endpoint is one side of a migration: a server or tenant and how to reach it.
// Credentials are held encrypted by the store and are write-only through the API.
type Endpoint struct {
	ID          string           `json:"id"`
	WorkgroupID string           `json:"workgroup_id"`
	CustomerID  string           `json:"customer_id,omitempty"`
	Name        string           `json:"name"`
	Kind        EndpointKind     `json:"kind"`
	Settings    EndpointSettings `json:"settings"`
	Domains     []string         `json:"domains"`
	HasSecret   bool             `json:"has_credentials"`
	CreatedAt   time.Time        `json:"created_at"`
	Secret      *EndpointSecret  `json:"-"`
}

// EndpointSettings are the non-secret connection settings.
type EndpointSettings struct {
	Host               string   `json:"host,omitempty"`
	Port               int      `json:"port,omitempty"`
	Security           Security `json:"security,omitempty"`
	InsecureSkipVerify bool     `json:"insecure_skip_verify,omitempty"`
	CACert             string   `json:"ca_cert,omitempty"`          // PEM of a private CA, for on-premises servers
	Auth               string   `json:"auth,omitempty"`             // plain (default), login or xoauth2
	Connections        int      `json:"connections,omitempty"`      // per mailbox, to copy folders in parallel
	HostConnections    int      `json:"host_connections,omitempty"` // cap per server host
	AdminUser          string   `json:"admin_user,omitempty"`
	Tenant             string   `json:"tenant,omitempty"`
	ClientID           string   `json:"client_id,omitempty"`
	Cloud              string   `json:"cloud,omitempty"`
	// MailboxAPI chooses how m365 mailboxes move: "" uses the import/export API where Microsoft
	// offers it, "workload" always uses the mail, calendar, contact and To Do APIs.
	MailboxAPI string `json:"mailbox_api,omitempty"`
}

// EndpointSecret is the decrypted credential material of an endpoint.
type EndpointSecret struct {
	AdminPassword string `json:"admin_password,omitempty"`
	ClientSecret  string `json:"client_secret,omitempty"`
}

// Empty reports whether no credential is set.
func (s EndpointSecret) Empty() bool { return s.AdminPassword == "" && s.ClientSecret == "" }

// ProjectOptions are a project's advanced options.
type ProjectOptions struct {
	MaxConcurrent  int          `json:"max_concurrent"`
	IncludeFolders []string     `json:"include_folders,omitempty"` // regular expressions
	ExcludeFolders []string     `json:"exclude_folders,omitempty"` // regular expressions
	FolderMap      []FolderRule `json:"folder_map,omitempty"`
	OlderThanDays  int          `json:"older_than_days,omitempty"`
	NewerThanDays  int          `json:"newer_than_days,omitempty"`
	Impersonation  bool         `json:"impersonation,omitempty"`
	// PropagateDeletions removes from the target what was deleted at the source since it was copied.
	PropagateDeletions bool `json:"propagate_deletions,omitempty"`
}

// FolderRule maps source folders matching From (a regular expression) to To (which may use $1).
type FolderRule struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// DefaultMaxConcurrent is how many items of a project migrate at once unless told otherwise.
const DefaultMaxConcurrent = 10

// Project pairs a source and a target endpoint for one workload.
type Project struct {
	ID          string         `json:"id"`
	WorkgroupID string         `json:"workgroup_id"`
	CustomerID  string         `json:"customer_id,omitempty"`
	Name        string         `json:"name"`
	Workload    Workload       `json:"workload"`
	SourceID    string         `json:"source_endpoint_id"`
	TargetID    string         `json:"target_endpoint_id"`
	Options     ProjectOptions `json:"options"`
	CreatedBy   string         `json:"created_by"`
	CreatedAt   time.Time      `json:"created_at"`
}

// ItemStats are the counters of an item or of one run.
type ItemStats struct {
	Folders  int64 `json:"folders"`
	Objects  int64 `json:"objects"`
	Bytes    int64 `json:"bytes"`
	Skipped  int64 `json:"skipped"`
	Errors   int64 `json:"errors"`
	Duration int64 `json:"duration_ms"`
	// The reconciliation of the latest pass that checked one, over all folders: objects the
	// target holds for the source's (matched), source objects it lacks (missing), and objects it
	// holds beyond them (extra). Only matched alone reconciles.
	Matched int64 `json:"matched"`
	Missing int64 `json:"missing"`
	Extra   int64 `json:"extra"`
}

// Reconciled reports whether the latest check found every object and nothing more.
func (s ItemStats) Reconciled() bool { return s.Missing == 0 && s.Extra == 0 }

// Checked reports whether a pass has reconciled the item at all.
func (s ItemStats) Checked() bool { return s.Matched+s.Missing+s.Extra > 0 }

// Add accumulates o into s.
func (s *ItemStats) Add(o ItemStats) {
	s.Folders += o.Folders
	s.Objects += o.Objects
	s.Bytes += o.Bytes
	s.Skipped += o.Skipped
	s.Errors += o.Errors
	s.Duration += o.Duration
	s.Matched += o.Matched
	s.Missing += o.Missing
	s.Extra += o.Extra
}

// Item is one line of a project: one mailbox, drive or site.
type Item struct {
	ID          string      `json:"id"`
	ProjectID   string      `json:"project_id"`
	SourceEmail string      `json:"source_email"`
	TargetEmail string      `json:"target_email"`
	SourceLogin string      `json:"source_login,omitempty"`
	TargetLogin string      `json:"target_login,omitempty"`
	HasSecret   bool        `json:"has_credentials"`
	Status      ItemStatus  `json:"status"`
	Stats       ItemStats   `json:"stats"`
	LastError   string      `json:"last_error,omitempty"`
	LastPassID  string      `json:"last_pass_id,omitempty"`
	UpdatedAt   time.Time   `json:"updated_at"`
	Secret      *ItemSecret `json:"-"`
}

// ItemSecret holds per-item passwords, decrypted.
type ItemSecret struct {
	SourcePassword string `json:"source_password,omitempty"`
	TargetPassword string `json:"target_password,omitempty"`
}

// Pass is one run of a pass type over chosen items.
type Pass struct {
	ID         string     `json:"id"`
	ProjectID  string     `json:"project_id"`
	Type       PassType   `json:"type"`
	StartedBy  string     `json:"started_by"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	OlderThan  int        `json:"older_than_days,omitempty"`
	Items      int        `json:"items"`
}

// Run is the outcome of one pass for one item.
type Run struct {
	PassID     string          `json:"pass_id"`
	ItemID     string          `json:"item_id"`
	PassType   PassType        `json:"pass_type"`
	Status     ItemStatus      `json:"status"`
	Stats      ItemStats       `json:"stats"`
	Folders    json.RawMessage `json:"folders,omitempty"` // per-folder statistics and reconciliation, JSON
	Error      string          `json:"error,omitempty"`
	StartedAt  *time.Time      `json:"started_at,omitempty"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
}

// Schedule starts a pass at a time, and optionally repeats it until a cutover time.
type Schedule struct {
	ID        string        `json:"id"`
	ProjectID string        `json:"project_id"`
	PassType  PassType      `json:"pass_type"`
	ItemIDs   []string      `json:"item_ids,omitempty"`
	OlderThan int           `json:"older_than_days,omitempty"`
	NextAt    time.Time     `json:"next_at"`
	Every     time.Duration `json:"every_ns,omitempty"`
	Until     *time.Time    `json:"until,omitempty"`
	Active    bool          `json:"active"`
	CreatedBy string        `json:"created_by"`
}

// Event is one line of the audit trail.
type Event struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Object  string    `json:"object"` // "project/prj_…", "item/itm_…"
	Action  string    `json:"action"`
	Outcome string    `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
}

// Watermark records one copied object so a later pass neither copies it again nor duplicates it.
type Watermark struct {
	ItemID    string
	Folder    string
	SourceID  string
	Version   string // IMAP MODSEQ/flags digest, Graph changeKey, drive eTag
	TargetID  string
	Hash      string
	Size      int64
	UpdatedAt time.Time
}

// Cursor is a per-folder change marker (UIDNEXT/HIGHESTMODSEQ, deltaLink, delta token).
type Cursor struct {
	ItemID string
	Folder string
	Value  string
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}
