package cli

import (
	"fmt"
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
			ds, err := fetch[[]model.Device](cmd, g, "/api/v1/projects/"+esc(args[0])+"/devices")
			if err != nil {
				return err
			}
			return g.print(ds, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tHOST\tOS\tUSER\tSOFTWARE\tAGENT\tLAST SEEN\tSTATE")
				for _, d := range ds {
					var sw []string
					for k, v := range d.Software {
						sw = append(sw, k+" "+v)
					}
					sort.Strings(sw)
					state := "active"
					if d.RevokedAt != nil {
						state = "revoked"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Hostname, d.OSVersion, d.UserEmail, strings.Join(sw, ", "), d.AgentVersion,
						d.LastSeenAt.Format(time.DateTime), state)
				}
			})
		},
	}
	cmd.AddCommand(token, devices)
	return cmd
}
