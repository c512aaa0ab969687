//go:build !windows

package main

import (
	"context"
	"errors"

	"github.com/ferry-migrate/ferry/internal/agent"
	"github.com/ferry-migrate/ferry/internal/model"
)

// platform: outside Windows the agent enrols and reports; it has no tasks, so released ones are
// Skipped, and no prompt.
func platform(a *agent.Agent, _ bool, email string) {
	a.Facts = func() model.DeviceFacts {
		f := baseFacts()
		f.UserEmail = email
		return f
	}
}

var errWindowsOnly = errors.New("the agent runs as a service on Windows only")

func isService() bool                                  { return false }
func runService(func(ctx context.Context) error) error { return errWindowsOnly }
func install(string, []string) error                   { return errWindowsOnly }
func uninstall() error                                 { return errWindowsOnly }
func serviceDataDir() string                           { return defaultDataDir() }
