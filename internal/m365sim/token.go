// Package m365sim emulates Microsoft 365 tenants for tests, demos and dry runs: an OAuth 2.0 token
// endpoint and a subset of Microsoft Graph v1.0 that keeps state and enforces Microsoft's
// published throttling limits. It is held to Microsoft's metadata and samples by tests.
package m365sim

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// App is an app registration in a tenant: its secret and/or certificate, and its granted
// application permissions (e.g. "User.Read.All", "MailboxItem.ImportExport.All").
type App struct {
	ClientID    string   `json:"clientId"`
	Secret      string   `json:"secret,omitempty"`
	CertDER     []byte   `json:"certificate,omitempty"`
	Permissions []string `json:"permissions"`
}

func (a *App) certificate() *x509.Certificate {
	if len(a.CertDER) == 0 {
		return nil
	}
	c, err := x509.ParseCertificate(a.CertDER)
	if err != nil {
		return nil
	}
	return c
}

type token struct {
	tenant, app string
	expires     time.Time
}

// Tokens are signed, not remembered, as Entra's are: a token stays good until it expires even for
// another emulator in this process, such as a test server given the port of one closed before it,
// whose URL and so whose cached credential a client shares.
var tokenKey = func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}()

func (t token) String() string {
	body := base64.RawURLEncoding.EncodeToString([]byte(t.tenant + "\x00" + t.app + "\x00" + strconv.FormatInt(t.expires.UnixNano(), 10)))
	return "sim." + body + "." + tokenMAC(body)
}

func tokenMAC(body string) string {
	m := hmac.New(sha256.New, tokenKey)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// parseToken checks a token's signature and reads it.
func parseToken(s string) (token, bool) {
	body, mac, ok := strings.Cut(strings.TrimPrefix(s, "sim."), ".")
	if !ok || !strings.HasPrefix(s, "sim.") || !hmac.Equal([]byte(mac), []byte(tokenMAC(body))) {
		return token{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != 3 {
		return token{}, false
	}
	ns, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return token{}, false
	}
	return token{tenant: parts[0], app: parts[1], expires: time.Unix(0, ns)}, true
}

// DefaultTokenLifetime is how long issued access tokens last (Microsoft: 60-90 minutes).
const DefaultTokenLifetime = time.Hour

// tokenEndpoint implements POST /{tenant}/oauth2/v2.0/token for the client credentials grant, with
// a client secret or a client assertion (RFC 7523 JWT signed with the app's certificate).
func (s *Server) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	tenant := s.tenant(r.PathValue("tenant"))
	if tenant == nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "AADSTS90002: Tenant '"+r.PathValue("tenant")+"' not found.")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: malformed request body")
		return
	}
	if gt := r.Form.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: grant type "+gt+" is not supported here")
		return
	}
	if !strings.Contains(r.Form.Get("scope"), "/.default") {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "AADSTS1002012: scope must be a resource's /.default")
		return
	}
	clientID := r.Form.Get("client_id")
	s.mu.Lock()
	app := tenant.Apps[clientID]
	s.mu.Unlock()
	if app == nil {
		oauthError(w, http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application with identifier '"+clientID+"' was not found in the directory.")
		return
	}
	switch {
	case r.Form.Get("client_assertion") != "":
		if r.Form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			oauthError(w, http.StatusBadRequest, "invalid_request", "AADSTS50027: client_assertion_type must be jwt-bearer")
			return
		}
		aud := s.BaseURL() + "/" + r.PathValue("tenant") + "/oauth2/v2.0/token"
		if err := verifyAssertion(r.Form.Get("client_assertion"), app, aud, s.now()); err != nil {
			oauthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
			return
		}
	case r.Form.Get("client_secret") != "":
		if app.Secret == "" || r.Form.Get("client_secret") != app.Secret {
			oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
			return
		}
	default:
		oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000218: The request body must contain client_assertion or client_secret.")
		return
	}
	s.mu.Lock()
	life := s.tokenLife
	s.mu.Unlock()
	tok := token{tenant: tenant.ID, app: clientID, expires: s.now().Add(life)}.String()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": int(life.Seconds()), "ext_expires_in": int(life.Seconds()), "access_token": tok})
}

// openIDConfiguration serves the discovery document sign-in libraries read first.
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	t := r.PathValue("tenant")
	base := s.BaseURL() + "/" + t
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"issuer":                 base + "/v2.0",
		"token_endpoint":         base + "/oauth2/v2.0/token",
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		"jwks_uri":               base + "/discovery/v2.0/keys",
		"tenant_region_scope":    "EU",
	})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": code, "error_description": desc, "error_codes": []int{}, "timestamp": time.Now().UTC().Format(time.DateTime)})
}

// verifyAssertion checks a client assertion as Entra ID does: RS256 or PS256 signature by the
// app's certificate (named by x5t or x5t#S256), aud = the token endpoint, iss = sub = client id,
// and a current exp/nbf.
func verifyAssertion(jwt string, app *App, aud string, now time.Time) error {
	cert := app.certificate()
	if cert == nil {
		return errors.New("AADSTS700027: the app has no certificate to verify a client assertion with")
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("AADSTS50012: client assertion is not a JWT")
	}
	var hdr struct {
		Alg     string `json:"alg"`
		X5t     string `json:"x5t"`
		X5tS256 string `json:"x5t#S256"`
	}
	var claims struct {
		Aud any    `json:"aud"`
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
		Nbf int64  `json:"nbf"`
	}
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return fmt.Errorf("AADSTS50012: client assertion header: %v", err)
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return fmt.Errorf("AADSTS50012: client assertion claims: %v", err)
	}
	sha1sum := sha1.Sum(cert.Raw)
	sha256sum := sha256.Sum256(cert.Raw)
	if !thumbprintIs(hdr.X5t, sha1sum[:]) && !thumbprintIs(hdr.X5tS256, sha256sum[:]) {
		return errors.New("AADSTS700027: the certificate with identifier used to sign the client assertion is not registered on application")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return errors.New("AADSTS50012: client assertion signature is not base64url")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("AADSTS700027: only RSA certificates are supported")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch hdr.Alg {
	case "RS256":
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	case "PS256":
		err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, nil)
	default:
		return fmt.Errorf("AADSTS5002730: unsupported client assertion algorithm %q", hdr.Alg)
	}
	if err != nil {
		return errors.New("AADSTS700027: client assertion contains an invalid signature")
	}
	if !audienceIs(claims.Aud, aud) {
		return fmt.Errorf("AADSTS700024: client assertion audience %v is not %s", claims.Aud, aud)
	}
	if claims.Iss != app.ClientID || claims.Sub != app.ClientID {
		return errors.New("AADSTS700023: client assertion iss and sub must be the client id")
	}
	if claims.Exp == 0 || now.After(time.Unix(claims.Exp, 0).Add(5*time.Minute)) {
		return errors.New("AADSTS700024: client assertion is not within its valid time range (expired)")
	}
	if claims.Nbf != 0 && now.Add(5*time.Minute).Before(time.Unix(claims.Nbf, 0)) {
		return errors.New("AADSTS700024: client assertion is not within its valid time range (not yet valid)")
	}
	return nil
}

// thumbprintIs compares an x5t header with a certificate hash. RFC 7515 says base64url; MSAL sends
// standard base64, and Entra ID accepts both.
func thumbprintIs(x5t string, sum []byte) bool {
	if x5t == "" {
		return false
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(x5t); err == nil && string(b) == string(sum) {
			return true
		}
	}
	return false
}

func audienceIs(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if x == want {
				return true
			}
		}
	}
	return false
}

func decodeSegment(seg string, v any) error {
	data, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
