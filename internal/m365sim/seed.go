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
	// Files, when above zero, puts that many files in each user's OneDrive in the first tenant, in
	// nested folders; Sites gives every tenant that many sites, those of the first tenant with
	// files in their document library.
	Files, Sites int
	// Teams gives the first tenant that many teams, each with General and Projects and a few
	// messages in each.
	Teams int
	// Archives, when above zero, gives every user an archive mailbox; in the first tenant it holds
	// that many messages per user in the folders 2019 and 2020, and the first user's 2019 has
	// been moved to an auxiliary archive (auto-expanding archiving).
	Archives int
}

// DefaultSeed is a source tenant with mail and an empty target tenant.
var DefaultSeed = Seed{Tenants: []string{"contoso", "fabrikam"}, Users: 10, Messages: 20, Archives: 12, Files: 12, Sites: 2, Teams: 2}

// ParseSeed reads "tenants=contoso+fabrikam,users=10,messages=20,archives=12"; missing keys keep
// defaults.
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
		case "users", "messages", "archives", "files", "sites", "teams":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100000 {
				return sd, fmt.Errorf("seed %s=%q: want a number from 0 to 100000", k, v)
			}
			switch k {
			case "users":
				sd.Users = n
			case "messages":
				sd.Messages = n
			case "files":
				sd.Files = n
			case "sites":
				sd.Sites = n
			case "teams":
				sd.Teams = n
			default:
				sd.Archives = n
			}
		default:
			return sd, fmt.Errorf("seed: unknown key %q (have tenants, users, messages, archives, files, sites, teams)", k)
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
var SeedPermissions = []string{"User.Read.All", "Mail.ReadWrite", "MailboxSettings.Read", PermCalendarsReadWrite,
	PermMailboxFolderWrite, PermMailboxItemRead, PermImportExport, PermContactsReadWrite, PermTasksReadWrite, PermFilesReadWrite, PermUserReadWrite, PermOrgRead, PermSitesRead, PermTeamworkMigrate, PermTeamRead, PermChannelMsgRead}

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
				seedMessage(mb, f, m, u*sd.Messages+m, upn, name, base)
			}
			seedEvents(mb, upn, name, base.AddDate(0, 0, u), u)
			seedContactsAndTasks(mb, name, base.AddDate(0, 0, u))
			s.dirty = true
			s.mu.Unlock()
		}
		for n := 0; n < sd.Sites; n++ {
			site := s.AddSite(id, fmt.Sprintf("project%d", n+1), fmt.Sprintf("Project %d", n+1))
			if ti == 0 {
				s.mu.Lock()
				st := s.tenants[id].site(site)
				seedFiles(s, s.tenants[id].Drives[st.Drives[0]], sd.Files, "project"+strconv.Itoa(n), base)
				s.mu.Unlock()
			}
		}
		for n := 0; ti == 0 && sd.Users > 0 && n < sd.Teams; n++ {
			s.AddTeam(id, fmt.Sprintf("Team %d", n+1), base.AddDate(-1, 0, n), map[string][]string{
				"General":  {"<p>Welcome to the team.</p>", "<p>Kick-off on Monday.</p>"},
				"Projects": {"<p>Plan attached in Files.</p>", "<p>Status: on track.</p>", "<p>Review moved to Thursday.</p>"}})
		}
		if ti == 0 && sd.Files > 0 {
			for u := 0; u < sd.Users; u++ {
				s.mu.Lock()
				seedFiles(s, s.driveOf(s.tenants[id], stableID(id, fmt.Sprintf("user%02d@%s.com", u, name))), sd.Files, fmt.Sprint(u), base)
				s.mu.Unlock()
			}
		}
		if sd.Archives == 0 {
			continue
		}
		for u := 0; u < sd.Users; u++ {
			upn := fmt.Sprintf("user%02d@%s.com", u, name)
			s.AddArchive(id, upn)
			if ti != 0 {
				continue
			}
			folders := []string{s.ArchiveFolder(id, upn, "2019"), s.ArchiveFolder(id, upn, "2020")}
			s.mu.Lock()
			t := s.tenants[id]
			mb := t.Archives[t.ArchiveOf[stableID(id, upn)]]
			for m := 0; m < sd.Archives; m++ {
				seedMessage(mb, mb.folder(folders[m%2]), 1000+m, u*sd.Archives+m, upn, name, base.AddDate(-6, 0, 0))
			}
			s.dirty = true
			s.mu.Unlock()
			if u == 0 {
				s.Expand(id, upn, folders[0])
			}
		}
	}
}

// seedMessage adds the seed's m-th message (n-th of its tenant, which spaces the dates) to a folder.
func seedMessage(mb *mailbox, f *folder, m, n int, upn, tenant string, base time.Time) {
	when := base.Add(time.Duration(n) * 37 * time.Minute)
	local := strings.Split(upn, "@")[0]
	msg := &message{ChangeKey: 1, MIME: []byte(seedMIME(m, local, tenant, upn, when)), IsRead: m%3 != 0, Flag: "notFlagged", Received: when, Sent: when,
		InternetMessageID: fmt.Sprintf("<%d.%s@%s.com>", m, local, tenant), Subject: fmt.Sprintf("Seeded message %d", m), Props: map[string]string{}}
	if m%5 == 0 {
		msg.Flag = "flagged"
	}
	if m%6 == 0 {
		msg.Categories = []string{"Blue category"}
	}
	mb.Seq++
	msg.ID, msg.Touched = stableID(f.ID, "msg", strconv.Itoa(mb.Seq)), mb.Seq
	f.Messages = append(f.Messages, msg)
}

// TenantID returns the id the seed gives a tenant name.
func TenantID(name string) string { return stableID("tenant", name) }

// seedMIME makes mixed content: plain text, HTML with a text alternative, and a message with a
// small attachment, in turn.
func seedMIME(m int, local, tenant, upn string, when time.Time) string {
	head := fmt.Sprintf("Message-ID: <%d.%s@%s.com>\r\nDate: %s\r\nFrom: colleague%d@%s.com\r\nTo: %s\r\nSubject: Seeded message %d\r\nMIME-Version: 1.0\r\n",
		m, local, tenant, when.Format(time.RFC1123Z), m%7, tenant, upn, m)
	switch m % 3 {
	case 1:
		return head + "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
			fmt.Sprintf("Hello %s, this is message %d.\r\n", upn, m) + "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
			fmt.Sprintf("<p>Hello <b>%s</b>, this is message %d.</p>\r\n", upn, m) + "--alt--\r\n"
	case 2:
		return head + "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
			fmt.Sprintf("Hello %s, message %d has the figures attached.\r\n", upn, m) +
			"--mix\r\nContent-Type: text/csv; name=\"figures.csv\"\r\nContent-Disposition: attachment; filename=\"figures.csv\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			"bW9udGgsdG90YWwKamFudWFyeSwxMjAwCmZlYnJ1YXJ5LDEzNTAK\r\n--mix--\r\n"
	}
	return head + fmt.Sprintf("Content-Type: text/plain; charset=utf-8\r\n\r\nHello %s, this is message %d.\r\n", upn, m)
}

// seedContactsAndTasks puts three contacts and two To Do tasks in a seeded user's mailbox.
func seedContactsAndTasks(mb *mailbox, tenant string, day time.Time) {
	add := func(f *folder, subject string, fields map[string]any) {
		mb.Seq++
		f.Messages = append(f.Messages, &message{ID: stableID(f.ID, "item", strconv.Itoa(mb.Seq)), ChangeKey: 1, Touched: mb.Seq, Subject: subject,
			Received: day, Sent: day, Flag: "notFlagged", Props: map[string]string{}, Fields: fields})
	}
	contacts := mb.folder("contacts")
	for i, n := range []string{"Ana Lima", "Bo Chen", "Chidi Okafor"} {
		given, sur, _ := strings.Cut(n, " ")
		add(contacts, n, map[string]any{"displayName": n, "givenName": given, "surname": sur, "companyName": "Partner " + strconv.Itoa(i),
			"emailAddresses": []any{map[string]any{"name": n, "address": strings.ToLower(given) + "@partner" + strconv.Itoa(i) + ".example"}},
			"businessPhones": []any{"+1 555 010" + strconv.Itoa(i)}, "categories": []any{}})
	}
	tasks := mb.folder("tasks")
	add(tasks, "Send the "+tenant+" budget", map[string]any{"title": "Send the " + tenant + " budget", "status": "notStarted", "importance": "high",
		"body":        map[string]any{"contentType": "text", "content": "Figures from finance first."},
		"dueDateTime": map[string]any{"dateTime": day.AddDate(0, 0, 7).Format("2006-01-02T15:04:05.0000000"), "timeZone": "UTC"}, "categories": []any{}})
	add(tasks, "Book the offsite", map[string]any{"title": "Book the offsite", "status": "completed", "importance": "normal",
		"completedDateTime": map[string]any{"dateTime": day.Format("2006-01-02T15:04:05.0000000"), "timeZone": "UTC"}, "categories": []any{}})
}

// seedFiles puts n files in a drive, spread over nested folders, with contents and dates that
// depend only on salt and the file's number; the lock must be held.
func seedFiles(s *Server, d *drive, n int, salt string, base time.Time) {
	root := d.Items[0]
	folder := func(parent *driveItem, name string) *driveItem {
		if f := d.child(parent.ID, name); f != nil {
			return f
		}
		d.Seq++
		f := &driveItem{ID: stableID(d.ID, "item", strconv.Itoa(d.Seq)), Name: name, ParentID: parent.ID, Folder: true, Created: base}
		d.Items = append(d.Items, f)
		d.touch(f, true, base)
		return f
	}
	docs := folder(root, "Documents")
	places := []*driveItem{docs, folder(docs, "Reports"), folder(folder(docs, "Reports"), "2024"), folder(root, "Photos")}
	names := []string{"notes-%d.txt", "report-%d.csv", "summary-%d.txt", "photo-%d.jpg"}
	for i := 0; i < n; i++ {
		when := base.Add(time.Duration(i) * 3 * time.Hour)
		size := 200 + (i*7919)%(48<<10) // up to 48 KiB
		body := make([]byte, size)
		for j := range body {
			body[j] = byte((j*31 + i*17 + len(salt)) % 251)
		}
		it := s.put(d, places[i%len(places)], fmt.Sprintf(names[i%len(names)], i), body, fsInfo{Created: &when, Modified: &when})
		it.Created = when
	}
	s.dirty = true
}
