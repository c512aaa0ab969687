package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
)

// AgentSettings returns a project's agent settings; a project that set none runs every task.
func (s *Store) AgentSettings(ctx context.Context, projectID string) (model.AgentSettings, error) {
	var data string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT data FROM agent_settings WHERE project_id = ?`), projectID).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return model.AgentSettings{Tasks: append([]string(nil), model.AgentTasks...)}, nil
	}
	if err != nil {
		return model.AgentSettings{}, classify(err)
	}
	var st model.AgentSettings
	return st, json.Unmarshal([]byte(data), &st)
}

// SetAgentSettings replaces a project's agent settings.
func (s *Store) SetAgentSettings(ctx context.Context, projectID string, st model.AgentSettings) error {
	data, _ := json.Marshal(st)
	_, err := s.exec(ctx, s.db, `INSERT INTO agent_settings (project_id, data) VALUES (?, ?) ON CONFLICT (project_id) DO UPDATE SET data = excluded.data`, projectID, string(data))
	return err
}

// SetCutover sets (or, with nil, clears) the time an item's workstation may be switched over.
func (s *Store) SetCutover(ctx context.Context, itemID string, at *time.Time) error {
	if at == nil {
		_, err := s.exec(ctx, s.db, `DELETE FROM item_cutovers WHERE item_id = ?`, itemID)
		return err
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO item_cutovers (item_id, at) VALUES (?, ?) ON CONFLICT (item_id) DO UPDATE SET at = excluded.at`, itemID, ts(*at))
	return err
}

// Cutover returns an item's cutover time, or nil when it has none.
func (s *Store) Cutover(ctx context.Context, itemID string) (*time.Time, error) {
	var at string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT at FROM item_cutovers WHERE item_id = ?`), itemID).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(err)
	}
	t := parseTS(at)
	return &t, nil
}

// ItemForUser finds the item of a project whose source or target address is the user's.
func (s *Store) ItemForUser(ctx context.Context, projectID, email string) (model.Item, bool, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return model.Item{}, false, nil
	}
	it, _, err := scanItem(s.db.QueryRowContext(ctx, s.q(`SELECT `+itemCols+` FROM items WHERE project_id = ? AND (LOWER(source_email) = ? OR LOWER(target_email) = ?) ORDER BY id LIMIT 1`), projectID, email, email))
	if errors.Is(err, ErrNotFound) {
		return model.Item{}, false, nil
	}
	return it, err == nil, err
}

// SetDeviceRelease records an administrator's release or hold of a device's tasks.
func (s *Store) SetDeviceRelease(ctx context.Context, deviceID string, r model.Release) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO device_releases (device_id, release) VALUES (?, ?) ON CONFLICT (device_id) DO UPDATE SET release = excluded.release`, deviceID, string(r))
	return err
}

// DeviceRelease returns a device's release ("" when the administrator set none).
func (s *Store) DeviceRelease(ctx context.Context, deviceID string) (model.Release, error) {
	var r string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT release FROM device_releases WHERE device_id = ?`), deviceID).Scan(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return model.ReleaseAuto, nil
	}
	return model.Release(r), classify(err)
}

// SetTaskStatus records one task's state on a device.
func (s *Store) SetTaskStatus(ctx context.Context, deviceID, task string, status model.TaskState, detail string) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO device_tasks (device_id, task, status, detail, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (device_id, task) DO UPDATE SET status = excluded.status, detail = excluded.detail, updated_at = excluded.updated_at`,
		deviceID, task, string(status), detail, ts(time.Now()))
	return err
}

// DeviceTasks lists a device's tasks in the order they run; one never reported is Waiting.
func (s *Store) DeviceTasks(ctx context.Context, deviceID string, tasks []string) ([]model.DeviceTask, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT task, status, detail, updated_at FROM device_tasks WHERE device_id = ?`), deviceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]model.DeviceTask{}
	for rows.Next() {
		var t model.DeviceTask
		var st, at string
		if err := rows.Scan(&t.Task, &st, &t.Detail, &at); err != nil {
			return nil, err
		}
		t.Status, t.UpdatedAt = model.TaskState(st), parseTS(at)
		have[t.Task] = t
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]model.DeviceTask, 0, len(tasks))
	for _, name := range tasks {
		t, ok := have[name]
		if !ok {
			t = model.DeviceTask{Task: name, Status: model.TaskWaiting}
		}
		out = append(out, t)
	}
	return out, nil
}

// SetAllTasks puts every listed task of a device in one state (restart: Waiting; complete).
func (s *Store) SetAllTasks(ctx context.Context, deviceID string, tasks []string, status model.TaskState, detail string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		for _, t := range tasks {
			if _, err := s.exec(ctx, tx.tx, `INSERT INTO device_tasks (device_id, task, status, detail, updated_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (device_id, task) DO UPDATE SET status = excluded.status, detail = excluded.detail, updated_at = excluded.updated_at`,
				deviceID, t, string(status), detail, ts(time.Now())); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddDeviceLogs appends lines an agent uploaded.
func (s *Store) AddDeviceLogs(ctx context.Context, deviceID string, lines []string) error {
	now := time.Now()
	return s.InTx(ctx, func(tx *Tx) error {
		for i, l := range lines {
			// The sequence keeps lines in order within one upload and apart across uploads.
			if _, err := s.exec(ctx, tx.tx, `INSERT INTO device_logs (device_id, at, seq, line) VALUES (?, ?, ?, ?)`, deviceID, ts(now), now.UnixNano()+int64(i), l); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeviceLogs returns a device's newest log lines, oldest first.
func (s *Store) DeviceLogs(ctx context.Context, deviceID string, limit int) ([]model.DeviceLog, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT at, line FROM device_logs WHERE device_id = ? ORDER BY at DESC, seq DESC LIMIT ?`), deviceID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.DeviceLog
	for rows.Next() {
		var at string
		var l model.DeviceLog
		if err := rows.Scan(&at, &l.Line); err != nil {
			return nil, err
		}
		l.At = parseTS(at)
		out = append([]model.DeviceLog{l}, out...)
	}
	return out, rows.Err()
}
