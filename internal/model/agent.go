package model

import "time"

// AgentToken lets workstation agents of one project enrol; only its hash is stored.
type AgentToken struct {
	ID        string     `json:"id"`
	ProjectID string     `json:"project_id"`
	Name      string     `json:"name"`
	Hash      string     `json:"-"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Usable reports whether the token may enrol a device at now.
func (t AgentToken) Usable(now time.Time) bool { return t.RevokedAt == nil && now.Before(t.ExpiresAt) }

// DeviceFacts is what an agent reports about its workstation.
type DeviceFacts struct {
	Hostname     string            `json:"hostname"`
	OSVersion    string            `json:"os_version,omitempty"`
	UserName     string            `json:"user_name,omitempty"`
	UserEmail    string            `json:"user_email,omitempty"`
	Software     map[string]string `json:"software,omitempty"` // outlook, onedrive, teams, office -> version
	AgentVersion string            `json:"agent_version,omitempty"`
	// Platform is the agent build's GOOS/GOARCH, for updates; reported, not stored.
	Platform string `json:"platform,omitempty"`
}

// Device is an enrolled workstation; its credential is stored as a hash.
type Device struct {
	ID             string `json:"id"`
	ProjectID      string `json:"project_id"`
	TokenID        string `json:"token_id"`
	CredentialHash string `json:"-"`
	DeviceFacts
	EnrolledAt time.Time  `json:"enrolled_at"`
	LastSeenAt time.Time  `json:"last_seen_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// AgentTasks are the reconfiguration tasks an agent runs at cutover, in the order it runs them.
var AgentTasks = []string{"outlook", "onedrive", "teams", "office", "entra"}

// TaskState is where one task stands on one device.
type TaskState string

// Task states.
const (
	TaskWaiting  TaskState = "Waiting"
	TaskRunning  TaskState = "Running"
	TaskComplete TaskState = "Complete"
	TaskSkipped  TaskState = "Skipped"
	TaskError    TaskState = "Error"
)

// Valid reports whether s is a known task state.
func (s TaskState) Valid() bool {
	switch s {
	case TaskWaiting, TaskRunning, TaskComplete, TaskSkipped, TaskError:
		return true
	}
	return false
}

// AgentSettings are a project's choices for its agents: which tasks run, and the prompt users
// see before their workstation is switched over.
type AgentSettings struct {
	Tasks       []string `json:"tasks"`
	CompanyName string   `json:"company_name,omitempty"`
	PromptText  string   `json:"prompt_text,omitempty"`
	LogoURL     string   `json:"logo_url,omitempty"`
	// PreScript and PostScript run before the first task and after the last (PowerShell on
	// Windows, sh elsewhere), as the steps "prescript" and "postscript".
	PreScript  string `json:"pre_script,omitempty"`
	PostScript string `json:"post_script,omitempty"`
	// The directory (tenant) ids OneDrive and Entra are switched from and to. Empty ones are
	// taken from the project's Microsoft 365 endpoints when those name a tenant by its id.
	SourceTenantID string `json:"source_tenant_id,omitempty"`
	TargetTenantID string `json:"target_tenant_id,omitempty"`
	// OutlookProfile names the new Outlook profile; empty names it after the target address.
	OutlookProfile string `json:"outlook_profile,omitempty"`
	// ReattachPST re-attaches the old profile's PST files to the new one.
	ReattachPST bool `json:"reattach_pst,omitempty"`
	// EntraLeave lets the agent run dsregcmd /leave on a device joined to the source tenant.
	EntraLeave bool `json:"entra_leave,omitempty"`
	// CloseAppsAfter is how long, in seconds, users get to close Outlook, Teams and Office before
	// the agent closes them (default 300).
	CloseAppsAfter int `json:"close_apps_after_seconds,omitempty"`
}

// DefaultCloseAppsAfter is how long users get to close their applications, in seconds.
const DefaultCloseAppsAfter = 300

// AgentTarget is what a released device is switched over to: the addresses of its user's item,
// the tenants, and the project's task options.
type AgentTarget struct {
	SourceEmail    string `json:"source_email,omitempty"`
	TargetEmail    string `json:"target_email,omitempty"`
	SourceTenantID string `json:"source_tenant_id,omitempty"`
	TargetTenantID string `json:"target_tenant_id,omitempty"`
	OutlookProfile string `json:"outlook_profile"`
	ReattachPST    bool   `json:"reattach_pst,omitempty"`
	EntraLeave     bool   `json:"entra_leave,omitempty"`
	CloseAppsAfter int    `json:"close_apps_after_seconds"`
}

// The script steps' names.
const (
	StepPreScript  = "prescript"
	StepPostScript = "postscript"
)

// Steps are what a device runs, in order: the pre-script, the tasks, the post-script.
func (s AgentSettings) Steps() []string {
	var out []string
	if s.PreScript != "" {
		out = append(out, StepPreScript)
	}
	out = append(out, s.Tasks...)
	if s.PostScript != "" {
		out = append(out, StepPostScript)
	}
	return out
}

// DeviceTask is one task's state on one device.
type DeviceTask struct {
	Task      string    `json:"task"`
	Status    TaskState `json:"status"`
	Detail    string    `json:"detail,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// DeviceLog is one line an agent uploaded.
type DeviceLog struct {
	At   time.Time `json:"at"`
	Line string    `json:"line"`
}

// Release is an administrator's hold on a device's tasks: "" follows the item's migration and
// cutover time, "forced" releases them now, "held" keeps them back.
type Release string

// Releases.
const (
	ReleaseAuto   Release = ""
	ReleaseForced Release = "forced"
	ReleaseHeld   Release = "held"
)

// AgentInstructions are the server's answer to an agent's report: when to come back and, once
// the user's cutover has come, which tasks to run (with their states, so a restarted agent goes
// on where it stopped) and what to tell the user first.
type AgentInstructions struct {
	PollSeconds int          `json:"poll_seconds"`
	Released    bool         `json:"released"`
	Waiting     string       `json:"waiting,omitempty"`    // why the tasks are not released yet
	CutoverAt   *time.Time   `json:"cutover_at,omitempty"` // UTC; the agent shows it in local time
	Tasks       []DeviceTask `json:"tasks,omitempty"`
	Prompt      *AgentPrompt `json:"prompt,omitempty"`
	PreScript   string       `json:"pre_script,omitempty"`
	PostScript  string       `json:"post_script,omitempty"`
	Target      *AgentTarget `json:"target,omitempty"`
	Update      *AgentUpdate `json:"update,omitempty"`
}

// AgentUpdate offers a newer agent: the agent downloads it from URL (with its credential),
// checks its SHA-256, and replaces itself only if Signature (ed25519, base64) signs
// AgentUpdateMessage with the key its package carries.
type AgentUpdate struct {
	Version   string `json:"version"`
	URL       string `json:"url"`
	SHA256    string `json:"sha256"`
	Signature string `json:"signature"`
}

// AgentUpdateMessage is what an update's signature signs.
func AgentUpdateMessage(platform, version, sha256hex string) []byte {
	return []byte("ferry-agent-update\n" + platform + "\n" + version + "\n" + sha256hex)
}

// AgentBinary is the file name of the agent built for a platform in a server's agent directory.
func AgentBinary(goos, goarch string) string {
	name := "ferry-agent-" + goos + "-" + goarch
	if goos == "windows" {
		name += ".exe"
	}
	return name
}

// AgentPrompt is what the user sees before the workstation is switched over.
type AgentPrompt struct {
	CompanyName string `json:"company_name,omitempty"`
	Text        string `json:"text,omitempty"`
	LogoURL     string `json:"logo_url,omitempty"`
}

// IsTenantID tells whether s is a directory (tenant) id: a GUID, as OneDrive's policies and
// Entra's join records name tenants.
func IsTenantID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'):
			return false
		}
	}
	return true
}
