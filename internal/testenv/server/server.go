// Package server starts a whole Ferry server for a test: store, the admin user, engine, REST API
// and agent protocol on a loopback listener, with an API client holding an admin token.
package server

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/ferry-migrate/ferry/internal/agentapi"
	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/api/client"
	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/store"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
)

// AdminPassword is the password of the user admin.
const AdminPassword = "Admin-Password-For-Tests-1"

// Stack is a running test server.
type Stack struct {
	Srv    *httptest.Server
	API    *api.Server
	Auth   *auth.Service
	Store  *store.Store
	Agents *agentapi.Server // the agent protocol, for tests that configure updates
	Admin  *client.Client   // with an admin API token
}

// Start runs a server on db until the test ends. mount, if given, adds handlers (the console)
// beside the API before the listener opens.
func Start(t testing.TB, db storetest.DB, mount func(a *api.Server, au *auth.Service, log *slog.Logger) error) *Stack {
	t.Helper()
	ctx := context.Background()
	st := db.Open(t)
	au := auth.New(st)
	if _, err := au.Bootstrap(ctx, AdminPassword); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := engine.New(ctx, st, engine.Config{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a := api.New(st, au, eng, log)
	agents := agentapi.New(st, au, log)
	agents.Register(a.Mux())
	if mount != nil {
		if err := mount(a, au, log); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		eng.Shutdown(context.Background())
		st.Close()
	})
	s := &Stack{Srv: srv, API: a, Auth: au, Store: st, Agents: agents}
	s.Admin = s.TokenFor(t, "admin", AdminPassword)
	return s
}

// TokenFor signs in with a password and returns a client using a fresh API token.
func (s *Stack) TokenFor(t testing.TB, user, pw string) *client.Client {
	t.Helper()
	c := client.New(s.Srv.URL, "")
	if err := c.Login(context.Background(), user, pw); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	var out struct{ Token string }
	if err := c.Do(context.Background(), "POST", "/api/v1/tokens", map[string]string{"name": "test"}, &out); err != nil {
		t.Fatal(err)
	}
	return client.New(s.Srv.URL, out.Token)
}

// Project creates the project name between two test-connector endpoints, src and dst.
func (s *Stack) Project(t testing.TB, name string) {
	t.Helper()
	ctx := context.Background()
	for _, ep := range []string{"src", "dst"} {
		if err := s.Admin.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": ep, "kind": "memory", "settings": map[string]any{"host": ep}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Admin.Do(ctx, "POST", "/api/v1/projects", map[string]any{"name": name, "workload": "mailbox", "source": "src", "target": "dst"}, nil); err != nil {
		t.Fatal(err)
	}
}
