package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/internal/age"
	"github.com/ferry-migrate/ferry/internal/connector"
	_ "github.com/ferry-migrate/ferry/internal/connector/exo"  // registers kind m365
	_ "github.com/ferry-migrate/ferry/internal/connector/imap" // registers kind imap
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/secret"
	"github.com/ferry-migrate/ferry/internal/store"
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

// endpointURL is a parsed SRC or DST.
type endpointURL struct {
	kind     model.EndpointKind
	settings model.EndpointSettings
	workload model.Workload // m365: the mailbox, or its archive (?mailbox=archive)
	user     string
	password string
	hasPW    bool
	token    func(context.Context) (string, error) // from --src-token-cmd / --dst-token-cmd
}

func parseEndpointURL(raw, what string) (endpointURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return endpointURL{}, fmt.Errorf("%s: %w", what, err)
	}
	var e endpointURL
	switch u.Scheme {
	case "imap", "imaps":
		e.kind = model.KindIMAP
	case "m365":
		return parseM365URL(u, what)
	case "":
		return e, fmt.Errorf("%s %q: want a URL like imap://user@host/ or m365://tenant/user@domain", what, raw)
	default:
		return e, fmt.Errorf("%s: scheme %q is not supported here: use imap:// or m365://", what, u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return e, fmt.Errorf("%s %q: the user is missing (imap://USER@host/)", what, redactPW(raw))
	}
	e.user = u.User.Username()
	e.password, e.hasPW = u.User.Password()
	q := u.Query()
	sec := q.Get("security")
	if sec == "" {
		sec = "tls"
		if u.Scheme == "imap" && u.Port() == "143" {
			sec = "starttls"
		}
	}
	s, err := model.ParseSecurity(sec)
	if err != nil {
		return e, fmt.Errorf("%s: %w", what, err)
	}
	e.settings = model.EndpointSettings{Host: u.Hostname(), Security: s, Auth: q.Get("auth"), InsecureSkipVerify: q.Get("insecure_skip_verify") == "1" || q.Get("insecure_skip_verify") == "true"}
	if e.settings.Host == "" {
		return e, fmt.Errorf("%s %q: the host is missing", what, redactPW(raw))
	}
	if p := u.Port(); p != "" {
		if e.settings.Port, err = strconv.Atoi(p); err != nil || e.settings.Port < 1 || e.settings.Port > 65535 {
			return e, fmt.Errorf("%s: bad port %q", what, p)
		}
	}
	for k := range q {
		switch k {
		case "security", "auth", "insecure_skip_verify":
		default:
			return e, fmt.Errorf("%s: unknown option %q (have security, auth, insecure_skip_verify)", what, k)
		}
	}
	return e, nil
}

// parseM365URL reads m365://TENANT/USER@DOMAIN?client_id=…&cloud=…&graph=…&ca_cert=FILE.
func parseM365URL(u *url.URL, what string) (endpointURL, error) {
	e := endpointURL{kind: model.KindM365}
	e.settings.Tenant, e.user = u.Host, strings.Trim(u.Path, "/")
	if e.settings.Tenant == "" || !strings.Contains(e.user, "@") {
		return e, fmt.Errorf("%s %q: want m365://TENANT/USER@DOMAIN, e.g. m365://contoso.onmicrosoft.com/alice@contoso.com", what, u.String())
	}
	if u.User != nil {
		return e, fmt.Errorf("%s: put the client secret in FERRY_%s_PASSWORD or on standard input, not in the URL", what, what)
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "client_id", "cloud", "graph", "ca_cert", "mailbox":
		default:
			return e, fmt.Errorf("%s: unknown option %q (have client_id, cloud, graph, ca_cert, mailbox)", what, k)
		}
	}
	switch q.Get("mailbox") {
	case "", "primary":
		e.workload = model.WorkloadMailbox
	case "archive":
		e.workload = model.WorkloadArchive
	default:
		return e, fmt.Errorf("%s: mailbox=%q: want primary or archive", what, q.Get("mailbox"))
	}
	e.settings.ClientID, e.settings.Cloud, e.settings.Host = q.Get("client_id"), q.Get("cloud"), q.Get("graph")
	if e.settings.ClientID == "" {
		e.settings.ClientID = os.Getenv("FERRY_" + what + "_CLIENT_ID")
	}
	if e.settings.ClientID == "" {
		return e, fmt.Errorf("%s: no client id: add ?client_id=APP or set FERRY_%s_CLIENT_ID", what, what)
	}
	if _, err := graph.CloudByName(e.settings.Cloud); err != nil {
		return e, fmt.Errorf("%s: %w", what, err)
	}
	if f := q.Get("ca_cert"); f != "" {
		pemData, err := os.ReadFile(f)
		if err != nil {
			return e, fmt.Errorf("%s: ca_cert: %w", what, err)
		}
		e.settings.CACert = string(pemData)
	}
	return e, nil
}

func redactPW(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func (e endpointURL) side() connector.Side {
	if e.kind == model.KindM365 {
		return connector.Side{Endpoint: model.Endpoint{Name: e.settings.Tenant, Kind: e.kind, Settings: e.settings, Secret: &model.EndpointSecret{ClientSecret: e.password}}, Email: e.user, Login: e.user, Workload: e.workload}
	}
	return connector.Side{Endpoint: model.Endpoint{Kind: e.kind, Settings: e.settings}, Email: e.user, Login: e.user, Password: e.password, Token: e.token}
}

// tokenCommand makes cmd, when given, the endpoint's source of XOAUTH2 access tokens: it is run
// by sh at every sign-in and prints the token, as mbsync's PassCmd does. Its standard error is
// kept for the error message; the token itself is never shown.
func tokenCommand(e *endpointURL, cmd, what string) error {
	if cmd == "" {
		return nil
	}
	if e.kind != model.KindIMAP {
		return withCode(ExitUsage, fmt.Errorf("--%s-token-cmd is for imap:// endpoints (m365 signs in with the app's client secret)", what))
	}
	switch strings.ToLower(e.settings.Auth) {
	case "":
		e.settings.Auth = "xoauth2"
	case "xoauth2":
	default:
		return withCode(ExitUsage, fmt.Errorf("--%s-token-cmd gives OAuth tokens, but the %s URL asks for auth=%s", what, what, e.settings.Auth))
	}
	e.token = func(ctx context.Context) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, "sh", "-c", cmd)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			if msg := strings.TrimSpace(stderr.String()); msg != "" {
				err = fmt.Errorf("%w: %s", err, msg)
			}
			return "", fmt.Errorf("--%s-token-cmd: %w", what, err)
		}
		tok, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if tok = strings.TrimSpace(tok); tok == "" {
			return "", fmt.Errorf("--%s-token-cmd printed no token", what)
		}
		return tok, nil
	}
	return nil
}

func (e endpointURL) String() string {
	if e.kind == model.KindM365 {
		return e.user + " in " + e.settings.Tenant
	}
	return e.user + "@" + e.settings.Host + ":" + strconv.Itoa(e.settings.Port)
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
	take := func(e *endpointURL, stdin bool, env, what string) error {
		switch {
		case e.token != nil:
			if stdin || e.hasPW {
				return withCode(ExitUsage, fmt.Errorf("%s: give a password or --%s-token-cmd, not both", what, what))
			}
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

// openCopyState opens the state file: a Ferry database holding one item for this pair.
func openCopyState(ctx context.Context, path string, src, dst endpointURL) (*store.Store, string, error) {
	if path == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = "."
		}
		sum := sha256.Sum256([]byte(src.String() + " -> " + dst.String()))
		path = filepath.Join(dir, "ferry", "copy-"+hex.EncodeToString(sum[:6])+".db")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", err
	}
	// The state holds no credentials; the keyring is only there because the store wants one.
	keys, _ := secret.NewKeyring(secret.GenerateKey())
	st, err := store.Open(ctx, "", "sqlite:"+path, keys)
	if err != nil {
		return nil, "", fmt.Errorf("state file %s: %w", path, err)
	}
	id, err := copyItem(ctx, st, src, dst)
	if err != nil {
		st.Close()
		return nil, "", fmt.Errorf("state file %s: %w", path, err)
	}
	return st, id, nil
}

func copyItem(ctx context.Context, st *store.Store, src, dst endpointURL) (string, error) {
	wg, err := st.Workgroup(ctx, "copy")
	if store.IsNotFound(err) {
		wg, err = st.CreateWorkgroup(ctx, "copy", true)
	}
	if err != nil {
		return "", err
	}
	ep := func(name string, e endpointURL) (model.Endpoint, error) {
		got, err := st.Endpoint(ctx, wg.ID, name)
		if store.IsNotFound(err) {
			return st.CreateEndpoint(ctx, model.Endpoint{WorkgroupID: wg.ID, Name: name, Kind: e.kind, Settings: e.settings})
		}
		return got, err
	}
	se, err := ep("source "+src.String(), src)
	if err != nil {
		return "", err
	}
	de, err := ep("target "+dst.String(), dst)
	if err != nil {
		return "", err
	}
	name := src.String() + " -> " + dst.String()
	prj, err := st.Project(ctx, []string{wg.ID}, name)
	if store.IsNotFound(err) {
		prj, err = st.CreateProject(ctx, model.Project{WorkgroupID: wg.ID, Name: name, Workload: model.WorkloadMailbox, SourceID: se.ID, TargetID: de.ID, CreatedBy: "ferry copy"})
	}
	if err != nil {
		return "", err
	}
	items, _, err := st.Items(ctx, prj.ID, store.ItemFilter{})
	if err != nil {
		return "", err
	}
	if len(items) == 1 {
		return items[0].ID, nil
	}
	if _, err := st.ImportItems(ctx, prj.ID, "ferry copy", []store.ItemInput{{SourceEmail: src.user, TargetEmail: dst.user}}); err != nil {
		return "", err
	}
	items, _, err = st.Items(ctx, prj.ID, store.ItemFilter{})
	if err != nil || len(items) != 1 {
		return "", fmt.Errorf("state item: %v", err)
	}
	return items[0].ID, nil
}

// progress draws one live line: folders, messages, MB and rate.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	folders int
	start   time.Time
	last    engine.Progress
	done    chan struct{}
	wg      sync.WaitGroup
	tty     bool
}

func newProgress(w io.Writer, folders int) *progress {
	p := &progress{w: w, folders: folders, start: time.Now(), done: make(chan struct{}), tty: isTerminal(w)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		every := time.Second
		if !p.tty {
			every = 10 * time.Second
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.draw(false)
			}
		}
	}()
	return p
}

func (p *progress) update(pr engine.Progress) {
	p.mu.Lock()
	if pr.Stats.Objects+pr.Stats.Skipped+pr.Stats.Errors >= p.last.Stats.Objects+p.last.Stats.Skipped+p.last.Stats.Errors {
		p.last = pr
	}
	p.mu.Unlock()
}

func (p *progress) draw(final bool) {
	p.mu.Lock()
	s := p.last.Stats
	p.mu.Unlock()
	el := time.Since(p.start).Seconds()
	mb := float64(s.Bytes) / 1e6
	line := fmt.Sprintf("folders %d/%d  messages %d copied, %d unchanged, %d errors  %.1f MB  %.1f MB/s", s.Folders, p.folders, s.Objects, s.Skipped, s.Errors, mb, mb/max(el, 0.001))
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		if final {
			fmt.Fprintln(p.w)
		}
	} else if !final {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
	p.draw(true)
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
				ok = fmt.Sprintf("NO: %d missing", r.SourceCount-r.Filtered-r.TargetCount)
			}
			if r.Filtered > 0 {
				ok += fmt.Sprintf(" (%d left for a later pass)", r.Filtered)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Source, r.Target, r.SourceCount, r.TargetCount, r.Copied, r.Updated, r.Deleted, r.Errors, ok)
		}
	})
}

func finishCopy(g *globals, stats model.ItemStats, results []engine.FolderResult, dryRun bool) error {
	printResults(g, results, dryRun)
	if dryRun {
		return nil
	}
	missing := 0
	for _, r := range results {
		if !r.Reconciled {
			missing++
		}
	}
	if g.output == "table" {
		fmt.Fprintf(g.stdout, "\n%d folders, %d messages copied (%.1f MB), %d updated or unchanged, %d errors, in %s.\n",
			stats.Folders, stats.Objects, float64(stats.Bytes)/1e6, stats.Skipped, stats.Errors, (time.Duration(stats.Duration) * time.Millisecond).Round(time.Millisecond))
	}
	if missing > 0 || stats.Errors > 0 {
		return withCode(ExitIncomplete, fmt.Errorf("%d folders do not reconcile and %d messages failed; run again, or see the errors above", missing, stats.Errors))
	}
	return nil
}
