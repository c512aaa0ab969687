-- +goose Up
-- Portable SQL: this file runs on SQLite and PostgreSQL alike. Times are UTC text in a fixed-width
-- format so they sort and compare as strings; booleans are 0/1 integers; ids are text made in Go.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    admin         INTEGER NOT NULL DEFAULT 0,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE workgroups (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    project_sharing INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL
);

CREATE TABLE members (
    workgroup_id TEXT NOT NULL REFERENCES workgroups(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workgroup_id, user_id)
);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE customers (
    id           TEXT PRIMARY KEY,
    workgroup_id TEXT NOT NULL REFERENCES workgroups(id),
    name         TEXT NOT NULL,
    domain       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (workgroup_id, name)
);

CREATE TABLE endpoints (
    id           TEXT PRIMARY KEY,
    workgroup_id TEXT NOT NULL REFERENCES workgroups(id),
    customer_id  TEXT,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    settings     TEXT NOT NULL,
    domains      TEXT NOT NULL,
    secret       TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    UNIQUE (workgroup_id, name)
);

CREATE TABLE projects (
    id           TEXT PRIMARY KEY,
    workgroup_id TEXT NOT NULL REFERENCES workgroups(id),
    customer_id  TEXT,
    name         TEXT NOT NULL,
    workload     TEXT NOT NULL,
    source_id    TEXT NOT NULL REFERENCES endpoints(id),
    target_id    TEXT NOT NULL REFERENCES endpoints(id),
    options      TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (workgroup_id, name)
);

CREATE TABLE items (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    source_email   TEXT NOT NULL,
    source_key     TEXT NOT NULL,
    target_email   TEXT NOT NULL,
    source_login   TEXT NOT NULL DEFAULT '',
    target_login   TEXT NOT NULL DEFAULT '',
    secret         TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL,
    stats          TEXT NOT NULL DEFAULT '{}',
    last_error     TEXT NOT NULL DEFAULT '',
    last_pass_id   TEXT NOT NULL DEFAULT '',
    lease_owner    TEXT NOT NULL DEFAULT '',
    lease_expires  TEXT NOT NULL DEFAULT '',
    stop_requested INTEGER NOT NULL DEFAULT 0,
    updated_at     TEXT NOT NULL,
    UNIQUE (project_id, source_key)
);
CREATE INDEX items_project_status ON items (project_id, status);

CREATE TABLE passes (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    started_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    finished_at TEXT,
    older_than  INTEGER NOT NULL DEFAULT 0,
    items       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX passes_project ON passes (project_id, created_at);

CREATE TABLE runs (
    pass_id     TEXT NOT NULL REFERENCES passes(id) ON DELETE CASCADE,
    item_id     TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    status      TEXT NOT NULL,
    stats       TEXT NOT NULL DEFAULT '{}',
    error       TEXT NOT NULL DEFAULT '',
    folders     TEXT NOT NULL DEFAULT '[]',
    job_id      BIGINT NOT NULL DEFAULT 0,
    started_at  TEXT,
    finished_at TEXT,
    PRIMARY KEY (pass_id, item_id)
);
CREATE INDEX runs_item ON runs (item_id);
CREATE INDEX runs_status ON runs (status);

CREATE TABLE schedules (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    pass_type   TEXT NOT NULL,
    item_ids    TEXT NOT NULL DEFAULT '[]',
    older_than  INTEGER NOT NULL DEFAULT 0,
    next_at     TEXT NOT NULL,
    every_ns    BIGINT NOT NULL DEFAULT 0,
    until_at    TEXT,
    active      INTEGER NOT NULL DEFAULT 1,
    created_by  TEXT NOT NULL
);
CREATE INDEX schedules_due ON schedules (active, next_at);

CREATE TABLE watermarks (
    item_id    TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    folder     TEXT NOT NULL,
    source_id  TEXT NOT NULL,
    version    TEXT NOT NULL DEFAULT '',
    target_id  TEXT NOT NULL DEFAULT '',
    hash       TEXT NOT NULL DEFAULT '',
    size       BIGINT NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (item_id, folder, source_id)
);

CREATE TABLE cursors (
    item_id    TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    folder     TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (item_id, folder)
);

CREATE TABLE object_errors (
    id        TEXT PRIMARY KEY,
    item_id   TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    pass_id   TEXT NOT NULL,
    folder    TEXT NOT NULL,
    source_id TEXT NOT NULL,
    reason    TEXT NOT NULL,
    at        TEXT NOT NULL
);
CREATE INDEX object_errors_item ON object_errors (item_id, pass_id);

CREATE TABLE events (
    id      TEXT PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    object  TEXT NOT NULL,
    action  TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_object ON events (object, id);

-- +goose Down
DROP TABLE events;
DROP TABLE object_errors;
DROP TABLE cursors;
DROP TABLE watermarks;
DROP TABLE schedules;
DROP TABLE runs;
DROP TABLE passes;
DROP TABLE items;
DROP TABLE projects;
DROP TABLE endpoints;
DROP TABLE customers;
DROP TABLE sessions;
DROP TABLE tokens;
DROP TABLE members;
DROP TABLE workgroups;
DROP TABLE users;
