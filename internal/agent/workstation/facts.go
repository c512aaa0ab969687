package workstation

import (
	"os"
	"strings"

	"github.com/ferry-migrate/ferry/internal/agent/winreg"
)

// Software reports the versions of Outlook, OneDrive, Teams and Office the user has, read from
// where their installers record them; what is not installed is left out.
func Software(h *Host) map[string]string {
	out := map[string]string{}
	get := func(key, name string) string {
		v, _, _ := winreg.Get(h.Reg, key, name)
		return v.Text()
	}
	c2r := get(`HKLM\SOFTWARE\Microsoft\Office\ClickToRun\Configuration`, "VersionToReport")
	if c2r != "" {
		out["office"] = c2r
	}
	for _, v := range outlookVersions {
		if ok, _ := winreg.Exists(h.Reg, outlookKey(v)); ok {
			out["outlook"] = v
			if strings.HasPrefix(c2r, strings.TrimSuffix(v, ".0")+".") {
				out["outlook"] = c2r
			}
			break
		}
	}
	if v := get(`HKCU\Software\Microsoft\OneDrive`, "Version"); v != "" {
		out["onedrive"] = v
	}
	if v := get(`HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Teams`, "DisplayVersion"); v != "" {
		out["teams"] = v + " (classic)"
	}
	// New Teams is an MSIX package: its version is in the package's full name.
	pkgs, _ := h.Reg.SubKeys(`HKCU\Software\Classes\Local Settings\Software\Microsoft\Windows\CurrentVersion\AppModel\Repository\Packages`)
	for _, p := range pkgs {
		if rest, ok := strings.CutPrefix(p, "MSTeams_"); ok {
			out["teams"], _, _ = strings.Cut(rest, "_")
		}
	}
	return out
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
