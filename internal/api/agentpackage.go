package api

import (
	"archive/zip"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/model"
)

// packageToken names the enrolment token an agent package carries: reissuing a project's package
// revokes the previous one at once.
const packageToken = "agent-package"

// SetAgentPackaging tells the server where the agent binaries are (model.AgentBinary), the
// fingerprint of its own TLS certificate, which packages pin ("" over plain HTTP), and the public
// key of its agent-update signing key, which packages carry so agents accept only updates the
// server signed (nil: none).
func (s *Server) SetAgentPackaging(dir, certSHA256 string, updateKey ed25519.PublicKey) {
	s.agentDir, s.certSHA256, s.updateKey = dir, certSHA256, updateKey
}

// AgentPackageConfig is the agent.json inside a package.
type AgentPackageConfig struct {
	Server     string `json:"server_url"`
	CompanyKey string `json:"company_key"`
	Token      string `json:"token"`
	CertSHA256 string `json:"cert_sha256,omitempty"`
	UpdateKey  string `json:"update_key,omitempty"` // base64 ed25519 public key
}

// agentPackage answers a zip of the agent binary and its agent.json: the server's URL, the
// company key, a new enrolment token (the previous package's is revoked) and the certificate pin.
func (s *Server) agentPackage(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		OS        string `json:"os"`
		Arch      string `json:"arch"`
		ServerURL string `json:"server_url"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.OS == "" {
		req.OS = "windows"
	}
	if req.Arch == "" {
		req.Arch = "amd64"
	}
	if req.OS != "windows" && req.OS != "linux" && req.OS != "darwin" {
		return badRequest("os: want windows, linux or darwin, got %q", req.OS)
	}
	if req.Arch != "amd64" && req.Arch != "arm64" {
		return badRequest("arch: want amd64 or arm64, got %q", req.Arch)
	}
	prj, err := s.projectFor(r, p, model.RoleManager)
	if err != nil {
		return err
	}
	name := model.AgentBinary(req.OS, req.Arch)
	exe := "ferry-agent"
	if req.OS == "windows" {
		exe += ".exe"
	}
	if s.agentDir == "" {
		return errStatus(http.StatusConflict, "this server has no agent directory: start it with --agent-dir")
	}
	bin, err := os.Open(filepath.Join(s.agentDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return errStatus(http.StatusConflict, "no agent binary %s in the server's agent directory %s: build it with GOOS=%s GOARCH=%s go build -o %s ./cmd/ferry-agent",
			name, s.agentDir, req.OS, req.Arch, filepath.Join(s.agentDir, name))
	} else if err != nil {
		return err
	}
	defer bin.Close()
	server := strings.TrimRight(req.ServerURL, "/")
	if server == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		server = scheme + "://" + r.Host
	}
	if !strings.HasPrefix(server, "https://") && !strings.HasPrefix(server, "http://") {
		return badRequest("server_url: want the http(s) URL agents reach the server at, got %q", req.ServerURL)
	}
	key, err := s.st.CompanyKey(r.Context(), prj.ID)
	if err != nil {
		return err
	}
	olds, err := s.st.AgentTokens(r.Context(), prj.ID)
	if err != nil {
		return err
	}
	for _, t := range olds {
		if t.Name == packageToken && t.RevokedAt == nil {
			if err := s.st.RevokeAgentToken(r.Context(), prj.ID, t.ID); err != nil {
				return err
			}
		}
	}
	plain, _, err := s.auth.CreateAgentToken(r.Context(), p, prj.ID, packageToken, 365*24*time.Hour)
	if err != nil {
		return err
	}
	pc := AgentPackageConfig{Server: server, CompanyKey: key, Token: plain, CertSHA256: s.certSHA256}
	if s.updateKey != nil {
		pc.UpdateKey = base64.StdEncoding.EncodeToString(s.updateKey)
	}
	cfg, _ := json.MarshalIndent(pc, "", "  ")
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="ferry-agent-%s-%s.zip"`, prj.Name, req.OS))
	zw := zip.NewWriter(w)
	f, err := zw.Create(exe)
	if err == nil {
		_, err = io.Copy(f, bin)
	}
	if err == nil {
		if f, err = zw.Create("agent.json"); err == nil {
			_, err = f.Write(cfg)
		}
	}
	if err == nil {
		err = zw.Close()
	}
	s.st.Event(r.Context(), model.Event{Actor: p.Name(), Object: "project/" + prj.ID, Action: "agent.package", Outcome: "ok", Detail: req.OS + "/" + req.Arch})
	return err
}
