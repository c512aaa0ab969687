-- +goose Up
-- Workstation agents: enrolment tokens per project, and the devices that enrolled with them. Each
-- device holds its own credential, so a leaked enrolment token cannot speak for a device.
ALTER TABLE projects ADD COLUMN company_key TEXT NOT NULL DEFAULT '';

CREATE TABLE agent_tokens (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX agent_tokens_project ON agent_tokens (project_id, created_at);

CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    token_id        TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    hostname        TEXT NOT NULL,
    os_version      TEXT NOT NULL DEFAULT '',
    user_name       TEXT NOT NULL DEFAULT '',
    user_email      TEXT NOT NULL DEFAULT '',
    software        TEXT NOT NULL DEFAULT '{}',
    agent_version   TEXT NOT NULL DEFAULT '',
    enrolled_at     TEXT NOT NULL,
    last_seen_at    TEXT NOT NULL,
    revoked_at      TEXT
);
CREATE INDEX devices_project ON devices (project_id, hostname);

-- +goose Down
DROP TABLE devices;
DROP TABLE agent_tokens;
ALTER TABLE projects DROP COLUMN company_key;
