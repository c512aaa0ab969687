package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/internal/api/client"
	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/m365sim"
)

// DemoOptions configure `ferry demo`.
type DemoOptions struct {
	Data, Listen, SimListen string
	// Ready, if set, receives the console's URL and the admin password once everything is set up.
	Ready func(url, password string)
}

func demoCmd(g *globals) *cobra.Command {
	var o DemoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Try Ferry without a Microsoft account: a server, two emulated tenants and a ready project",
		Long: `Start everything needed to try Ferry: the server with its console, and the Microsoft 365 emulator
with two tenants, contoso (10 users whose mailboxes hold mixed mail: plain, HTML, attachments, read
and unread, flagged, categorised; and calendars with meetings, a recurring one among them) and fabrikam (the same users, empty mailboxes). The project
contoso-to-fabrikam is ready with its 10 items: open the console, sign in as admin and start a
verify, then a full pass. Everything lives in --data; running the demo again picks up where it was.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return RunDemo(ctx, o, g.stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Data, "data", "./ferry-demo", "where the demo keeps the server's and the emulator's state")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "console and API address")
	f.StringVar(&o.SimListen, "sim-listen", "127.0.0.1:8443", "emulator address")
	return cmd
}

// demoProject is the project the demo sets up.
const demoProject = "contoso-to-fabrikam"

// demoArchiveProject moves the same users' archive mailboxes.
const demoArchiveProject = "contoso-to-fabrikam-archives"

// RunDemo runs the emulator and the server until ctx ends.
func RunDemo(ctx context.Context, o DemoOptions, out io.Writer) error {
	if err := os.MkdirAll(o.Data, 0o700); err != nil {
		return err
	}
	pw, err := demoPassword(filepath.Join(o.Data, "admin-password"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	simState := filepath.Join(o.Data, "sim.db")
	simURL, simDone := make(chan string, 1), make(chan error, 1)
	go func() {
		simDone <- RunSim(ctx, SimOptions{Listen: o.SimListen, State: simState, Ready: func(u string) { simURL <- u }}, io.Discard)
	}()
	var sim string
	select {
	case sim = <-simURL:
	case err := <-simDone:
		return fmt.Errorf("emulator: %w", err)
	}
	addr, srvDone := make(chan string, 1), make(chan error, 1)
	go func() {
		srvDone <- Serve(ctx, ServeOptions{Data: filepath.Join(o.Data, "server"), Listen: o.Listen, Workers: 20, LogLevel: "warn",
			AdminPassword: pw, Ready: func(a string) { addr <- a }}, io.Discard)
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-srvDone:
		cancel()
		<-simDone
		return err
	}
	err = demoSetup(ctx, base, pw, sim, simState+".pem")
	if err == nil {
		fmt.Fprintf(out, `Ferry demo
  console     %s   (user admin, password %s)
  emulator    %s   tenants contoso.onmicrosoft.com and fabrikam.onmicrosoft.com
  projects    %s: 10 mailboxes, user00…user09@contoso.com to @fabrikam.com
              %s: their archive mailboxes
Open the console, open a project and press Verify, then Full pass. Ctrl-C stops; state stays in %s.
`, base, pw, sim, demoProject, demoArchiveProject, o.Data)
		if o.Ready != nil {
			o.Ready(base, pw)
		}
		<-ctx.Done()
	}
	cancel()
	serr, merr := <-srvDone, <-simDone
	return errors.Join(err, serr, merr)
}

// demoPassword keeps the demo admin's password in the data folder, so a second run signs in too.
func demoPassword(path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(data))) > 0 {
		return strings.TrimSpace(string(data)), nil
	}
	pw := auth.GeneratePassword()
	return pw, os.WriteFile(path, []byte(pw+"\n"), 0o600)
}

// demoSetup creates the two endpoints, the project and its items through the API, unless an
// earlier run did.
func demoSetup(ctx context.Context, base, pw, sim, caFile string) error {
	c := client.New(base, "")
	if err := c.Login(ctx, "admin", pw); err != nil {
		return fmt.Errorf("sign in to the demo server: %w", err)
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	var have []struct{ Name string }
	if err := c.Do(ctx, "GET", "/api/v1/endpoints", nil, &have); err != nil {
		return err
	}
	exists := func(name string) bool {
		for _, e := range have {
			if e.Name == name {
				return true
			}
		}
		return false
	}
	for _, tenant := range []string{"contoso", "fabrikam"} {
		if exists(tenant) {
			continue
		}
		ep := map[string]any{"name": tenant, "kind": "m365", "domains": []string{tenant + ".com"},
			"settings":    map[string]any{"tenant": tenant + ".onmicrosoft.com", "client_id": m365sim.SeedClientID, "host": sim, "ca_cert": string(ca)},
			"credentials": map[string]string{"client_secret": m365sim.SeedSecret(tenant)}}
		if err := c.Do(ctx, "POST", "/api/v1/endpoints", ep, nil); err != nil {
			return fmt.Errorf("create endpoint %s: %w", tenant, err)
		}
	}
	var csv strings.Builder
	csv.WriteString("source_email,target_email\n")
	for u := 0; u < m365sim.DefaultSeed.Users; u++ {
		fmt.Fprintf(&csv, "user%02d@contoso.com,user%02d@fabrikam.com\n", u, u)
	}
	for name, workload := range map[string]string{demoProject: "mailbox", demoArchiveProject: "archive"} {
		err = c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"name": name, "workload": workload, "source": "contoso", "target": "fabrikam",
			"options": map[string]any{"max_concurrent": 5}}, nil)
		if err != nil && client.StatusOf(err) != 409 {
			return fmt.Errorf("create project %s: %w", name, err)
		}
		var res struct{ Created int }
		if err := c.Upload(ctx, "POST", "/api/v1/projects/"+name+"/items/import", "text/csv", strings.NewReader(csv.String()), &res); err != nil {
			return fmt.Errorf("import the items of %s: %w", name, err)
		}
	}
	return nil
}
