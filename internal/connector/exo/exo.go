// Package exo is the Exchange Online connector (endpoint kind m365): a mailbox read and written
// through Microsoft Graph. Between two Exchange mailboxes it moves items in Exchange's full-fidelity
// format with the mailbox import/export API; towards a MIME target (IMAP) it reads messages as MIME.
package exo

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/throttle"
)

// Connector opens Exchange Online mailboxes.
type Connector struct{}

func init() { connector.Register(model.KindM365, Connector{}) }

// StampProperty is the named extended property Ferry stamps on every item it creates, holding the
// source item's id: a lost watermark finds the copy by it instead of making a second one.
const StampProperty = "String {6a0c1d5e-8f0b-4a8e-9c57-0f3e2b7d4f11} Name FerrySourceId"

// Limits are the per-mailbox limits the client keeps under: Outlook's published ones. Tests and
// benchmarks against the emulator scale them down together with the emulator's.
var Limits = throttle.Outlook

// Process-wide caches: token credentials (one per CA setting, since the sign-in transport differs)
// and throttling budgets, so every mailbox of a tenant shares one view of its limits.
var (
	credsMu sync.Mutex
	creds   = map[string]*graph.Credentials{}
	budgets = throttle.NewMemory()
)

// mailbox is one side: a Graph client and the user's mailbox.
type mailbox struct {
	c       *graph.Client
	user    string // the user's address (an archive's mailbox id), for /users/{id} calls
	mbxID   string // the import/export API's mailbox id
	archive bool
}

// open builds the Graph client of a side and finds the user's mailbox.
func open(ctx context.Context, s connector.Side) (*mailbox, error) {
	c, err := Client(s.Endpoint, s.Email)
	if err != nil {
		return nil, err
	}
	if s.Workload == model.WorkloadArchive {
		id, err := archiveID(ctx, c, s)
		if err != nil {
			return nil, err
		}
		// An archive is reached by its own id, through the beta API that documents it and its
		// redirects; the mail API's /users/{id} takes that id too.
		return &mailbox{c: c.Beta(), user: id, mbxID: id, archive: true}, nil
	}
	if !importExportOffered(s.Endpoint.Settings) {
		return &mailbox{c: c, user: s.Email}, nil // the workload APIs need no mailbox id
	}
	set, err := c.ExchangeSettings(ctx, s.Email)
	if err != nil {
		return nil, explain(err, s, "read the mailbox settings of "+s.Email)
	}
	return &mailbox{c: c, user: s.Email, mbxID: set.PrimaryMailboxID}, nil
}

func archiveID(ctx context.Context, c *graph.Client, s connector.Side) (string, error) {
	id, err := c.ArchiveMailboxID(ctx, s.Email)
	if errors.Is(err, graph.ErrNoArchive) {
		return "", connector.Classify(connector.Fatal, fmt.Errorf("%s has no archive mailbox: enable it in Exchange Online first", s.Email))
	}
	if err != nil {
		return "", explain(err, s, "read the archive mailbox id of "+s.Email)
	}
	return id, nil
}

// Client returns a Graph client for an m365 endpoint, its budget keyed by mailbox. Settings.Host,
// when set, replaces the cloud's sign-in and Graph hosts (the emulator, or a proxy).
func Client(e model.Endpoint, mailboxKey string) (*graph.Client, error) {
	st := e.Settings
	if st.Tenant == "" || st.ClientID == "" {
		return nil, connector.Classify(connector.Fatal, fmt.Errorf("endpoint %s needs a tenant and a client id", e.Name))
	}
	cloud, err := graph.CloudByName(st.Cloud)
	if err != nil {
		return nil, connector.Classify(connector.Fatal, err)
	}
	if st.MailboxAPI != "" && st.MailboxAPI != "workload" {
		return nil, connector.Classify(connector.Fatal, fmt.Errorf("endpoint %s: mailbox_api %q: want workload, or nothing for the import/export API where offered", e.Name, st.MailboxAPI))
	}
	if st.Host != "" {
		host := strings.TrimRight(st.Host, "/")
		if !strings.Contains(host, "://") {
			host = "https://" + host
		}
		cloud = graph.Cloud{Name: "custom", LoginURL: host, GraphURL: host}
	}
	hc, err := httpClient(st)
	if err != nil {
		return nil, connector.Classify(connector.Fatal, err)
	}
	app := graph.AppCredential{Tenant: st.Tenant, ClientID: st.ClientID}
	if e.Secret != nil {
		app.ClientSecret = e.Secret.ClientSecret
	}
	if app.ClientSecret == "" {
		return nil, connector.Classify(connector.Fatal, fmt.Errorf("endpoint %s has no client secret", e.Name))
	}
	key := sha256.Sum256([]byte(st.CACert + fmt.Sprint(st.InsecureSkipVerify)))
	credsMu.Lock()
	cs := creds[hex.EncodeToString(key[:])]
	if cs == nil {
		cs = &graph.Credentials{Options: azcore.ClientOptions{Transport: hc}}
		creds[hex.EncodeToString(key[:])] = cs
	}
	credsMu.Unlock()
	ts, err := cs.For(cloud, app)
	if err != nil {
		return nil, connector.Classify(connector.Fatal, err)
	}
	resource := strings.ToLower(mailboxKey)
	return graph.New(graph.Config{Cloud: cloud, Tenant: st.Tenant, App: st.ClientID, Tokens: ts, HTTP: hc, Budgets: budgets,
		// One budget per mailbox, whichever API path a request takes: Exchange counts them together.
		Budget: func(*http.Request) (throttle.Key, throttle.Limits, int) {
			return throttle.Key{Tenant: st.Tenant, App: st.ClientID, Resource: resource}, Limits, 1
		}}), nil
}

func httpClient(st model.EndpointSettings) (*http.Client, error) {
	if st.CACert == "" && !st.InsecureSkipVerify {
		return &http.Client{Timeout: 10 * time.Minute}, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: st.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if st.CACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(st.CACert)) {
			return nil, errors.New("settings.ca_cert holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr, Timeout: 10 * time.Minute}, nil
}

// aadsts finds Entra ID's error code and sentence in a sign-in failure.
var aadsts = regexp.MustCompile(`AADSTS\d+: [^".]*`)

// explain turns a Graph refusal into what the administrator must fix, classified for the engine.
func explain(err error, s connector.Side, what string) error {
	if why, ok := graph.Unreachable(err); ok {
		host := s.Endpoint.Settings.Host
		if host == "" {
			host = "Microsoft 365 (tenant " + s.Endpoint.Settings.Tenant + ")"
		}
		return connector.Classify(connector.Fatal, fmt.Errorf("cannot reach %s: %s (%w)", host, why, err))
	}
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) {
		reason := "the sign-in service refused the app"
		if m := aadsts.FindString(af.Error()); m != "" {
			reason = m
		}
		return connector.Classify(connector.Fatal, fmt.Errorf("sign-in of app %s to tenant %s failed: %s", s.Endpoint.Settings.ClientID, s.Endpoint.Settings.Tenant, reason))
	}
	var ge *graph.Error
	if !errors.As(err, &ge) {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case ge.Status == http.StatusForbidden:
		perm := ge.Message
		if i := strings.Index(perm, "lacks "); i >= 0 {
			perm = strings.TrimSuffix(perm[i+len("lacks "):], ".")
			return connector.Classify(connector.Fatal, fmt.Errorf("app %s lacks %s (needed to %s)", s.Endpoint.Settings.ClientID, perm, what))
		}
		return connector.Classify(connector.Fatal, fmt.Errorf("app %s may not %s: %s", s.Endpoint.Settings.ClientID, what, ge.Message))
	case ge.Status == http.StatusUnauthorized:
		return connector.Classify(connector.Fatal, fmt.Errorf("%s: sign-in refused: %s", what, ge.Message))
	case ge.Status == http.StatusNotFound && (ge.Code == "ErrorInvalidUser" || ge.Code == "Request_ResourceNotFound" || ge.Code == "ErrorMailboxNotFound"):
		return connector.Classify(connector.Fatal, fmt.Errorf("mailbox %s does not exist in tenant %s", s.Email, s.Endpoint.Settings.Tenant))
	case ge.Status == http.StatusTooManyRequests || ge.Status >= 500:
		return connector.Classify(connector.Transient, fmt.Errorf("%s: %w", what, err))
	}
	return connector.Classify(connector.Permanent, fmt.Errorf("%s: %w", what, err))
}

// Verify checks, in order, what a pass needs: sign-in, the user, its mailbox, and the permissions of
// the import/export API, and says which one is missing.
// Without a mailbox (verifying an endpoint, not an item) it checks sign-in and directory access.
func (Connector) Verify(ctx context.Context, s connector.Side) error {
	c, err := Client(s.Endpoint, s.Email)
	if err != nil {
		return err
	}
	if s.Email == "" {
		users, _ := c.Users(ctx)
		for _, err := range users {
			if err != nil {
				return explain(err, s, "list the users of tenant "+s.Endpoint.Settings.Tenant)
			}
			break
		}
		return nil
	}
	if _, err := c.User(ctx, s.Email); err != nil {
		return explain(err, s, "read user "+s.Email)
	}
	if !importExportOffered(s.Endpoint.Settings) && s.Workload != model.WorkloadArchive {
		// No import/export API in this cloud: the workload APIs carry the mailbox.
		folders, _ := c.MailFolders(ctx, s.Email, "")
		for _, err := range folders {
			if err != nil {
				return explain(err, s, "list the mail folders of "+s.Email)
			}
			break
		}
		for _, a := range itemAPIs {
			if _, err := c.ItemFolders(ctx, a.api, s.Email); err != nil {
				return explain(err, s, "read the "+a.api.Name+"s of "+s.Email)
			}
		}
		return nil
	}
	set, err := c.ExchangeSettings(ctx, s.Email)
	if err != nil {
		return explain(err, s, "read the mailbox settings of "+s.Email)
	}
	if s.Workload == model.WorkloadArchive {
		if set.PrimaryMailboxID, err = archiveID(ctx, c, s); err != nil {
			return err
		}
		c = c.Beta()
	}
	folders, _ := c.MailboxFolders(ctx, set.PrimaryMailboxID, "")
	for _, err := range folders {
		if err != nil {
			return explain(err, s, "list the mailbox folders of "+s.Email)
		}
		break
	}
	if _, err := c.CreateImportSession(ctx, set.PrimaryMailboxID); err != nil {
		return explain(err, s, "export and import items of "+s.Email)
	}
	return nil
}

// OpenSource opens a mailbox to read.
func (Connector) OpenSource(ctx context.Context, s connector.Side) (connector.MailboxSource, error) {
	mb, err := open(ctx, s)
	if err != nil {
		return nil, err
	}
	return &source{mailbox: mb, side: s, format: connector.FormatExchange, order: map[string][]string{}, batches: map[string]map[string][]byte{}}, nil
}

// OpenTarget opens a mailbox to write.
func (Connector) OpenTarget(ctx context.Context, s connector.Side) (connector.MailboxTarget, error) {
	mb, err := open(ctx, s)
	if err != nil {
		return nil, err
	}
	return &target{mailbox: mb, side: s}, nil
}
