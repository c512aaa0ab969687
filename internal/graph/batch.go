package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// MaxBatch is Graph's limit of requests in one $batch.
const MaxBatch = 20

// BatchRequest is one request inside a $batch.
type BatchRequest struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"` // relative to /v1.0, e.g. "/users/x/messages"
	Headers   map[string]string `json:"headers,omitempty"`
	Body      json.RawMessage   `json:"body,omitempty"`
	DependsOn []string          `json:"dependsOn,omitempty"`
}

// BatchResponse is one answer inside a $batch.
type BatchResponse struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// Err returns the inner response's error, if it failed.
func (b BatchResponse) Err() error {
	if b.Status < 400 {
		return nil
	}
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.Unmarshal(b.Body, &body)
	return &Error{Status: b.Status, Code: body.Error.Code, Message: body.Error.Message}
}

// Batch sends up to 20 requests in one $batch call. Ids must be unique and dependsOn must name
// earlier requests; the answers come back in request order. Every inner request counts against the
// mailbox's budget on the server, so callers should still pace them.
func (c *Client) Batch(ctx context.Context, reqs []BatchRequest) ([]BatchResponse, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	if len(reqs) > MaxBatch {
		return nil, fmt.Errorf("graph: $batch of %d requests: at most %d", len(reqs), MaxBatch)
	}
	seen := map[string]int{}
	for i, r := range reqs {
		if r.ID == "" {
			return nil, fmt.Errorf("graph: $batch request %d has no id", i)
		}
		if _, dup := seen[r.ID]; dup {
			return nil, fmt.Errorf("graph: $batch id %q used twice", r.ID)
		}
		for _, d := range r.DependsOn {
			if _, ok := seen[d]; !ok {
				return nil, fmt.Errorf("graph: $batch request %q depends on %q, which does not come before it", r.ID, d)
			}
		}
		seen[r.ID] = i
		if len(r.Body) > 0 && reqs[i].Headers["Content-Type"] == "" {
			if reqs[i].Headers == nil {
				reqs[i].Headers = map[string]string{}
			}
			reqs[i].Headers["Content-Type"] = "application/json"
		}
	}
	var out struct {
		Responses []BatchResponse `json:"responses"`
	}
	if _, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/$batch", Body: map[string]any{"requests": reqs}}, &out); err != nil {
		return nil, err
	}
	ordered := make([]BatchResponse, len(reqs))
	for _, r := range out.Responses {
		i, ok := seen[r.ID]
		if !ok {
			return nil, fmt.Errorf("graph: $batch answered unknown id %q", r.ID)
		}
		ordered[i] = r
	}
	for i, r := range ordered {
		if r.ID == "" {
			return nil, fmt.Errorf("graph: $batch did not answer request %q", reqs[i].ID)
		}
	}
	return ordered, nil
}
