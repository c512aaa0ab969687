package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// A stand-in sign-in host: OpenID discovery and the v2.0 token endpoint for client credentials.
func TestClientSecretTokensAreCachedPerTenant(t *testing.T) {
	var tokens atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")[0]
		switch {
		case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
			json.NewEncoder(w).Encode(map[string]any{
				"token_endpoint":         srv.URL + "/" + tenant + "/oauth2/v2.0/token",
				"authorization_endpoint": srv.URL + "/" + tenant + "/oauth2/v2.0/authorize",
				"issuer":                 srv.URL + "/" + tenant + "/v2.0",
			})
		case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
			r.ParseForm()
			if r.Form.Get("client_secret") != "s3cret" || r.Form.Get("grant_type") != "client_credentials" || !strings.HasPrefix(r.Form.Get("scope"), "https://graph.microsoft.com/.default") {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`)
				return
			}
			n := tokens.Add(1)
			json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3600, "access_token": fmt.Sprintf("token-%s-%d", tenant, n)})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cloud := Cloud{Name: "test", LoginURL: srv.URL, GraphURL: "https://graph.microsoft.com"}
	cs := &Credentials{Options: azcore.ClientOptions{Transport: srv.Client()}}
	ts, err := cs.For(cloud, AppCredential{Tenant: "contoso", ClientID: "app-1", ClientSecret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		tok, err := ts.Token(ctx, "https://graph.microsoft.com/.default")
		if err != nil || tok != "token-contoso-1" {
			t.Fatalf("token %d = %q, %+v", i, tok, err)
		}
	}
	again, _ := cs.For(cloud, AppCredential{Tenant: "contoso", ClientID: "app-1", ClientSecret: "s3cret"})
	if tok, _ := again.Token(ctx, "https://graph.microsoft.com/.default"); tok != "token-contoso-1" || tokens.Load() != 1 {
		t.Fatalf("cached token not reused: %q after %d token calls", tok, tokens.Load())
	}
	other, _ := cs.For(cloud, AppCredential{Tenant: "fabrikam", ClientID: "app-1", ClientSecret: "s3cret"})
	if tok, _ := other.Token(ctx, "https://graph.microsoft.com/.default"); tok != "token-fabrikam-2" {
		t.Fatalf("second tenant token = %q", tok)
	}
	bad, _ := cs.For(cloud, AppCredential{Tenant: "contoso", ClientID: "app-2", ClientSecret: "wrong"})
	if _, err := bad.Token(ctx, "https://graph.microsoft.com/.default"); err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := cs.For(cloud, AppCredential{Tenant: "t", ClientID: "c"}); err == nil {
		t.Fatal("credential with nothing to sign in with accepted")
	}
}
