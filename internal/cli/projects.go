package cli

import (
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

func projectCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "project", Aliases: []string{"projects"}, Short: "Manage migration projects"}
	var workload, source, target, workgroup string
	var maxConc, olderDays, newerDays int
	var include, exclude, folderMap []string
	var impersonation, deletions bool
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a project pairing a source and a target endpoint", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := model.ProjectOptions{MaxConcurrent: maxConc, IncludeFolders: include, ExcludeFolders: exclude,
				OlderThanDays: olderDays, NewerThanDays: newerDays, Impersonation: impersonation, PropagateDeletions: deletions}
			for _, m := range folderMap {
				from, to, ok := strings.Cut(m, "=")
				if !ok {
					return withCode(ExitUsage, fmt.Errorf("--folder-map %q: want SOURCE=TARGET", m))
				}
				opts.FolderMap = append(opts.FolderMap, model.FolderRule{From: from, To: to})
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var p model.Project
			body := map[string]any{"name": args[0], "workload": workload, "source": source, "target": target, "workgroup": workgroup, "options": opts}
			if err := c.Do(cmd.Context(), "POST", "/api/v1/projects", body, &p); err != nil {
				return err
			}
			return g.print(p, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "Created project %s (%s, %s), at most %d items at once.\n", p.Name, p.Workload, p.ID, p.Options.MaxConcurrent)
			})
		},
	}
	f := create.Flags()
	f.StringVar(&workload, "workload", "mailbox", "mailbox, archive, onedrive, sharepoint or teams")
	f.StringVar(&source, "source", "", "source endpoint name")
	f.StringVar(&target, "target", "", "target endpoint name")
	f.StringVar(&workgroup, "workgroup", "", "workgroup (default: yours)")
	f.IntVar(&maxConc, "max-concurrent", model.DefaultMaxConcurrent, "maximum items migrating at once")
	f.StringSliceVar(&include, "include", nil, "only folders matching these regular expressions")
	f.StringSliceVar(&exclude, "exclude", nil, "leave out folders matching these regular expressions")
	f.StringArrayVar(&folderMap, "folder-map", nil, "map folders: 'SOURCE-REGEX=TARGET' (repeatable)")
	f.IntVar(&olderDays, "older-than-days", 0, "prestage: copy only items older than this many days")
	f.IntVar(&newerDays, "newer-than-days", 0, "copy only items newer than this many days")
	f.BoolVar(&impersonation, "impersonation", false, "use the endpoint's admin credentials for every mailbox")
	f.BoolVar(&deletions, "propagate-deletions", false, "full passes also delete at the target what was deleted at the source")
	create.MarkFlagRequired("source")
	create.MarkFlagRequired("target")
	table := func(ps []api.ProjectView) func(w *tabwriter.Writer) {
		return func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "NAME\tWORKLOAD\tSOURCE\tTARGET\tITEMS\tCOMPLETED\tRUNNING\tFAILED\tID")
			for _, p := range ps {
				total := 0
				for _, n := range p.Counts {
					total += n
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", p.Name, p.Workload, p.Source, p.Target, total,
					p.Counts[model.StatusCompleted]+p.Counts[model.StatusCompletedWithErrors], p.Counts[model.StatusRunning]+p.Counts[model.StatusQueued],
					p.Counts[model.StatusFailed], p.ID)
			}
		}
	}
	list := &cobra.Command{
		Use: "list", Short: "List projects with item counts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := fetch[[]api.ProjectView](cmd, g, "/api/v1/projects")
			if err != nil {
				return err
			}
			return g.print(ps, table(ps))
		},
	}
	show := &cobra.Command{
		Use: "show NAME", Short: "Show a project", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := fetch[api.ProjectView](cmd, g, "/api/v1/projects/"+esc(args[0]))
			if err != nil {
				return err
			}
			return g.print(p, func(w *tabwriter.Writer) {
				table([]api.ProjectView{p})(w)
				fmt.Fprintf(w, "\nmax concurrent:\t%d\n", p.Options.MaxConcurrent)
				for _, s := range model.Statuses {
					if p.Counts[s] > 0 {
						fmt.Fprintf(w, "%s:\t%d\n", s, p.Counts[s])
					}
				}
			})
		},
	}
	cmd.AddCommand(create, list, show)
	return cmd
}

func itemsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "items", Aliases: []string{"item"}, Short: "Manage a project's items (mailboxes, drives, sites)"}
	imp := &cobra.Command{
		Use:   "import PROJECT FILE.csv",
		Short: "Import items from CSV: all lines or none",
		Long: `Import items from a CSV file with a header row (names in any case):
  source_email, target_email            required
  source_login, source_password,
  target_login, target_password         optional (per-item credentials, stored encrypted)
Every bad line is listed with its number and reason, and nothing is imported. Lines whose
source_email already exists update that item.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[1])
			if err != nil {
				return withCode(ExitUsage, err)
			}
			defer f.Close()
			c, err := g.client()
			if err != nil {
				return err
			}
			var res api.ImportResponse
			err = c.Upload(cmd.Context(), "POST", "/api/v1/projects/"+esc(args[0])+"/items/import", "text/csv", f, &res)
			var p *client.Problem
			if errors.As(err, &p) && len(p.Errors) > 0 {
				for _, l := range p.Errors {
					fmt.Fprintf(g.stderr, "%s:%d: %s\n", args[1], l.Line, l.Reason)
				}
				total := max(p.ErrorsTotal, len(p.Errors))
				if total > len(p.Errors) {
					fmt.Fprintf(g.stderr, "%s: and %d more bad lines\n", args[1], total-len(p.Errors))
				}
				return withCode(ExitIncomplete, fmt.Errorf("%s: %d bad lines; nothing was imported", args[1], total))
			} else if err != nil {
				return err
			}
			return g.print(res, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "Imported %d lines: %d new items, %d updated.\n", res.Lines, res.Created, res.Updated)
			})
		},
	}
	var status, text string
	list := &cobra.Command{
		Use: "list PROJECT", Short: "List items", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			items, err := allItems(cmd, c, args[0], status, text)
			if err != nil {
				return err
			}
			return g.print(items, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "SOURCE\tTARGET\tSTATUS\tOBJECTS\tSIZE\tERRORS\tLAST ERROR")
				for _, it := range items {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\t%s\n", it.SourceEmail, it.TargetEmail, it.Status, it.Stats.Objects, human(it.Stats.Bytes), it.Stats.Errors, oneLine(it.LastError))
				}
			})
		},
	}
	list.Flags().StringVar(&status, "status", "", "only items with this status")
	list.Flags().StringVar(&text, "search", "", "only items whose addresses contain this text")
	cmd.AddCommand(imp, list)
	return cmd
}

func allItems(cmd *cobra.Command, c *client.Client, project, status, text string) ([]model.Item, error) {
	var out []model.Item
	for offset := 0; ; {
		var page api.ItemPage
		q := fmt.Sprintf("?limit=5000&offset=%d&status=%s&q=%s", offset, esc(status), esc(text))
		if err := c.Do(cmd.Context(), "GET", "/api/v1/projects/"+esc(project)+"/items"+q, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		offset += len(page.Items)
		if len(page.Items) == 0 || offset >= page.Total {
			return out, nil
		}
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func migrateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Start, schedule and stop passes"}
	var pass, items, olderThan, at, repeat, until string
	var wait bool
	start := &cobra.Command{
		Use:   "start PROJECT",
		Short: "Start a pass (verify, prestage, full or retry) now or later",
		Example: `  ferry migrate start acme --pass verify --wait
  ferry migrate start acme --pass prestage --older-than 90d
  ferry migrate start acme --pass full --repeat 24h --until 2026-12-05T22:00:00Z   # continuous sync until cutover`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			req := api.PassRequest{Type: pass, Items: splitCSV(items), OlderThan: olderThan, At: at, Repeat: repeat, Until: until}
			var res api.PassResponse
			if err := c.Do(cmd.Context(), "POST", "/api/v1/projects/"+esc(args[0])+"/passes", req, &res); err != nil {
				return err
			}
			if res.Schedule != nil {
				return g.print(res, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "Scheduled %s pass %s for %s", res.Schedule.PassType, res.Schedule.ID, res.Schedule.NextAt.Local().Format(time.RFC1123))
					if res.Schedule.Every > 0 {
						fmt.Fprintf(w, ", repeating every %s until %s", res.Schedule.Every, res.Schedule.Until.Local().Format(time.RFC1123))
					}
					fmt.Fprintln(w, ".")
				})
			}
			if g.output == "table" {
				fmt.Fprintf(g.stdout, "Started %s pass %s over %d items.\n", res.Pass.Type, res.Pass.ID, res.Pass.Items)
				if len(res.Skipped) > 0 {
					fmt.Fprintf(g.stdout, "Skipped %d items already queued or running.\n", len(res.Skipped))
				}
			}
			if !wait {
				if g.output == "json" {
					return g.print(res, nil)
				}
				return nil
			}
			return waitPass(cmd, g, c, args[0], res.Pass)
		},
	}
	f := start.Flags()
	f.StringVar(&pass, "pass", "", "verify, prestage, full or retry")
	f.StringVar(&items, "items", "", "only these source addresses, comma-separated")
	f.StringVar(&olderThan, "older-than", "", "prestage: only content older than this, e.g. 90d")
	f.StringVar(&at, "at", "", "start at this time (RFC 3339, e.g. 2026-12-01T22:00:00Z)")
	f.StringVar(&repeat, "repeat", "", "repeat every interval, e.g. 24h (needs --until)")
	f.StringVar(&until, "until", "", "cutover time when repeating stops (RFC 3339)")
	f.BoolVar(&wait, "wait", false, "show progress until the pass ends; exit 0 only if every item completed")
	start.MarkFlagRequired("pass")
	var stopItems string
	stop := &cobra.Command{
		Use: "stop PROJECT", Short: "Stop running and queued items; without --items, also cancel schedules", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var res map[string]int
			if err := c.Do(cmd.Context(), "POST", "/api/v1/projects/"+esc(args[0])+"/stop", map[string]any{"items": splitCSV(stopItems)}, &res); err != nil {
				return err
			}
			return g.print(res, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "Stopping %d items; %d schedules cancelled.\n", res["stopped"], res["schedules_cancelled"])
			})
		},
	}
	stop.Flags().StringVar(&stopItems, "items", "", "only these source addresses, comma-separated")
	cmd.AddCommand(start, stop)
	return cmd
}

// waitPass polls the project until every item of the pass has ended, showing progress.
func waitPass(cmd *cobra.Command, g *globals, c *client.Client, project string, pass *model.Pass) error {
	tty := isTerminal(g.stdout)
	last := ""
	for {
		items, err := allItems(cmd, c, project, "", "")
		if err != nil {
			return err
		}
		counts := map[model.ItemStatus]int{}
		var mine []model.Item
		var bytes int64
		for _, it := range items {
			if it.LastPassID == pass.ID {
				mine = append(mine, it)
				counts[it.Status]++
				bytes += it.Stats.Bytes
			}
		}
		done := counts[model.StatusCompleted] + counts[model.StatusCompletedWithErrors] + counts[model.StatusFailed] + counts[model.StatusStopped]
		line := fmt.Sprintf("%d/%d done: %d completed, %d with errors, %d failed, %d stopped, %d running, %d queued",
			done, len(mine), counts[model.StatusCompleted], counts[model.StatusCompletedWithErrors], counts[model.StatusFailed],
			counts[model.StatusStopped], counts[model.StatusRunning], counts[model.StatusQueued])
		if line != last && g.output == "table" {
			if tty {
				fmt.Fprintf(g.stdout, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(g.stdout, line)
			}
			last = line
		}
		if len(mine) > 0 && done == len(mine) {
			if tty {
				fmt.Fprintln(g.stdout)
			}
			if g.output == "json" {
				g.print(map[string]any{"pass": pass, "counts": counts}, nil)
			}
			if counts[model.StatusCompleted] != len(mine) {
				return withCode(ExitIncomplete, fmt.Errorf("pass %s: %d of %d items did not complete cleanly (see `ferry items list %s`)",
					pass.ID, len(mine)-counts[model.StatusCompleted], len(mine), project))
			}
			return nil
		}
		select {
		case <-cmd.Context().Done():
			return cmd.Context().Err()
		case <-time.After(time.Second):
		}
	}
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func splitCSV(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// reconciledWord says whether the latest check reconciled: yes, NO, or - before any check.
func reconciledWord(s model.ItemStats) string {
	switch {
	case !s.Checked():
		return "-"
	case s.Reconciled():
		return "yes"
	}
	return "NO: " + reconcileText(s.Missing, s.Extra)
}

func statsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "stats PROJECT", Short: "Per-item status, folders, objects, bytes, errors and duration", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := fetch[api.StatsResponse](cmd, g, "/api/v1/projects/"+esc(args[0])+"/stats")
			if err != nil {
				return err
			}
			return g.print(st, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "SOURCE\tSTATUS\tFOLDERS\tOBJECTS\tSIZE\tERRORS\tDURATION\tMATCHED\tMISSING\tEXTRA\tRECONCILED")
				row := func(name, status string, s model.ItemStats) {
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%d\t%s\t%d\t%d\t%d\t%s\n", name, status, s.Folders, s.Objects, human(s.Bytes), s.Errors,
						time.Duration(s.Duration)*time.Millisecond, s.Matched, s.Missing, s.Extra, reconciledWord(s))
				}
				for _, it := range st.Items {
					row(it.SourceEmail, string(it.Status), it.Stats)
				}
				row("TOTAL", fmt.Sprintf("%d items", len(st.Items)), st.Total)
			})
		},
	}
}
