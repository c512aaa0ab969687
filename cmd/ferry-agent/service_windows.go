//go:build windows

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// serviceName is the agent's Windows service.
const serviceName = "FerryAgent"

// isService tells whether Windows' service control manager started this process.
func isService() bool {
	ok, _ := svc.IsWindowsService()
	return ok
}

// runService runs the agent under the service control manager until it says stop.
func runService(run func(ctx context.Context) error) error {
	return svc.Run(serviceName, handler{run})
}

type handler struct {
	run func(ctx context.Context) error
}

func (h handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	status <- svc.Status{State: svc.StartPending}
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case err := <-done:
			if err != nil && ctx.Err() == nil {
				if l, lerr := eventlog.Open(serviceName); lerr == nil {
					l.Error(1, err.Error())
					l.Close()
				}
				return true, 1
			}
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending}
				cancel()
				select {
				case <-done:
				case <-time.After(20 * time.Second):
				}
				return false, 0
			}
		}
	}
}

// install registers the agent as an automatic service running as LocalSystem, which restarts
// after a failure; the agent.json beside the executable configures it.
func install(exe string, args []string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connecting to the service manager (run as an administrator): %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(serviceName); err == nil {
		s.Close()
		return fmt.Errorf("the service %s is installed already; run ferry-agent uninstall first", serviceName)
	}
	s, err := m.CreateService(serviceName, exe, mgr.Config{
		DisplayName: "Ferry workstation agent",
		Description: "Switches this workstation's Outlook, OneDrive, Teams and Office over to the new Microsoft 365 tenant once its user's mailbox has moved.",
		StartType:   mgr.StartAutomatic,
	}, append([]string{"service"}, args...)...)
	if err != nil {
		return err
	}
	defer s.Close()
	// Restart after a crash, and after an exit with an error, which is how a self-updated service
	// hands over to its new build.
	s.SetRecoveryActions([]mgr.RecoveryAction{{Type: mgr.ServiceRestart, Delay: 10 * time.Second}}, 86400)
	s.SetRecoveryActionsOnNonCrashFailures(true)
	eventlog.InstallAsEventCreate(serviceName, eventlog.Error|eventlog.Warning|eventlog.Info)
	return s.Start()
}

func uninstall() error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connecting to the service manager (run as an administrator): %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName)
	if err != nil {
		return fmt.Errorf("the service %s is not installed", serviceName)
	}
	defer s.Close()
	s.Control(svc.Stop)
	eventlog.Remove(serviceName)
	return s.Delete()
}

// serviceDataDir is where the service keeps its state: ProgramData, not a user's profile.
func serviceDataDir() string {
	pd := os.Getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "FerryAgent")
}
