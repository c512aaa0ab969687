package workstation

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ferry-migrate/ferry/internal/agent"
	"github.com/ferry-migrate/ferry/internal/agent/winreg"
)

// office clears the Office activation of the source account: the licence files and the
// Licensing and Identity keys. Office then asks the user to sign in, and activates with the
// target tenant's licence.
type office struct{ base }

// officeApps hold the licence files open while they run.
var officeApps = []string{"WINWORD.EXE", "EXCEL.EXE", "POWERPNT.EXE", "OUTLOOK.EXE", "ONENOTE.EXE", "MSACCESS.EXE", "MSPUB.EXE", "VISIO.EXE", "WINPROJ.EXE"}

func (o office) Run(ctx context.Context, job agent.Job) (string, error) {
	h := o.h
	var keys, folders []string
	for _, v := range []string{"16.0", "15.0"} {
		for _, k := range []string{"Licensing", "Identity"} {
			key := `HKCU\Software\Microsoft\Office\` + v + `\Common\` + k
			if ok, err := winreg.Exists(h.Reg, key); err != nil {
				return "", err
			} else if ok {
				keys = append(keys, key)
			}
		}
		folders = append(folders, filepath.Join(h.LocalAppData, "Microsoft", "Office", v, "Licensing"))
	}
	folders = append(folders, filepath.Join(h.LocalAppData, "Microsoft", "Office", "Licenses"))
	var present []string
	for _, f := range folders {
		if exists(f) {
			present = append(present, f)
		}
	}
	if len(keys) == 0 && len(present) == 0 {
		return "", fmt.Errorf("%w: no Office activation for this user", agent.ErrSkip)
	}
	detail, err := h.closeApps(ctx, job.Target, "Office", officeApps...)
	if err != nil {
		return "", err
	}
	j, err := h.journal(job.Backup)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if err := j.deleteKey(k); err != nil {
			return "", err
		}
	}
	for _, f := range present {
		if _, err := j.moveAside(f); err != nil {
			return "", fmt.Errorf("clearing %s: %w", f, err)
		}
	}
	var names []string
	for _, k := range keys {
		names = append(names, strings.TrimPrefix(k, `HKCU\Software\Microsoft\Office\`))
	}
	for _, f := range present {
		rel, _ := filepath.Rel(h.LocalAppData, f)
		names = append(names, rel)
	}
	return detail + "cleared: " + strings.Join(names, ", "), nil
}
