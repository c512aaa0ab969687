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

// CreateCustomer adds a customer to a workgroup.
func (s *Store) CreateCustomer(ctx context.Context, c model.Customer) (model.Customer, error) {
	c.ID, c.CreatedAt = NewID("cus"), time.Now().UTC()
	_, err := s.exec(ctx, s.db, `INSERT INTO customers (id, workgroup_id, name, domain, created_at) VALUES (?, ?, ?, ?, ?)`,
		c.ID, c.WorkgroupID, c.Name, c.Domain, ts(c.CreatedAt))
	if err != nil {
		return model.Customer{}, fmt.Errorf("create customer %q: %w", c.Name, err)
	}
	return c, nil
}

// Customers lists the customers of the given workgroups.
func (s *Store) Customers(ctx context.Context, workgroupIDs []string) ([]model.Customer, error) {
	if len(workgroupIDs) == 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, workgroup_id, name, domain, created_at FROM customers WHERE workgroup_id IN (`+placeholders(len(workgroupIDs))+`) ORDER BY name`), anys(workgroupIDs)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Customer
	for rows.Next() {
		var c model.Customer
		var created string
		if err := rows.Scan(&c.ID, &c.WorkgroupID, &c.Name, &c.Domain, &created); err != nil {
			return nil, err
		}
		c.CreatedAt = parseTS(created)
		out = append(out, c)
	}
	return out, rows.Err()
}

// CreateEndpoint adds an endpoint; its credentials are sealed before they reach the database.
func (s *Store) CreateEndpoint(ctx context.Context, e model.Endpoint) (model.Endpoint, error) {
	e.ID, e.CreatedAt = NewID("ep"), time.Now().UTC()
	sealed, err := s.sealEndpointSecret(e.ID, e.Secret)
	if err != nil {
		return model.Endpoint{}, err
	}
	settings, _ := json.Marshal(e.Settings)
	domains, _ := json.Marshal(nonNil(e.Domains))
	_, err = s.exec(ctx, s.db, `INSERT INTO endpoints (id, workgroup_id, customer_id, name, kind, settings, domains, secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.WorkgroupID, e.CustomerID, e.Name, string(e.Kind), string(settings), string(domains), sealed, ts(e.CreatedAt))
	if err != nil {
		return model.Endpoint{}, fmt.Errorf("create endpoint %q: %w", e.Name, err)
	}
	e.HasSecret, e.Secret = sealed != "", nil
	return e, nil
}

func (s *Store) sealEndpointSecret(id string, sec *model.EndpointSecret) (string, error) {
	return s.seal("endpoint/"+id, sec, sec == nil || sec.Empty())
}

// SetEndpointSecret replaces an endpoint's credentials.
func (s *Store) SetEndpointSecret(ctx context.Context, id string, sec *model.EndpointSecret) error {
	sealed, err := s.sealEndpointSecret(id, sec)
	if err != nil {
		return err
	}
	return s.mustAffect(s.exec(ctx, s.db, `UPDATE endpoints SET secret = ? WHERE id = ?`, sealed, id))
}

const endpointCols = `id, workgroup_id, customer_id, name, kind, settings, domains, secret, created_at`

func scanEndpoint(row interface{ Scan(...any) error }) (model.Endpoint, string, error) {
	var e model.Endpoint
	var cust sql.NullString
	var kind, settings, domains, sealed, created string
	if err := row.Scan(&e.ID, &e.WorkgroupID, &cust, &e.Name, &kind, &settings, &domains, &sealed, &created); err != nil {
		return e, "", classify(err)
	}
	e.CustomerID, e.Kind, e.CreatedAt, e.HasSecret = cust.String, model.EndpointKind(kind), parseTS(created), sealed != ""
	if err := json.Unmarshal([]byte(settings), &e.Settings); err != nil {
		return e, "", fmt.Errorf("endpoint %s settings: %w", e.ID, err)
	}
	if err := json.Unmarshal([]byte(domains), &e.Domains); err != nil {
		return e, "", fmt.Errorf("endpoint %s domains: %w", e.ID, err)
	}
	return e, sealed, nil
}

// Endpoint looks an endpoint up by id, or by name within a workgroup. Credentials stay sealed.
func (s *Store) Endpoint(ctx context.Context, workgroupID, idOrName string) (model.Endpoint, error) {
	if workgroupID == "" {
		e, _, err := scanEndpoint(s.db.QueryRowContext(ctx, s.q(`SELECT `+endpointCols+` FROM endpoints WHERE id = ?`), idOrName))
		return e, err
	}
	// An id is tried as an id first, and a name only ever within the workgroup, so an endpoint
	// named after another workgroup's endpoint id cannot stand in for it, nor it for the other.
	e, _, err := scanEndpoint(s.db.QueryRowContext(ctx, s.q(`SELECT `+endpointCols+` FROM endpoints WHERE workgroup_id = ? AND id = ?`), workgroupID, idOrName))
	if IsNotFound(err) {
		e, _, err = scanEndpoint(s.db.QueryRowContext(ctx, s.q(`SELECT `+endpointCols+` FROM endpoints WHERE workgroup_id = ? AND name = ?`), workgroupID, idOrName))
	}
	return e, err
}

// EndpointWithSecret loads an endpoint and opens its credentials, for connectors only.
func (s *Store) EndpointWithSecret(ctx context.Context, id string) (model.Endpoint, error) {
	e, sealed, err := scanEndpoint(s.db.QueryRowContext(ctx, s.q(`SELECT `+endpointCols+` FROM endpoints WHERE id = ?`), id))
	if err != nil || sealed == "" {
		return e, err
	}
	e.Secret = &model.EndpointSecret{}
	return e, s.unseal("endpoint/"+e.ID, sealed, e.Secret)
}

// Endpoints lists the endpoints of the given workgroups.
func (s *Store) Endpoints(ctx context.Context, workgroupIDs []string) ([]model.Endpoint, error) {
	if len(workgroupIDs) == 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+endpointCols+` FROM endpoints WHERE workgroup_id IN (`+placeholders(len(workgroupIDs))+`) ORDER BY name`), anys(workgroupIDs)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Endpoint
	for rows.Next() {
		e, _, err := scanEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Event appends to the audit trail.
func (s *Store) Event(ctx context.Context, e model.Event) error { return s.event(ctx, s.db, e) }

func (s *Store) event(ctx context.Context, q querier, e model.Event) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	_, err := s.exec(ctx, q, `INSERT INTO events (id, at, actor, object, action, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		timeID("evt", e.At), ts(e.At), e.Actor, e.Object, e.Action, e.Outcome, e.Detail)
	return err
}

// Events lists the newest events: all of them for an empty object, those of one kind of object for
// a kind ("item/"), or those of exactly one object ("project/prj_…"). Nothing in object is a
// pattern: "%" and "_" are characters like any other.
func (s *Store) Events(ctx context.Context, object string, limit int) ([]model.Event, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	where, args := "", []any{}
	switch {
	case object == "":
	case strings.HasSuffix(object, "/") && strings.Count(object, "/") == 1:
		where, args = ` WHERE substr(object, 1, ?) = ?`, []any{len(object), object}
	default:
		where, args = ` WHERE object = ?`, []any{object}
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, at, actor, object, action, outcome, detail FROM events`+where+` ORDER BY id DESC LIMIT ?`),
		append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Event
	for rows.Next() {
		var e model.Event
		var at string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Object, &e.Action, &e.Outcome, &e.Detail); err != nil {
			return nil, err
		}
		e.At = parseTS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func anys[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
