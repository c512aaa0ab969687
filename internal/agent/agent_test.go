package agent_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
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
	s.Project(t, "acme")
	ctx := context.Background()
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

// fakeTask records its runs and writes a backup file, as a real task keeps what a rollback needs.
type fakeTask struct {
	mu   sync.Mutex
	runs int
	err  error
}

func (f *fakeTask) Run(ctx context.Context, job agent.Job) (string, error) {
	backup := job.Backup
	f.mu.Lock()
	f.runs++
	f.mu.Unlock()
	if err := os.WriteFile(filepath.Join(backup, "before.reg"), []byte("saved"), 0o600); err != nil {
		return "", err
	}
	return "done", f.err
}

// TestReleasedTasksRun: an agent whose tasks are not released runs nothing; once an administrator
// starts the device it runs them in order, once each (a task it has no code for is Skipped, a
// failing one is Error), asks the user first, uploads its log, and runs them again only after a
// restart.
func TestReleasedTasksRun(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	ctx := context.Background()
	outlook, onedrive := &fakeTask{}, &fakeTask{err: errors.New("OneDrive.exe did not stop")}
	var asked []string
	runN := func(n int) {
		t.Helper()
		reports(t, &agent.Agent{Config: r.cfg, Dir: dir,
			Tasks:     map[string]agent.Task{"outlook": outlook, "onedrive": onedrive},
			RunScript: func(_ context.Context, script string) (string, error) { return "ran " + script, nil },
			AskUser: func(_ context.Context, p agent.Prompt) error {
				asked = append(asked, p.CompanyName+": "+p.Text)
				return nil
			}}, n)
	}
	if err := r.stack.Admin.Do(ctx, "PUT", "/api/v1/projects/acme/agent/settings", model.AgentSettings{Tasks: []string{"outlook", "onedrive", "teams"},
		CompanyName: "Fabrikam", PromptText: "Save your work: Outlook restarts in 5 minutes.", PreScript: "Stop-Process -Name outlook"}, nil); err != nil {
		t.Fatal(err)
	}
	runN(1)
	if outlook.runs != 0 || len(asked) != 0 {
		t.Fatalf("tasks ran before their release: outlook %d, asked %v", outlook.runs, asked)
	}
	var ds []api.DeviceView
	r.stack.Admin.Do(ctx, "GET", "/api/v1/projects/acme/devices", nil, &ds)
	if err := r.stack.Admin.Do(ctx, "POST", "/api/v1/devices/"+ds[0].ID+"/actions", map[string]string{"action": "start"}, nil); err != nil {
		t.Fatal(err)
	}
	runN(2)
	if outlook.runs != 1 || onedrive.runs != 1 || len(asked) != 1 || asked[0] != "Fabrikam: Save your work: Outlook restarts in 5 minutes." {
		t.Fatalf("after the release: outlook ran %d, onedrive %d, asked %v; want once each and one prompt", outlook.runs, onedrive.runs, asked)
	}
	if _, err := os.Stat(filepath.Join(dir, "backup", "outlook", "before.reg")); err != nil {
		t.Errorf("the outlook task's backup: %v", err)
	}
	r.stack.Admin.Do(ctx, "GET", "/api/v1/projects/acme/devices", nil, &ds)
	got := ""
	for _, dt := range ds[0].Tasks {
		got += dt.Task + "=" + string(dt.Status) + ":" + dt.Detail + " "
	}
	if got != "prescript=Complete:ran Stop-Process -Name outlook outlook=Complete:done onedrive=Error:OneDrive.exe did not stop teams=Skipped:this agent has no teams task for its platform " {
		t.Fatalf("task states on the server: %q", got)
	}
	var logs []model.DeviceLog
	if err := r.stack.Admin.Do(ctx, "GET", "/api/v1/devices/"+ds[0].ID+"/logs", nil, &logs); err != nil || len(logs) != 4 || !strings.HasPrefix(logs[0].Line, "prescript: Complete") || !strings.HasPrefix(logs[1].Line, "outlook: Complete") {
		t.Fatalf("uploaded log: %v %v", logs, err)
	}
	// A restart runs them again from the first, once.
	if err := r.stack.Admin.Do(ctx, "POST", "/api/v1/devices/"+ds[0].ID+"/actions", map[string]string{"action": "restart"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.stack.Admin.Do(ctx, "POST", "/api/v1/devices/"+ds[0].ID+"/actions", map[string]string{"action": "start"}, nil); err != nil {
		t.Fatal(err)
	}
	runN(2)
	if outlook.runs != 2 || len(asked) != 2 {
		t.Fatalf("after a restart: outlook ran %d times, asked %d; want 2 and 2", outlook.runs, len(asked))
	}
}

// TestSignedUpdates: an agent installs a newer build only when the server's signature verifies
// with the key its package carries and the download matches the signed hash; a wrong key leaves
// it running and says why in its log; the same version is not offered.
func TestSignedUpdates(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	bins := t.TempDir()
	r.stack.Agents.SetUpdates(bins, key)
	bin := filepath.Join(bins, model.AgentBinary(runtime.GOOS, runtime.GOARCH))
	if err := os.WriteFile(bin, []byte("the new build"), 0o755); err != nil {
		t.Fatal(err)
	}
	try := func(cfg agent.Config, version string) (installed []byte, err error) {
		t.Helper()
		if err := os.WriteFile(bin+".version", []byte(version+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		a := &agent.Agent{Config: cfg, Dir: t.TempDir(), Facts: laptop, Poll: time.Minute, Backoff: time.Second, MaxBackoff: time.Second,
			Sleep:    func(ctx context.Context, d time.Duration) error { return ctx.Err() },
			OnReport: func(int) { cancel() },
			Replace: func(path string) error {
				var err error
				installed, err = os.ReadFile(path)
				return err
			}}
		err = a.Run(c)
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		return installed, err
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	wrong := r.cfg
	wrong.UpdateKey = base64.StdEncoding.EncodeToString(other)
	if got, err := try(wrong, "9.9.9"); err != nil || got != nil {
		t.Fatalf("with another key: installed %q, %v; want nothing installed and the agent running", got, err)
	}
	var ds []api.DeviceView
	r.stack.Admin.Do(ctx, "GET", "/api/v1/projects/acme/devices", nil, &ds)
	var logs []model.DeviceLog
	if err := r.stack.Admin.Do(ctx, "GET", "/api/v1/devices/"+ds[0].ID+"/logs", nil, &logs); err != nil || len(logs) == 0 || !strings.Contains(logs[len(logs)-1].Line, "signature does not verify") {
		t.Fatalf("the refused update's log: %v %v", logs, err)
	}
	right := r.cfg
	right.UpdateKey = base64.StdEncoding.EncodeToString(pub)
	if got, err := try(right, agent.Version); err != nil || got != nil {
		t.Fatalf("the same version: installed %q, %v", got, err)
	}
	if got, err := try(right, "9.9.9"); !errors.Is(err, agent.ErrUpdated) || string(got) != "the new build" {
		t.Fatalf("a signed update: installed %q, %v; want the new build and ErrUpdated", got, err)
	}
}

// TestCutoverAnnounced: a device whose user's item has a cutover time tells the user once, in
// the device's local time, and tells the server it did; a new time is announced again.
func TestCutoverAnnounced(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	var imp api.ImportResponse
	if err := r.stack.Admin.Upload(ctx, "POST", "/api/v1/projects/acme/items/import", "text/csv", strings.NewReader("source_email,target_email\nann@contoso.com,ann@fabrikam.com\n"), &imp); err != nil {
		t.Fatal(err)
	}
	var page struct {
		Items []model.Item `json:"items"`
	}
	if err := r.stack.Admin.Do(ctx, "GET", "/api/v1/projects/acme/items", nil, &page); err != nil || len(page.Items) != 1 {
		t.Fatalf("items: %v %v", page, err)
	}
	dir := t.TempDir()
	var told []string
	runN := func(n int) {
		t.Helper()
		reports(t, &agent.Agent{Config: r.cfg, Dir: dir, Announce: func(text string) { told = append(told, text) }}, n)
	}
	for i, at := range []time.Time{time.Date(2031, 3, 7, 21, 30, 0, 0, time.UTC), time.Date(2031, 3, 8, 6, 0, 0, 0, time.UTC)} {
		if err := r.stack.Admin.Do(ctx, "PUT", "/api/v1/items/"+page.Items[0].ID+"/cutover", map[string]any{"at": at}, nil); err != nil {
			t.Fatal(err)
		}
		runN(2)
		want := "Your workstation will be switched over to your new account on " + at.Local().Format("Monday 2 January 2006 at 15:04 (MST)") + "."
		if len(told) != i+1 || told[i] != want {
			t.Fatalf("announcements after cutover %d: %q, want the last to be %q", i+1, told, want)
		}
	}
	ds := r.devices(t)
	var logs []model.DeviceLog
	if err := r.stack.Admin.Do(ctx, "GET", "/api/v1/devices/"+ds[0].ID+"/logs", nil, &logs); err != nil || len(logs) != 2 || !strings.HasPrefix(logs[0].Line, "cutover scheduled for ") {
		t.Fatalf("logs: %v %v", logs, err)
	}
}

// reports runs an agent, reporting as laptop without sleeping, until it has made n reports.
func reports(t *testing.T, a *agent.Agent, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a.Facts, a.Poll, a.Backoff, a.MaxBackoff = laptop, time.Minute, time.Second, time.Second
	a.Sleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	a.OnReport = func(k int) {
		if k >= n {
			cancel()
		}
	}
	if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
