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

func TestEnrolReportRevoke(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db storetest.DB) {
		s := server.Start(t, db, nil)
		ctx := context.Background()
		base := s.Srv.URL
		for _, ep := range []string{"src", "dst"} {
			if err := s.Admin.Do(ctx, "POST", "/api/v1/endpoints", map[string]any{"name": ep, "kind": "memory", "settings": map[string]any{"host": ep}}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Admin.Do(ctx, "POST", "/api/v1/projects", map[string]any{"name": "acme", "workload": "mailbox", "source": "src", "target": "dst"}, nil); err != nil {
			t.Fatal(err)
		}
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
		if !strings.HasPrefix(tok.Token, "fye_") || len(tok.CompanyKey) != 32 || tok.Info.ExpiresAt.Sub(time.Now()) < 6*24*time.Hour {
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
