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

// UserEmail finds the user's work address where Microsoft's clients record it: OneDrive for
// Business's accounts, then Office's signed-in identities. It is empty when neither has one.
func UserEmail(h *Host) string {
	accounts, _ := h.Reg.SubKeys(oneDriveAccounts)
	for _, a := range accounts {
		if strings.HasPrefix(strings.ToLower(a), "business") {
			if v, _, _ := winreg.Get(h.Reg, oneDriveAccounts+`\`+a, "UserEmail"); strings.Contains(v.Text(), "@") {
				return v.Text()
			}
		}
	}
	ids := `HKCU\Software\Microsoft\Office\16.0\Common\Identity\Identities`
	subs, _ := h.Reg.SubKeys(ids)
	for _, s := range subs {
		if v, _, _ := winreg.Get(h.Reg, ids+`\`+s, "EmailAddress"); strings.Contains(v.Text(), "@") {
			return v.Text()
		}
	}
	return ""
}
