package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/api/client"
	"github.com/ferry-migrate/ferry/internal/connector/memory"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/secret"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
)

const adminPW = "Cli-Admin-Password-42"

// TestMain lets the test binary act as a ferry server for the crash test: with FERRY_TEST_CHILD set
// it seeds the memory connector and runs `ferry serve`, so the test can kill it with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("FERRY_TEST_EXEC") != "" {
		os.Exit(Execute(context.Background(), os.Args[1:]))
	}
	if dir := os.Getenv("FERRY_TEST_CHILD"); dir != "" {
		seedChild(dir)
		os.Exit(Execute(context.Background(), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// seedChild builds the same source every start (200 mailboxes of 3 messages) and a target that
// lives on disk, so what was written before a crash is still there after it.
func seedChild(dir string) {
	src := memory.NewServer("crash-src", "")
	for i := 0; i < 200; i++ {
		email := fmt.Sprintf("u%03d@old.example", i)
		for m := 0; m < 3; m++ {
			src.Add(email, "INBOX", []byte(fmt.Sprintf("Message-ID: <%d.%s>\r\n\r\nbody %d\r\n", m, email, m)))
		}
	}
	dst, err := memory.OpenDir("crash-dst", "", filepath.Join(dir, "target"))
	if err != nil {
		panic(err)
	}
	dst.SetDelay(15 * time.Millisecond)
}

// run executes one CLI command in-process and returns its exit code and output.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	root := NewRoot()
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	code := ExitOK
	if err != nil {
		fmt.Fprintln(&errb, "Error:", err)
		code = ExitError
		if ee, ok := err.(*exitError); ok {
			code = ee.code
		} else if s := client.StatusOf(err); s == 401 || s == 403 {
			code = ExitAuth
		}
	}
	return code, out.String(), errb.String()
}

// startServer runs Serve in-process on a free port and returns its URL.
func startServer(t *testing.T, data string) string {
	return startServerWith(t, ServeOptions{Data: data})
}

func startServerWith(t *testing.T, o ServeOptions) string {
	t.Helper()
	t.Setenv("FERRY_ADMIN_PASSWORD", adminPW)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("FERRY_SERVER", "")
	t.Setenv("FERRY_TOKEN", "")
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	o.Listen, o.Workers, o.LogLevel, o.Ready = "127.0.0.1:0", 10, "error", func(a string) { addr <- a }
	go func() { done <- Serve(ctx, o, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	scheme := "http://"
	if o.TLSCert != "" {
		scheme = "https://"
	}
	select {
	case a := <-addr:
		return scheme + a
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start in 30s")
	}
	return ""
}

func TestCLIEndToEnd(t *testing.T) {
	src := memory.NewServer("cli-src", "Src-Admin-Pw-1")
	dst := memory.NewServer("cli-dst", "")
	for i := 0; i < 4; i++ {
		src.Add(fmt.Sprintf("u%d@old.example", i), "INBOX", []byte(fmt.Sprintf("Message-ID: <%d@x>\r\n\r\nhello\r\n", i)))
	}
	url := startServer(t, t.TempDir())
	resp, err := http.Get(url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}

	if code, _, errs := run(t, "wrong-password\n", "login", "--server", url, "--user", "admin", "--password-stdin"); code != ExitAuth {
		t.Fatalf("login with a wrong password: exit %d (%s), want %d", code, errs, ExitAuth)
	}
	if code, out, errs := run(t, adminPW+"\n", "login", "--server", url, "--user", "admin", "--password-stdin"); code != 0 || !strings.Contains(out, "Signed in") {
		t.Fatalf("login: exit %d: %s %s", code, out, errs)
	}
	saved, err := os.Stat(loginPath())
	if err != nil || saved.Mode().Perm() != 0o600 {
		t.Fatalf("saved login %v mode %v, want 0600", err, saved)
	}
	steps := [][]string{
		{"Src-Admin-Pw-1\n", "endpoint", "add", "old", "--kind", "memory", "--host", "cli-src", "--admin-password-stdin"},
		{"", "endpoint", "add", "new", "--kind", "memory", "--host", "cli-dst"},
		{"", "endpoint", "verify", "old"},
		{"", "project", "create", "acme", "--workload", "mailbox", "--source", "old", "--target", "new", "--max-concurrent", "2"},
	}
	for _, s := range steps {
		if code, out, errs := run(t, s[0], s[1:]...); code != 0 {
			t.Fatalf("%v: exit %d: %s %s", s[1:], code, out, errs)
		}
	}
	csv := filepath.Join(t.TempDir(), "items.csv")
	os.WriteFile(csv, []byte("source_email,target_email\nu0@old.example,u0@new.example\nbad,u1@new.example\nu2@old.example\n"), 0o600)
	code, _, errs := run(t, "", "items", "import", "acme", csv)
	if code != ExitIncomplete || !strings.Contains(errs, "items.csv:3: bad source_email") || !strings.Contains(errs, "items.csv:4:") {
		t.Fatalf("bad CSV: exit %d, stderr %q", code, errs)
	}
	var b strings.Builder
	b.WriteString("source_email,target_email\n")
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&b, "u%d@old.example,u%d@new.example\n", i, i)
	}
	os.WriteFile(csv, []byte(b.String()), 0o600)
	if code, out, errs := run(t, "", "items", "import", "acme", csv); code != 0 || !strings.Contains(out, "4 new items") {
		t.Fatalf("import: exit %d %s %s", code, out, errs)
	}
	if code, out, errs := run(t, "", "migrate", "start", "acme", "--pass", "full", "--wait"); code != 0 || !strings.Contains(out, "4/4 done: 4 completed") {
		t.Fatalf("migrate --wait: exit %d\n%s\n%s", code, out, errs)
	}
	if dst.Count("u3@new.example", "INBOX") != 1 {
		t.Fatalf("target u3 INBOX holds %d messages, want 1", dst.Count("u3@new.example", "INBOX"))
	}
	code, out, _ := run(t, "", "items", "list", "acme", "-o", "json")
	var items []model.Item
	if code != 0 || json.Unmarshal([]byte(out), &items) != nil || len(items) != 4 || items[0].Status != model.StatusCompleted || items[0].Stats.Objects != 1 {
		t.Fatalf("items list -o json: exit %d, %s", code, out)
	}
	code, out, _ = run(t, "", "stats", "acme")
	if code != 0 || !strings.Contains(out, "TOTAL") || !strings.Contains(out, "4 items") {
		t.Fatalf("stats: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "", "endpoint", "list")
	if code != 0 || !strings.Contains(out, "old") || !strings.Contains(out, "cli-dst") || strings.Contains(out, "Src-Admin-Pw-1") || !strings.Contains(out, "set") {
		t.Fatalf("endpoint list: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "", "endpoint", "show", "old", "-o", "json")
	if code != 0 || strings.Contains(out, "Src-Admin-Pw-1") || !strings.Contains(out, `"has_credentials": true`) {
		t.Fatalf("endpoint show: exit %d\n%s", code, out)
	}
	var projects []api.ProjectView
	code, out, _ = run(t, "", "project", "list", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &projects) != nil || len(projects) != 1 || projects[0].Counts[model.StatusCompleted] != 4 {
		t.Fatalf("project list: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, "", "migrate", "stop", "acme"); code != 0 || !strings.Contains(out, "Stopping 0 items") {
		t.Fatalf("migrate stop: exit %d %s", code, out)
	}
	if code, out, _ := run(t, "", "completion", "bash"); code != 0 || !strings.Contains(out, "__start_ferry") {
		t.Fatalf("completion: exit %d, %d bytes", code, len(out))
	}
	if code, _, errs := run(t, "", "migrate", "start", "acme", "--pass", "sideways"); code == 0 || !strings.Contains(errs, `unknown pass "sideways"`) {
		t.Fatalf("bad pass type: exit %d %s", code, errs)
	}
	// A Reader can look but not start.
	if code, out, errs := run(t, "Reader-Password-99\n", "user", "add", "rita", "--role", "Reader", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %d %s %s", code, out, errs)
	}
	reader := client.New(url, "")
	if err := reader.Login(context.Background(), "rita", "Reader-Password-99"); err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	if err := reader.Do(context.Background(), "POST", "/api/v1/tokens", map[string]string{"name": "r"}, &tok); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, "", "--token", tok.Token, "migrate", "start", "acme", "--pass", "full"); code != ExitAuth || !strings.Contains(errs, "403") {
		t.Fatalf("reader migrate start: exit %d %s", code, errs)
	}
	if code, out, _ := run(t, "", "--token", tok.Token, "project", "show", "acme"); code != 0 || !strings.Contains(out, "acme") {
		t.Fatalf("reader project show: exit %d %s", code, out)
	}
}

// TestKillMidPassAndRestart kills a real server process with SIGKILL in the middle of a pass over
// 200 items (max 5 at once) and checks that a restart reaches the same end state: every item
// Completed and every message at the target exactly once.
func TestKillMidPassAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	startChild := func() (*exec.Cmd, string) {
		cmd := exec.Command(os.Args[0], "serve", "--data", data, "--listen", "127.0.0.1:0", "--log-level", "error")
		cmd.Env = append(os.Environ(), "FERRY_TEST_CHILD="+dir, "FERRY_ADMIN_PASSWORD="+adminPW)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, waitAddr(t, filepath.Join(data, "serve.addr"))
	}
	cmd, url := startChild()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	c := client.New(url, "")
	if err := c.Login(context.Background(), "admin", adminPW); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	startCrashPass(t, c)

	waitMidPass(t, c)
	must(cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	os.Remove(filepath.Join(data, "serve.addr"))

	cmd, url = startChild()
	c = client.New(url, "")
	must(c.Login(ctx, "admin", adminPW))
	waitCrashPassDone(t, c, "after restart the pass did not finish")
	// Every message is at the target exactly once.
	for i := 0; i < 200; i++ {
		files, _ := filepath.Glob(filepath.Join(dir, "target", fmt.Sprintf("u%03d@new.example", i), "INBOX", "*.eml"))
		seen := map[string]bool{}
		for _, f := range files {
			data, _ := os.ReadFile(f)
			line, _ := bufio.NewReader(bytes.NewReader(data)).ReadString('\n')
			if seen[line] {
				t.Fatalf("u%03d: duplicate message %s", i, strings.TrimSpace(line))
			}
			seen[line] = true
		}
		if len(files) != 3 {
			t.Fatalf("u%03d: %d messages at the target, want 3", i, len(files))
		}
	}
}

func waitAddr(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && len(data) > 0 && bytes.HasSuffix(data, []byte("\n")) {
			return "http://" + strings.TrimSpace(string(data))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server did not write %s", path)
	return ""
}

func TestRotateKeyKeepsCredentialsReadable(t *testing.T) {
	memory.NewServer("rot-src", "Rotating-Pw-5")
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	t.Setenv("FERRY_ADMIN_PASSWORD", adminPW)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	serve := func() (string, chan error) {
		addr, done := make(chan string, 1), make(chan error, 1)
		go func() {
			done <- Serve(ctx, ServeOptions{Data: data, Listen: "127.0.0.1:0", LogLevel: "error", Ready: func(a string) { addr <- a }}, io.Discard)
		}()
		return "http://" + <-addr, done
	}
	url, done := serve()
	if code, _, errs := run(t, adminPW+"\n", "login", "--server", url, "--user", "admin", "--password-stdin"); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := run(t, "Rotating-Pw-5\n", "endpoint", "add", "old", "--kind", "memory", "--host", "rot-src", "--admin-password-stdin"); code != 0 {
		t.Fatal(errs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(data, "master.key"))
	code, out, errs := run(t, "", "admin", "rotate-key", "--data", data)
	if code != 0 || !strings.Contains(out, "Re-encrypted 1 credentials") {
		t.Fatalf("rotate-key: exit %d %s %s", code, out, errs)
	}
	after, _ := os.ReadFile(filepath.Join(data, "master.key"))
	if bytes.Equal(before, after) || len(after) == 0 {
		t.Fatal("master.key unchanged after rotation")
	}
	if _, err := os.Stat(filepath.Join(data, "master.key.new")); !os.IsNotExist(err) {
		t.Fatalf("master.key.new left behind: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	url, done = serve()
	defer func() { cancel(); <-done }()
	if code, _, errs := run(t, adminPW+"\n", "login", "--server", url, "--user", "admin", "--password-stdin"); code != 0 {
		t.Fatal(errs)
	}
	if code, out, errs := run(t, "", "endpoint", "verify", "old"); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("verify after rotation (credentials must still open): exit %d %s %s", code, out, errs)
	}
}

func TestWorkerNeedsPostgresAndStartsOnIt(t *testing.T) {
	if code, _, errs := run(t, "", "worker"); code != ExitUsage || !strings.Contains(errs, "needs --database postgres://") {
		t.Fatalf("worker without a database: exit %d %s", code, errs)
	}
	db := storetest.Postgres(t)
	t.Setenv("FERRY_MASTER_KEY", secret.EncodeKey(db.Key))
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- Work(ctx, ServeOptions{Data: t.TempDir(), Database: db.URL, Workers: 2, LogLevel: "error", Ready: func(string) { ready <- "" }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("worker did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not start in 30 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("worker shutdown: %v", err)
	}
}

// On PostgreSQL, a node killed mid-pass leaves jobs River had fetched and items it had claimed.
// Another node gives them back to the queue once the dead node's leases have run out, and every
// item finishes, each message at the target once.
func TestKilledNodesItemsRunElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	db := storetest.Postgres(t)
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	start := func(name string) (*exec.Cmd, string) {
		data := filepath.Join(dir, name)
		cmd := exec.Command(os.Args[0], "serve", "--data", data, "--database", db.URL, "--listen", "127.0.0.1:0", "--lease", "2s", "--log-level", "error")
		cmd.Env = append(os.Environ(), "FERRY_TEST_CHILD="+dir, "FERRY_ADMIN_PASSWORD="+adminPW, "FERRY_MASTER_KEY="+base64.StdEncoding.EncodeToString(key))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, waitAddr(t, filepath.Join(data, "serve.addr"))
	}
	a, url := start("a")
	c := client.New(url, "")
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Login(ctx, "admin", adminPW))
	startCrashPass(t, c)
	waitMidPass(t, c)
	must(a.Process.Signal(syscall.SIGKILL))
	a.Wait()

	_, url = start("b")
	c = client.New(url, "")
	must(c.Login(ctx, "admin", adminPW))
	waitCrashPassDone(t, c, "the dead node's items did not finish on the other")
	for i := 0; i < 200; i++ {
		files, _ := filepath.Glob(filepath.Join(dir, "target", fmt.Sprintf("u%03d@new.example", i), "INBOX", "*.eml"))
		if len(files) != 3 {
			t.Fatalf("u%03d: %d messages at the target, want 3", i, len(files))
		}
	}
}

// startCrashPass makes the crash project on the seeded memory servers (200 mailboxes of 3
// messages, at most 5 at once) and starts a full pass.
func startCrashPass(t *testing.T, c *client.Client) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": "src", "kind": "memory", "settings": map[string]any{"host": "crash-src"}}, nil))
	must(c.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": "dst", "kind": "memory", "settings": map[string]any{"host": "crash-dst"}}, nil))
	must(c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"name": "crash", "workload": "mailbox", "source": "src", "target": "dst", "options": map[string]any{"max_concurrent": 5}}, nil))
	var b strings.Builder
	b.WriteString("source_email,target_email\n")
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "u%03d@old.example,u%03d@new.example\n", i, i)
	}
	var imp api.ImportResponse
	must(c.Upload(ctx, "POST", "/api/v1/projects/crash/items/import", "text/csv", strings.NewReader(b.String()), &imp))
	must(c.Do(ctx, "POST", "/api/v1/projects/crash/passes", map[string]string{"type": "full"}, nil))
}

// waitMidPass waits until a fair share of the crash pass is done and some items are running: the
// moment to kill a node.
func waitMidPass(t *testing.T, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var v api.ProjectView
		if err := c.Do(context.Background(), "GET", "/api/v1/projects/crash", nil, &v); err != nil {
			t.Fatal(err)
		}
		if v.Counts[model.StatusCompleted] >= 30 && v.Counts[model.StatusRunning] > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pass did not progress: %v", v.Counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCrashPassDone waits up to two minutes for all 200 items of the crash pass to complete.
func waitCrashPassDone(t *testing.T, c *client.Client, why string) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		var v api.ProjectView
		if err := c.Do(context.Background(), "GET", "/api/v1/projects/crash", nil, &v); err != nil {
			t.Fatal(err)
		}
		if v.Counts[model.StatusCompleted] == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", why, v.Counts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
