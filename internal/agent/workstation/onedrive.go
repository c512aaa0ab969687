package workstation

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-migrate/ferry/internal/agent"
	"github.com/ferry-migrate/ferry/internal/agent/winreg"
)

// oneDrive unlinks the source tenant's OneDrive for Business accounts, clears the sign-in caches
// (OneAuth, IdentityCache) and sets the machine policies that sign OneDrive in to the target
// tenant silently and move the known folders there (SilentAccountConfig, KFMSilentOptIn). The
// files already synced stay where they are; OneDrive syncs the target's into a new folder.
type oneDrive struct{ base }

const (
	oneDriveAccounts = `HKCU\Software\Microsoft\OneDrive\Accounts`
	oneDrivePolicies = `HKLM\SOFTWARE\Policies\Microsoft\OneDrive`
	syncProviders    = `HKCU\Software\SyncEngines\Providers\OneDrive`
)

func (o oneDrive) Run(ctx context.Context, job agent.Job) (string, error) {
	h, t := o.h, job.Target
	if t.TargetTenantID == "" {
		return "", errors.New("the project names no target tenant id: set target_tenant_id in the agent settings, or give the target endpoint its tenant id")
	}
	exe := o.exe()
	accounts, err := h.Reg.SubKeys(oneDriveAccounts)
	if errors.Is(err, winreg.ErrNotExist) && exe == "" {
		return "", fmt.Errorf("%w: OneDrive is not installed", agent.ErrSkip)
	} else if err != nil && !errors.Is(err, winreg.ErrNotExist) {
		return "", err
	}
	if running, err := h.Procs.Running("OneDrive.exe"); err != nil {
		return "", err
	} else if running {
		if err := h.Procs.Kill("OneDrive.exe"); err != nil {
			return "", fmt.Errorf("stopping OneDrive: %w", err)
		}
	}
	j, err := h.journal(job.Backup)
	if err != nil {
		return "", err
	}
	var unlinked, kept []string
	for _, a := range accounts {
		if !strings.HasPrefix(strings.ToLower(a), "business") {
			continue // Personal: the user's own Microsoft account
		}
		key := oneDriveAccounts + `\` + a
		vals, err := h.Reg.Values(key)
		if err != nil {
			return "", err
		}
		tenant := strings.ToLower(vals["ConfiguredTenantId"].Text())
		// Another tenant's account (a partner's, say) stays, and so does the target's.
		if tenant == strings.ToLower(t.TargetTenantID) || t.SourceTenantID != "" && tenant != "" && tenant != strings.ToLower(t.SourceTenantID) {
			kept = append(kept, a)
			continue
		}
		if err := o.unlink(j, a, vals["UserFolder"].Text()); err != nil {
			return "", fmt.Errorf("unlinking %s: %w", a, err)
		}
		unlinked = append(unlinked, fmt.Sprintf("%s (%s)", a, vals["UserEmail"].Text()))
	}
	var cleared []string
	for _, c := range []string{"OneAuth", "IdentityCache"} {
		if ok, err := j.moveAside(filepath.Join(h.LocalAppData, "Microsoft", c)); err != nil {
			return "", fmt.Errorf("clearing %s: %w", c, err)
		} else if ok {
			cleared = append(cleared, c)
		}
	}
	for name, v := range map[string]winreg.Value{"SilentAccountConfig": winreg.Num(1), "KFMSilentOptIn": winreg.Str(t.TargetTenantID)} {
		if _, err := j.setValue(oneDrivePolicies, name, v); err != nil {
			return "", fmt.Errorf("setting the policy %s\\%s (the agent needs to run as a service, or as an administrator): %w", oneDrivePolicies, name, err)
		}
	}
	detail := "unlinked: " + list(unlinked)
	if len(kept) > 0 {
		detail += "; kept: " + strings.Join(kept, ", ")
	}
	detail += "; cleared: " + list(cleared) + "; SilentAccountConfig and KFMSilentOptIn set to " + t.TargetTenantID
	if exe == "" {
		return detail + "; OneDrive.exe not found, it signs in at its next start", nil
	}
	if err := h.Procs.StartAsUser(exe, "/background"); err != nil {
		return "", fmt.Errorf("restarting OneDrive: %w", err)
	}
	return detail + "; OneDrive restarted", nil
}

// unlink removes a Business account: its key, its sync-engine entries and its settings folder.
func (o oneDrive) unlink(j *journal, account, folder string) error {
	h := o.h
	if err := j.deleteKey(oneDriveAccounts + `\` + account); err != nil {
		return err
	}
	providers, err := h.Reg.SubKeys(syncProviders)
	if err != nil && !errors.Is(err, winreg.ErrNotExist) {
		return err
	}
	for _, p := range providers {
		mount, _, err := winreg.Get(h.Reg, syncProviders+`\`+p, "MountPoint")
		if err != nil {
			return err
		}
		if m := mount.Text(); folder != "" && (strings.EqualFold(m, folder) || strings.HasPrefix(strings.ToLower(m), strings.ToLower(folder)+`\`)) {
			if err := j.deleteKey(syncProviders + `\` + p); err != nil {
				return err
			}
		}
	}
	_, err = j.moveAside(filepath.Join(h.LocalAppData, "Microsoft", "OneDrive", "settings", account))
	return err
}

// exe finds OneDrive: per user, or per machine.
func (o oneDrive) exe() string {
	for _, p := range []string{filepath.Join(o.h.LocalAppData, "Microsoft", "OneDrive", "OneDrive.exe"), filepath.Join(o.h.ProgramFiles, "Microsoft OneDrive", "OneDrive.exe")} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
