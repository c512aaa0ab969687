// Package workstation holds the agent's reconfiguration tasks: Outlook, OneDrive, Teams, Office
// activation and the Entra registration. They touch the workstation only through a Host (its
// registry, the user's folders, its processes and commands), so the same code runs on Windows
// and, against a registry in memory and a temp dir, in the tests on Linux. Every change goes
// through a journal in the task's backup directory, from which Rollback puts the workstation back.
package workstation

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/agent"
	"github.com/ferry-migrate/ferry/internal/agent/winreg"
	"github.com/ferry-migrate/ferry/internal/model"
)

// Host is the workstation the tasks change.
type Host struct {
	Reg winreg.Registry
	// The user's folders, as Windows names them: %APPDATA%, %LOCALAPPDATA% and %ProgramFiles%.
	AppData, LocalAppData, ProgramFiles string
	Procs                               Processes
	// Run runs a system command (dsregcmd) and returns what it printed.
	Run func(ctx context.Context, name string, args ...string) (string, error)
	// Notify shows the user a message without waiting for an answer; nil shows nothing.
	Notify func(title, text string)
	// Poll is how often a task looks whether an application was closed (default 2 s).
	Poll time.Duration
}

// Processes finds, ends and starts the user's applications. Images are executable names, such as
// "OUTLOOK.EXE", compared without regard to case.
type Processes interface {
	Running(image string) (bool, error)
	Kill(image string) error
	// StartAsUser starts a program in the signed-in user's session, not the agent's.
	StartAsUser(path string, args ...string) error
}

// Tasks are the agent's tasks for a host, by name.
func Tasks(h *Host) map[string]agent.Task {
	return map[string]agent.Task{
		"outlook":  outlook{base{h}},
		"onedrive": oneDrive{base{h}},
		"teams":    teams{base{h}},
		"office":   office{base{h}},
		"entra":    entra{base{h}},
	}
}

// base is what every task shares: its host, and the rollback from its journal.
type base struct{ h *Host }

func (b base) Rollback(ctx context.Context, backup string) (string, error) {
	return b.h.Rollback(ctx, backup)
}

// closeApps asks the user to close the running applications among images, waits up to the
// project's time for it, and then ends them.
func (h *Host) closeApps(ctx context.Context, t model.AgentTarget, label string, images ...string) (string, error) {
	running := func() ([]string, error) {
		var out []string
		for _, im := range images {
			ok, err := h.Procs.Running(im)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, im)
			}
		}
		return out, nil
	}
	open, err := running()
	if err != nil || len(open) == 0 {
		return "", err
	}
	after := time.Duration(t.CloseAppsAfter) * time.Second
	if after <= 0 {
		after = model.DefaultCloseAppsAfter * time.Second
	}
	if h.Notify != nil {
		h.Notify("Your applications are moving to the new tenant", fmt.Sprintf(
			"Please save your work and close %s. It will be closed for you in %s.", label, after.Round(time.Second)))
	}
	poll := h.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	deadline := time.Now().Add(after)
	for len(open) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(poll):
		}
		if open, err = running(); err != nil {
			return "", err
		}
	}
	if len(open) == 0 {
		return label + " closed by the user; ", nil
	}
	for _, im := range open {
		if err := h.Procs.Kill(im); err != nil {
			return "", fmt.Errorf("closing %s: %w", im, err)
		}
	}
	return fmt.Sprintf("%s closed by the agent after %s (%s); ", label, after.Round(time.Second), strings.Join(open, ", ")), nil
}
