package cli

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/agentapi"
	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/model"
)

// agentServer starts `ferry serve` on data, signs in, and makes the project acme between two
// test-connector endpoints whose hosts start with prefix.
func agentServer(t *testing.T, data, prefix string) string {
	t.Helper()
	url := startServer(t, data)
	if code, _, errs := run(t, adminPW+"\n", "login", "--server", url, "--user", "admin", "--password-stdin"); code != 0 {
		t.Fatalf("login: %s", errs)
	}
	for _, s := range [][]string{
		{"endpoint", "add", "old", "--kind", "memory", "--host", prefix + "-src"},
		{"endpoint", "add", "new", "--kind", "memory", "--host", prefix + "-dst"},
		{"project", "create", "acme", "--workload", "mailbox", "--source", "old", "--target", "new"},
	} {
		if code, out, errs := run(t, "", s...); code != 0 {
			t.Fatalf("%v: exit %d: %s %s", s, code, out, errs)
		}
	}
	return url
}

// TestAgentCommands creates an enrolment token with the CLI, enrols a device against `ferry
// serve`'s agent protocol, and lists and revokes with the CLI.
func TestAgentCommands(t *testing.T) {
	url := agentServer(t, t.TempDir(), "agent")
	code, out, errs := run(t, "", "agent", "token", "create", "acme", "--name", "wave-1", "-o", "json")
	var tok api.AgentTokenResponse
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || !strings.HasPrefix(tok.Token, "fye_") {
		t.Fatalf("agent token create: exit %d %s %s", code, out, errs)
	}
	body, _ := json.Marshal(agentapi.EnrolRequest{Token: tok.Token, CompanyKey: tok.CompanyKey,
		Device: model.DeviceFacts{Hostname: "DESK-07", OSVersion: "Windows 10 22H2", UserEmail: "bo@old.example", Software: map[string]string{"outlook": "16.0.1"}}})
	resp, err := http.Post(url+"/agent/v1/enrol", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("enrol against ferry serve: %v %v", resp, err)
	}
	var enrolled agentapi.EnrolResponse
	json.NewDecoder(resp.Body).Decode(&enrolled)
	resp.Body.Close()
	code, out, _ = run(t, "", "agent", "devices", "acme")
	if code != 0 || !strings.Contains(out, "DESK-07") || !strings.Contains(out, "bo@old.example") || !strings.Contains(out, "outlook 16.0.1") || !strings.Contains(out, "active") {
		t.Fatalf("agent devices: exit %d\n%s", code, out)
	}
	if code, out, errs := run(t, "", "agent", "settings", "acme", "--tasks", "teams,outlook", "--company", "New Co"); code != 0 || !strings.Contains(out, "outlook, teams") {
		t.Fatalf("agent settings: exit %d %s %s", code, out, errs)
	}
	if code, _, errs := run(t, "", "agent", "settings", "acme", "--tasks", "fax"); code != ExitError || !strings.Contains(errs, `"fax" is not a task`) {
		t.Errorf("an unknown task: exit %d %q", code, errs)
	}
	if code, out, _ := run(t, "", "agent", "action", enrolled.DeviceID, "stop"); code != 0 || !strings.Contains(out, "outlook Waiting, teams Waiting") {
		t.Fatalf("agent action stop: exit %d %s", code, out)
	}
	if code, out, _ := run(t, "", "agent", "devices", "acme"); code != 0 || !strings.Contains(out, "held") || !strings.Contains(out, "outlook Waiting, teams Waiting") {
		t.Fatalf("devices after stop: %s", out)
	}
	if code, _, errs := run(t, "", "agent", "logs", enrolled.DeviceID); code != 0 {
		t.Fatalf("agent logs: exit %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "agent", "cutover", "item", "tomorrow"); code != ExitUsage || !strings.Contains(errs, "want RFC 3339") {
		t.Errorf("a cutover time that is no time: exit %d %q", code, errs)
	}
	if code, out, _ = run(t, "", "agent", "token", "list", "acme"); code != 0 || !strings.Contains(out, "wave-1") || !strings.Contains(out, "active") || strings.Contains(out, tok.Token) {
		t.Fatalf("agent token list: exit %d\n%s", code, out)
	}
	if code, out, _ = run(t, "", "agent", "token", "revoke", "acme", tok.Info.ID); code != 0 {
		t.Fatalf("revoke: exit %d %s", code, out)
	}
	if _, out, _ = run(t, "", "agent", "token", "list", "acme"); !strings.Contains(out, "revoked/expired") {
		t.Fatalf("after revoke: %s", out)
	}
	if code, _, errs = run(t, "", "agent", "devices", "nope"); code != ExitError || !strings.Contains(errs, `project "nope"`) {
		t.Errorf("devices of a missing project: exit %d %q", code, errs)
	}
}

// TestAgentPackage: a package holds the agent binary and an agent.json that enrols; reissuing it
// revokes the previous package's token at once; without a binary the error says how to build one.
func TestAgentPackage(t *testing.T) {
	data := t.TempDir()
	url := agentServer(t, data, "pkg")
	out := filepath.Join(t.TempDir(), "pkg.zip")
	if code, _, errs := run(t, "", "agent", "package", "acme", "-f", out); code != ExitError || !strings.Contains(errs, "GOOS=windows GOARCH=amd64 go build") {
		t.Fatalf("a package without a binary: exit %d %q", code, errs)
	}
	exe := []byte("MZ not really an agent")
	os.MkdirAll(filepath.Join(data, "agents"), 0o700)
	if err := os.WriteFile(filepath.Join(data, "agents", "ferry-agent-windows-amd64.exe"), exe, 0o755); err != nil {
		t.Fatal(err)
	}
	unpack := func() api.AgentPackageConfig {
		t.Helper()
		if code, _, errs := run(t, "", "agent", "package", "acme", "--os", "windows", "-f", out); code != 0 {
			t.Fatalf("agent package: exit %d %s", code, errs)
		}
		zr, err := zip.OpenReader(out)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		var cfg api.AgentPackageConfig
		files := map[string][]byte{}
		for _, f := range zr.File {
			rc, _ := f.Open()
			files[f.Name], _ = io.ReadAll(rc)
			rc.Close()
		}
		if !bytes.Equal(files["ferry-agent.exe"], exe) || json.Unmarshal(files["agent.json"], &cfg) != nil || cfg.Server != url || !strings.HasPrefix(cfg.Token, "fye_") || len(cfg.CompanyKey) != 32 {
			t.Fatalf("package: files %d, agent.json %s", len(files), files["agent.json"])
		}
		return cfg
	}
	enrol := func(cfg api.AgentPackageConfig, host string) int {
		body, _ := json.Marshal(agentapi.EnrolRequest{Token: cfg.Token, CompanyKey: cfg.CompanyKey, Device: model.DeviceFacts{Hostname: host}})
		resp, err := http.Post(cfg.Server+"/agent/v1/enrol", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	first := unpack()
	if code := enrol(first, "PC-1"); code != http.StatusCreated {
		t.Fatalf("enrol with the package: %d", code)
	}
	second := unpack()
	if code := enrol(first, "PC-2"); code != http.StatusUnauthorized {
		t.Errorf("enrol with the reissued package's old token: %d, want 401", code)
	}
	if code := enrol(second, "PC-3"); code != http.StatusCreated {
		t.Errorf("enrol with the new package: %d", code)
	}
}
