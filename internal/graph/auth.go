package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// AppCredential is how an app registration signs in: a client secret, a certificate (PFX or PEM
// with its key), or a managed identity.
type AppCredential struct {
	Tenant, ClientID    string
	ClientSecret        string
	Certificate         []byte // PFX or PEM
	CertificatePassword string
	ManagedIdentity     bool
}

type azureTokens struct {
	cred  azcore.TokenCredential
	reach *reachTransport
}

func (a azureTokens) Token(ctx context.Context, scope string) (string, error) {
	t, err := a.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		// azidentity flattens the transport's error into text; give the cause back its type.
		if cause := a.reach.take(); cause != nil {
			return "", fmt.Errorf("%w (%v)", cause, err)
		}
		return "", err
	}
	return t.Token, nil
}

// reachTransport remembers the last error that says the sign-in service cannot be reached at all,
// which azidentity would otherwise only pass on as text.
type reachTransport struct {
	next policy.Transporter
	mu   sync.Mutex
	last error
}

func (t *reachTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := t.next.Do(req)
	if _, ok := Unreachable(err); ok {
		t.mu.Lock()
		t.last = err
		t.mu.Unlock()
	}
	return resp, err
}

func (t *reachTransport) take() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.last
	t.last = nil
	return err
}

// Credentials caches one azidentity credential (and so its tokens) per tenant, app and cloud.
type Credentials struct {
	mu    sync.Mutex
	cache map[string]TokenSource
	// Options lets tests and the emulator point sign-in at another host.
	Options azcore.ClientOptions
}

// For returns the token source of an app in a cloud.
func (cs *Credentials) For(c Cloud, app AppCredential) (TokenSource, error) {
	// The credential material is part of the key: a changed secret must not reuse the old one.
	material := sha256.Sum256([]byte(app.ClientSecret + "\x00" + string(app.Certificate) + "\x00" + app.CertificatePassword + fmt.Sprint(app.ManagedIdentity)))
	key := strings.Join([]string{c.Name, c.LoginURL, app.Tenant, app.ClientID, hex.EncodeToString(material[:])}, "|")
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if ts, ok := cs.cache[key]; ok {
		return ts, nil
	}
	opts := cs.Options
	opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: strings.TrimRight(c.LoginURL, "/") + "/"}
	reach := &reachTransport{next: opts.Transport}
	if reach.next == nil {
		reach.next = http.DefaultClient
	}
	opts.Transport = reach
	// azcore's retry policy, but no retries where the sign-in service cannot be reached at all:
	// an untrusted certificate or a closed port is reported at once, not after eight seconds.
	opts.Retry.ShouldRetry = func(resp *http.Response, err error) bool {
		if err != nil {
			_, unreachable := Unreachable(err)
			return !unreachable
		}
		switch resp.StatusCode {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	custom := true
	for _, known := range Clouds {
		custom = custom && known.LoginURL != c.LoginURL
	}
	var cred azcore.TokenCredential
	var err error
	switch {
	case app.ManagedIdentity:
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if app.ClientID != "" {
			o.ID = azidentity.ClientID(app.ClientID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(o)
	case len(app.Certificate) > 0:
		certs, key, perr := azidentity.ParseCertificates(app.Certificate, []byte(app.CertificatePassword))
		if perr != nil {
			return nil, fmt.Errorf("app certificate: %w", perr)
		}
		cred, err = azidentity.NewClientCertificateCredential(app.Tenant, app.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: custom, SendCertificateChain: true})
	case app.ClientSecret != "":
		cred, err = azidentity.NewClientSecretCredential(app.Tenant, app.ClientID, app.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: custom})
	default:
		return nil, errors.New("app credential: give a client secret, a certificate, or managed identity")
	}
	if err != nil {
		return nil, fmt.Errorf("app credential: %w", err)
	}
	if cs.cache == nil {
		cs.cache = map[string]TokenSource{}
	}
	ts := azureTokens{cred, reach}
	cs.cache[key] = ts
	return ts, nil
}
