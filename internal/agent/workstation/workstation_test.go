package workstation

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/agent"
	"github.com/ferry-migrate/ferry/internal/agent/winreg"
	"github.com/ferry-migrate/ferry/internal/model"
)

const (
	sourceTenant = "11111111-1111-1111-1111-111111111111"
	targetTenant = "22222222-2222-2222-2222-222222222222"
	otherTenant  = "33333333-3333-3333-3333-333333333333"
)

// fakeProcs is a process table: Kill ends a program, and a program the "user" closes ends after
// a number of looks.
type fakeProcs struct {
	mu      sync.Mutex
	running map[string]int // image -> looks until the user closes it; -1 never
	killed  []string
	started []string
}

func (p *fakeProcs) Running(image string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.running[strings.ToLower(image)]
	if !ok {
		return false, nil
	}
	if n == 0 {
		delete(p.running, strings.ToLower(image))
		return false, nil
	}
	if n > 0 {
		p.running[strings.ToLower(image)] = n - 1
	}
	return true, nil
}

func (p *fakeProcs) Kill(image string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, strings.ToLower(image))
	p.killed = append(p.killed, image)
	return nil
}

func (p *fakeProcs) StartAsUser(path string, args ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started = append(p.started, path+" "+strings.Join(args, " "))
	return nil
}

type rig struct {
	h       *Host
	reg     *winreg.Mem
	procs   *fakeProcs
	home    string
	target  model.AgentTarget
	notices []string
	dsreg   string
	ran     []string
}

// newRig seeds a workstation as a user of the source tenant leaves it: an Outlook 16.0 and a 15.0
// profile with an account, a PST and default signatures; a OneDrive Business1 account of the
// source tenant and a Business2 of another; Teams caches; Office licences; a WorkplaceJoin.
func newRig(t *testing.T) *rig {
	t.Helper()
	home := t.TempDir()
	r := &rig{reg: &winreg.Mem{}, procs: &fakeProcs{running: map[string]int{}}, home: home, dsreg: "| Device State |\n\n             AzureAdJoined : NO\n"}
	r.h = &Host{Reg: r.reg, AppData: filepath.Join(home, "Roaming"), LocalAppData: filepath.Join(home, "Local"), ProgramFiles: filepath.Join(home, "Program Files"),
		Procs: r.procs, Poll: time.Millisecond,
		Notify: func(title, text string) { r.notices = append(r.notices, text) },
		Run: func(ctx context.Context, name string, args ...string) (string, error) {
			r.ran = append(r.ran, name+" "+strings.Join(args, " "))
			return r.dsreg, nil
		}}
	r.target = model.AgentTarget{SourceEmail: "ann@contoso.com", TargetEmail: "ann@fabrikam.com", SourceTenantID: sourceTenant, TargetTenantID: targetTenant,
		OutlookProfile: "ann@fabrikam.com", ReattachPST: true, CloseAppsAfter: 1}
	set := func(key, name string, v winreg.Value) {
		if err := r.reg.SetValue(key, name, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"16.0", "15.0"} {
		base := `HKCU\Software\Microsoft\Office\` + v + `\Outlook`
		set(base, "DefaultProfile", winreg.Str("Outlook"))
		acct := base + `\Profiles\Outlook\9375CFF0413111d3B88A00104B2A6676\00000002`
		set(acct, "Account Name", winreg.Bin(winreg.UTF16("ann@contoso.com")))
		set(acct, "New Signature", winreg.Bin(winreg.UTF16("Ann (ann@contoso.com)")))
		set(acct, "Reply-Forward Signature", winreg.Str("Ann short"))
		set(base+`\Profiles\Outlook\a1b2c3d4e5f60718293a4b5c6d7e8f90`, "001f6700", winreg.Bin(winreg.UTF16(`C:\Users\ann\Documents\Outlook Files\Archive 2019.pst`)))
		set(base+`\Setup`, "First-Run", winreg.Bin([]byte{1, 0, 0, 0}))
	}
	set(`HKCU\Software\Microsoft\OneDrive`, "Version", winreg.Str("24.201.1006.0005"))
	set(`HKCU\Software\Microsoft\OneDrive\Accounts\Business1`, "ConfiguredTenantId", winreg.Str(sourceTenant))
	set(`HKCU\Software\Microsoft\OneDrive\Accounts\Business1`, "UserEmail", winreg.Str("ann@contoso.com"))
	set(`HKCU\Software\Microsoft\OneDrive\Accounts\Business1`, "UserFolder", winreg.Str(`C:\Users\ann\OneDrive - Contoso`))
	set(`HKCU\Software\Microsoft\OneDrive\Accounts\Business2`, "ConfiguredTenantId", winreg.Str(otherTenant))
	set(`HKCU\Software\Microsoft\OneDrive\Accounts\Personal`, "UserEmail", winreg.Str("ann@outlook.com"))
	set(`HKCU\Software\SyncEngines\Providers\OneDrive\a1b2`, "MountPoint", winreg.Str(`C:\Users\ann\OneDrive - Contoso`))
	set(`HKCU\Software\SyncEngines\Providers\OneDrive\c3d4`, "MountPoint", winreg.Str(`C:\Users\ann\OneDrive - Partner`))
	set(`HKCU\Software\Microsoft\Office\16.0\Common\Licensing\LicensingNext`, "o365businessretail", winreg.Num(2))
	set(`HKCU\Software\Microsoft\Office\16.0\Common\Identity`, "ADUserName", winreg.Str("ann@contoso.com"))
	set(`HKLM\SOFTWARE\Microsoft\Office\ClickToRun\Configuration`, "VersionToReport", winreg.Str("16.0.17928.20156"))
	set(`HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Teams`, "DisplayVersion", winreg.Str("1.7.00.13456"))
	set(workplaceJoin+`\JoinInfo\9A1B`, "TenantId", winreg.Str(sourceTenant))
	set(workplaceJoin+`\AADNGC\{5E2C}`, "TenantId", winreg.Str(sourceTenant))
	set(workplaceJoin+`\TenantInfo\`+sourceTenant, "DisplayName", winreg.Str("Contoso"))
	set(workplaceJoin+`\TenantInfo\`+otherTenant, "DisplayName", winreg.Str("Partner"))
	files := map[string]string{
		`Roaming/Microsoft/Signatures/Ann (ann@contoso.com).htm`:                                   "<p>Ann</p>",
		`Roaming/Microsoft/Signatures/Ann (ann@contoso.com)_files/logo.png`:                        "png",
		`Roaming/Microsoft/Signatures/Ann short.txt`:                                               "Ann",
		`Roaming/Microsoft/Teams/desktop-config.json`:                                              `{"currentWebLanguage":"en-GB","upnWindowUserUpn":"ann@contoso.com"}`,
		`Roaming/Microsoft/Teams/Cache/data_0`:                                                     strings.Repeat("x", 4096),
		`Roaming/Microsoft/Teams/IndexedDB/https_teams.microsoft.com_0/000003.log`:                 "db",
		`Roaming/Microsoft/Teams/settings.json`:                                                    "kept",
		`Local/Packages/MSTeams_8wekyb3d8bbwe/LocalCache/Microsoft/MSTeams/EBWebView/x`:            "web",
		`Local/Microsoft/OneAuth/accounts/1`:                                                       "token",
		`Local/Microsoft/IdentityCache/1`:                                                          "id",
		`Local/Microsoft/OneDrive/settings/Business1/global.ini`:                                   "b1",
		`Local/Microsoft/OneDrive/settings/Business2/global.ini`:                                   "b2",
		`Local/Microsoft/OneDrive/OneDrive.exe`:                                                    "MZ",
		`Local/Microsoft/Office/Licenses/5/abc`:                                                    "licence",
		`Local/Microsoft/Office/16.0/Licensing/x`:                                                  "licensing",
		`Local/Packages/Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy/AC/TokenBroker/Accounts/a.tbacct`: "wam",
	}
	for p, body := range files {
		full := filepath.Join(home, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *rig) get(t *testing.T, key, name string) string {
	t.Helper()
	v, ok, err := winreg.Get(r.reg, key, name)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "<none>"
	}
	return v.Text()
}

func (r *rig) has(t *testing.T, key string) bool {
	t.Helper()
	ok, err := winreg.Exists(r.reg, key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// snapshot is the whole workstation: the registry, and every file under the home folder with
// its content.
func (r *rig) snapshot(t *testing.T) (string, map[string]string) {
	t.Helper()
	var b strings.Builder
	for _, root := range []string{"HKCU", "HKLM"} {
		tree, err := winreg.Export(r.reg, root)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(tree)
		b.Write(data)
	}
	files := map[string]string{}
	filepath.WalkDir(r.home, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(r.home, p)
		if rel == "agent" {
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			files[filepath.ToSlash(rel)] = string(data)
		}
		return nil
	})
	return b.String(), files
}

func (r *rig) run(t *testing.T, name string) string {
	t.Helper()
	backup := filepath.Join(r.home, "agent", "backup", name)
	if err := os.MkdirAll(backup, 0o700); err != nil {
		t.Fatal(err)
	}
	detail, err := Tasks(r.h)[name].Run(context.Background(), agent.Job{Backup: backup, Target: r.target})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return detail
}

func (r *rig) rollback(t *testing.T, name string) string {
	t.Helper()
	detail, err := Tasks(r.h)[name].(agent.Undoer).Rollback(context.Background(), filepath.Join(r.home, "agent", "backup", name))
	if err != nil {
		t.Fatalf("rollback %s: %v", name, err)
	}
	return detail
}

// TestTasksAndRollback runs every task on a seeded workstation, checks what each changed, runs
// each again (nothing more changes), and rolls them all back, newest first: the workstation is
// then exactly as it was, registry and files.
func TestTasksAndRollback(t *testing.T) {
	r := newRig(t)
	if got := UserEmail(r.h); got != "ann@contoso.com" {
		t.Errorf("UserEmail = %q, want OneDrive's Business1 address", got)
	}
	regBefore, filesBefore := r.snapshot(t)
	r.procs.running["outlook.exe"] = 2 // the user closes Outlook after two looks
	r.procs.running["teams.exe"] = -1  // Teams never closes: the agent ends it

	d := r.run(t, "outlook")
	for _, v := range []string{"16.0", "15.0"} {
		base := `HKCU\Software\Microsoft\Office\` + v + `\Outlook`
		if got := r.get(t, base, "DefaultProfile"); got != "ann@fabrikam.com" {
			t.Errorf("%s DefaultProfile = %q", v, got)
		}
		if !r.has(t, base+`\Profiles\ann@fabrikam.com`) || r.has(t, base+`\Profiles\Outlook`) {
			t.Errorf("%s: want the new profile and no profile named Outlook", v)
		}
		if got := r.get(t, base+`\Profiles\Outlook (before migration)\9375CFF0413111d3B88A00104B2A6676\00000002`, "Account Name"); got != "ann@contoso.com" {
			t.Errorf("%s: the kept profile's account = %q", v, got)
		}
		if got := r.get(t, `HKCU\Software\Policies\Microsoft\Office\`+v+`\Outlook\AutoDiscover`, "ZeroConfigExchange"); got != "1" {
			t.Errorf("%s ZeroConfigExchange = %s", v, got)
		}
		mail := `HKCU\Software\Microsoft\Office\` + v + `\Common\MailSettings`
		if n, rf := r.get(t, mail, "NewSignature"), r.get(t, mail, "ReplySignature"); n != "Ann (ann@contoso.com)" || rf != "Ann short" {
			t.Errorf("%s default signatures = %q, %q", v, n, rf)
		}
		if r.get(t, base+`\Setup`, "First-Run") != "<none>" {
			t.Errorf("%s: First-Run is still set, so Outlook would not import the PRF", v)
		}
		prf, err := os.ReadFile(r.get(t, base+`\Setup`, "ImportPRF"))
		if err != nil {
			t.Fatalf("%s ImportPRF: %v", v, err)
		}
		for _, want := range []string{"ProfileName=ann@fabrikam.com", "OverwriteProfile=Append", "Service1=Unicode Personal Folders", `PathToPersonalFolders=C:\Users\ann\Documents\Outlook Files\Archive 2019.pst`, "Name=Archive 2019"} {
			if !strings.Contains(string(prf), want) {
				t.Errorf("%s PRF lacks %q:\n%s", v, want, prf)
			}
		}
	}
	sig := filepath.Join(r.h.AppData, "Microsoft", "Signatures")
	if data, err := os.ReadFile(filepath.Join(sig, "Ann (ann@fabrikam.com)_files", "logo.png")); err != nil || string(data) != "png" {
		t.Errorf("signature folder copy: %q %v", data, err)
	}
	if data, err := os.ReadFile(filepath.Join(sig, "Ann (ann@fabrikam.com).htm")); err != nil || string(data) != "<p>Ann</p>" {
		t.Errorf("signature copy: %q %v", data, err)
	}
	if !strings.Contains(d, "Outlook closed by the user") || !strings.Contains(d, "2 signature files copied") || len(r.notices) != 1 {
		t.Errorf("outlook detail %q, notices %q", d, r.notices)
	}

	d = r.run(t, "onedrive")
	if r.has(t, oneDriveAccounts+`\Business1`) || !r.has(t, oneDriveAccounts+`\Business2`) || !r.has(t, oneDriveAccounts+`\Personal`) {
		t.Errorf("want Business1 unlinked, Business2 and Personal kept: %s", d)
	}
	if r.has(t, syncProviders+`\a1b2`) || !r.has(t, syncProviders+`\c3d4`) {
		t.Error("want only Business1's sync-engine entry removed")
	}
	for _, gone := range []string{"Local/Microsoft/OneAuth", "Local/Microsoft/IdentityCache", "Local/Microsoft/OneDrive/settings/Business1"} {
		if exists(filepath.Join(r.home, gone)) {
			t.Errorf("%s is still there", gone)
		}
	}
	if !exists(filepath.Join(r.home, "Local/Microsoft/OneDrive/settings/Business2")) {
		t.Error("Business2's settings were cleared")
	}
	if a, b := r.get(t, oneDrivePolicies, "SilentAccountConfig"), r.get(t, oneDrivePolicies, "KFMSilentOptIn"); a != "1" || b != targetTenant {
		t.Errorf("policies = %s, %s", a, b)
	}
	if len(r.procs.started) != 1 || !strings.HasSuffix(r.procs.started[0], "OneDrive.exe /background") {
		t.Errorf("started %q", r.procs.started)
	}

	d = r.run(t, "teams")
	if exists(filepath.Join(r.h.AppData, "Microsoft", "Teams", "Cache")) || exists(filepath.Join(r.h.AppData, "Microsoft", "Teams", "desktop-config.json")) ||
		exists(filepath.Join(r.h.LocalAppData, "Packages", "MSTeams_8wekyb3d8bbwe", "LocalCache", "Microsoft")) {
		t.Errorf("Teams caches are still there: %s", d)
	}
	if !exists(filepath.Join(r.h.AppData, "Microsoft", "Teams", "settings.json")) {
		t.Error("Teams' settings.json, not a cache, was deleted")
	}
	if !slices.Contains(r.procs.killed, "Teams.exe") || !strings.Contains(d, "Teams closed by the agent") {
		t.Errorf("Teams was not closed by the agent: killed %q, %s", r.procs.killed, d)
	}

	d = r.run(t, "office")
	if r.has(t, `HKCU\Software\Microsoft\Office\16.0\Common\Licensing`) || r.has(t, `HKCU\Software\Microsoft\Office\16.0\Common\Identity`) ||
		exists(filepath.Join(r.h.LocalAppData, "Microsoft", "Office", "Licenses")) || exists(filepath.Join(r.h.LocalAppData, "Microsoft", "Office", "16.0", "Licensing")) {
		t.Errorf("Office activation not cleared: %s", d)
	}

	d = r.run(t, "entra")
	if r.has(t, workplaceJoin+`\JoinInfo\9A1B`) || r.has(t, workplaceJoin+`\AADNGC\{5E2C}`) || r.has(t, workplaceJoin+`\TenantInfo\`+sourceTenant) || !r.has(t, workplaceJoin+`\TenantInfo\`+otherTenant) {
		t.Errorf("WorkplaceJoin: %s", d)
	}
	if !strings.Contains(d, "not Entra-joined") || !slices.Equal(r.ran, []string{"dsregcmd /status"}) {
		t.Errorf("entra: %s, ran %q", d, r.ran)
	}

	// Idempotent: a second run changes nothing.
	regAfter, filesAfter := r.snapshot(t)
	for _, name := range model.AgentTasks {
		backup := filepath.Join(r.home, "agent", "backup", name)
		if _, err := Tasks(r.h)[name].Run(context.Background(), agent.Job{Backup: backup, Target: r.target}); err != nil && !errors.Is(err, agent.ErrSkip) {
			t.Errorf("%s again: %v", name, err)
		}
	}
	if reg, files := r.snapshot(t); reg != regAfter || !maps.Equal(files, filesAfter) {
		t.Error("running the tasks a second time changed the workstation")
	}

	soft := Software(r.h)
	if soft["outlook"] != "16.0.17928.20156" || soft["office"] != "16.0.17928.20156" || soft["onedrive"] != "24.201.1006.0005" || soft["teams"] != "1.7.00.13456 (classic)" {
		t.Errorf("software = %v", soft)
	}

	for i := len(model.AgentTasks) - 1; i >= 0; i-- {
		name := model.AgentTasks[i]
		if d := r.rollback(t, name); !strings.Contains(d, "changes undone") {
			t.Errorf("rollback %s: %s", name, d)
		}
	}
	reg, files := r.snapshot(t)
	if reg != regBefore {
		t.Errorf("after rollback the registry differs:\n got %s\nwant %s", reg, regBefore)
	}
	// The caches are gone for good: Teams rebuilds them. Every other file is back as it was.
	for _, c := range []string{"Roaming/Microsoft/Teams/Cache/data_0", "Roaming/Microsoft/Teams/IndexedDB/https_teams.microsoft.com_0/000003.log", "Local/Packages/MSTeams_8wekyb3d8bbwe/LocalCache/Microsoft/MSTeams/EBWebView/x"} {
		delete(filesBefore, c)
	}
	if !maps.Equal(files, filesBefore) {
		t.Errorf("after rollback the files differ:\n got %v\nwant %v", files, filesBefore)
	}
}

// TestTaskRefusals: a task with nothing to do is Skipped; one missing what it needs says so.
func TestTaskRefusals(t *testing.T) {
	h := &Host{Reg: &winreg.Mem{}, AppData: t.TempDir(), LocalAppData: t.TempDir(), ProgramFiles: t.TempDir(), Procs: &fakeProcs{}}
	job := agent.Job{Backup: t.TempDir(), Target: model.AgentTarget{OutlookProfile: "x", TargetTenantID: targetTenant}}
	for _, name := range []string{"outlook", "onedrive", "teams", "office"} {
		if _, err := Tasks(h)[name].Run(context.Background(), job); !errors.Is(err, agent.ErrSkip) {
			t.Errorf("%s on an empty workstation: %v, want ErrSkip", name, err)
		}
	}
	job.Target.TargetTenantID = ""
	if _, err := Tasks(h)["onedrive"].Run(context.Background(), job); err == nil || !strings.Contains(err.Error(), "set target_tenant_id") {
		t.Errorf("onedrive without a target tenant: %v", err)
	}
	r := newRig(t)
	r.dsreg = "+------+\n| Device State |\n             AzureAdJoined : YES\n          EnterpriseJoined : NO\n                  TenantId : " + sourceTenant + "\n"
	backup := filepath.Join(r.home, "agent", "backup", "entra")
	os.MkdirAll(backup, 0o700)
	_, err := Tasks(r.h)["entra"].Run(context.Background(), agent.Job{Backup: backup, Target: r.target})
	if err == nil || !strings.Contains(err.Error(), "does not allow dsregcmd /leave") {
		t.Errorf("a joined device without entra_leave: %v", err)
	}
	r.target.EntraLeave = true
	d, err := Tasks(r.h)["entra"].Run(context.Background(), agent.Job{Backup: backup, Target: r.target})
	if err != nil || !strings.Contains(d, "left the source tenant") || r.ran[len(r.ran)-1] != "dsregcmd /leave" {
		t.Errorf("entra with entra_leave: %q %v, ran %q", d, err, r.ran)
	}
}
