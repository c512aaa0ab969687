package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/internal/m365sim"
	"github.com/ferry-migrate/ferry/internal/throttle"
)

// SimOptions configure `ferry sim`.
type SimOptions struct {
	Listen, State, Seed string
	PlainHTTP           bool
	Faults              m365sim.Faults
	TokenLifetime       time.Duration
	Unthrottled         bool
	Ready               func(url string) // tests
}

func simCmd(g *globals) *cobra.Command {
	var o SimOptions
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run emulated Microsoft 365 tenants (token endpoint and a Graph subset) for demos and dry runs",
		Long: `Run emulated Microsoft 365 tenants: an OAuth 2.0 token endpoint and the part of Microsoft Graph
v1.0 Ferry uses, with state, ids, paging, delta links and Microsoft's throttling limits.

On first start the state file is seeded (default: tenants contoso and fabrikam, 10 users each with
an archive; per contoso user 20 messages, events, contacts, tasks, 12 archived messages and 12
OneDrive files; 2 sites per tenant, and 2 teams in contoso) and an app "` + m365sim.SeedClientID + `" is
registered in each tenant with the client secret sim-secret-<tenant>. Later starts load the state
and ignore --seed.

TLS is on by default with a self-signed certificate written beside the state file (<state>.pem);
give it to clients as their CA certificate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return RunSim(ctx, o, g.stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8443", "address to listen on")
	f.StringVar(&o.State, "state", "./ferry-sim.db", "state file (SQLite)")
	f.StringVar(&o.Seed, "seed", "", "what to create on first start, e.g. tenants=contoso+fabrikam,users=10,messages=20,archives=12,files=12,sites=2,teams=2")
	f.BoolVar(&o.PlainHTTP, "plain-http", false, "serve plain HTTP instead of TLS (sign-in libraries require https)")
	f.Float64Var(&o.Faults.ErrorRate, "fault-error-rate", 0, "share of Graph requests answered 503, e.g. 0.05")
	f.Float64Var(&o.Faults.ResetRate, "fault-reset-rate", 0, "share of Graph requests whose connection is dropped")
	f.DurationVar(&o.Faults.Latency, "fault-latency", 0, "latency added to every Graph request")
	f.IntVar(&o.Faults.BurstEvery, "fault-burst-every", 0, "every Nth request starts a burst of 503s")
	f.IntVar(&o.Faults.BurstLength, "fault-burst-length", 5, "length of a 503 burst")
	f.DurationVar(&o.TokenLifetime, "token-lifetime", m365sim.DefaultTokenLifetime, "lifetime of issued access tokens")
	f.BoolVar(&o.Unthrottled, "no-throttling", false, "turn Microsoft's limits off (they are on by default)")
	return cmd
}

// RunSim serves the emulator until ctx ends, saving its state every second and at exit.
func RunSim(ctx context.Context, o SimOptions, out io.Writer) error {
	seed, err := m365sim.ParseSeed(o.Seed)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	st, err := m365sim.OpenStore(o.State)
	if err != nil {
		return err
	}
	defer st.Close()
	sim := m365sim.New()
	if o.Faults != (m365sim.Faults{}) {
		sim.SetFaults(o.Faults)
	}
	if o.TokenLifetime > 0 {
		sim.SetTokenLifetime(o.TokenLifetime)
	}
	if o.Unthrottled {
		sim.SetLimits(throttle.Limits{})
	}
	found, err := st.Load(sim)
	if err != nil {
		return err
	}
	if !found {
		sim.Apply(seed)
		if err := st.Save(sim); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	scheme := "https"
	if o.PlainHTTP {
		scheme = "http"
	} else {
		cert, err := simCertificate(o.State+".pem", ln.Addr().(*net.TCPAddr).IP)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	url := fmt.Sprintf("%s://%s", scheme, ln.Addr())
	sim.SetBaseURL(url)
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	state := "loaded from " + o.State
	if !found {
		state = "seeded into " + o.State
	}
	fmt.Fprintf(out, "Microsoft 365 emulator on %s (state %s)\n", url, state)
	fmt.Fprintf(out, "  sign-in: %s/<tenant>/oauth2/v2.0/token   Graph: %s/v1.0\n", url, url)
	for _, t := range seed.Tenants {
		fmt.Fprintf(out, "  tenant %s.onmicrosoft.com (id %s): client id %s, secret %s\n", t, m365sim.TenantID(t), m365sim.SeedClientID, m365sim.SeedSecret(t))
	}
	if !o.PlainHTTP {
		fmt.Fprintf(out, "  CA certificate: %s.pem\n", o.State)
	}
	if o.Ready != nil {
		o.Ready(url)
	}
	saveCtx, stopSaving := context.WithCancel(context.Background())
	saved := make(chan error, 1)
	go func() { saved <- st.SaveEvery(saveCtx, sim, time.Second) }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	stopSaving()
	if serr := <-saved; serr != nil {
		return fmt.Errorf("save emulator state: %w", serr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// simCertificate loads or creates the emulator's self-signed certificate (path, for clients to
// trust) and its key (path minus .pem plus .key, 0600).
func simCertificate(path string, ip net.IP) (tls.Certificate, error) {
	keyPath := strings.TrimSuffix(path, ".pem") + ".key"
	if c, err := tls.LoadX509KeyPair(path, keyPath); err == nil {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if ip != nil && !ip.IsUnspecified() {
		ips = append(ips, ip)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "Ferry Microsoft 365 emulator"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(2, 0, 0), IPAddresses: ips, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(path, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}
