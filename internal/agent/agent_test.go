package agent_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/agent"
	"github.com/ferry-migrate/ferry/internal/api"
	_ "github.com/ferry-migrate/ferry/internal/connector/memory"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
	"github.com/ferry-migrate/ferry/internal/testenv/server"
)

// rig is a Ferry server reached over TLS, with a project and an enrolment token.
type rig struct {
	stack *server.Stack
	tls   *httptest.Server
	cfg   agent.Config
}

func newRig(t *testing.T) *rig {
	t.Helper()
	s := server.Start(t, storetest.SQLite(t), nil)
	ts := httptest.NewTLSServer(s.API.Handler())
	t.Cleanup(ts.Close)
	ctx := context.Background()
	for _, ep := range []string{"src", "dst"} {
		if err := s.Admin.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": ep, "kind": "memory", "settings": map[string]any{"host": ep}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Admin.Do(ctx, "POST", "/api/v1/projects", map[string]any{"name": "acme", "workload": "mailbox", "source": "src", "target": "dst"}, nil); err != nil {
		t.Fatal(err)
	}
	var tok api.AgentTokenResponse
	if err := s.Admin.Do(ctx, "POST", "/api/v1/projects/acme/agent/tokens", map[string]string{"name": "wave-1"}, &tok); err != nil {
		t.Fatal(err)
	}
	return &rig{stack: s, tls: ts, cfg: agent.Config{Server: ts.URL, CompanyKey: tok.CompanyKey, Token: tok.Token, CertSHA256: agent.Fingerprint(ts.Certificate())}}
}

func (r *rig) devices(t *testing.T) []model.Device {
	t.Helper()
	var ds []model.Device
	if err := r.stack.Admin.Do(context.Background(), "GET", "/api/v1/projects/acme/devices", nil, &ds); err != nil {
		t.Fatal(err)
	}
	return ds
}

func laptop() model.DeviceFacts {
	return model.DeviceFacts{Hostname: "LAPTOP-01", OSVersion: "Windows 11", UserEmail: "ann@contoso.com", Software: map[string]string{"outlook": "16.0.1"}}
}

// run runs an agent until it has made n reports, with sleeps recorded instead of slept.
func run(t *testing.T, cfg agent.Config, dir string, n int) ([]time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var waits []time.Duration
	a := &agent.Agent{Config: cfg, Dir: dir, Facts: laptop, Poll: time.Minute, Backoff: time.Second, MaxBackoff: 8 * time.Second,
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			waits = append(waits, d)
			mu.Unlock()
			return ctx.Err()
		},
		OnReport: func(k int) {
			if k >= n {
				cancel()
			}
		}}
	err := a.Run(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return waits, err
}

func TestEnrolsOnceReportsAndKeepsItsState(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	waits, err := run(t, r.cfg, dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range waits {
		if w < 54*time.Second || w > 66*time.Second {
			t.Errorf("wait %s between reports, want a minute ± 10 %%", w)
		}
	}
	st, err := os.Stat(filepath.Join(dir, "state.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", st, err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "state.json"))
	if !strings.Contains(string(data), `"credential":"fyd_`) || strings.Contains(string(data), r.cfg.Token) {
		t.Errorf("state holds %s: want the device credential, not the token", data)
	}
	ds := r.devices(t)
	if len(ds) != 1 || ds[0].Hostname != "LAPTOP-01" || ds[0].AgentVersion != agent.Version || ds[0].Software["outlook"] != "16.0.1" {
		t.Fatalf("devices: %+v", ds)
	}
	// A restart (a reboot) reuses the state: no second enrolment.
	if _, err := run(t, r.cfg, dir, 1); err != nil {
		t.Fatal(err)
	}
	if ds := r.devices(t); len(ds) != 1 {
		t.Errorf("after a restart the project has %d devices, want 1", len(ds))
	}
}

func TestPinnedCertificateAndBackoff(t *testing.T) {
	r := newRig(t)
	wrong := r.cfg
	wrong.CertSHA256 = strings.Repeat("ab", 32)
	ctx, cancel := context.WithCancel(context.Background())
	var waits []time.Duration
	a := &agent.Agent{Config: wrong, Dir: t.TempDir(), Facts: laptop, Poll: time.Minute, Backoff: time.Second, MaxBackoff: 8 * time.Second,
		Sleep: func(_ context.Context, d time.Duration) error {
			if waits = append(waits, d); len(waits) == 6 {
				cancel()
				return context.Canceled
			}
			return nil
		}}
	if err := a.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("run with a wrong pin: %v", err)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("backoff %v, want %v", waits, want)
		}
	}
	if ds := r.devices(t); len(ds) != 0 {
		t.Errorf("a wrong pin still enrolled %d devices", len(ds))
	}
}

func TestRevokedDeviceStopsAndBadPackageIsRefused(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	if _, err := run(t, r.cfg, dir, 1); err != nil {
		t.Fatal(err)
	}
	d := r.devices(t)[0]
	if err := r.stack.Admin.Do(context.Background(), "POST", "/api/v1/devices/"+d.ID+"/revoke", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, r.cfg, dir, 1); !errors.Is(err, agent.ErrRevoked) {
		t.Errorf("a revoked device: %v, want ErrRevoked", err)
	}
	bad := r.cfg
	bad.CompanyKey = "not-the-key"
	if _, err := run(t, bad, t.TempDir(), 1); err == nil || !strings.Contains(err.Error(), "refused the enrolment token or company key") {
		t.Errorf("a wrong company key: %v", err)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ json, want string }{
		{`{"server_url":"ftp://x","company_key":"k"}`, "server_url must be an http(s) URL"},
		{`{"server_url":"https://ferry.example","token":"fye_x"}`, "company_key is missing"},
		{`{"server_url":`, "unexpected end of JSON input"},
	} {
		p := filepath.Join(dir, "agent.json")
		os.WriteFile(p, []byte(c.json), 0o600)
		if _, err := agent.LoadConfig(p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.json, err, c.want)
		}
	}
}
