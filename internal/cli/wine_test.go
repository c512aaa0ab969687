package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/agent/winreg"
	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/api/client"
	"github.com/ferry-migrate/ferry/internal/connector/memory"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/testenv/wine"
)

const (
	wineSourceTenant = "aaaaaaaa-1111-4111-8111-111111111111"
	wineTargetTenant = "bbbbbbbb-2222-4222-8222-222222222222"
)

// wineSeed is the workstation as a user of the source tenant leaves it: an Outlook 16.0 profile
// with an account, a PST and default signatures; OneDrive with a Business1 account of the source
// tenant; Office's licensing and identity; a WorkplaceJoin with the source tenant.
func wineSeed() string {
	profile := `HKEY_CURRENT_USER\Software\Microsoft\Office\16.0\Outlook\Profiles\Outlook`
	return `REGEDIT4

[HKEY_CURRENT_USER\Software\Microsoft\Office\16.0\Outlook]
"DefaultProfile"="Outlook"

[` + profile + `\9375CFF0413111d3B88A00104B2A6676\00000002]
"Account Name"=` + wine.Hex(winreg.UTF16("ann@contoso.com")) + `
"New Signature"=` + wine.Hex(winreg.UTF16("Ann (ann@contoso.com)")) + `

[` + profile + `\0a0d020000000000c000000000000046]
"001f6700"=` + wine.Hex(winreg.UTF16(`C:\users\Public\Documents\Archive 2019.pst`)) + `

[HKEY_CURRENT_USER\Software\Microsoft\Office\16.0\Outlook\Setup]
"First-Run"=hex:01,00,00,00

[HKEY_CURRENT_USER\Software\Microsoft\Office\16.0\Common\Licensing\LicensingNext]
"o365businessretail"=dword:00000002

[HKEY_CURRENT_USER\Software\Microsoft\Office\16.0\Common\Identity]
"ADUserName"="ann@contoso.com"

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Office\ClickToRun\Configuration]
"VersionToReport"="16.0.17928.20156"

[HKEY_CURRENT_USER\Software\Microsoft\OneDrive]
"Version"="24.201.1006.0005"

[HKEY_CURRENT_USER\Software\Microsoft\OneDrive\Accounts\Business1]
"ConfiguredTenantId"="` + wineSourceTenant + `"
"UserEmail"="ann@contoso.com"
"UserFolder"=` + wine.String(`C:\users\Public\OneDrive - Contoso`) + `

[HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Uninstall\Teams]
"DisplayVersion"="1.7.00.13456"

[HKEY_CURRENT_USER\Software\Microsoft\Windows NT\CurrentVersion\WorkplaceJoin\JoinInfo\9A1B2C]
"TenantId"="` + wineSourceTenant + `"
`
}

// TestAgentUnderWine builds ferry-agent for windows/amd64 and runs it under Wine against a real
// `ferry serve` over pinned TLS: the agent enrols, receives its tasks once the user's mailbox has
// migrated and the cutover time has come, and applies them to a seeded Outlook profile, OneDrive
// account, Teams cache and Office licence. The test reads the prefix's registry and files, the
// task states and logs the server shows, rolls the changes back with `ferry-agent rollback`,
// checks that a revoked device is refused, and then does it all again as a Windows service.
func TestAgentUnderWine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Windows agent and boots Wine")
	}
	pfx := wine.Start(t)
	dir := t.TempDir()
	agents := filepath.Join(dir, "agents")
	os.MkdirAll(agents, 0o755)
	build := exec.Command("go", "build", "-o", filepath.Join(agents, model.AgentBinary("windows", "amd64")), "github.com/ferry-migrate/ferry/cmd/ferry-agent")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building ferry-agent.exe: %v\n%s", err, out)
	}

	// ferry serve over TLS, with the agent binaries; the API client trusts its certificate.
	cert := filepath.Join(dir, "serve.pem")
	if _, err := simCertificate(cert, net.ParseIP("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	base := startServerWith(t, ServeOptions{Data: filepath.Join(dir, "data"), TLSCert: cert, TLSKey: filepath.Join(dir, "serve.key"), AgentDir: agents})
	pemData, _ := os.ReadFile(cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	c := client.New(base, "")
	c.HTTP.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Login(ctx, "admin", adminPW))
	src := memory.NewServer("wine-src", "")
	src.Add("ann@contoso.com", "INBOX", []byte("Subject: hello\r\nMessage-ID: <1@contoso.com>\r\n\r\nbody\r\n"))
	memory.NewServer("wine-dst", "")
	for _, ep := range []string{"wine-src", "wine-dst"} {
		must(c.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": ep, "kind": "memory", "settings": map[string]any{"host": ep}}, nil))
	}
	must(c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"name": "acme", "workload": "mailbox", "source": "wine-src", "target": "wine-dst"}, nil))
	var imp api.ImportResponse
	must(c.Upload(ctx, "POST", "/api/v1/projects/acme/items/import", "text/csv", strings.NewReader("source_email,target_email\nann@contoso.com,ann@fabrikam.com\n"), &imp))
	must(c.Do(ctx, "PUT", "/api/v1/projects/acme/agent/settings", model.AgentSettings{Tasks: model.AgentTasks, CompanyName: "Fabrikam",
		PromptText: "Your PC moves to Fabrikam now.", SourceTenantID: wineSourceTenant, TargetTenantID: wineTargetTenant, ReattachPST: true, CloseAppsAfter: 5}, nil))
	must(c.Do(ctx, "POST", "/api/v1/projects/acme/passes", api.PassRequest{Type: "full"}, nil))
	var item model.Item
	waitFor(t, 60*time.Second, "the item to migrate", func() bool {
		var page struct {
			Items []model.Item `json:"items"`
		}
		must(c.Do(ctx, "GET", "/api/v1/projects/acme/items", nil, &page))
		item = page.Items[0]
		return item.Status == model.StatusCompleted
	})
	must(c.Do(ctx, "PUT", "/api/v1/items/"+item.ID+"/cutover", map[string]any{"at": time.Now().Add(-time.Minute)}, nil))

	// The agent package, unpacked on the workstation's C:.
	install := unpackAgent(t, c, pfx.Path(`C:\Program Files\Ferry`))

	// The workstation: registry and files as the source tenant left them.
	pfx.Import(t, wineSeed())
	home := pfx.Path(`C:\users\` + pfx.User())
	files := map[string]string{
		`AppData/Roaming/Microsoft/Signatures/Ann (ann@contoso.com).htm`:              "<p>Ann</p>",
		`AppData/Roaming/Microsoft/Teams/Cache/data_0`:                                strings.Repeat("x", 1<<16),
		`AppData/Roaming/Microsoft/Teams/desktop-config.json`:                         `{"upnWindowUserUpn":"ann@contoso.com"}`,
		`AppData/Local/Packages/MSTeams_8wekyb3d8bbwe/LocalCache/Microsoft/MSTeams/x`: "web",
		`AppData/Local/Microsoft/OneAuth/accounts/1`:                                  "token",
		`AppData/Local/Microsoft/IdentityCache/1`:                                     "id",
		`AppData/Local/Microsoft/OneDrive/settings/Business1/global.ini`:              "b1",
		`AppData/Local/Microsoft/Office/Licenses/5/abc`:                               "licence",
	}
	for p, body := range files {
		full := filepath.Join(home, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		must(os.WriteFile(full, []byte(body), 0o644))
	}

	// A running "Outlook" that no user closes: a copy of the agent named OUTLOOK.EXE, retrying a
	// server that is not there. The Outlook task asks, waits five seconds, and ends it.
	office := pfx.Path(`C:\Program Files\Microsoft Office\root\Office16`)
	os.MkdirAll(office, 0o755)
	exeData, err := os.ReadFile(filepath.Join(install, "ferry-agent.exe"))
	must(err)
	must(os.WriteFile(filepath.Join(office, "OUTLOOK.EXE"), exeData, 0o755))
	// And a "OneDrive.exe" for the OneDrive task to start again in the user's session: the agent
	// again, which exits at once on the argument it does not know.
	must(os.WriteFile(filepath.Join(home, "AppData", "Local", "Microsoft", "OneDrive", "OneDrive.exe"), exeData, 0o755))
	must(os.WriteFile(filepath.Join(office, "agent.json"), []byte(`{"server_url":"http://127.0.0.1:1","company_key":"x","token":"x"}`), 0o644))
	outlookCtx, stopOutlook := context.WithTimeout(ctx, 3*time.Minute)
	defer stopOutlook()
	fakeOutlook := pfx.Command(outlookCtx, `C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE`, "run", "--data", `C:\fake-outlook`)
	must(fakeOutlook.Start())
	outlookEnded := make(chan error, 1)
	go func() { outlookEnded <- fakeOutlook.Wait() }()

	// The agent enrols and reports; its first report releases the tasks, which it runs.
	runCtx, stop := context.WithTimeout(ctx, 3*time.Minute)
	defer stop()
	var out bytes.Buffer
	agentCmd := pfx.Command(runCtx, `C:\Program Files\Ferry\ferry-agent.exe`, "run", "--user-email", "ann@contoso.com", "--data", `C:\ProgramData\FerryAgent`)
	agentCmd.Stdout, agentCmd.Stderr = &out, &out
	must(agentCmd.Start())
	dev, devices := waitTasksDone(t, c, "the agent to finish its tasks", "")
	if devices != 1 {
		t.Fatalf("%d devices enrolled, want 1", devices)
	}
	agentCmd.Process.Kill()
	agentCmd.Wait()
	pfx.Wait(t)

	for _, task := range dev.Tasks {
		if task.Status != model.TaskComplete {
			t.Errorf("%s: %s %s", task.Task, task.Status, task.Detail)
		}
		if task.Task == "outlook" && !strings.HasPrefix(task.Detail, "Outlook closed by the agent after 5s (OUTLOOK.EXE)") {
			t.Errorf("outlook: %s, want Outlook closed by the agent", task.Detail)
		}
		if task.Task == "onedrive" && !strings.HasSuffix(task.Detail, "; OneDrive restarted") {
			t.Errorf("onedrive: %s, want OneDrive restarted", task.Detail)
		}
	}
	select {
	case <-outlookEnded:
	case <-time.After(30 * time.Second):
		t.Error("the running OUTLOOK.EXE was not ended")
	}
	if dev.Hostname == "" || !strings.HasPrefix(dev.OSVersion, "Windows ") || dev.UserEmail != "ann@contoso.com" || dev.Software["outlook"] != "16.0.17928.20156" ||
		dev.Software["onedrive"] != "24.201.1006.0005" || dev.Software["office"] != "16.0.17928.20156" || dev.Software["teams"] != "1.7.00.13456 (classic)" || dev.AgentVersion == "" {
		t.Errorf("device report: %+v", dev.Device)
	}

	// The registry Wine wrote back.
	hkcu, hklm := pfx.Registry(t, "user.reg"), pfx.Registry(t, "system.reg")
	val := func(reg map[string]map[string]string, key, name string) string {
		v, ok := reg[strings.ToLower(key)][strings.ToLower(name)]
		if !ok {
			return "<none>"
		}
		return v
	}
	outlookKey := `Software\Microsoft\Office\16.0\Outlook`
	for _, c := range []struct{ got, want, what string }{
		{val(hkcu, outlookKey, "DefaultProfile"), "ann@fabrikam.com", "DefaultProfile"},
		{val(hkcu, outlookKey+`\Profiles\Outlook (before migration)\9375CFF0413111d3B88A00104B2A6676\00000002`, "Account Name"), "hex:61,00,6e,00,6e,00,40,00,63,00,6f,00,6e,00,74,00,6f,00,73,00,6f,00,2e,00,63,00,6f,00,6d,00,00,00", "the kept profile's account"},
		{val(hkcu, `Software\Policies\Microsoft\Office\16.0\Outlook\AutoDiscover`, "ZeroConfigExchange"), "dword:00000001", "ZeroConfigExchange"},
		{val(hkcu, `Software\Microsoft\Office\16.0\Common\MailSettings`, "NewSignature"), "Ann (ann@contoso.com)", "NewSignature"},
		{val(hkcu, outlookKey+`\Setup`, "First-Run"), "<none>", "First-Run"},
		{val(hkcu, outlookKey+`\Setup`, "ImportPRF"), `C:\ProgramData\FerryAgent\backup\outlook\reattach-16.0.prf`, "ImportPRF"},
		{val(hklm, `Software\Policies\Microsoft\OneDrive`, "SilentAccountConfig"), "dword:00000001", "SilentAccountConfig"},
		{val(hklm, `Software\Policies\Microsoft\OneDrive`, "KFMSilentOptIn"), wineTargetTenant, "KFMSilentOptIn"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.what, c.got, c.want)
		}
	}
	for key, what := range map[string]string{
		outlookKey + `\Profiles\Outlook`:                                             "the old profile under its old name",
		`Software\Microsoft\OneDrive\Accounts\Business1`:                             "OneDrive's Business1 account",
		`Software\Microsoft\Office\16.0\Common\Licensing\LicensingNext`:              "Office's licensing",
		`Software\Microsoft\Office\16.0\Common\Identity`:                             "Office's identity",
		`Software\Microsoft\Windows NT\CurrentVersion\WorkplaceJoin\JoinInfo\9A1B2C`: "the WorkplaceJoin entry",
	} {
		if _, ok := hkcu[strings.ToLower(key)]; ok {
			t.Errorf("%s is still there", what)
		}
	}
	if _, ok := hkcu[strings.ToLower(outlookKey+`\Profiles\ann@fabrikam.com`)]; !ok {
		t.Error("no new Outlook profile")
	}
	prf, err := os.ReadFile(pfx.Path(`C:\ProgramData\FerryAgent\backup\outlook\reattach-16.0.prf`))
	if err != nil || !bytes.Contains(prf, []byte(`PathToPersonalFolders=C:\users\Public\Documents\Archive 2019.pst`)) {
		t.Errorf("the PRF: %v\n%s", err, prf)
	}
	for p, want := range map[string]bool{
		`AppData/Roaming/Microsoft/Signatures/Ann (ann@fabrikam.com).htm`:   true,
		`AppData/Roaming/Microsoft/Teams/Cache`:                             false,
		`AppData/Roaming/Microsoft/Teams/desktop-config.json`:               false,
		`AppData/Local/Packages/MSTeams_8wekyb3d8bbwe/LocalCache/Microsoft`: false,
		`AppData/Local/Microsoft/OneAuth`:                                   false,
		`AppData/Local/Microsoft/IdentityCache`:                             false,
		`AppData/Local/Microsoft/OneDrive/settings/Business1`:               false,
		`AppData/Local/Microsoft/Office/Licenses`:                           false,
	} {
		if _, err := os.Stat(filepath.Join(home, filepath.FromSlash(p))); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", p, err == nil, want)
		}
	}

	// The server shows each task's log line.
	var logs []model.DeviceLog
	must(c.Do(ctx, "GET", "/api/v1/devices/"+dev.ID+"/logs", nil, &logs))
	text := ""
	for _, l := range logs {
		text += l.Line + "\n"
	}
	for _, task := range model.AgentTasks {
		if !strings.Contains(text, task+": Complete") {
			t.Errorf("the log has no line for %s:\n%s", task, text)
		}
	}
	if t.Failed() {
		t.Logf("agent output:\n%s\nlog:\n%s", out.String(), text)
	}

	// ferry-agent rollback puts the profile back and the OneDrive account with it.
	rb, err := pfx.Command(ctx, `C:\Program Files\Ferry\ferry-agent.exe`, "rollback", "--data", `C:\ProgramData\FerryAgent`).CombinedOutput()
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, rb)
	}
	pfx.Wait(t)
	hkcu, hklm = pfx.Registry(t, "user.reg"), pfx.Registry(t, "system.reg")
	if got := val(hkcu, outlookKey, "DefaultProfile"); got != "Outlook" || val(hkcu, `Software\Microsoft\OneDrive\Accounts\Business1`, "UserEmail") != "ann@contoso.com" ||
		val(hklm, `Software\Policies\Microsoft\OneDrive`, "KFMSilentOptIn") != "<none>" || val(hkcu, outlookKey+`\Setup`, "First-Run") != "hex:01,00,00,00" {
		t.Errorf("after rollback: DefaultProfile %s, Business1 %s, KFMSilentOptIn %s, First-Run %s\n%s", got, val(hkcu, `Software\Microsoft\OneDrive\Accounts\Business1`, "UserEmail"),
			val(hklm, `Software\Policies\Microsoft\OneDrive`, "KFMSilentOptIn"), val(hkcu, outlookKey+`\Setup`, "First-Run"), rb)
	}
	if _, ok := hkcu[strings.ToLower(outlookKey+`\Profiles\ann@fabrikam.com`)]; ok {
		t.Error("the new profile is still there after rollback")
	}

	// A revoked device is refused, and its agent stops saying so.
	must(c.Do(ctx, "POST", "/api/v1/devices/"+dev.ID+"/revoke", nil, nil))
	refused, err := pfx.Command(ctx, `C:\Program Files\Ferry\ferry-agent.exe`, "run", "--user-email", "ann@contoso.com", "--data", `C:\ProgramData\FerryAgent`).CombinedOutput()
	if err == nil || !strings.Contains(string(refused), "refused this device's credential") {
		t.Errorf("a revoked device's agent: %v\n%s", err, refused)
	}

	// As a Windows service, from a new package: the service finds the user signed in at the
	// console, reaches their registry under HKEY_USERS and their folders, enrols as a second
	// device (the user's address read from OneDrive's account) and switches the workstation over
	// again.
	unpackAgent(t, c, pfx.Path(`C:\Program Files\FerryService`))
	if out, err := pfx.Command(ctx, `C:\Program Files\FerryService\ferry-agent.exe`, "install", "--data", `C:\ProgramData\FerryService`).CombinedOutput(); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	svcDev, _ := waitTasksDone(t, c, "the service to finish its tasks", dev.ID)
	if out, err := pfx.Command(ctx, `C:\Program Files\FerryService\ferry-agent.exe`, "uninstall").CombinedOutput(); err != nil {
		t.Errorf("uninstall: %v\n%s", err, out)
	}
	pfx.Wait(t)
	for _, task := range svcDev.Tasks {
		if task.Status != model.TaskComplete {
			t.Errorf("service %s: %s %s", task.Task, task.Status, task.Detail)
		}
		// Started as the signed-in user, from the service, with a token of their own.
		if task.Task == "onedrive" && !strings.HasSuffix(task.Detail, "; OneDrive restarted") {
			t.Errorf("service onedrive: %s, want OneDrive restarted", task.Detail)
		}
	}
	if svcDev.UserEmail != "ann@contoso.com" || !strings.HasSuffix(strings.ToLower(svcDev.UserName), strings.ToLower(pfx.User())) {
		t.Errorf("the service's device report: user %q, email %q", svcDev.UserName, svcDev.UserEmail)
	}
	hkcu = pfx.Registry(t, "user.reg")
	if got := val(hkcu, outlookKey, "DefaultProfile"); got != "ann@fabrikam.com" {
		t.Errorf("after the service: DefaultProfile = %s", got)
	}
}

// unpackAgent downloads a Windows agent package and unpacks it into dir.
func unpackAgent(t *testing.T, c *client.Client, dir string) string {
	t.Helper()
	var zipData bytes.Buffer
	if err := c.Do(context.Background(), "POST", "/api/v1/projects/acme/agent/package", map[string]string{"os": "windows"}, &zipData); err != nil {
		t.Fatalf("agent package: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(zipData.Bytes()), int64(zipData.Len()))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir, 0o755)
	for _, f := range zr.File {
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		rc.Close()
		if err := os.WriteFile(filepath.Join(dir, f.Name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// waitTasksDone waits until a device of acme other than except has run all its tasks, and
// returns it with the number of devices the project has.
func waitTasksDone(t *testing.T, c *client.Client, what, except string) (api.DeviceView, int) {
	t.Helper()
	var dev api.DeviceView
	var n int
	waitFor(t, 150*time.Second, what, func() bool {
		var ds []api.DeviceView
		if err := c.Do(context.Background(), "GET", "/api/v1/projects/acme/devices", nil, &ds); err != nil {
			t.Fatal(err)
		}
		n = len(ds)
		for _, d := range ds {
			if d.ID == except || len(d.Tasks) != len(model.AgentTasks) {
				continue
			}
			dev = d
			for _, task := range d.Tasks {
				if task.Status == model.TaskWaiting || task.Status == model.TaskRunning {
					return false
				}
			}
			return true
		}
		return false
	})
	return dev, n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
