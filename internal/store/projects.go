package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
)

// CreateProject adds a project.
func (s *Store) CreateProject(ctx context.Context, p model.Project) (model.Project, error) {
	p.ID, p.CreatedAt = NewID("prj"), time.Now().UTC()
	opts, _ := json.Marshal(p.Options)
	_, err := s.exec(ctx, s.db, `INSERT INTO projects (id, workgroup_id, customer_id, name, workload, source_id, target_id, options, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.WorkgroupID, p.CustomerID, p.Name, string(p.Workload), p.SourceID, p.TargetID, string(opts), p.CreatedBy, ts(p.CreatedAt))
	if err != nil {
		return model.Project{}, fmt.Errorf("create project %q: %w", p.Name, err)
	}
	return p, nil
}

// UpdateProjectOptions replaces a project's advanced options.
func (s *Store) UpdateProjectOptions(ctx context.Context, id string, o model.ProjectOptions) error {
	opts, _ := json.Marshal(o)
	return s.mustAffect(s.exec(ctx, s.db, `UPDATE projects SET options = ? WHERE id = ?`, string(opts), id))
}

const projectCols = `id, workgroup_id, customer_id, name, workload, source_id, target_id, options, created_by, created_at`

func scanProject(row interface{ Scan(...any) error }) (model.Project, error) {
	var p model.Project
	var cust sql.NullString
	var workload, opts, created string
	if err := row.Scan(&p.ID, &p.WorkgroupID, &cust, &p.Name, &workload, &p.SourceID, &p.TargetID, &opts, &p.CreatedBy, &created); err != nil {
		return p, classify(err)
	}
	p.CustomerID, p.Workload, p.CreatedAt = cust.String, model.Workload(workload), parseTS(created)
	if err := json.Unmarshal([]byte(opts), &p.Options); err != nil {
		return p, fmt.Errorf("project %s options: %w", p.ID, err)
	}
	return p, nil
}

// Project looks a project up by id, or by name within one of the given workgroups.
func (s *Store) Project(ctx context.Context, workgroupIDs []string, idOrName string) (model.Project, error) {
	if len(workgroupIDs) == 0 {
		return scanProject(s.db.QueryRowContext(ctx, s.q(`SELECT `+projectCols+` FROM projects WHERE id = ?`), idOrName))
	}
	in := ` AND workgroup_id IN (` + placeholders(len(workgroupIDs)) + `)`
	prj, err := scanProject(s.db.QueryRowContext(ctx, s.q(`SELECT `+projectCols+` FROM projects WHERE id = ?`+in), append([]any{idOrName}, anys(workgroupIDs)...)...))
	if !IsNotFound(err) {
		return prj, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+projectCols+` FROM projects WHERE name = ?`+in+` LIMIT 2`), append([]any{idOrName}, anys(workgroupIDs)...)...)
	if err != nil {
		return model.Project{}, err
	}
	defer rows.Close()
	var found []model.Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return model.Project{}, err
		}
		found = append(found, p)
	}
	if err := rows.Err(); err != nil {
		return model.Project{}, err
	}
	switch len(found) {
	case 0:
		return model.Project{}, ErrNotFound
	case 1:
		return found[0], nil
	}
	return model.Project{}, fmt.Errorf("%w: projects named %q are in more than one of your workgroups; use the project's id", ErrAmbiguous, idOrName)
}

// Projects lists the projects of the given workgroups.
func (s *Store) Projects(ctx context.Context, workgroupIDs []string) ([]model.Project, error) {
	if len(workgroupIDs) == 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+projectCols+` FROM projects WHERE workgroup_id IN (`+placeholders(len(workgroupIDs))+`) ORDER BY name`), anys(workgroupIDs)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ItemInput is one item to create or update by import.
type ItemInput struct {
	SourceEmail, TargetEmail, SourceLogin, TargetLogin string
	Secret                                             *model.ItemSecret
}

// ImportResult counts what an import did.
type ImportResult struct {
	Created int `json:"created"`
	Updated int `json:"updated"`
}

// ImportItems adds or updates items in one transaction: all of them, or none. An item whose source
// address already exists in the project is updated (target, logins, and credentials when given).
func (s *Store) ImportItems(ctx context.Context, projectID, actor string, in []ItemInput) (ImportResult, error) {
	var res ImportResult
	err := s.InTx(ctx, func(tx *Tx) error {
		existing := map[string]string{}
		rows, err := tx.tx.QueryContext(ctx, s.q(`SELECT source_key, id FROM items WHERE project_id = ?`), projectID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k, id string
			if err := rows.Scan(&k, &id); err != nil {
				rows.Close()
				return err
			}
			existing[k] = id
		}
		rows.Close()
		now := ts(time.Now())
		var rowsIn []any
		for _, it := range in {
			key := strings.ToLower(it.SourceEmail)
			if id, ok := existing[key]; ok {
				sealed, err := s.sealItemSecret(id, it.Secret)
				if err != nil {
					return err
				}
				if _, err := s.exec(ctx, tx.tx, `UPDATE items SET target_email = ?, source_login = ?, target_login = ?, secret = CASE WHEN ? = '' THEN secret ELSE ? END, updated_at = ? WHERE id = ?`,
					it.TargetEmail, it.SourceLogin, it.TargetLogin, sealed, sealed, now, id); err != nil {
					return err
				}
				res.Updated++
				continue
			}
			id := NewID("itm")
			sealed, err := s.sealItemSecret(id, it.Secret)
			if err != nil {
				return err
			}
			rowsIn = append(rowsIn, id, projectID, it.SourceEmail, key, it.TargetEmail, it.SourceLogin, it.TargetLogin, sealed, string(model.StatusNotStarted), now)
			existing[key] = id
			res.Created++
		}
		// Multi-row inserts: one round trip per 500 items instead of one per item.
		const cols, perStmt = 10, 500
		row := "(" + placeholders(cols) + ")"
		for len(rowsIn) > 0 {
			n := min(len(rowsIn)/cols, perStmt)
			q := `INSERT INTO items (id, project_id, source_email, source_key, target_email, source_login, target_login, secret, status, updated_at) VALUES ` +
				strings.TrimSuffix(strings.Repeat(row+",", n), ",")
			if _, err := s.exec(ctx, tx.tx, q, rowsIn[:n*cols]...); err != nil {
				return fmt.Errorf("import items: %w", err)
			}
			rowsIn = rowsIn[n*cols:]
		}
		return s.event(ctx, tx.tx, model.Event{Actor: actor, Object: "project/" + projectID, Action: "items.import", Outcome: "ok",
			Detail: fmt.Sprintf("%d created, %d updated", res.Created, res.Updated)})
	})
	return res, err
}

func (s *Store) sealItemSecret(id string, sec *model.ItemSecret) (string, error) {
	return s.seal("item/"+id, sec, sec == nil || (sec.SourcePassword == "" && sec.TargetPassword == ""))
}

const itemCols = `id, project_id, source_email, target_email, source_login, target_login, secret, status, stats, last_error, last_pass_id, updated_at`

func scanItem(row interface{ Scan(...any) error }) (model.Item, string, error) {
	var it model.Item
	var sealed, status, stats, updated string
	if err := row.Scan(&it.ID, &it.ProjectID, &it.SourceEmail, &it.TargetEmail, &it.SourceLogin, &it.TargetLogin, &sealed, &status, &stats, &it.LastError, &it.LastPassID, &updated); err != nil {
		return it, "", classify(err)
	}
	it.Status, it.UpdatedAt, it.HasSecret = model.ItemStatus(status), parseTS(updated), sealed != ""
	if err := json.Unmarshal([]byte(stats), &it.Stats); err != nil {
		return it, "", fmt.Errorf("item %s stats: %w", it.ID, err)
	}
	return it, sealed, nil
}

// Item looks an item up by id.
func (s *Store) Item(ctx context.Context, id string) (model.Item, error) {
	it, _, err := scanItem(s.db.QueryRowContext(ctx, s.q(`SELECT `+itemCols+` FROM items WHERE id = ?`), id))
	return it, err
}

// ItemWithSecret loads an item and opens its per-item credentials, for connectors only.
func (s *Store) ItemWithSecret(ctx context.Context, id string) (model.Item, error) {
	it, sealed, err := scanItem(s.db.QueryRowContext(ctx, s.q(`SELECT `+itemCols+` FROM items WHERE id = ?`), id))
	if err != nil || sealed == "" {
		return it, err
	}
	it.Secret = &model.ItemSecret{}
	return it, s.unseal("item/"+it.ID, sealed, it.Secret)
}

// ItemFilter selects and orders items of a project.
type ItemFilter struct {
	Status model.ItemStatus
	Text   string   // substring of source or target address
	Emails []string // exact source addresses (any case)
	IDs    []string
	Sort   string // "source", "target", "status", "updated"; "-" prefix for descending
	// ChangedAfter keeps items updated after this time: what a live view must refresh.
	ChangedAfter time.Time
	Limit        int // 0 = all
	Offset       int
}

var itemSorts = map[string]string{"source": "source_key", "target": "target_email", "status": "status", "updated": "updated_at"}

// Items lists a project's items and the total matching the filter (before paging).
func (s *Store) Items(ctx context.Context, projectID string, f ItemFilter) ([]model.Item, int, error) {
	where, args := []string{"project_id = ?"}, []any{projectID}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	if f.Text != "" {
		t := "%" + strings.ToLower(f.Text) + "%"
		where, args = append(where, "(source_key LIKE ? OR lower(target_email) LIKE ?)"), append(args, t, t)
	}
	if len(f.Emails) > 0 {
		keys := make([]string, len(f.Emails))
		for i, e := range f.Emails {
			keys[i] = strings.ToLower(strings.TrimSpace(e))
		}
		where, args = append(where, "source_key IN ("+placeholders(len(keys))+")"), append(args, anys(keys)...)
	}
	if len(f.IDs) > 0 {
		where, args = append(where, "id IN ("+placeholders(len(f.IDs))+")"), append(args, anys(f.IDs)...)
	}
	if !f.ChangedAfter.IsZero() {
		where, args = append(where, "updated_at > ?"), append(args, ts(f.ChangedAfter))
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT count(*) FROM items WHERE `+cond), args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	order, desc := "source_key", ""
	if f.Sort != "" {
		key := strings.TrimPrefix(f.Sort, "-")
		col, ok := itemSorts[key]
		if !ok {
			return nil, 0, fmt.Errorf("%w: unknown sort %q: want source, target, status or updated", ErrBadFilter, f.Sort)
		}
		order = col
		if strings.HasPrefix(f.Sort, "-") {
			desc = " DESC"
		}
	}
	query := `SELECT ` + itemCols + ` FROM items WHERE ` + cond + ` ORDER BY ` + order + desc + `, id`
	if f.Limit > 0 {
		query += ` LIMIT ? OFFSET ?`
		args = append(args, f.Limit, f.Offset)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []model.Item{}
	for rows.Next() {
		it, _, err := scanItem(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, it)
	}
	return out, total, rows.Err()
}

// StatusCounts counts a project's items by status.
func (s *Store) StatusCounts(ctx context.Context, projectID string) (map[model.ItemStatus]int, error) {
	query, args := `SELECT status, count(*) FROM items GROUP BY status`, []any{}
	if projectID != "" {
		query, args = `SELECT status, count(*) FROM items WHERE project_id = ? GROUP BY status`, []any{projectID}
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[model.ItemStatus]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[model.ItemStatus(st)] = n
	}
	return out, rows.Err()
}
