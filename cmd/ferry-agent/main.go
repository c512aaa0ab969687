// Command ferry-agent is the workstation agent: it enrols with the Ferry server named in
// agent.json and reports on a schedule. This build runs in user mode on any platform; the Windows
// service and the reconfiguration tasks come on top of the same core.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/internal/agent"
	"github.com/ferry-migrate/ferry/internal/model"
)

func main() {
	exe, _ := os.Executable()
	config := flag.String("config", filepath.Join(filepath.Dir(exe), "agent.json"), "the agent.json of the agent package")
	data := flag.String("data", defaultDataDir(), "where the agent keeps its state")
	email := flag.String("user-email", os.Getenv("FERRY_USER_EMAIL"), "the signed-in user's address, which matches the user's item (default: whoami /upn on Windows)")
	flag.Parse()
	if *email == "" {
		*email = upn()
	}
	cfg, err := agent.LoadConfig(*config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry-agent:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &agent.Agent{Config: cfg, Dir: *data, Facts: func() model.DeviceFacts {
		f := facts()
		f.UserEmail = *email
		return f
	}, RunScript: runScript, Replace: replace}
	err = a.Run(ctx)
	if errors.Is(err, agent.ErrUpdated) {
		// Start the new build with the same arguments; this one ends.
		cmd := exec.Command(exe, os.Args[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "ferry-agent: updated, but the new build did not start:", err)
			os.Exit(1)
		}
		return
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "ferry-agent:", err)
		os.Exit(1)
	}
}

func defaultDataDir() string {
	if dir, err := os.UserConfigDir(); err == nil {
		return filepath.Join(dir, "ferry-agent")
	}
	return "ferry-agent-data"
}

// replace puts a verified new build where this one is. Windows cannot overwrite a running
// executable but can rename it, so the old one steps aside first (and is removed next time).
func replace(newBinary string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	old := exe + ".old"
	os.Remove(old)
	if runtime.GOOS == "windows" {
		if err := os.Rename(exe, old); err != nil {
			return err
		}
	}
	if err := os.Rename(newBinary, exe); err != nil {
		if runtime.GOOS == "windows" {
			os.Rename(old, exe) // put the running build back
		}
		return err
	}
	return nil
}

// runScript runs a project's pre- or post-script: PowerShell on Windows, sh elsewhere, for at most
// ten minutes, and returns what it printed.
func runScript(ctx context.Context, script string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(ctx, "powershell.exe", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command", script)
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// upn asks Windows for the signed-in user's principal name (domain- or Entra-joined devices);
// elsewhere, or when Windows does not know it, it is empty.
func upn() string {
	if runtime.GOOS != "windows" {
		return ""
	}
	out, err := exec.Command("whoami", "/upn").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// facts reports what this build knows of the workstation; the Windows tasks add product versions.
func facts() model.DeviceFacts {
	host, _ := os.Hostname()
	user := os.Getenv("USERNAME")
	if user == "" {
		user = os.Getenv("USER")
	}
	return model.DeviceFacts{Hostname: host, OSVersion: runtime.GOOS + "/" + runtime.GOARCH, UserName: user}
}
