package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/api/client"
	"github.com/ferry-migrate/ferry/internal/model"
)

func loginCmd(g *globals) *cobra.Command {
	var user string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in and save an API token for later commands",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.server == "" {
				return withCode(ExitUsage, errors.New("--server is required (or FERRY_SERVER)"))
			}
			if !passwordStdin {
				return withCode(ExitUsage, errors.New("pass the password on standard input with --password-stdin"))
			}
			pw, err := g.readSecret()
			if err != nil {
				return err
			}
			c := client.New(g.server, "")
			if err := c.Login(cmd.Context(), user, pw); err != nil {
				return err
			}
			host, _ := os.Hostname()
			var tok struct {
				Token string      `json:"token"`
				Info  model.Token `json:"info"`
			}
			if err := c.Do(cmd.Context(), "POST", "/api/v1/tokens", map[string]string{"name": "cli " + host, "expires": "90d"}, &tok); err != nil {
				return err
			}
			path := loginPath()
			if err := os.MkdirAll(strings.TrimSuffix(path, "/login.json"), 0o700); err != nil {
				return err
			}
			data, _ := json.Marshal(savedLogin{Server: c.Server, Token: tok.Token})
			if err := os.WriteFile(path, data, 0o600); err != nil {
				return fmt.Errorf("save login: %w", err)
			}
			fmt.Fprintf(g.stdout, "Signed in to %s as %s; token saved in %s (expires %s).\n", c.Server, user, path, tok.Info.ExpiresAt.Format("2006-01-02"))
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "user name")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	cmd.MarkFlagRequired("user")
	return cmd
}

func tokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	var name, expires string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API token; its value is shown only once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var out struct {
				Token string      `json:"token"`
				Info  model.Token `json:"info"`
			}
			if err := c.Do(cmd.Context(), "POST", "/api/v1/tokens", map[string]string{"name": name, "expires": expires}, &out); err != nil {
				return err
			}
			return g.print(out, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "Token %q (%s). Copy it now; it is not shown again:\n%s\n", out.Info.Name, out.Info.ID, out.Token)
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the token is for")
	create.Flags().StringVar(&expires, "expires", "", "lifetime, e.g. 30d or 12h (default: never)")
	create.MarkFlagRequired("name")
	list := &cobra.Command{
		Use: "list", Short: "List your API tokens", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := fetch[[]model.Token](cmd, g, "/api/v1/tokens")
			if err != nil {
				return err
			}
			return g.print(ts, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tNAME\tCREATED\tEXPIRES\tSTATE")
				for _, t := range ts {
					exp, state := "never", "active"
					if t.ExpiresAt != nil {
						exp = t.ExpiresAt.Format(time.DateOnly)
					}
					if !t.Usable(time.Now()) {
						state = "revoked/expired"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Format(time.DateOnly), exp, state)
				}
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke an API token at once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), "DELETE", "/api/v1/tokens/"+esc(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Revoked %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func userCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users (administrators)"}
	var role, workgroup string
	var admin, passwordStdin bool
	add := &cobra.Command{
		Use: "add NAME", Short: "Create a user, optionally a member of a workgroup with a role", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !passwordStdin {
				return withCode(ExitUsage, errors.New("pass the new user's password on standard input with --password-stdin"))
			}
			pw, err := g.readSecret()
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var u model.User
			body := map[string]any{"username": args[0], "password": pw, "admin": admin}
			if role != "" {
				if workgroup == "" {
					workgroup = "Default"
				}
				body["workgroup"], body["role"] = workgroup, role
			}
			if err := c.Do(cmd.Context(), "POST", "/api/v1/users", body, &u); err != nil {
				return err
			}
			return g.print(u, func(w *tabwriter.Writer) { fmt.Fprintf(w, "Created user %s (%s).\n", u.Username, u.ID) })
		},
	}
	add.Flags().StringVar(&role, "role", "", "role in the workgroup: Owner, Manager, Operator or Reader")
	add.Flags().StringVar(&workgroup, "workgroup", "", "workgroup (default: Default when --role is given)")
	add.Flags().BoolVar(&admin, "admin", false, "make the user a Ferry administrator")
	add.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			us, err := fetch[[]model.User](cmd, g, "/api/v1/users")
			if err != nil {
				return err
			}
			return g.print(us, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tUSERNAME\tADMIN\tDISABLED")
				for _, u := range us {
					fmt.Fprintf(w, "%s\t%s\t%v\t%v\n", u.ID, u.Username, u.Admin, u.Disabled)
				}
			})
		},
	}
	cmd.AddCommand(add, list)
	return cmd
}

func endpointCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "endpoint", Aliases: []string{"endpoints", "ep"}, Short: "Manage endpoints: the servers and tenants to move between"}
	var req struct {
		kind, host, security, adminUser, tenant, clientID, cloud, workgroup string
		port                                                                int
		insecure, adminPasswordStdin, clientSecretStdin                     bool
		domains                                                             []string
	}
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add an endpoint",
		Example: `  echo "$PW" | ferry endpoint add old-host --kind imap --host imap.example.com --port 993 --security tls --admin-user admin@example.com --admin-password-stdin
  echo "$SECRET" | ferry endpoint add new-tenant --kind m365 --tenant contoso.onmicrosoft.com --client-id 0000… --client-secret-stdin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"name": args[0], "kind": req.kind, "domains": req.domains, "workgroup": req.workgroup,
				"settings": model.EndpointSettings{Host: req.host, Port: req.port, Security: model.Security(req.security), InsecureSkipVerify: req.insecure,
					AdminUser: req.adminUser, Tenant: req.tenant, ClientID: req.clientID, Cloud: req.cloud}}
			if req.adminPasswordStdin || req.clientSecretStdin {
				s, err := g.readSecret()
				if err != nil {
					return err
				}
				cred := model.EndpointSecret{}
				if req.adminPasswordStdin {
					cred.AdminPassword = s
				} else {
					cred.ClientSecret = s
				}
				body["credentials"] = cred
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var e model.Endpoint
			if err := c.Do(cmd.Context(), "POST", "/api/v1/endpoints", body, &e); err != nil {
				return err
			}
			return g.print(e, func(w *tabwriter.Writer) { fmt.Fprintf(w, "Added endpoint %s (%s, %s).\n", e.Name, e.Kind, e.ID) })
		},
	}
	f := add.Flags()
	f.StringVar(&req.kind, "kind", "", "imap or m365")
	f.StringVar(&req.host, "host", "", "IMAP server host")
	f.IntVar(&req.port, "port", 0, "IMAP port (default 993 with tls, else 143)")
	f.StringVar(&req.security, "security", "tls", "none, starttls or tls")
	f.BoolVar(&req.insecure, "insecure-skip-verify", false, "do not verify the server's TLS certificate (testing only)")
	f.StringVar(&req.adminUser, "admin-user", "", "administrator login, used when items have no credentials of their own")
	f.BoolVar(&req.adminPasswordStdin, "admin-password-stdin", false, "read the administrator password from standard input")
	f.StringVar(&req.tenant, "tenant", "", "m365: tenant id or domain")
	f.StringVar(&req.clientID, "client-id", "", "m365: app (client) id")
	f.BoolVar(&req.clientSecretStdin, "client-secret-stdin", false, "m365: read the app's client secret from standard input")
	f.StringVar(&req.cloud, "cloud", "", "m365: global, usgov, usgovdod or china")
	f.StringSliceVar(&req.domains, "domains", nil, "your domains on this endpoint, comma-separated")
	f.StringVar(&req.workgroup, "workgroup", "", "workgroup (default: yours)")
	add.MarkFlagRequired("kind")
	table := func(es []model.Endpoint) func(w *tabwriter.Writer) {
		return func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "NAME\tKIND\tHOST/TENANT\tSECURITY\tCREDENTIALS\tID")
			for _, e := range es {
				where := e.Settings.Host
				if e.Settings.Port != 0 {
					where = fmt.Sprintf("%s:%d", e.Settings.Host, e.Settings.Port)
				}
				if e.Kind == model.KindM365 {
					where = e.Settings.Tenant
				}
				cred := "none"
				if e.HasSecret {
					cred = "set"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Kind, where, e.Settings.Security, cred, e.ID)
			}
		}
	}
	list := &cobra.Command{
		Use: "list", Short: "List endpoints", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			es, err := fetch[[]model.Endpoint](cmd, g, "/api/v1/endpoints")
			if err != nil {
				return err
			}
			return g.print(es, table(es))
		},
	}
	show := &cobra.Command{
		Use: "show NAME", Short: "Show one endpoint (never its credentials)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := fetch[model.Endpoint](cmd, g, "/api/v1/endpoints/"+esc(args[0]))
			if err != nil {
				return err
			}
			return g.print(e, table([]model.Endpoint{e}))
		},
	}
	verify := &cobra.Command{
		Use: "verify NAME", Short: "Check an endpoint's credentials and access", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var res api.VerifyResult
			if err := c.Do(cmd.Context(), "POST", "/api/v1/endpoints/"+esc(args[0])+"/verify", nil, &res); err != nil {
				return err
			}
			if err := g.print(res, func(w *tabwriter.Writer) {
				state := "OK"
				if !res.OK {
					state = "FAILED"
				}
				fmt.Fprintf(w, "%s: %s\n", state, res.Detail)
			}); err != nil {
				return err
			}
			if !res.OK {
				return withCode(ExitIncomplete, fmt.Errorf("endpoint %s did not verify", args[0]))
			}
			return nil
		},
	}
	cmd.AddCommand(add, list, show, verify)
	return cmd
}
