-- +goose Up
-- Cutover on workstations: a project's agent settings, each item's cutover time, an
-- administrator's release of a device's tasks, each task's state on each device, and the lines
-- agents upload.
CREATE TABLE agent_settings (
    project_id TEXT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    data       TEXT NOT NULL
);

CREATE TABLE item_cutovers (
    item_id TEXT PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    at      TEXT NOT NULL
);

CREATE TABLE device_releases (
    device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    release   TEXT NOT NULL
);

CREATE TABLE device_tasks (
    device_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    task       TEXT NOT NULL,
    status     TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (device_id, task)
);

CREATE TABLE device_logs (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    at        TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    line      TEXT NOT NULL,
    PRIMARY KEY (device_id, at, seq)
);

-- +goose Down
DROP TABLE device_logs;
DROP TABLE device_tasks;
DROP TABLE device_releases;
DROP TABLE item_cutovers;
DROP TABLE agent_settings;
