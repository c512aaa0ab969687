package m365sim_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/m365sim"
	"github.com/ferry-migrate/ferry/internal/throttle"
)

type rig struct {
	sim   *m365sim.Server
	srv   *httptest.Server
	cloud graph.Cloud
	creds *graph.Credentials
	key   *rsa.PrivateKey
	cert  *x509.Certificate
	pem   []byte
}

func newRig(t testing.TB) *rig {
	t.Helper()
	sim := m365sim.New()
	srv := httptest.NewTLSServer(sim)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ferry-app"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	pemData := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})...)
	sim.AddTenant("11111111-1111-1111-1111-111111111111", "contoso.onmicrosoft.com", "contoso.com")
	sim.AddApp("11111111-1111-1111-1111-111111111111", "app-secret", "s3cret-value", nil, "User.Read.All")
	sim.AddApp("11111111-1111-1111-1111-111111111111", "app-cert", "", cert, "User.Read.All")
	sim.AddApp("11111111-1111-1111-1111-111111111111", "app-noperm", "pw", nil)
	for i := 0; i < 5; i++ {
		sim.AddUser("11111111-1111-1111-1111-111111111111", fmt.Sprintf("user%d@contoso.com", i), fmt.Sprintf("User %d", i))
	}
	return &rig{sim: sim, srv: srv, cloud: graph.Cloud{Name: "sim", LoginURL: srv.URL, GraphURL: srv.URL},
		creds: &graph.Credentials{Options: azcore.ClientOptions{Transport: srv.Client()}}, key: key, cert: cert, pem: pemData}
}

func (r *rig) client(t *testing.T, app graph.AppCredential) *graph.Client {
	t.Helper()
	app.Tenant = "contoso.onmicrosoft.com"
	ts, err := r.creds.For(r.cloud, app)
	if err != nil {
		t.Fatal(err)
	}
	return graph.New(graph.Config{Cloud: r.cloud, Tenant: "contoso", App: app.ClientID, Tokens: ts, HTTP: r.srv.Client(), MaxAttempts: 4})
}

func TestSecretAndCertificateSignInThroughAzidentity(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, app := range []graph.AppCredential{
		{ClientID: "app-secret", ClientSecret: "s3cret-value"},
		{ClientID: "app-cert", Certificate: r.pem},
	} {
		u, err := r.client(t, app).User(ctx, "user3@contoso.com")
		if err != nil || u.DisplayName != "User 3" || u.ProxyAddresses[0] != "SMTP:user3@contoso.com" {
			t.Fatalf("%s: user = %+v, %v", app.ClientID, u, err)
		}
	}
	_, err := r.client(t, graph.AppCredential{ClientID: "app-secret", ClientSecret: "wrong"}).User(ctx, "user3@contoso.com")
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("wrong secret: %v", err)
	}
}

// assertion builds a client assertion JWT signed with key.
func assertion(t *testing.T, key *rsa.PrivateKey, cert *x509.Certificate, clientID, aud string, exp time.Time) string {
	sum := sha1.Sum(cert.Raw)
	hdr, _ := json.Marshal(map[string]any{"alg": "RS256", "typ": "JWT", "x5t": base64.RawURLEncoding.EncodeToString(sum[:])})
	claims, _ := json.Marshal(map[string]any{"aud": aud, "iss": clientID, "sub": clientID, "jti": "1", "nbf": time.Now().Add(-time.Minute).Unix(), "exp": exp.Unix()})
	signing := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestTokenEndpointRejectsBadAssertions(t *testing.T) {
	r := newRig(t)
	tokenURL := r.srv.URL + "/contoso.onmicrosoft.com/oauth2/v2.0/token"
	post := func(form url.Values) (int, string) {
		resp, err := r.srv.Client().PostForm(tokenURL, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, fmt.Sprint(body["error_description"], body["access_token"])
	}
	form := func(jwt string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {"app-cert"}, "scope": {"https://graph.microsoft.com/.default"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {jwt}}
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		name   string
		jwt    string
		status int
		want   string
	}{
		{"valid", assertion(t, r.key, r.cert, "app-cert", tokenURL, time.Now().Add(10*time.Minute)), 200, "sim."},
		{"expired", assertion(t, r.key, r.cert, "app-cert", tokenURL, time.Now().Add(-time.Hour)), 401, "expired"},
		{"wrong audience", assertion(t, r.key, r.cert, "app-cert", "https://login.microsoftonline.com/other/oauth2/v2.0/token", time.Now().Add(10*time.Minute)), 401, "audience"},
		{"wrong key", assertion(t, other, r.cert, "app-cert", tokenURL, time.Now().Add(10*time.Minute)), 401, "invalid signature"},
		{"wrong issuer", assertion(t, r.key, r.cert, "someone-else", tokenURL, time.Now().Add(10*time.Minute)), 401, "iss and sub"},
		{"not a JWT", "abc", 401, "not a JWT"},
	}
	for _, c := range cases {
		status, body := post(form(c.jwt))
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want %d containing %q", c.name, status, body, c.status, c.want)
		}
	}
	status, body := post(url.Values{"grant_type": {"client_credentials"}, "client_id": {"app-secret"}, "client_secret": {"nope"}, "scope": {"https://graph.microsoft.com/.default"}})
	if status != 401 || !strings.Contains(body, "AADSTS7000215") {
		t.Errorf("wrong secret: %d %s", status, body)
	}
}

func TestUsersPagingSelectPermissionsAndThrottling(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c := r.client(t, graph.AppCredential{ClientID: "app-secret", ClientSecret: "s3cret-value"})
	seq, _ := graph.All[graph.User](ctx, c, "/users?$top=2&$select=userPrincipalName,proxyAddresses")
	var upns []string
	for u, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		if u.DisplayName != "" || u.ID == "" || len(u.ProxyAddresses) != 1 {
			t.Fatalf("$select not applied: %+v", u)
		}
		upns = append(upns, u.UserPrincipalName)
	}
	if len(upns) != 5 {
		t.Fatalf("paged through %d users, want 5: %v", len(upns), upns)
	}
	if _, err := c.Do(ctx, graph.Request{Method: "GET", Path: "/users?$select=favouriteColour"}, nil); !graph.IsStatus(err, 400) || !strings.Contains(err.Error(), "favouriteColour") {
		t.Fatalf("unknown $select property: %v", err)
	}
	noperm := r.client(t, graph.AppCredential{ClientID: "app-noperm", ClientSecret: "pw"})
	if _, err := noperm.User(ctx, "user1@contoso.com"); !graph.IsStatus(err, 403) || !strings.Contains(err.Error(), "lacks User.Read.All") {
		t.Fatalf("app without permission: %v", err)
	}
	// 3 requests a second per mailbox: the 4th in a burst gets 429 with Retry-After, and the
	// client waits and gets through.
	r.sim.SetLimits(throttle.Limits{Concurrency: 4, Requests: 3, Window: time.Second})
	var throttled int
	raw := &http.Client{Transport: r.srv.Client().Transport}
	tok, _ := r.creds.For(r.cloud, graph.AppCredential{Tenant: "contoso.onmicrosoft.com", ClientID: "app-secret", ClientSecret: "s3cret-value"})
	bearer, _ := tok.Token(ctx, r.srv.URL+"/.default")
	for i := 0; i < 4; i++ {
		req, _ := http.NewRequest("GET", r.srv.URL+"/v1.0/users/user1@contoso.com", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 429 {
			throttled++
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		}
	}
	if throttled != 1 {
		t.Fatalf("%d of 4 requests throttled at 3 per second, want 1", throttled)
	}
	start := time.Now()
	if u, err := c.User(ctx, "user1@contoso.com"); err != nil || u.DisplayName != "User 1" {
		t.Fatalf("client through throttling: %+v %v", u, err)
	}
	if time.Since(start) < 500*time.Millisecond {
		t.Fatalf("the client did not wait out the throttle (%s)", time.Since(start))
	}
}

// signIn asks r's token endpoint for a token of app-secret.
func (r *rig) signIn(t *testing.T) string {
	t.Helper()
	tok := r.srv.URL + "/contoso.onmicrosoft.com/oauth2/v2.0/token"
	resp, err := r.srv.Client().PostForm(tok, url.Values{"grant_type": {"client_credentials"}, "client_id": {"app-secret"}, "client_secret": {"s3cret-value"},
		"scope": {"https://graph.microsoft.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	return body.AccessToken
}

// users calls GET /v1.0/users on r with a bearer token and returns the status and error message.
func (r *rig) users(t *testing.T, bearer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", r.srv.URL+"/v1.0/users", nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var gerr struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&gerr)
	return resp.StatusCode, gerr.Error.Message
}

func TestExpiredTokensAreRefused(t *testing.T) {
	r := newRig(t)
	r.sim.SetTokenLifetime(time.Millisecond)
	tok := r.signIn(t)
	time.Sleep(5 * time.Millisecond)
	if status, msg := r.users(t, tok); status != 401 || !strings.Contains(msg, "expired") {
		t.Fatalf("expired token: %d %q", status, msg)
	}
}

// A token is good wherever its tenant and app exist, as Entra's signed tokens are: a client that
// cached one from a closed test server whose port a new one was given must still be served.
// Forged or altered tokens, and tokens of a tenant the emulator lacks, are refused.
func TestTokensAreSignedNotRemembered(t *testing.T) {
	a, b := newRig(t), newRig(t)
	tok := a.signIn(t)
	if status, msg := b.users(t, tok); status != 200 {
		t.Fatalf("a token of the same tenant and app from another emulator: %d %q", status, msg)
	}
	empty := m365sim.New()
	srv := httptest.NewTLSServer(empty)
	t.Cleanup(srv.Close)
	other := &rig{sim: empty, srv: srv}
	body, mac, _ := strings.Cut(strings.TrimPrefix(tok, "sim."), ".")
	for name, bad := range map[string]string{
		"empty":            "",
		"unsigned":         "sim." + body,
		"altered":          "sim." + body + "A." + mac,
		"another's mac":    "sim." + body + "." + strings.Repeat("A", len(mac)),
		"not the emulator": "eyJ0eXAiOiJKV1QifQ.e30.sig",
	} {
		if status, msg := a.users(t, bad); status != 401 || msg != "Access token is empty or invalid." {
			t.Errorf("%s token: %d %q", name, status, msg)
		}
	}
	if status, msg := other.users(t, tok); status != 401 || msg != "Access token is empty or invalid." {
		t.Errorf("a token of a tenant this emulator lacks: %d %q", status, msg)
	}
}
