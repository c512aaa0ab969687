package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/m365sim"
)

func TestSimSeedsServesAndPersists(t *testing.T) {
	state := filepath.Join(t.TempDir(), "sim.db")
	start := func(seed string) (string, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		ready, done := make(chan string, 1), make(chan error, 1)
		go func() {
			done <- RunSim(ctx, SimOptions{Listen: "127.0.0.1:0", State: state, Seed: seed, Ready: func(u string) { ready <- u }}, io.Discard)
		}()
		select {
		case u := <-ready:
			return u, func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("sim: %v", err)
				}
			}
		case err := <-done:
			t.Fatalf("sim did not start: %v", err)
		}
		return "", nil
	}
	client := func(url string) *graph.Client {
		pemData, err := os.ReadFile(state + ".pem")
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			t.Fatal("the CA certificate file holds no certificate")
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		cloud := graph.Cloud{Name: "sim", LoginURL: url, GraphURL: url}
		ts, err := (&graph.Credentials{Options: azcore.ClientOptions{Transport: hc}}).For(cloud,
			graph.AppCredential{Tenant: "contoso.onmicrosoft.com", ClientID: m365sim.SeedClientID, ClientSecret: m365sim.SeedSecret("contoso")})
		if err != nil {
			t.Fatal(err)
		}
		return graph.New(graph.Config{Cloud: cloud, Tokens: ts, HTTP: hc})
	}
	ctx := context.Background()
	url, stop := start("users=4,messages=6")
	c := client(url)
	users, _ := c.Users(ctx)
	n := 0
	for _, err := range users {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("seeded %d users, want 4", n)
	}
	delta, _ := c.MessagesDelta(ctx, "user01@contoso.com", "inbox", "")
	msgs := 0
	for m, err := range delta {
		if err != nil {
			t.Fatal(err)
		}
		if m.IsDraft || m.InternetMessageID == "" {
			t.Fatalf("seeded message %+v", m)
		}
		msgs++
	}
	if msgs != 4 { // messages 0, 1, 4 and 5 of 6 go to the inbox (m % 4 is 0 or 1)
		t.Fatalf("inbox holds %d seeded messages, want 4", msgs)
	}
	if _, err := c.CreateMailFolder(ctx, "user01@contoso.com", "", "Made before restart"); err != nil {
		t.Fatal(err)
	}
	stop()

	url, stop = start("users=99") // a loaded state ignores the seed
	defer stop()
	c = client(url)
	folders, _ := c.MailFolders(ctx, "user01@contoso.com", "")
	found := false
	for f, err := range folders {
		if err != nil {
			t.Fatal(err)
		}
		found = found || f.DisplayName == "Made before restart"
	}
	if !found {
		t.Fatal("a folder created before the restart is gone")
	}
	if u, err := c.User(ctx, "user03@contoso.com"); err != nil || u.DisplayName != "User 03" {
		t.Fatalf("after restart: %+v %v", u, err)
	}
	if _, err := c.User(ctx, "user04@contoso.com"); !graph.IsStatus(err, 404) {
		t.Fatalf("the second start re-seeded: %v", err)
	}
}
