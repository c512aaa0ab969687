package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeTLS serves the API and the console over HTTPS, where the session cookie is Secure.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "serve.pem")
	if _, err := simCertificate(cert, net.ParseIP("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_ADMIN_PASSWORD", adminPW)
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeOptions{Data: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", LogLevel: "error",
			TLSCert: cert, TLSKey: filepath.Join(dir, "serve.key"), Ready: func(a string) { addr <- a }}, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "https://" + a
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	pemData, _ := os.ReadFile(cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(base+"/login", url.Values{"username": {"admin"}, "password": {adminPW}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ck := resp.Header.Get("Set-Cookie"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(ck, "ferry_session=") || !strings.Contains(ck, "; Secure") {
		t.Errorf("sign in over TLS: %d, cookie %q", resp.StatusCode, ck)
	}
	if resp, err := http.Get(strings.Replace(base, "https:", "http:", 1) + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain http on the TLS port: %d, want 400", resp.StatusCode)
		}
	}

	if err := Serve(context.Background(), ServeOptions{Data: filepath.Join(dir, "x"), Listen: "127.0.0.1:0", TLSCert: cert}, io.Discard); err == nil || !strings.Contains(err.Error(), "--tls-cert and --tls-key go together") {
		t.Errorf("--tls-cert alone: %v", err)
	}
}

func TestTrustedProxiesFlag(t *testing.T) {
	got, err := parsePrefixes([]string{"10.0.0.5", " 192.168.1.7/24", "::ffff:127.0.0.1", "fd00::/8", ""})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[10.0.0.5/32 192.168.1.0/24 127.0.0.1/32 fd00::/8]" {
		t.Fatalf("parsePrefixes = %v", got)
	}
	err = Serve(context.Background(), ServeOptions{Data: t.TempDir(), Listen: "127.0.0.1:0", TrustedProxies: []string{"proxy.example"}}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `--trusted-proxies: "proxy.example" is neither an IP address nor a CIDR prefix`) {
		t.Fatalf("a host name as trusted proxy: %v", err)
	}
}
