package m365sim_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/m365sim"
)

// TestArchiveAnswersAsDocumented checks the emulator's expanded archive folders against the
// shapes Microsoft documents: 308 with the same path under the auxiliary mailbox's id, an
// exportItems error carrying the auxiliary exportItems URL, and a 409 naming the mailbox an
// import session must be for; the archive's id only in beta.
func TestArchiveAnswersAsDocumented(t *testing.T) {
	r := newRig(t)
	const tenant = "11111111-1111-1111-1111-111111111111"
	r.sim.AddApp(tenant, "app-mbx", "x", nil, "User.Read.All", m365sim.PermMailboxFolderWrite, m365sim.PermMailboxItemRead, m365sim.PermImportExport)
	main := r.sim.AddArchive(tenant, "user1@contoso.com")
	fid := r.sim.ArchiveFolder(tenant, "user1@contoso.com", "2018")
	aux, err := r.sim.Expand(tenant, "user1@contoso.com", fid)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := r.creds.For(r.cloud, graph.AppCredential{Tenant: "contoso.onmicrosoft.com", ClientID: "app-mbx", ClientSecret: "x"})
	tok, err := ts.Token(context.Background(), r.srv.URL+"/.default")
	if err != nil {
		t.Fatal(err)
	}
	hc := r.srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	call := func(method, path string, body any) (*http.Response, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, r.srv.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, data
	}
	if _, v1 := call("GET", "/v1.0/users/user1@contoso.com/settings/exchange", nil); strings.Contains(string(v1), "inPlaceArchiveMailboxId") {
		t.Errorf("v1.0 settings/exchange names the archive: %s", v1)
	}
	if _, beta := call("GET", "/beta/users/user1@contoso.com/settings/exchange", nil); !strings.Contains(string(beta), `"inPlaceArchiveMailboxId":"`+main+`"`) {
		t.Errorf("beta settings/exchange: %s, want the archive %s", beta, main)
	}
	resp, _ := call("GET", "/beta/admin/exchange/mailboxes/"+main+"/folders/"+fid+"/items", nil)
	if want := r.srv.URL + "/beta/admin/exchange/mailboxes/" + aux + "/folders/" + fid + "/items"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("items of an expanded folder: %d Location %q, want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	// An item in the auxiliary mailbox, exported through the main archive.
	sess, body := call("POST", "/beta/admin/exchange/mailboxes/"+aux+"/createImportSession", nil)
	var s graph.ImportSession
	json.Unmarshal(body, &s)
	if sess.StatusCode != 200 || s.ImportURL == "" {
		t.Fatalf("import session for the auxiliary mailbox: %d %s", sess.StatusCode, body)
	}
	raw := "ferry-sim-fts/1\n" + `{"subject":"kept","mime":"U3ViamVjdDoga2VwdA0KDQpi","changeKey":1}`
	imp := func(url string) (int, []byte) {
		b, _ := json.Marshal(map[string]string{"FolderId": fid, "Mode": "create", "Data": base64.StdEncoding.EncodeToString([]byte(raw))})
		resp, err := r.srv.Client().Post(url, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, data
	}
	code, out := imp(s.ImportURL)
	var item struct{ ItemID string }
	json.Unmarshal(out, &item)
	if code != 200 || item.ItemID == "" {
		t.Fatalf("import into the auxiliary mailbox: %d %s", code, out)
	}
	_, exp := call("POST", "/beta/admin/exchange/mailboxes/"+main+"/exportItems", map[string]any{"ItemIds": []string{item.ItemID}})
	if want := `"code":"ErrorArchiveFolderMovedPermanently","message":"` + r.srv.URL + "/beta/admin/exchange/mailboxes/" + aux + `/exportItems"`; !strings.Contains(string(exp), want) {
		t.Errorf("export through the main archive: %s, want %s", exp, want)
	}
	// Importing into the expanded folder through the main archive's session.
	_, body = call("POST", "/beta/admin/exchange/mailboxes/"+main+"/createImportSession", nil)
	json.Unmarshal(body, &s)
	if code, out := imp(s.ImportURL); code != http.StatusConflict || !strings.Contains(string(out), "The target session is expected in mailbox "+aux+".") {
		t.Errorf("import through the main archive: %d %s, want 409 naming %s", code, out, aux)
	}
}
