package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/internal/age"
	"github.com/ferry-migrate/ferry/internal/connector"
	_ "github.com/ferry-migrate/ferry/internal/connector/exo"  // registers kind m365
	_ "github.com/ferry-migrate/ferry/internal/connector/imap" // registers kind imap
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/model"
)

type copyFlags struct {
	state, pass, olderThan, newerThan string
	folderMap, exclude, include       []string
	connections                       int
	dryRun, srcPwStdin, dstPwStdin    bool
	srcTokenCmd, dstTokenCmd          string
	deletions                         bool
}

func copyCmd(g *globals) *cobra.Command {
	var f copyFlags
	cmd := &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy one mailbox to another, without a server; re-runs are deltas",
		Long: `Copy one mailbox to another without a Ferry server, like imapsync or mbsync. Messages arrive
byte for byte with their flags, keywords and received dates; re-running copies only what is new or
changed and never duplicates. The state (watermarks, cursors) is kept in --state.

SRC and DST are URLs:
  imap://USER:PASSWORD@HOST:PORT/?security=tls|starttls|none&auth=plain|login|xoauth2&insecure_skip_verify=1
  m365://TENANT/USER@DOMAIN?client_id=APP&cloud=global|usgov|usgovdod|china&graph=URL&ca_cert=FILE&mailbox=primary|archive
Passwords may instead come from FERRY_SRC_PASSWORD / FERRY_DST_PASSWORD, or standard input
(--src-password-stdin, --dst-password-stdin; with both, the source's is the first line). With
auth=xoauth2 the password is an OAuth access token; as tokens last about an hour,
--src-token-cmd / --dst-token-cmd name a command (run by sh) that prints a fresh one, run at every
sign-in, so that reconnects late in a long copy still sign in. For m365
the "password" is the app's client secret, and the client id may come from FERRY_SRC_CLIENT_ID /
FERRY_DST_CLIENT_ID. graph= points at another Graph host (the emulator, ferry sim), ca_cert= at the
PEM certificate to trust for it. Between two m365 mailboxes items move in Exchange's full-fidelity
format through the mailbox import/export API; from IMAP to m365 each message is created as a
received message (not a draft) with its flags, categories and dates, large attachments through
upload sessions.

Exit codes: 0 everything is at the target; 3 something is missing or failed (see the table).`,
		Example: `  ferry copy 'imap://alice@old.example/?security=tls' 'imap://alice@new.example/' --src-password-stdin <<< "$PW"
  ferry copy SRC DST --pass prestage --older-than 90d
  ferry copy SRC DST --folder-map 'Gesendete Objekte=Sent' --exclude '^Junk' --connections 8 --dry-run`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error { return runCopy(cmd.Context(), g, args[0], args[1], f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.state, "state", "", "state file (default: one per source/target pair in the user cache dir)")
	fl.StringVar(&f.pass, "pass", "full", "full or prestage")
	fl.StringVar(&f.olderThan, "older-than", "", "prestage: copy only messages older than this, e.g. 90d")
	fl.StringVar(&f.newerThan, "newer-than", "", "copy only messages newer than this, e.g. 30d")
	fl.StringArrayVar(&f.folderMap, "folder-map", nil, "map a source folder (regular expression) to a target folder: 'A=B' (repeatable)")
	fl.StringArrayVar(&f.exclude, "exclude", nil, "leave out folders matching this regular expression (repeatable)")
	fl.StringArrayVar(&f.include, "include", nil, "copy only folders matching this regular expression (repeatable)")
	fl.IntVar(&f.connections, "connections", 4, "connections per side: folders copied in parallel")
	fl.BoolVar(&f.dryRun, "dry-run", false, "show what would be copied; write nothing")
	fl.BoolVar(&f.deletions, "delete", false, "also delete at the target what was deleted at the source since it was copied")
	fl.BoolVar(&f.srcPwStdin, "src-password-stdin", false, "read the source password from standard input")
	fl.BoolVar(&f.dstPwStdin, "dst-password-stdin", false, "read the target password from standard input")
	fl.StringVar(&f.srcTokenCmd, "src-token-cmd", "", "imap source: command printing a fresh OAuth access token, run at each sign-in (implies auth=xoauth2)")
	fl.StringVar(&f.dstTokenCmd, "dst-token-cmd", "", "imap target: command printing a fresh OAuth access token, run at each sign-in (implies auth=xoauth2)")
	return cmd
}

func runCopy(ctx context.Context, g *globals, srcRaw, dstRaw string, f copyFlags) error {
	src, err := parseEndpointURL(srcRaw, "SRC")
	if err != nil {
		return withCode(ExitUsage, err)
	}
	dst, err := parseEndpointURL(dstRaw, "DST")
	if err != nil {
		return withCode(ExitUsage, err)
	}
	if err := tokenCommand(&src, f.srcTokenCmd, "src"); err != nil {
		return err
	}
	if err := tokenCommand(&dst, f.dstTokenCmd, "dst"); err != nil {
		return err
	}
	if err := copyPasswords(g, &src, &dst, f); err != nil {
		return err
	}
	if f.connections < 1 || f.connections > 64 {
		return withCode(ExitUsage, fmt.Errorf("--connections %d: want 1 to 64", f.connections))
	}
	src.settings.Connections, dst.settings.Connections = f.connections, f.connections
	opts := model.ProjectOptions{IncludeFolders: f.include, ExcludeFolders: f.exclude}
	for _, m := range f.folderMap {
		from, to, ok := strings.Cut(m, "=")
		if !ok {
			return withCode(ExitUsage, fmt.Errorf("--folder-map %q: want SOURCE=TARGET", m))
		}
		opts.FolderMap = append(opts.FolderMap, model.FolderRule{From: from, To: to})
	}
	inc, exc, rules, err := engine.CompileOptions(opts)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	co := engine.CopyOptions{Include: inc, Exclude: exc, FolderMap: rules, Connections: f.connections, DryRun: f.dryRun, PropagateDeletions: f.deletions}
	switch f.pass {
	case "full":
		if f.olderThan != "" {
			return withCode(ExitUsage, errors.New("--older-than goes with --pass prestage"))
		}
	case "prestage":
		if co.OlderThan, err = age.Parse(f.olderThan); err != nil || co.OlderThan == 0 {
			return withCode(ExitUsage, fmt.Errorf("--pass prestage needs --older-than, e.g. 90d"))
		}
	default:
		return withCode(ExitUsage, fmt.Errorf("--pass %q: want full or prestage", f.pass))
	}
	if co.NewerThan, err = age.Parse(f.newerThan); err != nil {
		return withCode(ExitUsage, err)
	}

	st, itemID, err := openCopyState(ctx, f.state, src, dst)
	if err != nil {
		return err
	}
	defer st.Close()
	co.ItemID, co.PassID = itemID, "copy-"+time.Now().UTC().Format("20060102T150405")

	sc, err := connector.For(src.kind)
	if err != nil {
		return err
	}
	dc, err := connector.For(dst.kind)
	if err != nil {
		return err
	}
	source, err := sc.OpenSource(ctx, src.side())
	if err != nil {
		return fmt.Errorf("source %s: %w", src, err)
	}
	defer source.Close()
	target, err := dc.OpenTarget(ctx, dst.side())
	if err != nil {
		return fmt.Errorf("target %s: %w", dst, err)
	}
	defer target.Close()
	folders, err := source.Folders(ctx)
	if err != nil {
		return err
	}
	if (len(f.include) > 0 || len(f.exclude) > 0) && len(folders) > 0 && !co.Selects(folders) {
		names := make([]string, len(folders))
		for i, fo := range folders {
			names[i] = fo.Path
		}
		return withCode(ExitUsage, fmt.Errorf("--include/--exclude leave none of the source's %d folders (%s); nothing was copied", len(folders), strings.Join(names, ", ")))
	}
	pr := newProgress(g.stderr, len(folders))
	co.Progress = pr.update
	stats, results, err := engine.CopyMailbox(ctx, st, source, target, co)
	pr.stop()
	if stats.Errors > 0 {
		errs, _ := st.ObjectErrors(context.WithoutCancel(ctx), itemID, 50)
		for _, e := range errs {
			if e.PassID == co.PassID {
				fmt.Fprintf(g.stderr, "error: %s message %s: %s\n", e.Folder, e.SourceID, e.Reason)
			}
		}
	}
	if err != nil {
		printResults(g, results, f.dryRun)
		return fmt.Errorf("copy stopped: %w (run again to resume)", err)
	}
	return finishCopy(g, stats, results, f.dryRun)
}

func copyPasswords(g *globals, src, dst *endpointURL, f copyFlags) error {
	var lines []string
	if f.srcPwStdin || f.dstPwStdin {
		data, err := io.ReadAll(io.LimitReader(g.stdin, 64<<10))
		if err != nil {
			return err
		}
		lines = strings.Split(strings.TrimRight(string(data), "\r\n"), "\n")
	}
	// The most specific wins: a password in the URL over the environment, which is shared by
	// every copy of the shell. Two explicit ones (the URL and standard input) are refused.
	take := func(e *endpointURL, stdin bool, env, what string) error {
		switch {
		case e.token != nil:
			if stdin || e.hasPW {
				return withCode(ExitUsage, fmt.Errorf("%s: give a password or --%s-token-cmd, not both", what, what))
			}
		case stdin && e.hasPW:
			return withCode(ExitUsage, fmt.Errorf("%s: the URL holds a password and --%s-password-stdin reads another; give one", what, what[:3]))
		case e.hasPW:
			// the URL's
		case stdin:
			if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
				return withCode(ExitUsage, fmt.Errorf("expected the %s password on standard input", what))
			}
			e.password, lines = strings.TrimRight(lines[0], "\r"), lines[1:]
		case os.Getenv(env) != "":
			e.password = os.Getenv(env)
		case !e.hasPW && e.kind == model.KindM365:
			return withCode(ExitUsage, fmt.Errorf("no %s client secret: set %s or use --%s-password-stdin", what, env, what[:3]))
		case !e.hasPW:
			return withCode(ExitUsage, fmt.Errorf("no %s password: put it in the URL, in %s, or use --%s-password-stdin", what, env, what[:3]))
		}
		return nil
	}
	if err := take(src, f.srcPwStdin, "FERRY_SRC_PASSWORD", "src"); err != nil {
		return err
	}
	return take(dst, f.dstPwStdin, "FERRY_DST_PASSWORD", "dst")
}

func printResults(g *globals, results []engine.FolderResult, dryRun bool) {
	g.print(results, func(w *tabwriter.Writer) {
		if dryRun {
			fmt.Fprintln(w, "SOURCE FOLDER\tTARGET FOLDER\tMESSAGES\tWOULD COPY")
			for _, r := range results {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", r.Source, r.Target, r.SourceCount, r.WouldCopy)
			}
			return
		}
		fmt.Fprintln(w, "SOURCE FOLDER\tTARGET FOLDER\tSOURCE\tTARGET\tCOPIED\tUPDATED\tDELETED\tERRORS\tRECONCILED")
		for _, r := range results {
			ok := "yes"
			if !r.Reconciled {
				ok = "NO: " + reconcileText(r.Missing, r.Extra)
			}
			if r.Filtered > 0 {
				ok += fmt.Sprintf(" (%d left for a later pass)", r.Filtered)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Source, r.Target, r.SourceCount, r.TargetCount, r.Copied, r.Updated, r.Deleted, r.Errors, ok)
		}
	})
}

// reconcileText says what a reconciliation found wrong: "3 missing, 2 extra".
func reconcileText[N int | int64](missing, extra N) string {
	var parts []string
	if missing > 0 {
		parts = append(parts, fmt.Sprintf("%d missing", missing))
	}
	if extra > 0 {
		parts = append(parts, fmt.Sprintf("%d extra", extra))
	}
	return strings.Join(parts, ", ")
}

func finishCopy(g *globals, stats model.ItemStats, results []engine.FolderResult, dryRun bool) error {
	printResults(g, results, dryRun)
	if dryRun {
		return nil
	}
	missing, extra := 0, 0
	for _, r := range results {
		if !r.Reconciled {
			missing++
		}
		if r.Extra > 0 {
			extra++
		}
	}
	if g.output == "table" {
		// The footer adds up the table's columns, so the two never disagree.
		var copied, updated, deleted, errs, bytes int64
		for _, r := range results {
			copied, updated, deleted, errs, bytes = copied+r.Copied, updated+r.Updated, deleted+r.Deleted, errs+r.Errors, bytes+r.Bytes
		}
		fmt.Fprintf(g.stdout, "\n%d folders, %d messages copied (%.1f MB), %d updated, %d deleted, %d errors, in %s.\n",
			len(results), copied, float64(bytes)/1e6, updated, deleted, errs, (time.Duration(stats.Duration) * time.Millisecond).Round(time.Millisecond))
	}
	if missing > 0 || stats.Errors > 0 {
		hint := "run again, or see the errors above"
		if extra > 0 {
			hint += "; messages deleted at the source stay at the target unless --delete"
		}
		return withCode(ExitIncomplete, fmt.Errorf("%d folders do not reconcile (missing or extra messages) and %d messages failed; %s", missing, stats.Errors, hint))
	}
	return nil
}
