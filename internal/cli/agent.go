package cli

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/model"
)

func agentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Workstation agents: enrolment tokens and devices"}
	token := &cobra.Command{Use: "token", Short: "Manage a project's enrolment tokens"}
	var name, expires string
	create := &cobra.Command{
		Use:   "create PROJECT",
		Short: "Create an enrolment token; its value and the company key are shown only once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var out api.AgentTokenResponse
			if err := c.Do(cmd.Context(), "POST", "/api/v1/projects/"+esc(args[0])+"/agent/tokens", map[string]string{"name": name, "expires": expires}, &out); err != nil {
				return err
			}
			return g.print(out, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "Enrolment token %q (%s), valid until %s. Copy it now; it is not shown again:\n%s\ncompany key: %s\n",
					out.Info.Name, out.Info.ID, out.Info.ExpiresAt.Format(time.RFC3339), out.Token, out.CompanyKey)
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the token is for, e.g. laptops-wave-1")
	create.Flags().StringVar(&expires, "expires", "30d", "lifetime, e.g. 30d or 12h")
	create.MarkFlagRequired("name")
	list := &cobra.Command{
		Use: "list PROJECT", Short: "List a project's enrolment tokens", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := fetch[[]model.AgentToken](cmd, g, "/api/v1/projects/"+esc(args[0])+"/agent/tokens")
			if err != nil {
				return err
			}
			return g.print(ts, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tNAME\tCREATED\tEXPIRES\tSTATE")
				for _, t := range ts {
					state := "active"
					if !t.Usable(time.Now()) {
						state = "revoked/expired"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Format(time.DateOnly), t.ExpiresAt.Format(time.DateOnly), state)
				}
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke PROJECT ID", Short: "Revoke an enrolment token at once; enrolled devices go on", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), "DELETE", "/api/v1/projects/"+esc(args[0])+"/agent/tokens/"+esc(args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Revoked %s.\n", args[1])
			return nil
		},
	}
	token.AddCommand(create, list, revoke)
	devices := &cobra.Command{
		Use: "devices PROJECT", Short: "List a project's devices and what they last reported", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ds, err := fetch[[]api.DeviceView](cmd, g, "/api/v1/projects/"+esc(args[0])+"/devices")
			if err != nil {
				return err
			}
			return g.print(ds, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tHOST\tOS\tUSER\tSOFTWARE\tAGENT\tLAST SEEN\tSTATE\tTASKS")
				for _, d := range ds {
					var sw []string
					for k, v := range d.Software {
						sw = append(sw, k+" "+v)
					}
					sort.Strings(sw)
					state := "active"
					switch {
					case d.RevokedAt != nil:
						state = "revoked"
					case d.Release != model.ReleaseAuto:
						state = string(d.Release)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Hostname, d.OSVersion, d.UserEmail, strings.Join(sw, ", "), d.AgentVersion,
						d.LastSeenAt.Format(time.DateTime), state, taskList(d.Tasks))
				}
			})
		},
	}
	logs := &cobra.Command{
		Use: "logs DEVICE", Short: "Show the newest log lines a device's agent uploaded", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ls, err := fetch[[]model.DeviceLog](cmd, g, "/api/v1/devices/"+esc(args[0])+"/logs")
			if err != nil {
				return err
			}
			return g.print(ls, func(w *tabwriter.Writer) {
				for _, l := range ls {
					fmt.Fprintf(w, "%s  %s\n", l.At.Local().Format(time.DateTime), l.Line)
				}
			})
		},
	}
	action := &cobra.Command{
		Use:       "action DEVICE start|stop|restart|complete",
		Short:     "Start a device's tasks now, hold them, run them again, or mark them complete",
		Args:      cobra.ExactArgs(2),
		ValidArgs: []string{"start", "stop", "restart", "complete"},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var v api.DeviceView
			if err := c.Do(cmd.Context(), "POST", "/api/v1/devices/"+esc(args[0])+"/actions", map[string]string{"action": args[1]}, &v); err != nil {
				return err
			}
			return g.print(v, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "%s %s: %s\n", args[1], v.Hostname, taskList(v.Tasks))
			})
		},
	}
	revokeDev := &cobra.Command{
		Use: "revoke DEVICE", Short: "Revoke a device's credential at once: its agent is refused from then on", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var d model.Device
			if err := c.Do(cmd.Context(), "POST", "/api/v1/devices/"+esc(args[0])+"/revoke", nil, &d); err != nil {
				return err
			}
			return g.print(d, func(w *tabwriter.Writer) { fmt.Fprintf(w, "revoked %s (%s)\n", d.Hostname, d.ID) })
		},
	}
	var tasks []string
	var company, prompt, logo, preFile, postFile string
	var opts model.AgentSettings
	settings := &cobra.Command{
		Use:   "settings PROJECT",
		Short: "Show or set a project's agent tasks and the prompt users see",
		Long: `Without flags, shows the settings. With --tasks (some of outlook, onedrive, teams, office,
entra; they always run in that order) and the prompt flags, replaces them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/api/v1/projects/" + esc(args[0]) + "/agent/settings"
			var set model.AgentSettings
			if cmd.Flags().NFlag() > 0 {
				c, err := g.client()
				if err != nil {
					return err
				}
				want := opts
				want.Tasks, want.CompanyName, want.PromptText, want.LogoURL = tasks, company, prompt, logo
				for _, sc := range []struct {
					file string
					to   *string
				}{{preFile, &want.PreScript}, {postFile, &want.PostScript}} {
					if sc.file != "" {
						data, err := os.ReadFile(sc.file)
						if err != nil {
							return withCode(ExitUsage, err)
						}
						*sc.to = string(data)
					}
				}
				if err := c.Do(cmd.Context(), "PUT", path, want, &set); err != nil {
					return err
				}
			} else {
				var err error
				if set, err = fetch[model.AgentSettings](cmd, g, path); err != nil {
					return err
				}
			}
			return g.print(set, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "tasks:\t%s\ncompany:\t%s\nprompt:\t%s\nlogo:\t%s\npre-script:\t%d bytes\npost-script:\t%d bytes\n",
					strings.Join(set.Steps(), ", "), set.CompanyName, set.PromptText, set.LogoURL, len(set.PreScript), len(set.PostScript))
				fmt.Fprintf(w, "source tenant:\t%s\ntarget tenant:\t%s\noutlook profile:\t%s\nreattach PST:\t%t\nentra leave:\t%t\nclose apps after:\t%ds\n",
					orDash(set.SourceTenantID), orDash(set.TargetTenantID), orDash(set.OutlookProfile), set.ReattachPST, set.EntraLeave, set.CloseAppsAfter)
			})
		},
	}
	settings.Flags().StringSliceVar(&tasks, "tasks", model.AgentTasks, "tasks to run: "+strings.Join(model.AgentTasks, ","))
	settings.Flags().StringVar(&company, "company", "", "company name shown to users")
	settings.Flags().StringVar(&prompt, "prompt", "", "text shown to users before their PC is switched over")
	settings.Flags().StringVar(&logo, "logo", "", "logo: an https:// or data:image/ URL")
	settings.Flags().StringVar(&preFile, "pre-script", "", "file of a script run before the first task (PowerShell on Windows)")
	settings.Flags().StringVar(&postFile, "post-script", "", "file of a script run after the last task")
	settings.Flags().StringVar(&opts.SourceTenantID, "source-tenant-id", "", "the source tenant's directory id (default: the source endpoint's, when it is an id)")
	settings.Flags().StringVar(&opts.TargetTenantID, "target-tenant-id", "", "the target tenant's directory id (default: the target endpoint's, when it is an id)")
	settings.Flags().StringVar(&opts.OutlookProfile, "outlook-profile", "", "name of the new Outlook profile (default: the target address)")
	settings.Flags().BoolVar(&opts.ReattachPST, "reattach-pst", false, "attach the old Outlook profile's PST files to the new one")
	settings.Flags().BoolVar(&opts.EntraLeave, "entra-leave", false, "let the agent run dsregcmd /leave on devices joined to the source tenant")
	settings.Flags().IntVar(&opts.CloseAppsAfter, "close-apps-after", 0, "seconds users get to close Outlook, Teams and Office before the agent closes them (default 300)")
	cutover := &cobra.Command{
		Use:   "cutover ITEM TIME|none",
		Short: "Set when an item's workstation may be switched over (RFC 3339, e.g. 2026-12-05T22:00:00+01:00), or clear it",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var at *time.Time
			if args[1] != "none" {
				t, err := time.Parse(time.RFC3339, args[1])
				if err != nil {
					return withCode(ExitUsage, fmt.Errorf("time %q: want RFC 3339 like 2026-12-05T22:00:00+01:00, or none", args[1]))
				}
				at = &t
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), "PUT", "/api/v1/items/"+esc(args[0])+"/cutover", map[string]any{"at": at}, nil); err != nil {
				return err
			}
			if at == nil {
				fmt.Fprintf(g.stdout, "Cleared the cutover time of %s.\n", args[0])
			} else {
				fmt.Fprintf(g.stdout, "Cutover of %s at %s (%s UTC).\n", args[0], at.Local().Format(time.DateTime), at.UTC().Format(time.DateTime))
			}
			return nil
		},
	}
	var pkgOS, pkgArch, pkgServer, pkgOut string
	pkg := &cobra.Command{
		Use:   "package PROJECT",
		Short: "Build the project's agent package (ferry-agent and agent.json in a zip); the previous package's token is revoked",
		Long: `Build a zip holding ferry-agent for the chosen platform and its agent.json: the server's URL, the
project's company key, a new enrolment token and the server certificate's fingerprint. Reissuing
a package revokes the token of the one before at once; devices that enrolled with it go on. The
server takes the binary from its --agent-dir (default <data>/agents), e.g.
ferry-agent-windows-amd64.exe built with GOOS=windows go build ./cmd/ferry-agent.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if pkgOut == "" {
				pkgOut = "ferry-agent-" + args[0] + "-" + pkgOS + ".zip"
			}
			f, err := os.OpenFile(pkgOut, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600) // it holds a live token
			if err != nil {
				return err
			}
			err = c.Do(cmd.Context(), "POST", "/api/v1/projects/"+esc(args[0])+"/agent/package", map[string]string{"os": pkgOS, "arch": pkgArch, "server_url": pkgServer}, f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(pkgOut)
				return err
			}
			fmt.Fprintf(g.stdout, "Wrote %s. It holds a live enrolment token: hand it out like a password.\n", pkgOut)
			return nil
		},
	}
	pkg.Flags().StringVar(&pkgOS, "os", "windows", "windows, linux or darwin")
	pkg.Flags().StringVar(&pkgArch, "arch", "amd64", "amd64 or arm64")
	pkg.Flags().StringVar(&pkgServer, "server-url", "", "the URL agents reach the server at (default: the one this command used)")
	pkg.Flags().StringVarP(&pkgOut, "out", "f", "", "file to write (default ferry-agent-PROJECT-OS.zip)")
	cmd.AddCommand(token, devices, logs, action, revokeDev, settings, cutover, pkg)
	return cmd
}

func taskList(ts []model.DeviceTask) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Task+" "+string(t.Status))
	}
	return strings.Join(out, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
