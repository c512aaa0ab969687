package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

// Agent enrolment: a project's enrolment token (prefix fye) is exchanged once per device for a
// device credential (prefix fyd). The token only enrols; the credential only speaks for its
// device. A leaked token can enrol a new device but never act as one that already enrolled.

// ErrEnrolRefused says why an enrolment was refused, without telling a stranger which part was wrong.
var ErrEnrolRefused = errors.New("enrolment refused: the token is unknown, revoked or expired, or the company key does not match")

// CreateAgentToken makes an enrolment token for a project; the value is returned once.
func (s *Service) CreateAgentToken(ctx context.Context, p Principal, projectID, name string, ttl time.Duration) (string, model.AgentToken, error) {
	if ttl <= 0 {
		return "", model.AgentToken{}, fmt.Errorf("an enrolment token needs an expiry")
	}
	plain, hash := NewToken("fye")
	t, err := s.st.CreateAgentToken(ctx, model.AgentToken{ProjectID: projectID, Name: name, Hash: hash, CreatedBy: p.Name(), ExpiresAt: s.now().UTC().Add(ttl)})
	if err != nil {
		return "", t, err
	}
	s.st.Event(ctx, model.Event{Actor: p.Name(), Object: "project/" + projectID, Action: "agent.token.create", Outcome: "ok", Detail: name})
	return plain, t, nil
}

// Enrol exchanges an enrolment token and the project's company key for a new device and its
// credential.
func (s *Service) Enrol(ctx context.Context, token, companyKey string, f model.DeviceFacts) (model.Device, string, error) {
	t, err := s.st.AgentTokenByHash(ctx, HashToken(token))
	if store.IsNotFound(err) || (err == nil && !t.Usable(s.now())) {
		return model.Device{}, "", ErrEnrolRefused
	} else if err != nil {
		return model.Device{}, "", err
	}
	key, err := s.st.CompanyKey(ctx, t.ProjectID)
	if err != nil {
		return model.Device{}, "", err
	}
	if subtle.ConstantTimeCompare([]byte(key), []byte(companyKey)) != 1 {
		return model.Device{}, "", ErrEnrolRefused
	}
	cred, hash := NewToken("fyd")
	d, err := s.st.CreateDevice(ctx, model.Device{ProjectID: t.ProjectID, TokenID: t.ID, CredentialHash: hash, DeviceFacts: f})
	if err != nil {
		return d, "", err
	}
	s.st.Event(ctx, model.Event{Actor: "device/" + d.ID, Object: "project/" + t.ProjectID, Action: "agent.enrol", Outcome: "ok", Detail: f.Hostname})
	return d, cred, nil
}

// AuthenticateDevice resolves the device of an agent request from its bearer credential.
func (s *Service) AuthenticateDevice(r *http.Request) (model.Device, error) {
	cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !strings.HasPrefix(cred, "fyd_") {
		return model.Device{}, fmt.Errorf("%w: send the device credential as a bearer token", ErrUnauthenticated)
	}
	d, err := s.st.DeviceByCredential(r.Context(), HashToken(cred))
	if store.IsNotFound(err) {
		return d, fmt.Errorf("%w: unknown device credential", ErrUnauthenticated)
	} else if err != nil {
		return d, err
	}
	if d.RevokedAt != nil {
		return d, fmt.Errorf("%w: this device's credential was revoked", ErrUnauthenticated)
	}
	return d, nil
}

// AgentSigningKey loads the ed25519 key that signs agent updates from path, creating it (0600)
// the first time. Agent packages carry its public half.
func AgentSigningKey(path string) (ed25519.PrivateKey, error) {
	if data, err := os.ReadFile(path); err == nil {
		seed, err := hex.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("%s is not an agent signing key (64 hex digits)", path)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key.Seed())+"\n"), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}
