// Package client is a small Go client of Ferry's REST API, used by the CLI and by tests.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one Ferry server.
type Client struct {
	Server string // base URL, e.g. http://127.0.0.1:8080
	Token  string // bearer token
	HTTP   *http.Client

	cookie, csrf string // set by Login for password sessions
}

// New returns a client for server with an API token.
func New(server, token string) *Client {
	return &Client{Server: strings.TrimRight(server, "/"), Token: token, HTTP: &http.Client{Timeout: 5 * time.Minute}}
}

// Problem is an RFC 9457 error answer from the server.
type Problem struct {
	Status int         `json:"status"`
	Title  string      `json:"title"`
	Detail string      `json:"detail"`
	Errors []LineError `json:"errors,omitempty"`
	// ErrorsTotal counts every bad line; Errors lists only the first of them.
	ErrorsTotal int `json:"errors_total,omitempty"`
}

// LineError is one bad CSV line.
type LineError struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%s (%d): %s", p.Title, p.Status, p.Detail)
	}
	return fmt.Sprintf("%s (%d)", p.Title, p.Status)
}

// StatusOf returns the HTTP status of a Problem error, or 0.
func StatusOf(err error) int {
	var p *Problem
	if errors.As(err, &p) {
		return p.Status
	}
	return 0
}

// Do sends a request with a JSON body (or raw body for io.Reader) and decodes a JSON answer into out.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err := io.Copy(w, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

// Upload sends a raw body with a content type.
func (c *Client) Upload(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	resp, err := c.send(ctx, method, path, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *Client) send(ctx context.Context, method, path string, body any, contentType string) (*http.Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd, contentType = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	} else if c.cookie != "" {
		req.Header.Set("Cookie", c.cookie)
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the Ferry server at %s: %w", c.Server, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		p := &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(data, p) != nil {
			p.Detail = strings.TrimSpace(string(data))
		}
		return nil, p
	}
	return resp, nil
}

// Login signs in with a password and keeps the session for later calls.
func (c *Client) Login(ctx context.Context, user, password string) error {
	data, _ := json.Marshal(map[string]string{"username": user, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Server+"/api/v1/session", bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the Ferry server at %s: %w", c.Server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p := &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		json.NewDecoder(resp.Body).Decode(p)
		return p
	}
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "ferry_session" {
			c.cookie = ck.Name + "=" + ck.Value
		}
	}
	c.csrf, c.Token = out.CSRF, ""
	return nil
}

// PathEscape escapes an id or name for use in a URL path.
func PathEscape(s string) string { return url.PathEscape(s) }
