package agentapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/agentapi"
	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/api/client"
	"github.com/ferry-migrate/ferry/internal/auth"
	_ "github.com/ferry-migrate/ferry/internal/connector/memory"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
	"github.com/ferry-migrate/ferry/internal/testenv/server"
)

// agentCall posts JSON to the agent protocol, with a device credential when given.
func agentCall(t *testing.T, base, path, credential string, body any) (int, map[string]any) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", base+path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// withProject starts a server on db with the project acme between two test-connector endpoints.
func withProject(t *testing.T, db storetest.DB) *server.Stack {
	t.Helper()
	s := server.Start(t, db, nil)
	s.Project(t, "acme")
	return s
}

func TestEnrolReportRevoke(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		s := withProject(t, db)
		ctx := context.Background()
		base := s.Srv.URL
		if err := s.Admin.Do(ctx, "POST", "/api/v1/users", map[string]any{"username": "rita", "password": "Rita-Password-1234", "workgroup": "Default", "role": "Reader"}, nil); err != nil {
			t.Fatal(err)
		}
		rita := s.TokenFor(t, "rita", "Rita-Password-1234")
		if err := rita.Do(ctx, "POST", "/api/v1/projects/acme/agent/tokens", map[string]string{"name": "x"}, nil); client.StatusOf(err) != 403 {
			t.Fatalf("a Reader creating an enrolment token: %v, want 403", err)
		}

		var tok api.AgentTokenResponse
		if err := s.Admin.Do(ctx, "POST", "/api/v1/projects/acme/agent/tokens", map[string]string{"name": "laptops", "expires": "7d"}, &tok); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok.Token, "fye_") || len(tok.CompanyKey) != 32 || time.Until(tok.Info.ExpiresAt) < 6*24*time.Hour {
			t.Fatalf("token: %+v", tok)
		}
		var listed []map[string]any
		if err := rita.Do(ctx, "GET", "/api/v1/projects/acme/agent/tokens", nil, &listed); err != nil || len(listed) != 1 || listed[0]["name"] != "laptops" {
			t.Fatalf("tokens as a Reader: %v %v", listed, err)
		}
		if raw, _ := json.Marshal(listed); bytes.Contains(raw, []byte(tok.Token)) || bytes.Contains(raw, []byte("hash")) {
			t.Fatal("the token list shows the token or its hash")
		}

		laptop := model.DeviceFacts{Hostname: "LAPTOP-01", OSVersion: "Windows 11 23H2", AgentVersion: "0.1.0"}
		if code, out := agentCall(t, base, "/agent/v1/enrol", "", agentapi.EnrolRequest{Token: tok.Token, CompanyKey: "wrong", Device: laptop}); code != 401 || !strings.Contains(out["detail"].(string), "enrolment refused") {
			t.Errorf("enrol with a wrong company key: %d %v", code, out)
		}
		if code, out := agentCall(t, base, "/agent/v1/enrol", "", agentapi.EnrolRequest{Token: tok.Token, CompanyKey: tok.CompanyKey}); code != 400 || out["detail"] != "device.hostname is required" {
			t.Errorf("enrol without a host name: %d %v", code, out)
		}
		code, out := agentCall(t, base, "/agent/v1/enrol", "", agentapi.EnrolRequest{Token: tok.Token, CompanyKey: tok.CompanyKey, Device: laptop})
		cred, _ := out["credential"].(string)
		if code != 201 || !strings.HasPrefix(cred, "fyd_") || out["poll_seconds"] != 60.0 {
			t.Fatalf("enrol: %d %v", code, out)
		}

		report := model.DeviceFacts{Hostname: "LAPTOP-01", OSVersion: "Windows 11 23H2", UserName: `CONTOSO\ann`, UserEmail: "ann@contoso.com",
			Software: map[string]string{"outlook": "16.0.17928", "onedrive": "24.201", "teams": "24295.605"}, AgentVersion: "0.1.0"}
		if code, out := agentCall(t, base, "/agent/v1/report", cred, report); code != 200 || out["poll_seconds"] != 60.0 {
			t.Fatalf("report: %d %v", code, out)
		}
		var devices []model.Device
		if err := rita.Do(ctx, "GET", "/api/v1/projects/acme/devices", nil, &devices); err != nil || len(devices) != 1 {
			t.Fatalf("devices: %v %v", devices, err)
		}
		d := devices[0]
		if d.UserEmail != "ann@contoso.com" || d.Software["outlook"] != "16.0.17928" || d.OSVersion != "Windows 11 23H2" || time.Since(d.LastSeenAt) > time.Minute {
			t.Errorf("device as listed: %+v", d)
		}

		// The enrolment token is not a device credential.
		if code, _ := agentCall(t, base, "/agent/v1/report", tok.Token, report); code != 401 {
			t.Errorf("a report with the enrolment token: %d, want 401", code)
		}
		// A revoked token enrols no more devices; the enrolled one goes on.
		if err := s.Admin.Do(ctx, "DELETE", "/api/v1/projects/acme/agent/tokens/"+tok.Info.ID, nil, nil); err != nil {
			t.Fatal(err)
		}
		if code, _ := agentCall(t, base, "/agent/v1/enrol", "", agentapi.EnrolRequest{Token: tok.Token, CompanyKey: tok.CompanyKey, Device: laptop}); code != 401 {
			t.Errorf("enrol with a revoked token: %d, want 401", code)
		}
		if code, _ := agentCall(t, base, "/agent/v1/report", cred, report); code != 200 {
			t.Errorf("the enrolled device after its token was revoked: %d, want 200", code)
		}
		// An expired token is refused.
		old, hash := auth.NewToken("fye")
		var prj model.Project
		if err := s.Admin.Do(ctx, "GET", "/api/v1/projects/acme", nil, &prj); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Store.CreateAgentToken(ctx, model.AgentToken{ProjectID: prj.ID, Name: "old", Hash: hash, CreatedBy: "t", ExpiresAt: time.Now().Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if code, _ := agentCall(t, base, "/agent/v1/enrol", "", agentapi.EnrolRequest{Token: old, CompanyKey: tok.CompanyKey, Device: laptop}); code != 401 {
			t.Errorf("enrol with an expired token: %d, want 401", code)
		}

		// Revoking the device: a Reader may not; then its credential is refused.
		if err := rita.Do(ctx, "POST", "/api/v1/devices/"+d.ID+"/revoke", nil, nil); client.StatusOf(err) != 403 {
			t.Errorf("a Reader revoking a device: %v, want 403", err)
		}
		var revoked model.Device
		if err := s.Admin.Do(ctx, "POST", "/api/v1/devices/"+d.ID+"/revoke", nil, &revoked); err != nil || revoked.RevokedAt == nil {
			t.Fatalf("revoke: %+v %v", revoked, err)
		}
		if code, out := agentCall(t, base, "/agent/v1/report", cred, report); code != 401 || !strings.Contains(out["detail"].(string), "revoked") {
			t.Errorf("a revoked device's report: %d %v", code, out)
		}
	})
}

// TestTasksAreReleasedAtCutover: a device receives its tasks only once its user's item has
// migrated and the item's cutover time has come, or when an administrator starts it; a hold keeps
// them back; the agent's task states and log lines show in the API, where roles apply.
func TestTasksAreReleasedAtCutover(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		s := withProject(t, db)
		ctx := context.Background()
		base := s.Srv.URL
		var imp map[string]any
		if err := s.Admin.Upload(ctx, "POST", "/api/v1/projects/acme/items/import", "text/csv", strings.NewReader("source_email,target_email\nann@contoso.com,ann@fabrikam.com\n"), &imp); err != nil {
			t.Fatal(err)
		}
		if err := s.Admin.Do(ctx, "POST", "/api/v1/users", map[string]any{"username": "rita", "password": "Rita-Password-1234", "workgroup": "Default", "role": "Reader"}, nil); err != nil {
			t.Fatal(err)
		}
		rita := s.TokenFor(t, "rita", "Rita-Password-1234")
		var tok api.AgentTokenResponse
		if err := s.Admin.Do(ctx, "POST", "/api/v1/projects/acme/agent/tokens", map[string]string{"name": "wave1"}, &tok); err != nil {
			t.Fatal(err)
		}
		facts := model.DeviceFacts{Hostname: "LAPTOP-02", UserEmail: "Ann@Contoso.com", AgentVersion: "0.1.0"}
		_, out := agentCall(t, base, "/agent/v1/enrol", "", agentapi.EnrolRequest{Token: tok.Token, CompanyKey: tok.CompanyKey, Device: facts})
		cred, devID := out["credential"].(string), out["device_id"].(string)
		report := func() agentapi.ReportResponse {
			t.Helper()
			data, _ := json.Marshal(facts)
			req, _ := http.NewRequest("POST", base+"/agent/v1/report", bytes.NewReader(data))
			req.Header.Set("Authorization", "Bearer "+cred)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var r agentapi.ReportResponse
			if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&r) != nil {
				t.Fatalf("report: %d", resp.StatusCode)
			}
			return r
		}
		if r := report(); r.Released || !strings.Contains(r.Waiting, "has not finished migrating (NotStarted)") {
			t.Fatalf("before the migration: %+v", r)
		}

		// Settings: three tasks, a prompt; a Reader may read them but not set them.
		set := model.AgentSettings{Tasks: []string{"teams", "outlook", "onedrive"}, CompanyName: "Fabrikam", PromptText: "Your PC moves to Fabrikam tonight.",
			TargetTenantID: "22222222-2222-2222-2222-222222222222", ReattachPST: true}
		for bad, want := range map[string]model.AgentSettings{
			`source_tenant_id: "contoso.onmicrosoft.com" is not a tenant id`: {SourceTenantID: "contoso.onmicrosoft.com"},
			"outlook_profile: at most 64 characters":                         {OutlookProfile: `Ann\Fabrikam`},
			"close_apps_after_seconds":                                       {CloseAppsAfter: -1},
		} {
			if err := s.Admin.Do(ctx, "PUT", "/api/v1/projects/acme/agent/settings", want, nil); client.StatusOf(err) != 400 || !strings.Contains(err.Error(), bad) {
				t.Errorf("settings %+v: %v, want 400 saying %q", want, err, bad)
			}
		}
		if err := rita.Do(ctx, "PUT", "/api/v1/projects/acme/agent/settings", set, nil); client.StatusOf(err) != 403 {
			t.Fatalf("a Reader setting agent settings: %v, want 403", err)
		}
		if err := s.Admin.Do(ctx, "PUT", "/api/v1/projects/acme/agent/settings", model.AgentSettings{Tasks: []string{"printer"}}, nil); client.StatusOf(err) != 400 {
			t.Fatalf("an unknown task: %v, want 400", err)
		}
		if err := s.Admin.Do(ctx, "PUT", "/api/v1/projects/acme/agent/settings", set, nil); err != nil {
			t.Fatal(err)
		}

		// The item migrates, with a cutover tomorrow: still waiting; then the time has come.
		var items struct {
			Items []model.Item `json:"items"`
		}
		if err := s.Admin.Do(ctx, "GET", "/api/v1/projects/acme/items", nil, &items); err != nil || len(items.Items) != 1 {
			t.Fatalf("items: %v %v", items, err)
		}
		it := items.Items[0]
		if err := s.Store.FinishRun(ctx, "none", it.ID, model.StatusCompleted, model.ItemStats{}, nil, ""); err != nil {
			t.Fatal(err)
		}
		tomorrow := time.Now().Add(24 * time.Hour).Truncate(time.Second)
		if err := s.Admin.Do(ctx, "PUT", "/api/v1/items/"+it.ID+"/cutover", map[string]any{"at": tomorrow.In(time.FixedZone("CET", 3600))}, nil); err != nil {
			t.Fatal(err)
		}
		r := report()
		if r.Released || r.Waiting != "the cutover time has not come" || r.CutoverAt == nil || !r.CutoverAt.Equal(tomorrow) || r.CutoverAt.Location() != time.UTC {
			t.Fatalf("before the cutover time: %+v", r)
		}
		if err := s.Admin.Do(ctx, "PUT", "/api/v1/items/"+it.ID+"/cutover", map[string]any{"at": time.Now().Add(-time.Minute)}, nil); err != nil {
			t.Fatal(err)
		}
		r = report()
		if !r.Released || len(r.Tasks) != 3 || r.Tasks[0].Task != "outlook" || r.Tasks[1].Task != "onedrive" || r.Tasks[2].Task != "teams" ||
			r.Tasks[0].Status != model.TaskWaiting || r.Prompt == nil || r.Prompt.CompanyName != "Fabrikam" {
			t.Fatalf("at the cutover: %+v", r)
		}
		// What the device is switched to: the item's addresses, the tenant the settings name, a
		// profile named after the target address, and the default time to close applications.
		if tg := r.Target; tg == nil || tg.SourceEmail != "ann@contoso.com" || tg.TargetEmail != "ann@fabrikam.com" || tg.TargetTenantID != "22222222-2222-2222-2222-222222222222" ||
			tg.SourceTenantID != "" || tg.OutlookProfile != "ann@fabrikam.com" || !tg.ReattachPST || tg.CloseAppsAfter != model.DefaultCloseAppsAfter {
			t.Fatalf("target: %+v", r.Target)
		}

		// The agent's word on its tasks and its log lines.
		for _, tr := range []agentapi.TaskReport{{Task: "outlook", Status: model.TaskComplete}, {Task: "onedrive", Status: model.TaskError, Detail: "OneDrive.exe did not stop"}} {
			if code, out := agentCall(t, base, "/agent/v1/tasks", cred, tr); code != 204 {
				t.Fatalf("task report %+v: %d %v", tr, code, out)
			}
		}
		if code, _ := agentCall(t, base, "/agent/v1/tasks", cred, agentapi.TaskReport{Task: "office", Status: model.TaskComplete}); code != 400 {
			t.Errorf("a task the project does not run: %d, want 400", code)
		}
		if code, _ := agentCall(t, base, "/agent/v1/tasks", cred, agentapi.TaskReport{Task: "teams", Status: "Done"}); code != 400 {
			t.Errorf("an unknown status: %d, want 400", code)
		}
		if code, _ := agentCall(t, base, "/agent/v1/logs", cred, agentapi.LogUpload{Lines: []string{"outlook: profile Fabrikam created", "onedrive: stop timed out"}}); code != 204 {
			t.Fatalf("log upload: %d", code)
		}
		if code, _ := agentCall(t, base, "/agent/v1/logs", tok.Token, agentapi.LogUpload{Lines: []string{"x"}}); code != 401 {
			t.Errorf("logs with the enrolment token: %d, want 401", code)
		}
		var devices []api.DeviceView
		if err := rita.Do(ctx, "GET", "/api/v1/projects/acme/devices", nil, &devices); err != nil || len(devices) != 1 {
			t.Fatalf("devices: %v %v", devices, err)
		}
		states := ""
		for _, dt := range devices[0].Tasks {
			states += dt.Task + "=" + string(dt.Status) + " "
		}
		if states != "outlook=Complete onedrive=Error teams=Waiting " || devices[0].Tasks[1].Detail != "OneDrive.exe did not stop" {
			t.Errorf("task states: %q %+v", states, devices[0].Tasks)
		}
		var logs []model.DeviceLog
		if err := rita.Do(ctx, "GET", "/api/v1/devices/"+devID+"/logs", nil, &logs); err != nil || len(logs) != 2 || logs[0].Line != "outlook: profile Fabrikam created" {
			t.Fatalf("logs: %v %v", logs, err)
		}

		// Actions: a Reader may not; stop holds, restart runs again from the first, start forces.
		if err := rita.Do(ctx, "POST", "/api/v1/devices/"+devID+"/actions", map[string]string{"action": "stop"}, nil); client.StatusOf(err) != 403 {
			t.Fatalf("a Reader stopping a device: %v, want 403", err)
		}
		act := func(a string) api.DeviceView {
			t.Helper()
			var v api.DeviceView
			if err := s.Admin.Do(ctx, "POST", "/api/v1/devices/"+devID+"/actions", map[string]string{"action": a}, &v); err != nil {
				t.Fatalf("%s: %v", a, err)
			}
			return v
		}
		act("stop")
		if r := report(); r.Released || r.Waiting != "held by an administrator" {
			t.Fatalf("after stop: %+v", r)
		}
		if v := act("restart"); v.Tasks[0].Status != model.TaskWaiting || v.Release != model.ReleaseAuto {
			t.Fatalf("after restart: %+v", v)
		}
		if r := report(); !r.Released || r.Tasks[0].Status != model.TaskWaiting {
			t.Fatalf("a restarted device's report: %+v", r)
		}
		if v := act("complete"); v.Tasks[2].Status != model.TaskComplete {
			t.Fatalf("after complete: %+v", v)
		}
		// Start releases the tasks of a device whose user has no migrated item.
		if err := s.Admin.Do(ctx, "PUT", "/api/v1/items/"+it.ID+"/cutover", map[string]any{"at": tomorrow}, nil); err != nil {
			t.Fatal(err)
		}
		if r := report(); r.Released {
			t.Fatalf("cutover moved to tomorrow, still released: %+v", r)
		}
		act("start")
		if r := report(); !r.Released {
			t.Fatalf("after start: %+v", r)
		}
		if err := s.Admin.Do(ctx, "POST", "/api/v1/devices/"+devID+"/actions", map[string]string{"action": "reboot"}, nil); client.StatusOf(err) != 400 {
			t.Errorf("an unknown action: %v, want 400", err)
		}
	})
}
