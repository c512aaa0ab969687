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
