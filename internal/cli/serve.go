package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/internal/agent"
	"github.com/ferry-migrate/ferry/internal/agentapi"
	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/secret"
	"github.com/ferry-migrate/ferry/internal/store"
	"github.com/ferry-migrate/ferry/internal/web"
)

// ServeOptions configure a server.
type ServeOptions struct {
	Data, Listen, Database string
	Workers                int
	Lease                  time.Duration
	LogLevel               string
	TLSCert, TLSKey        string // PEM files; both set = serve HTTPS
	AgentDir               string // agent binaries for packages; default <data>/agents
	AdminPassword          string // the first admin's password; default FERRY_ADMIN_PASSWORD or generated
	// TrustedProxies are the reverse proxies (addresses or CIDR prefixes) whose X-Forwarded-For
	// and X-Forwarded-Proto are believed.
	TrustedProxies []string
	// Ready, if set, receives the bound address once the server listens (tests use port 0).
	Ready func(addr string)
}

func serveCmd(g *globals) *cobra.Command {
	var o ServeOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the REST API, web console, scheduler and workers",
		Long: `Run the Ferry server. With no --database it keeps everything in embedded SQLite under --data;
with --database postgres://… several servers and workers can share the work.

Environment: every flag can also be set as FERRY_<FLAG> (FERRY_DATA, FERRY_LISTEN, FERRY_DATABASE, …).
FERRY_MASTER_KEY holds the credential encryption key (otherwise --data/master.key is created);
FERRY_ADMIN_PASSWORD sets the first admin's password (otherwise one is generated and printed once).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return Serve(ctx, o, g.stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Data, "data", "./ferry-data", "data directory: SQLite database, master key")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address to listen on")
	f.StringVar(&o.Database, "database", "", "postgres://… to use PostgreSQL instead of embedded SQLite")
	f.IntVar(&o.Workers, "workers", 50, "items this process migrates at once, across projects")
	f.StringVar(&o.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain); needs --tls-key")
	f.StringVar(&o.TLSKey, "tls-key", "", "the PEM private key of --tls-cert")
	f.StringVar(&o.LogLevel, "log-level", "info", "debug, info, warn or error")
	f.StringSliceVar(&o.TrustedProxies, "trusted-proxies", nil, "reverse proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For names the client; none by default")
	f.DurationVar(&o.Lease, "lease", 30*time.Second, "how long a node's claim on an item lasts unrenewed; a dead node's items run elsewhere after twice that")
	f.StringVar(&o.AgentDir, "agent-dir", "", "directory of agent binaries (ferry-agent-windows-amd64.exe…) that agent packages carry; default <data>/agents")
	return cmd
}

// parsePrefixes reads addresses ("10.0.0.5") and CIDR prefixes ("10.0.0.0/24").
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// certPin is the hex SHA-256 of the first certificate in a PEM file: what agent packages pin.
func certPin(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return "", fmt.Errorf("%s holds no PEM certificate", path)
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return "", fmt.Errorf("%s: %w", path, err)
			}
			return agent.Fingerprint(c), nil
		}
	}
}

// Serve runs a server until ctx ends, then shuts down gracefully: running items checkpoint and go
// back to the queue.
func Serve(ctx context.Context, o ServeOptions, out interface{ Write([]byte) (int, error) }) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.LogLevel)); err != nil && o.LogLevel != "" {
		return withCode(ExitUsage, fmt.Errorf("--log-level: %w", err))
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return withCode(ExitUsage, errors.New("--tls-cert and --tls-key go together"))
	}
	proxies, err := parsePrefixes(o.TrustedProxies)
	if err != nil {
		return withCode(ExitUsage, fmt.Errorf("--trusted-proxies: %w", err))
	}
	// The data folder holds the agent signing key (and the master key, when not in the
	// environment) even when PostgreSQL holds the rest.
	if err := os.MkdirAll(o.Data, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	if o.Database == "" {
		unlock, err := store.LockDir(o.Data)
		if err != nil {
			return err
		}
		defer unlock()
	}
	keys, created, err := secret.Load(o.Data, os.Getenv("FERRY_MASTER_KEY"))
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	if created {
		log.Info("created a new master key file; back it up with the database", "dir", o.Data)
	}
	st, err := store.Open(ctx, o.Data, o.Database, keys)
	if err != nil {
		return err
	}
	defer st.Close()
	au := auth.New(st)
	adminPW := o.AdminPassword
	if adminPW == "" {
		adminPW = os.Getenv("FERRY_ADMIN_PASSWORD")
	}
	pw, err := au.Bootstrap(ctx, adminPW)
	if err != nil {
		return fmt.Errorf("create admin user: %w", err)
	}
	if pw != "" {
		fmt.Fprintf(out, "Created user admin with password: %s\nIt is shown only this once. Change it, or set FERRY_ADMIN_PASSWORD before the first start.\n", pw)
	}
	eng, err := engine.New(ctx, st, engine.Config{Workers: o.Workers, Lease: o.Lease, Log: log})
	if err != nil {
		return err
	}
	if err := eng.Start(ctx); err != nil {
		return err
	}
	apiSrv := api.New(st, au, eng, log)
	apiSrv.SetTrustedProxies(proxies)
	agentDir, pin := o.AgentDir, ""
	if agentDir == "" {
		agentDir = filepath.Join(o.Data, "agents")
	}
	if o.TLSCert != "" {
		if pin, err = certPin(o.TLSCert); err != nil {
			eng.Shutdown(context.Background())
			return err
		}
	}
	signer, err := auth.AgentSigningKey(filepath.Join(o.Data, "agent-signing.key"))
	if err != nil {
		eng.Shutdown(context.Background())
		return err
	}
	apiSrv.SetAgentPackaging(agentDir, pin, signer.Public().(ed25519.PublicKey))
	console, err := web.New(apiSrv.Handler(), au, log)
	if err != nil {
		eng.Shutdown(context.Background())
		return err
	}
	console.Register(apiSrv.Mux())
	agents := agentapi.New(st, au, log)
	agents.SetUpdates(agentDir, signer)
	agents.Register(apiSrv.Mux())
	srv := &http.Server{Handler: apiSrv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		eng.Shutdown(context.Background())
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	log.Info("ferry serving", "addr", ln.Addr().String(), "database", string(st.Dialect()), "version", Version)
	// Local tools (and tests using port 0) find the server through this file.
	addrFile := filepath.Join(o.Data, "serve.addr")
	if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
		log.Warn("write address file", "err", err)
	}
	defer os.Remove(addrFile)
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() {
		if o.TLSCert != "" {
			errc <- srv.ServeTLS(ln, o.TLSCert, o.TLSKey)
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	log.Info("shutting down: running items checkpoint and return to the queue")
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if serr := eng.Shutdown(sctx); serr != nil {
		log.Warn("engine shutdown", "err", serr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func workerCmd(g *globals) *cobra.Command {
	var o ServeOptions
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run an extra worker node against a shared PostgreSQL database",
		Long: `Run an extra worker: it takes item jobs from the shared PostgreSQL database and migrates them, with
no API of its own. Start as many as you like, on as many machines; project limits (max concurrent
migrations) hold across all of them. Give every node the same master key (FERRY_MASTER_KEY, or
the same master.key file in --data) so they can open the stored credentials.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return Work(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Data, "data", "./ferry-data", "directory of the master key file")
	f.StringVar(&o.Database, "database", "", "postgres://… shared with the server (required)")
	f.IntVar(&o.Workers, "workers", 50, "items this process migrates at once, across projects")
	f.DurationVar(&o.Lease, "lease", 30*time.Second, "how long a node's claim on an item lasts unrenewed; a dead node's items run elsewhere after twice that")
	f.StringVar(&o.LogLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// Work runs a worker node until ctx ends.
func Work(ctx context.Context, o ServeOptions) error {
	if o.Database == "" {
		return withCode(ExitUsage, errors.New("ferry worker needs --database postgres://… (an embedded SQLite database belongs to its one server)"))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.LogLevel)); err != nil {
		return withCode(ExitUsage, fmt.Errorf("--log-level: %w", err))
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	keys, _, err := secret.Load(o.Data, os.Getenv("FERRY_MASTER_KEY"))
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	st, err := store.Open(ctx, o.Data, o.Database, keys)
	if err != nil {
		return err
	}
	defer st.Close()
	eng, err := engine.New(ctx, st, engine.Config{Workers: o.Workers, Lease: o.Lease, Log: log})
	if err != nil {
		return err
	}
	if err := eng.Start(ctx); err != nil {
		return err
	}
	log.Info("ferry worker running", "database", "postgres", "workers", o.Workers)
	if o.Ready != nil {
		o.Ready("")
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return eng.Shutdown(sctx)
}
