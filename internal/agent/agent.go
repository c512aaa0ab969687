// Package agent is the platform-neutral core of ferry-agent: it enrols with the server once, keeps
// its device credential in a state file, and reports on a jittered schedule, backing off
// exponentially while the server cannot be reached. Once the server releases the device's tasks
// it runs them in order, reporting each one's state and uploading what happened (tasks.go).
package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
)

// Version is the agent's version, reported to the server.
var Version = "0.1.0-dev"

// Config is agent.json, shipped in the agent package.
type Config struct {
	Server     string `json:"server_url"`
	CompanyKey string `json:"company_key"`
	Token      string `json:"token"`
	// CertSHA256 pins the server's TLS certificate: the hex SHA-256 of its DER. Empty means the
	// system's trust store decides.
	CertSHA256 string `json:"cert_sha256,omitempty"`
	// UpdateKey is the server's ed25519 public key (base64): only updates it signed are installed.
	UpdateKey string `json:"update_key,omitempty"`
}

// LoadConfig reads and checks agent.json.
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case !strings.HasPrefix(c.Server, "https://") && !strings.HasPrefix(c.Server, "http://"):
		return c, fmt.Errorf("%s: server_url must be an http(s) URL, got %q", path, c.Server)
	case c.CompanyKey == "":
		return c, fmt.Errorf("%s: company_key is missing", path)
	}
	return c, nil
}

// State is what the agent keeps between runs and reboots.
type State struct {
	DeviceID   string `json:"device_id"`
	Credential string `json:"credential"`
	// Announced is the cutover time the user was last told of.
	Announced *time.Time `json:"announced,omitempty"`
}

// Agent runs the enrol-and-report loop.
type Agent struct {
	Config Config
	Dir    string                   // data directory: state.json
	Facts  func() model.DeviceFacts // what to report
	// Poll is the report interval, zero for the server's; Backoff the first wait after a failure,
	// doubling up to MaxBackoff.
	Poll, Backoff, MaxBackoff time.Duration
	// Sleep waits (tests replace it); OnReport is called after each accepted report.
	Sleep    func(ctx context.Context, d time.Duration) error
	OnReport func(n int)
	// Tasks are the reconfigurations this platform can run, by name; released ones without an
	// entry are Skipped. AskUser shows the project's prompt before the first task; nil goes on.
	Tasks map[string]Task
	// Workstation, when set, gives the tasks afresh before each run, for the user signed in then
	// (a service serves whoever is); an error postpones the run to the next report.
	Workstation func() (map[string]Task, error)
	AskUser     func(ctx context.Context, p Prompt) error
	// RunScript runs the project's pre- and post-scripts and returns their output; nil skips them.
	RunScript func(ctx context.Context, script string) (string, error)
	// Announce tells the user, once for each cutover time the server sets, when the workstation
	// will be switched over, in the device's local time; nil tells no one.
	Announce func(text string)
	// Replace installs a verified newer agent binary (at the path given) in place of this one;
	// nil declines updates.
	Replace func(newBinary string) error

	http       *http.Client
	serverPoll bool
}

// ErrRevoked means the server refused the device's credential: the agent stops rather than retry.
var ErrRevoked = errors.New("the server refused this device's credential (revoked?): re-enrol with a new agent package")

// Run enrols if needed and reports until ctx ends or the credential is refused.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.init(); err != nil {
		return err
	}
	st, err := a.loadState()
	if err != nil {
		return err
	}
	backoff := a.Backoff
	for st.Credential == "" {
		st, err = a.enrol(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, errRefused) {
			return err
		}
		if werr := a.Sleep(ctx, backoff); werr != nil {
			return werr
		}
		backoff = min(2*backoff, a.MaxBackoff)
	}
	backoff = a.Backoff
	for n := 1; ; {
		poll, err := a.report(ctx, &st)
		wait := jitter(poll)
		switch {
		case errors.Is(err, ErrRevoked), errors.Is(err, ErrUpdated):
			return err
		case err != nil:
			wait, backoff = backoff, min(2*backoff, a.MaxBackoff)
		default:
			backoff = a.Backoff
			if a.OnReport != nil {
				a.OnReport(n)
			}
			n++
		}
		if err := a.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// jitter spreads agents over ±10 % of the interval, so a fleet does not report in step.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + time.Duration(rand.Int64N(int64(d)/5+1))
}

func (a *Agent) init() error {
	if a.Poll <= 0 {
		a.Poll, a.serverPoll = 60*time.Second, true
	}
	if a.Backoff <= 0 {
		a.Backoff = 5 * time.Second
	}
	if a.MaxBackoff <= 0 {
		a.MaxBackoff = 10 * time.Minute
	}
	if a.Sleep == nil {
		a.Sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment // HTTPS_PROXY, as on corporate networks
	if pin := strings.ToLower(a.Config.CertSHA256); pin != "" {
		// The pin replaces the trust store: the server's certificate is usually self-signed.
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("the server sent no certificate")
				}
				if got := Fingerprint(cs.PeerCertificates[0]); got != pin {
					return fmt.Errorf("server certificate %s does not match the pinned %s", got, pin)
				}
				return nil
			}}
	}
	a.http = &http.Client{Transport: tr, Timeout: time.Minute}
	return os.MkdirAll(a.Dir, 0o700)
}

// Fingerprint is the pin of a certificate: the hex SHA-256 of its DER.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func (a *Agent) statePath() string { return filepath.Join(a.Dir, "state.json") }

func (a *Agent) loadState() (State, error) {
	var st State
	data, err := os.ReadFile(a.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	} else if err != nil {
		return st, err
	}
	return st, json.Unmarshal(data, &st)
}

// saveState writes the state atomically, readable by the agent's account only.
func (a *Agent) saveState(st State) error {
	data, _ := json.Marshal(st)
	tmp := a.statePath() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, a.statePath())
}

var errRefused = errors.New("the server refused the enrolment token or company key: the agent package is wrong, revoked or expired")

func (a *Agent) facts() model.DeviceFacts {
	f := a.Facts()
	f.AgentVersion, f.Platform = Version, Platform()
	return f
}

func (a *Agent) enrol(ctx context.Context) (State, error) {
	var out struct {
		DeviceID    string `json:"device_id"`
		Credential  string `json:"credential"`
		PollSeconds int    `json:"poll_seconds"`
	}
	status, err := a.post(ctx, "/agent/v1/enrol", "", map[string]any{"token": a.Config.Token, "company_key": a.Config.CompanyKey, "device": a.facts()}, &out)
	if err != nil {
		return State{}, err
	}
	if status == http.StatusUnauthorized || status == http.StatusBadRequest {
		return State{}, errRefused
	}
	if status != http.StatusCreated || out.Credential == "" {
		return State{}, fmt.Errorf("enrol: server answered %d", status)
	}
	st := State{DeviceID: out.DeviceID, Credential: out.Credential}
	return st, a.saveState(st)
}

func (a *Agent) report(ctx context.Context, st *State) (time.Duration, error) {
	var out model.AgentInstructions
	status, err := a.post(ctx, "/agent/v1/report", st.Credential, a.facts(), &out)
	switch {
	case err != nil:
		return a.Poll, err
	case status == http.StatusUnauthorized:
		return a.Poll, ErrRevoked
	case status != http.StatusOK:
		return a.Poll, fmt.Errorf("report: server answered %d", status)
	}
	if a.serverPoll && out.PollSeconds > 0 {
		a.Poll = time.Duration(out.PollSeconds) * time.Second
	}
	if err := a.announce(ctx, st, out); err != nil {
		return a.Poll, err
	}
	if out.Released {
		if err := a.runTasks(ctx, *st, out); err != nil {
			return a.Poll, err
		}
	}
	if out.Update != nil {
		// Between tasks, never during them: a released device finishes its work first. An update
		// that fails its checks leaves this agent running and tells the server why.
		if err := a.update(ctx, *st, *out.Update); errors.Is(err, ErrUpdated) {
			return a.Poll, err
		} else if err != nil {
			a.uploadLog(ctx, *st, []string{"update: " + err.Error()})
		}
	}
	return a.Poll, nil
}

func (a *Agent) post(ctx context.Context, path, credential string, body, out any) (int, error) {
	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.Config.Server, "/")+path, bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ferry-agent/"+Version)
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 300 && out != nil {
		json.Unmarshal(raw, out)
	}
	return resp.StatusCode, nil
}

// announce tells the user of a new cutover time, in local time, and the server that it did.
func (a *Agent) announce(ctx context.Context, st *State, in model.AgentInstructions) error {
	at := in.CutoverAt
	if at == nil || in.Released || st.Announced != nil && st.Announced.Equal(*at) {
		return nil
	}
	local := at.Local().Format("Monday 2 January 2006 at 15:04 (MST)")
	if a.Announce != nil {
		a.Announce("Your workstation will be switched over to your new account on " + local + ".")
	}
	if err := a.uploadLog(ctx, *st, []string{"cutover scheduled for " + local + ", device local time"}); err != nil {
		return err
	}
	st.Announced = at
	return a.saveState(*st)
}
