package m365sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Seed says what to create in a new emulator.
type Seed struct {
	Tenants  []string // tenant names; each gets <name>.onmicrosoft.com and <name>.com
	Users    int      // per tenant
	Messages int      // per user, spread over Inbox, Sent Items and Archive, in the first tenant only
}

// DefaultSeed is a source tenant with mail and an empty target tenant.
var DefaultSeed = Seed{Tenants: []string{"contoso", "fabrikam"}, Users: 10, Messages: 20}

// ParseSeed reads "tenants=contoso+fabrikam,users=10,messages=20"; missing keys keep defaults.
func ParseSeed(spec string) (Seed, error) {
	sd := DefaultSeed
	if strings.TrimSpace(spec) == "" {
		return sd, nil
	}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return sd, fmt.Errorf("seed %q: want key=value pairs like users=10", kv)
		}
		switch k {
		case "tenants":
			sd.Tenants = strings.Split(v, "+")
		case "users", "messages":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100000 {
				return sd, fmt.Errorf("seed %s=%q: want a number from 0 to 100000", k, v)
			}
			if k == "users" {
				sd.Users = n
			} else {
				sd.Messages = n
			}
		default:
			return sd, fmt.Errorf("seed: unknown key %q (have tenants, users, messages)", k)
		}
	}
	for _, t := range sd.Tenants {
		if t == "" || strings.ContainsAny(t, " ./@") {
			return sd, fmt.Errorf("seed: bad tenant name %q", t)
		}
	}
	return sd, nil
}

// Credentials of the app the seed registers in each tenant.
const SeedClientID = "ferry-sim-app"

// SeedPermissions are the application permissions of the seeded app: what a mailbox migration
// needs, Exchange to Exchange (the import/export API) and across protocols (mail).
var SeedPermissions = []string{"User.Read.All", "Mail.ReadWrite", "MailboxSettings.Read",
	PermMailboxFolderWrite, PermMailboxItemRead, PermImportExport}

// SeedSecret is the client secret of the seeded app in a tenant. The emulator is a test tool on
// loopback: a predictable secret keeps demos scriptable.
func SeedSecret(tenant string) string { return "sim-secret-" + tenant }

// Apply creates the seed's tenants, apps, users and mail. It is deterministic: the same seed gives
// the same ids, contents and dates.
func (s *Server) Apply(sd Seed) {
	base := time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)
	for ti, name := range sd.Tenants {
		id := stableID("tenant", name)
		s.AddTenant(id, name+".onmicrosoft.com", name+".com")
		s.AddApp(id, SeedClientID, SeedSecret(name), nil, SeedPermissions...)
		for u := 0; u < sd.Users; u++ {
			upn := fmt.Sprintf("user%02d@%s.com", u, name)
			user := s.AddUser(id, upn, fmt.Sprintf("User %02d", u))
			if ti != 0 {
				continue
			}
			s.mu.Lock()
			t := s.tenants[id]
			_, mb := s.mailboxOf(t, user.ID)
			for m := 0; m < sd.Messages; m++ {
				f := mb.folder([]string{"inbox", "inbox", "sentitems", "archive"}[m%4])
				when := base.Add(time.Duration(u*sd.Messages+m) * 37 * time.Minute)
				mime := fmt.Sprintf("Message-ID: <%d.%s@%s.com>\r\nDate: %s\r\nFrom: colleague%d@%s.com\r\nTo: %s\r\nSubject: Seeded message %d\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello %s, this is message %d.\r\n",
					m, strings.Split(upn, "@")[0], name, when.Format(time.RFC1123Z), m%7, name, upn, m, upn, m)
				mb.Seq++
				f.Messages = append(f.Messages, &message{ID: stableID(f.ID, "msg", strconv.Itoa(mb.Seq)), ChangeKey: 1, Touched: mb.Seq,
					MIME: []byte(mime), IsRead: m%3 != 0, Flag: "notFlagged", Received: when, Sent: when,
					InternetMessageID: fmt.Sprintf("<%d.%s@%s.com>", m, strings.Split(upn, "@")[0], name), Subject: fmt.Sprintf("Seeded message %d", m),
					Props: map[string]string{}})
			}
			s.dirty = true
			s.mu.Unlock()
		}
	}
}

// TenantID returns the id the seed gives a tenant name.
func TenantID(name string) string { return stableID("tenant", name) }
