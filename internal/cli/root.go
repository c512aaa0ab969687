// Package cli holds the cobra commands of the ferry binary. Except for serve, admin and the
// one-shot tools, commands are clients of the REST API.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-migrate/ferry/internal/api/client"
)

// Version is set at build time.
var Version = "0.1.0-dev"

// Exit codes that scripts can rely on.
const (
	ExitOK         = 0
	ExitError      = 1 // anything else
	ExitUsage      = 2 // bad flags or arguments
	ExitIncomplete = 3 // the work ran but not every item completed (or the CSV was rejected)
	ExitAuth       = 4 // not signed in, or the role does not allow it
)

// ExitError carries an exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &exitError{code: code, err: err} }

type globals struct {
	server, token, output string
	stdin                 io.Reader
	stdout, stderr        io.Writer
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	g := &globals{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Move a Microsoft 365 organisation, or any IMAP service, to another tenant",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", "", "Ferry server URL (env FERRY_SERVER, or the saved login)")
	pf.StringVar(&g.token, "token", "", "API token (env FERRY_TOKEN, or the saved login)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		g.stdout, g.stderr, g.stdin = cmd.OutOrStdout(), cmd.ErrOrStderr(), cmd.InOrStdin()
		if g.output != "table" && g.output != "json" {
			return withCode(ExitUsage, fmt.Errorf("--output must be table or json, not %q", g.output))
		}
		return applyEnv(cmd)
	}
	root.AddCommand(serveCmd(g), workerCmd(g), loginCmd(g), tokenCmd(g), userCmd(g), endpointCmd(g), projectCmd(g), itemsCmd(g),
		migrateCmd(g), statsCmd(g), adminCmd(g), copyCmd(g), simCmd(g), demoCmd(g), agentCmd(g))
	return root
}

// Execute runs the CLI and returns the process exit code.
func Execute(ctx context.Context, args []string) int {
	root := NewRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case client.StatusOf(err) == 401:
		fmt.Fprintln(os.Stderr, "Sign in with `ferry login --server URL --user NAME --password-stdin`, or pass --token.")
		return ExitAuth
	case client.StatusOf(err) == 403:
		return ExitAuth
	case strings.Contains(err.Error(), "unknown flag") || strings.Contains(err.Error(), "accepts ") || strings.Contains(err.Error(), "required flag"):
		return ExitUsage
	}
	return ExitError
}

// applyEnv fills flags not given on the command line from FERRY_<FLAG> variables: flags > env.
func applyEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		name := "FERRY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && !strings.Contains(f.Name, "password") {
			if e := f.Value.Set(v); e != nil {
				err = withCode(ExitUsage, fmt.Errorf("%s=%q: %w", name, v, e))
			}
		}
	})
	return err
}

// savedLogin is what `ferry login` keeps, mode 0600.
type savedLogin struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

func loginPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "ferry", "login.json")
}

// client returns an API client from flags, environment or the saved login.
func (g *globals) client() (*client.Client, error) {
	server, token := g.server, g.token
	if server == "" || token == "" {
		if data, err := os.ReadFile(loginPath()); err == nil {
			var l savedLogin
			if json.Unmarshal(data, &l) == nil {
				if server == "" {
					server = l.Server
				}
				if token == "" && (g.server == "" || g.server == l.Server) {
					token = l.Token
				}
			}
		}
	}
	if server == "" {
		return nil, withCode(ExitAuth, errors.New("no server: pass --server, set FERRY_SERVER, or run `ferry login`"))
	}
	if token == "" {
		return nil, withCode(ExitAuth, errors.New("not signed in: run `ferry login --server URL --user NAME --password-stdin`, or pass --token"))
	}
	return client.New(server, token), nil
}

// fetch GETs an API path into a T with the command's client.
func fetch[T any](cmd *cobra.Command, g *globals, path string) (T, error) {
	var v T
	c, err := g.client()
	if err != nil {
		return v, err
	}
	return v, c.Do(cmd.Context(), "GET", path, nil, &v)
}

// print writes v as JSON, or calls table to write a human table.
func (g *globals) print(v any, table func(w *tabwriter.Writer)) error {
	if g.output == "json" {
		// A list with nothing in it is [], never null: scripts index and loop over it.
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
			v = []struct{}{}
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// readSecret reads one line (a password) from stdin.
func (g *globals) readSecret() (string, error) {
	data, err := io.ReadAll(io.LimitReader(g.stdin, 64<<10))
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" {
		return "", withCode(ExitUsage, errors.New("expected a password on standard input, got nothing"))
	}
	return s, nil
}

func esc(s string) string { return client.PathEscape(s) }

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
