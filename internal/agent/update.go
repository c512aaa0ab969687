package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ferry-migrate/ferry/internal/model"
)

// ErrUpdated means the agent replaced its binary with a newer one: the caller starts it again.
var ErrUpdated = errors.New("the agent was updated; start it again")

// Platform is this build's GOOS/GOARCH, reported so the server offers the matching update.
func Platform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// update downloads an offered agent, checks its SHA-256 and the server's ed25519 signature with
// the key from agent.json, and hands the verified file to Replace. Without a key or a Replace
// nothing is downloaded; a check that fails leaves the running agent as it is.
func (a *Agent) update(ctx context.Context, st State, u model.AgentUpdate) error {
	if a.Replace == nil || a.Config.UpdateKey == "" {
		return nil
	}
	key, err := base64.StdEncoding.DecodeString(a.Config.UpdateKey)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("agent.json: update_key is not an ed25519 public key")
	}
	sig, err := base64.StdEncoding.DecodeString(u.Signature)
	if err != nil || !ed25519.Verify(ed25519.PublicKey(key), model.AgentUpdateMessage(Platform(), u.Version, u.SHA256), sig) {
		return fmt.Errorf("update %s: the signature does not verify with this package's key; not installed", u.Version)
	}
	if !strings.HasPrefix(u.URL, "/agent/v1/update/") {
		return fmt.Errorf("update %s: unexpected URL %q", u.Version, u.URL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.Config.Server, "/")+u.URL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+st.Credential)
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("update %s: server answered %d", u.Version, resp.StatusCode)
	}
	path := filepath.Join(a.Dir, "ferry-agent.new")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o700)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != u.SHA256 {
		err = fmt.Errorf("update %s: the download's SHA-256 is not the signed one; not installed", u.Version)
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	if err := a.Replace(path); err != nil {
		return fmt.Errorf("update %s: %w", u.Version, err)
	}
	return ErrUpdated
}
