package m365sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/graph/csdl"
	"github.com/ferry-migrate/ferry/internal/testenv/reference"
)

// recorder keeps every Graph exchange that passes through it.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	log  []exchange
}

type exchange struct {
	method, path, query string
	reqBody, respBody   []byte
	contentType         string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := r.next.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.Path, "/v1.0/") {
		return resp, err
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	r.mu.Lock()
	r.log = append(r.log, exchange{req.Method, req.URL.Path, req.URL.RawQuery, reqBody, respBody, req.Header.Get("Content-Type")})
	r.mu.Unlock()
	return resp, nil
}

// entityOf names the Graph type a path's requests and answers are about.
var entityOf = []struct {
	re   *regexp.Regexp
	name string
}{
	{regexp.MustCompile(`/messages/[^/]+/\$value$`), ""},
	{regexp.MustCompile(`/settings/exchange$`), "exchangeSettings"},
	{regexp.MustCompile(`/admin/exchange/mailboxes/[^/]+/exportItems$`), "exportItemResponse"},
	{regexp.MustCompile(`/admin/exchange/mailboxes/[^/]+/createImportSession$`), "mailboxItemImportSession"},
	{regexp.MustCompile(`/admin/exchange/mailboxes/[^/]+/folders/[^/]+/items(/delta)?$`), "mailboxItem"},
	{regexp.MustCompile(`/admin/exchange/mailboxes/[^/]+/folders(/[^/]+/childFolders|/delta|/[^/]+)?$`), "mailboxFolder"},
	{regexp.MustCompile(`/teams/[^/]+/channels/[^/]+/messages$`), "chatMessage"},
	{regexp.MustCompile(`/teams/[^/]+/channels$`), "channel"},
	{regexp.MustCompile(`/teams(/[^/]+)?$`), "team"},
	{regexp.MustCompile(`/messages/[^/]+/attachments/createUploadSession$`), "uploadSession"},
	{regexp.MustCompile(`:/createUploadSession$`), "uploadSession"},
	{regexp.MustCompile(`/users/[^/]+/drive$`), "drive"},
	{regexp.MustCompile(`/sites/[^/]+/drives$`), "drive"},
	{regexp.MustCompile(`/v1\.0/sites$`), "site"},
	{regexp.MustCompile(`/drives/[^/]+/(root/delta|items/[^/]+/children|items/[^/]+|items/.+:/content)$`), "driveItem"},
	{regexp.MustCompile(`/items/[^/]+/(permissions|invite)$`), "permission"},
	{regexp.MustCompile(`/messages/[^/]+/attachments$`), "fileAttachment"},
	{regexp.MustCompile(`/messages(/delta|/[^/]+)?$`), "message"},
	{regexp.MustCompile(`/events(/[^/]+)?$`), "event"},
	{regexp.MustCompile(`/calendars$`), "calendar"},
	{regexp.MustCompile(`/contactFolders$`), "contactFolder"},
	{regexp.MustCompile(`/contacts(/[^/]+)?$`), "contact"},
	{regexp.MustCompile(`/todo/lists$`), "todoTaskList"},
	{regexp.MustCompile(`/tasks(/[^/]+)?$`), "todoTask"},
	{regexp.MustCompile(`/(mailFolders|childFolders)(/[^/]+)?$`), "mailFolder"},
	{regexp.MustCompile(`^/v1\.0/users(/[^/]+)?$`), "user"},
	{regexp.MustCompile(`/subscribedSkus$`), "subscribedSku"},
}

// TestConformanceWithMetadata runs the client against the emulator through a recorder, then checks
// every property name in what the client sent ($select and JSON bodies) and what the emulator
// answered against Microsoft's v1.0 CSDL.
func TestConformanceWithMetadata(t *testing.T) {
	f, err := os.Open(reference.Path(t, "reference/graph/v1.0-Prod.csdl"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := csdl.Read(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ typ, prop string }{{"message", "internetMessageId"}, {"message", "id"}, {"user", "proxyAddresses"}, {"mailFolder", "childFolderCount"}} {
		if _, ok := meta.Property(tc.typ, tc.prop); !ok {
			t.Fatalf("metadata lacks %s.%s: the loader is wrong", tc.typ, tc.prop)
		}
	}
	if bad := meta.Check("message", map[string]any{"subjekt": "x"}); len(bad) != 1 {
		t.Fatalf("the checker accepted a misspelt property: %v", bad)
	}

	const stamp0 = "String {00020329-0000-0000-C000-000000000046} Name FerrySourceId"
	r := newRig(t)
	r.sim.AddApp("11111111-1111-1111-1111-111111111111", "app-all", "a", nil, "Mail.ReadWrite", "User.Read.All",
		"MailboxFolder.ReadWrite.All", "MailboxItem.Read.All", "MailboxItem.ImportExport.All", "Calendars.ReadWrite", "Contacts.ReadWrite", "Tasks.ReadWrite.All", "Files.ReadWrite.All", "User.ReadWrite.All", "Organization.Read.All", "Sites.Read.All", "Teamwork.Migrate.All", "Team.ReadBasic.All", "ChannelMessage.Read.All")
	rec := &recorder{next: r.srv.Client().Transport}
	ts, _ := r.creds.For(r.cloud, graph.AppCredential{Tenant: "contoso.onmicrosoft.com", ClientID: "app-all", ClientSecret: "a"})
	c := graph.New(graph.Config{Cloud: r.cloud, Tokens: ts, HTTP: &http.Client{Transport: rec}})
	ctx := context.Background()
	users, _ := c.Users(ctx)
	for _, err := range users {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.User(ctx, "user1@contoso.com"); err != nil {
		t.Fatal(err)
	}
	folders, _ := c.MailFolders(ctx, "user1@contoso.com", "")
	for _, err := range folders {
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := c.CreateMailFolder(ctx, "user1@contoso.com", "", "Projects")
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.CreateMessageFromMIME(ctx, "user1@contoso.com", p.ID, []byte("Message-ID: <c@x>\r\nSubject: s\r\n\r\nb\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateMessage(ctx, "user1@contoso.com", m.ID, true, "flagged", []string{"A"}); err != nil {
		t.Fatal(err)
	}
	delta, _ := c.MessagesDelta(ctx, "user1@contoso.com", p.ID, "")
	for _, err := range delta {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.Do(ctx, graph.Request{Method: "POST", Path: "/users/user1@contoso.com/mailFolders/inbox/messages",
		Body: map[string]any{"subject": "j", "singleValueExtendedProperties": []graph.ExtendedProperty{{ID: graph.PropMessageFlags, Value: "1"}}}}, nil)

	// A received message from its parts, with attachments small and large.
	var to graph.Recipient
	to.EmailAddress.Name, to.EmailAddress.Address = "Bob", "bob@contoso.com"
	composed, err := c.CreateMessage(ctx, "user1@contoso.com", p.ID, graph.NewMessage{Subject: "Parts", Body: &graph.ItemBody{ContentType: "html", Content: "<p>hi</p>"},
		From: &to, ToRecipients: []graph.Recipient{to}, InternetMessageID: "<parts@x>", Importance: "high", Categories: []string{"Blue"}, Flag: &graph.Flag{FlagStatus: "flagged"},
		InternetMessageHeaders:        []graph.InternetMessageHeader{{Name: "x-origin", Value: "imap"}},
		SingleValueExtendedProperties: []graph.ExtendedProperty{{ID: graph.PropMessageFlags, Value: "1"}, {ID: graph.PropDeliveryTime, Value: "2024-01-02T03:04:05Z"}},
		Attachments:                   []graph.FileAttachment{graph.NewFileAttachment("a.txt", "text/plain", "", false, []byte("a"))}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddAttachment(ctx, "user1@contoso.com", composed.ID, graph.NewFileAttachment("b.png", "image/png", "b@x", true, []byte("png"))); err != nil {
		t.Fatal(err)
	}
	large := bytes.Repeat([]byte("L"), graph.AttachmentChunk+100)
	if err := c.AttachLarge(ctx, "user1@contoso.com", composed.ID, graph.AttachmentItem{Name: "c.bin", Size: int64(len(large))}, bytes.NewReader(large)); err != nil {
		t.Fatal(err)
	}
	c.Do(ctx, graph.Request{Method: "GET", Path: "/users/user1@contoso.com/messages/" + composed.ID + "/attachments"}, nil)

	// Users and licences at a target.
	nu, err := c.CreateUser(ctx, graph.NewUser{AccountEnabled: true, DisplayName: "New Hire", MailNickname: "newhire", UserPrincipalName: "newhire@contoso.com",
		UsageLocation: "GB", PasswordProfile: &graph.PasswordProfile{Password: "Pa55-w0rd!x", ForceChangePasswordNextSignIn: true}})
	if err != nil {
		t.Fatal(err)
	}
	skus, err := c.SubscribedSkus(ctx)
	if err != nil || len(skus) == 0 {
		t.Fatalf("subscribedSkus: %v %v", skus, err)
	}
	if err := c.AssignLicense(ctx, nu.ID, []string{skus[0].SkuID}, nil); err != nil {
		t.Fatal(err)
	}

	// OneDrive: folders, uploads small and large, delta, sharing.
	drv, err := c.UserDrive(ctx, "user1@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	var droot graph.DriveItem
	if _, err := c.Do(ctx, graph.Request{Method: "GET", Path: "/drives/" + drv.ID + "/items/root"}, &droot); err != nil {
		t.Fatal(err)
	}
	dfolder, err := c.CreateDriveFolder(ctx, drv.ID, droot.ID, "Shared")
	if err != nil {
		t.Fatal(err)
	}
	dfile, err := c.UploadSmall(ctx, drv.ID, dfolder.ID, "a.txt", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := c.UploadLarge(ctx, drv.ID, dfolder.ID, "b.bin", 5, &graph.FileSystemInfo{LastModifiedDateTime: &when}, bytes.NewReader([]byte("bbbbb"))); err != nil {
		t.Fatal(err)
	}
	ddelta, _ := c.DriveDelta(ctx, drv.ID, "")
	for _, err := range ddelta {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Invite(ctx, drv.ID, dfile.ID, []string{"x@fabrikam.com"}, []string{"read"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Permissions(ctx, drv.ID, dfile.ID); err != nil {
		t.Fatal(err)
	}
	kids, _ := c.DriveChildren(ctx, drv.ID, dfolder.ID)
	for _, err := range kids {
		if err != nil {
			t.Fatal(err)
		}
	}
	mfd, _ := c.MailFoldersDelta(ctx, "user1@contoso.com", "")
	for _, err := range mfd {
		if err != nil {
			t.Fatal(err)
		}
	}

	// Teams in migration mode.
	born := time.Date(2022, 1, 2, 3, 4, 5, 0, time.UTC)
	teamID, err := c.CreateMigrationTeam(ctx, "Moved", "d", born)
	if err != nil {
		t.Fatal(err)
	}
	mch, err := c.CreateMigrationChannel(ctx, teamID, "Ops", "", born)
	if err != nil {
		t.Fatal(err)
	}
	var cm graph.ChatMessage
	cm.CreatedDateTime, cm.Body = &born, graph.ItemBody{ContentType: "html", Content: "<p>x</p>"}
	json.Unmarshal([]byte(`{"user":{"@odata.type":"#microsoft.graph.teamworkUserIdentity","id":"u1","displayName":"Ann","userIdentityType":"aadUser"}}`), &cm.From)
	if _, err := c.ImportMessage(ctx, teamID, mch.ID, cm); err != nil {
		t.Fatal(err)
	}
	tms, _ := c.Teams(ctx)
	for _, err := range tms {
		if err != nil {
			t.Fatal(err)
		}
	}
	chs, _ := c.Channels(ctx, teamID)
	for _, err := range chs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cms, _ := c.ChannelMessages(ctx, teamID, mch.ID)
	for _, err := range cms {
		if err != nil {
			t.Fatal(err)
		}
	}

	// Sites and their document libraries.
	r.sim.AddSite("11111111-1111-1111-1111-111111111111", "finance", "Finance")
	found, err := c.SearchSites(ctx, "fin")
	if err != nil || len(found) != 1 {
		t.Fatalf("sites: %v %v", found, err)
	}
	if _, err := c.SiteDrives(ctx, found[0].ID); err != nil {
		t.Fatal(err)
	}

	// Calendars, contacts and To Do through their own APIs.
	for _, a := range []graph.ItemAPI{graph.CalendarAPI, graph.ContactAPI, graph.TaskAPI} {
		f, err := c.CreateItemFolder(ctx, a, "user1@contoso.com", "Migrated "+a.Name+"s")
		if err != nil {
			t.Fatal(err)
		}
		body := map[string]any{"displayName": "Ann Lee", "givenName": "Ann", "emailAddresses": []map[string]string{{"name": "Ann", "address": "ann@x.example"}},
			"singleValueExtendedProperties": []graph.ExtendedProperty{{ID: stamp0, Value: "s"}}}
		switch a.Name {
		case "event":
			body = map[string]any{"subject": "Review", "start": map[string]string{"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
				"end": map[string]string{"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"}, "location": map[string]string{"displayName": "Room 1"},
				"body": map[string]string{"contentType": "text", "content": "Agenda"}, "isReminderOn": true, "singleValueExtendedProperties": []graph.ExtendedProperty{{ID: stamp0, Value: "s"}}}
		case "task":
			body = map[string]any{"title": "File report", "status": "notStarted", "importance": "high",
				"linkedResources": []map[string]string{{"applicationName": "Ferry", "displayName": "Migrated item", "externalId": "s"}}}
		}
		it, err := c.CreateItem(ctx, a, "user1@contoso.com", f.ID, body)
		if err != nil {
			t.Fatalf("create %s: %v", a.Name, err)
		}
		if _, err := c.GetItem(ctx, a, "user1@contoso.com", f.ID, it.String("id")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.UpdateItem(ctx, a, "user1@contoso.com", f.ID, it.String("id"), map[string]any{"categories": []string{"Blue"}}); err != nil {
			t.Fatalf("update %s: %v", a.Name, err)
		}
		items, _ := c.Items(ctx, a, "user1@contoso.com", f.ID, "")
		for _, err := range items {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.ItemFolders(ctx, a, "user1@contoso.com"); err != nil {
			t.Fatal(err)
		}
	}

	// The import/export API: settings, folders, items, exportItems, createImportSession.
	set, err := c.ExchangeSettings(ctx, "user1@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	mf, _ := c.MailboxFolders(ctx, set.PrimaryMailboxID, "")
	for _, err := range mf {
		if err != nil {
			t.Fatal(err)
		}
	}
	mi, _ := c.MailboxItems(ctx, set.PrimaryMailboxID, p.ID)
	for _, err := range mi {
		if err != nil {
			t.Fatal(err)
		}
	}
	fd, _ := c.MailboxFoldersDelta(ctx, set.PrimaryMailboxID, "")
	for _, err := range fd {
		if err != nil {
			t.Fatal(err)
		}
	}
	md, _ := c.MailboxItemsDelta(ctx, set.PrimaryMailboxID, p.ID, "")
	for _, err := range md {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.ExportItems(ctx, set.PrimaryMailboxID, []string{m.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateImportSession(ctx, set.PrimaryMailboxID); err != nil {
		t.Fatal(err)
	}
	tc, err := c.CreateMailboxFolder(ctx, set.PrimaryMailboxID, "", "Team calendar", "IPF.Appointment")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RenameMailboxFolder(ctx, set.PrimaryMailboxID, tc.ID, "Team calendar 2"); err != nil {
		t.Fatal(err)
	}
	// Events: created with attendees and a recurrence, then listed.
	if _, err := c.Do(ctx, graph.Request{Method: "POST", Path: "/users/user1@contoso.com/events", Body: map[string]any{"subject": "Sync",
		"start": map[string]string{"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"}, "end": map[string]string{"dateTime": "2026-12-01T10:30:00", "timeZone": "UTC"},
		"attendees":  []map[string]any{{"type": "required", "emailAddress": map[string]string{"address": "a@contoso.com", "name": "A"}}},
		"recurrence": map[string]any{"pattern": map[string]any{"type": "weekly", "interval": 1, "daysOfWeek": []string{"monday"}}, "range": map[string]any{"type": "endDate", "startDate": "2026-12-01", "endDate": "2027-03-01"}}}}, nil); err != nil {
		t.Fatal(err)
	}
	evs, _ := c.Events(ctx, "user1@contoso.com")
	for _, err := range evs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Stamping a source id and finding it again.
	const stamp = "String {00020329-0000-0000-C000-000000000046} Name FerrySourceId"
	if stamped, err := c.SetMessageProperty(ctx, "user1@contoso.com", m.ID, stamp, "src-1"); err != nil || stamped.ChangeKey == m.ChangeKey || stamped.ChangeKey == "" {
		t.Fatalf("stamp: changeKey %q after %q, %v", stamped.ChangeKey, m.ChangeKey, err)
	}
	if found, err := c.MessagesWithProperty(ctx, "user1@contoso.com", p.ID, stamp, "src-1"); err != nil || len(found) != 1 || found[0].ID != m.ID {
		t.Fatalf("find by stamp: %v %v", found, err)
	}
	if found, err := c.MessagesWithProperty(ctx, "user1@contoso.com", p.ID, stamp, "src-2"); err != nil || len(found) != 0 {
		t.Fatalf("find by another stamp: %v %v", found, err)
	}

	var bad []string
	checked := 0
	for _, ex := range rec.log {
		typ := ""
		for _, e := range entityOf {
			if e.re.MatchString(ex.path) {
				typ = e.name
				break
			}
		}
		if typ == "" {
			continue
		}
		for _, kv := range strings.Split(ex.query, "&") {
			if k, v, _ := strings.Cut(kv, "="); k == "$select" || k == "%24select" {
				for _, prop := range strings.Split(strings.ReplaceAll(v, "%2C", ","), ",") {
					if _, ok := meta.Property(typ, prop); !ok {
						bad = append(bad, "client $select "+typ+"."+prop)
					}
				}
			}
		}
		var req, resp any
		action := ex.path[strings.LastIndex(ex.path, "/")+1:]
		if params, ok := meta.ActionParams(action); ok && ex.method == "POST" {
			// An action's body holds its parameters, not the returned type's properties.
			var body map[string]any
			json.Unmarshal(ex.reqBody, &body)
			for k := range body {
				if !slices.Contains(params, k) {
					bad = append(bad, "client sent parameter "+k+" to action "+action)
				}
			}
		} else if strings.HasPrefix(ex.contentType, "application/json") && json.Unmarshal(ex.reqBody, &req) == nil {
			for _, b := range meta.Check(typ, req) {
				bad = append(bad, "client sent "+b+" to "+ex.method+" "+ex.path)
			}
		}
		if json.Unmarshal(ex.respBody, &resp) == nil {
			if page, ok := resp.(map[string]any); ok {
				if v, ok := page["value"]; ok {
					resp = v
				}
			}
			for _, b := range meta.Check(typ, resp) {
				bad = append(bad, "emulator answered "+b+" to "+ex.method+" "+ex.path)
			}
			checked++
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatalf("names not in the v1.0 metadata:\n%s", strings.Join(bad, "\n"))
	}
	if checked < 15 {
		t.Fatalf("only %d exchanges checked", checked)
	}
	t.Logf("%d exchanges checked against the metadata", checked)
}
