package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/model"
)

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

func (e endpointURL) String() string {
	if e.kind == model.KindM365 {
		return e.user + " in " + e.settings.Tenant
	}
	return e.user + "@" + e.settings.Host + ":" + strconv.Itoa(e.settings.Port)
}
