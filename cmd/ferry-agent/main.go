// Command ferry-agent is the workstation agent: it enrols with the Ferry server named in
// agent.json, reports on a schedule, and once the server releases its tasks switches Outlook,
// OneDrive, Teams, Office and the Entra registration over to the target tenant. On Windows it
// runs as a service (ferry-agent install) or in user mode; elsewhere it only reports.
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

const usage = `ferry-agent switches this workstation over to the new Microsoft 365 tenant.

Usage:
  ferry-agent [run] [flags]      enrol and report in user mode, until stopped
  ferry-agent install [flags]    install and start the Windows service (as an administrator)
  ferry-agent uninstall          stop and remove the Windows service
  ferry-agent rollback [TASK…]   undo the tasks (all by default) from their backups
  ferry-agent version

Flags:
`

func main() {
	cmd, args := "run", os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if isService() {
		cmd = "service"
	}
	exe, _ := os.Executable()
	fs := flag.NewFlagSet("ferry-agent", flag.ExitOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	config := fs.String("config", filepath.Join(filepath.Dir(exe), "agent.json"), "the agent.json of the agent package")
	dataDefault := defaultDataDir()
	if cmd == "service" || cmd == "install" {
		dataDefault = serviceDataDir()
	}
	data := fs.String("data", dataDefault, "where the agent keeps its state and backups")
	email := fs.String("user-email", os.Getenv("FERRY_USER_EMAIL"), "the user's address, which matches the user's item (default: whoami /upn, then OneDrive's and Office's accounts)")
	fs.Parse(args)
	switch cmd {
	case "version":
		fmt.Println("ferry-agent", agent.Version, agent.Platform())
		return
	case "install":
		cfg, _ := filepath.Abs(*config)
		dir, _ := filepath.Abs(*data)
		if _, err := agent.LoadConfig(cfg); err != nil {
			fail(2, err)
		}
		if err := install(exe, []string{"--config", cfg, "--data", dir}); err != nil {
			fail(1, err)
		}
		fmt.Println("ferry-agent: the service is installed and started; it keeps its state in", dir)
		return
	case "uninstall":
		if err := uninstall(); err != nil {
			fail(1, err)
		}
		fmt.Println("ferry-agent: the service is removed")
		return
	case "run", "service", "rollback":
	default:
		fs.Usage()
		os.Exit(2)
	}
	cfg, err := agent.LoadConfig(*config)
	if err != nil {
		fail(2, err)
	}
	a := &agent.Agent{Config: cfg, Dir: *data, RunScript: runScript, Replace: replace}
	platform(a, cmd == "service", *email)
	if cmd == "rollback" {
		lines, err := a.Rollback(context.Background(), fs.Args()...)
		for _, l := range lines {
			fmt.Println(l)
		}
		if err != nil {
			fail(1, err)
		}
		return
	}
	if cmd == "service" {
		if err := runService(func(ctx context.Context) error { return runAgent(ctx, a, exe, true) }); err != nil {
			fail(1, err)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runAgent(ctx, a, exe, false); err != nil && ctx.Err() == nil {
		fail(1, err)
	}
}

// runAgent runs the agent until ctx ends. After a self-update a service ends with an error, so
// that the service manager's recovery action starts the new build; in user mode the new build
// is started with the same arguments.
func runAgent(ctx context.Context, a *agent.Agent, exe string, service bool) error {
	err := a.Run(ctx)
	if !errors.Is(err, agent.ErrUpdated) || service {
		return err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("updated, but the new build did not start: %w", err)
	}
	return nil
}

func fail(code int, err error) {
	fmt.Fprintln(os.Stderr, "ferry-agent:", err)
	os.Exit(code)
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

// baseFacts is what every build reports of the workstation; the platform adds to it.
func baseFacts() model.DeviceFacts {
	host, _ := os.Hostname()
	user := os.Getenv("USERNAME")
	if user == "" {
		user = os.Getenv("USER")
	}
	return model.DeviceFacts{Hostname: host, OSVersion: runtime.GOOS + "/" + runtime.GOARCH, UserName: user}
}
