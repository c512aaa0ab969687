// Package imap is the IMAP connector, source and target, on emersion/go-imap/v2: LOGIN, PLAIN and
// XOAUTH2; no TLS, STARTTLS or TLS with verification on by default; CONDSTORE deltas; APPEND with
// flags and internal date, UIDPLUS; several connections per mailbox under a per-host cap.
package imap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/retry"
)

// Defaults for connection counts.
const (
	DefaultConnections     = 4  // per mailbox: folders copied in parallel
	DefaultHostConnections = 40 // per server host, across all mailboxes of this process
)

// Config is how to reach and sign in to one mailbox.
type Config struct {
	Host, Port         string
	Security           model.Security
	InsecureSkipVerify bool
	CACert             string // PEM; empty = system roots
	Auth               string // "", "plain", "login", "xoauth2"
	User, Password     string // for xoauth2 the password is the access token
	Connections        int
	HostConnections    int
	// Token, when set, is asked for a fresh access token at every XOAUTH2 sign-in; Password is
	// then unused.
	Token func(context.Context) (string, error)
}

func configFor(s connector.Side) Config {
	st := s.Endpoint.Settings
	c := Config{Host: st.Host, Port: fmt.Sprint(st.Port), Security: st.Security, InsecureSkipVerify: st.InsecureSkipVerify,
		CACert: st.CACert, Auth: st.Auth, User: s.Login, Password: s.Password, Token: s.Token, Connections: st.Connections, HostConnections: st.HostConnections}
	if c.User == "" {
		c.User = s.Email
	}
	// Without a per-item password, the endpoint's administrator signs in for the mailbox.
	if c.Password == "" && s.Endpoint.Secret != nil {
		c.Password = s.Endpoint.Secret.AdminPassword
		if st.AdminUser != "" && s.Login == "" && s.Email == "" {
			c.User = st.AdminUser
		}
	}
	if st.Port == 0 {
		c.Port = "993"
		if c.Security != model.SecurityTLS {
			c.Port = "143"
		}
	}
	return c
}

// hostSlots caps connections per host across the process.
var (
	hostMu    sync.Mutex
	hostSlots = map[string]chan struct{}{}
)

func hostSlot(host string, n int) chan struct{} {
	hostMu.Lock()
	defer hostMu.Unlock()
	ch, ok := hostSlots[host]
	if !ok {
		if n <= 0 {
			n = DefaultHostConnections
		}
		ch = make(chan struct{}, n)
		hostSlots[host] = ch
	}
	return ch
}

// conn is one signed-in IMAP connection.
type conn struct {
	c        *imapclient.Client
	selected string // mailbox currently selected
	readOnly bool
	release  func()
}

func (cf Config) addr() string { return net.JoinHostPort(cf.Host, cf.Port) }

func (cf Config) tlsConfig() (*tls.Config, error) {
	t := &tls.Config{ServerName: cf.Host, InsecureSkipVerify: cf.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if cf.CACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(cf.CACert)) {
			return nil, errors.New("ca_cert holds no PEM certificate")
		}
		t.RootCAs = pool
	}
	return t, nil
}

// takeSlot waits for one of the host's connection slots; release gives it back.
func (cf Config) takeSlot(ctx context.Context) (release func(), _ error) {
	slot := hostSlot(cf.addr(), cf.HostConnections)
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// slotAndTLS waits for one of the host's slots and makes the TLS settings, as every new
// connection (the pool's and a batch's) does first.
func (cf Config) slotAndTLS(ctx context.Context) (release func(), _ *tls.Config, _ error) {
	release, err := cf.takeSlot(ctx)
	if err != nil {
		return nil, nil, err
	}
	tc, err := cf.tlsConfig()
	if err != nil {
		release()
		return nil, nil, connector.Classify(connector.Fatal, err)
	}
	return release, tc, nil
}

// dial connects and signs in, waiting for a host slot first.
func dial(ctx context.Context, cf Config) (*conn, error) {
	release, tc, err := cf.slotAndTLS(ctx)
	if err != nil {
		return nil, err
	}
	opts := &imapclient.Options{TLSConfig: tc, Dialer: &net.Dialer{Timeout: 30 * time.Second}}
	var c *imapclient.Client
	switch {
	case cf.implicitTLS():
		c, err = imapclient.DialTLS(cf.addr(), opts)
	case cf.Security == model.SecuritySTARTTLS:
		c, err = imapclient.DialStartTLS(cf.addr(), opts)
	default:
		c, err = imapclient.DialInsecure(cf.addr(), opts)
	}
	if err != nil {
		release()
		var certErr *tls.CertificateVerificationError
		if errors.As(err, &certErr) {
			return nil, connector.Classify(connector.Fatal, fmt.Errorf("connect to %s: server certificate not trusted: %w (set a CA certificate, or insecure_skip_verify for testing)", cf.addr(), err))
		}
		return nil, fmt.Errorf("connect to %s: %w", cf.addr(), err)
	}
	if err := login(ctx, c, cf); err != nil {
		c.Close()
		release()
		return nil, err
	}
	return &conn{c: c, release: release}, nil
}

func login(ctx context.Context, c *imapclient.Client, cf Config) error {
	sc, err := cf.mechanism(ctx, c.Caps())
	if err == nil {
		if sc != nil {
			err = c.Authenticate(sc)
		} else {
			err = c.Login(cf.User, cf.Password).Wait()
		}
	}
	return cf.signInError(err)
}

// mechanism is the SASL mechanism a connection signs in with, or nil for LOGIN: XOAUTH2 when
// asked for, PLAIN where the server offers it, else LOGIN. Pool and batch connections both ask it.
func (cf Config) mechanism(ctx context.Context, caps imap.CapSet) (sasl.Client, error) {
	switch strings.ToLower(cf.Auth) {
	case "xoauth2":
		return cf.xoauth2(ctx)
	case "login":
		return nil, nil
	case "plain", "":
		if caps.Has(imap.AuthCap(sasl.Plain)) {
			return sasl.NewPlainClient("", cf.User, cf.Password), nil
		}
		return nil, nil
	}
	return nil, connector.Classify(connector.Fatal, fmt.Errorf("unknown auth %q: want plain, login or xoauth2", cf.Auth))
}

// signInError says who failed to sign in where; a failed sign-in is fatal to the item.
func (cf Config) signInError(err error) error {
	if err == nil || connector.ClassOf(err) == connector.Fatal {
		return err
	}
	return connector.Classify(connector.Fatal, fmt.Errorf("%s: sign-in as %s failed: %w", cf.addr(), cf.User, err))
}

// implicitTLS says whether the connection is TLS from the start: anything but none and starttls,
// an empty setting too.
func (cf Config) implicitTLS() bool {
	return cf.Security != model.SecurityNone && cf.Security != model.SecuritySTARTTLS
}

// xoauth2 is Google's and Microsoft's SASL mechanism for OAuth 2.0 bearer tokens.
type xoauth2 struct{ user, token string }

// xoauth2 gives the mechanism for one sign-in, with a fresh token when there is a Token source.
func (cf Config) xoauth2(ctx context.Context) (*xoauth2, error) {
	if cf.Token == nil {
		return &xoauth2{user: cf.User, token: cf.Password}, nil
	}
	tok, err := cf.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("no access token: %w", err)
	}
	return &xoauth2{user: cf.User, token: tok}, nil
}

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next gets the server's only challenge: its reason for refusing the token, as JSON
// ({"status":"401","schemes":"bearer","scope":"mail"} from Google, Microsoft and Dovecot). The
// mechanism wants an empty line in answer, which go-imap cannot send (it writes "="); the connection
// is closed after a failed sign-in anyway, so the reason is returned as the error.
func (x *xoauth2) Next(challenge []byte) ([]byte, error) {
	return nil, fmt.Errorf("token refused: %s", bytes.TrimSpace(challenge))
}

func (c *conn) close() {
	c.c.Close()
	c.release()
}

// sel selects a mailbox unless it already is; read-only for sources.
func (c *conn) sel(name string, readOnly bool) (*imap.SelectData, error) {
	if c.selected == name && c.readOnly == readOnly {
		return nil, nil
	}
	d, err := c.c.Select(name, &imap.SelectOptions{ReadOnly: readOnly, CondStore: c.c.Caps().Has(imap.CapCondStore)}).Wait()
	if err != nil {
		c.selected = ""
		return nil, err
	}
	c.selected, c.readOnly = name, readOnly
	return d, nil
}

// pool hands out connections to one mailbox, at most max at once.
type pool struct {
	cf   Config
	max  int
	sem  chan struct{}
	mu   sync.Mutex
	idle []*conn
	open int // connections dialled and not closed
	caps imap.CapSet
}

func newPool(ctx context.Context, cf Config) (*pool, error) {
	n := cf.Connections
	if n <= 0 {
		n = DefaultConnections
	}
	p := &pool{cf: cf, max: n, sem: make(chan struct{}, n)}
	// Sign in once now so bad credentials fail at open, not in the middle of a folder.
	c, err := p.get(ctx, "")
	if err != nil {
		return nil, err
	}
	p.caps = c.c.Caps()
	p.put(c, nil)
	return p, nil
}

// get returns a connection: one with mailbox already selected if there is one, else a new one
// while under the limit, else any idle one. Keeping each folder on its own connection spares the
// server a SELECT per message, which costs it more than the message itself.
func (p *pool) get(ctx context.Context, mailbox string) (*conn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	pick := -1
	for i, c := range p.idle {
		if c.selected == mailbox {
			pick = i
			break
		}
	}
	if pick < 0 && p.open >= p.max && len(p.idle) > 0 {
		pick = 0
	}
	if pick >= 0 {
		c := p.idle[pick]
		p.idle = append(p.idle[:pick], p.idle[pick+1:]...)
		p.mu.Unlock()
		return c, nil
	}
	p.open++
	p.mu.Unlock()
	c, err := dial(ctx, p.cf)
	if err != nil {
		p.mu.Lock()
		p.open--
		p.mu.Unlock()
		<-p.sem
		return nil, err
	}
	return c, nil
}

// put returns a connection; one that failed at the network level is closed instead.
func (p *pool) put(c *conn, err error) {
	if err != nil && isNetErr(err) {
		c.close()
		p.mu.Lock()
		p.open--
		p.mu.Unlock()
	} else {
		p.mu.Lock()
		p.idle = append(p.idle, c)
		p.mu.Unlock()
	}
	<-p.sem
}

// do runs fn on a connection, retrying with backoff on a fresh connection when the network drops.
func (p *pool) do(ctx context.Context, mailbox string, fn func(c *conn) error) error {
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(1<<attempt) * 100 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var c *conn
		c, err = p.get(ctx, mailbox)
		if err != nil {
			if connector.ClassOf(err) == connector.Fatal {
				return err
			}
			continue
		}
		err = fn(c)
		p.put(c, err)
		if err == nil || !isNetErr(err) {
			return err
		}
	}
	return fmt.Errorf("%s: gave up after retries: %w", p.cf.addr(), err)
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		c.c.Logout().Wait()
		c.close()
		p.open--
	}
	p.idle = nil
}

// isNetErr reports a dropped or broken connection (worth a retry), as opposed to a server answer.
func isNetErr(err error) bool {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return false
	}
	return retry.NetworkError(err)
}

// classify marks a server's NO/BAD answer about one message as per-object.
func classify(err error) error {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return connector.Classify(connector.Permanent, fmt.Errorf("server answered: %w", err))
	}
	return err
}
