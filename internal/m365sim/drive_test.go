package m365sim_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/graph/quickxor"
	"github.com/ferry-migrate/ferry/internal/m365sim"
	"github.com/ferry-migrate/ferry/internal/throttle"
)

// TestDriveByOneDrivesRules: folders, small and session uploads (chunks of 320 KiB multiples, in
// order, resumable), quickXorHash, file dates, downloads, delta with changes and deletions,
// sharing without invitations, and SharePoint's resource units.
func TestDriveByOneDrivesRules(t *testing.T) {
	r := newRig(t)
	r.sim.AddApp("11111111-1111-1111-1111-111111111111", "app-files", "f", nil, m365sim.PermFilesReadWrite)
	c := r.client(t, graph.AppCredential{ClientID: "app-files", ClientSecret: "f"})
	ctx := context.Background()
	d, err := c.UserDrive(ctx, "user2@contoso.com")
	if err != nil || d.ID == "" {
		t.Fatalf("drive: %+v %v", d, err)
	}
	var rootItem graph.DriveItem
	if _, err := c.Do(ctx, graph.Request{Method: "GET", Path: "/drives/" + d.ID + "/items/root"}, &rootItem); err != nil || rootItem.Root == nil {
		t.Fatalf("root: %+v %v", rootItem, err)
	}
	docs, err := c.CreateDriveFolder(ctx, d.ID, rootItem.ID, "Docs")
	if err != nil || docs.Folder == nil {
		t.Fatalf("folder: %+v %v", docs, err)
	}
	if _, err := c.CreateDriveFolder(ctx, d.ID, rootItem.ID, "docs"); !graph.IsStatus(err, http.StatusConflict) {
		t.Fatalf("a second Docs: %v, want 409", err)
	}
	if _, err := c.UploadSmall(ctx, d.ID, docs.ID, "bad:name.txt", []byte("x")); !graph.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("a name with a colon: %v, want 400", err)
	}
	small, err := c.UploadSmall(ctx, d.ID, docs.ID, "notes.txt", []byte("first version"))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 2*graph.DriveChunk+12345)
	for i := range data {
		data[i] = byte(i * 31 >> 4)
	}
	created, modified := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC), time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)
	big, err := c.UploadLarge(ctx, d.ID, docs.ID, "plans.bin", int64(len(data)), &graph.FileSystemInfo{CreatedDateTime: &created, LastModifiedDateTime: &modified}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	h := quickxor.New()
	h.Write(data)
	if want := base64.StdEncoding.EncodeToString(h.Sum(nil)); big.Size != int64(len(data)) || big.File == nil || big.File.Hashes.QuickXorHash != want {
		t.Fatalf("large upload: size %d, hash %+v, want %d and %s", big.Size, big.File, len(data), want)
	}
	if !big.FileSystemInfo.CreatedDateTime.Equal(created) || !big.FileSystemInfo.LastModifiedDateTime.Equal(modified) {
		t.Errorf("file dates: %+v, want %s and %s", big.FileSystemInfo, created, modified)
	}

	// The whole drive, then only what changed.
	items, next := c.DriveDelta(ctx, d.ID, "")
	var all []graph.DriveItem
	for it, err := range items {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, it)
	}
	link := next()
	if len(all) != 4 || link == "" {
		t.Fatalf("first delta: %d items, link %q; want root, Docs and two files", len(all), link)
	}
	for _, it := range all {
		if it.ID == big.ID {
			rc, err := c.Download(ctx, it)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, data) {
				t.Fatalf("download: %d bytes unlike the %d uploaded", len(got), len(data))
			}
		}
	}
	if _, err := c.UploadSmall(ctx, d.ID, docs.ID, "notes.txt", []byte("second version")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, graph.Request{Method: "DELETE", Path: "/drives/" + d.ID + "/items/" + big.ID}, nil); err != nil {
		t.Fatal(err)
	}
	items, _ = c.DriveDelta(ctx, d.ID, link)
	changes := map[string]string{}
	for it, err := range items {
		if err != nil {
			t.Fatal(err)
		}
		state := "changed " + it.CTag
		if it.Deleted != nil {
			state = "deleted"
		}
		changes[it.ID] = state
	}
	if len(changes) != 2 || changes[big.ID] != "deleted" || changes[small.ID] == "changed "+small.CTag || changes[small.ID] == "" {
		t.Fatalf("delta after a change and a deletion: %v", changes)
	}

	// The session's rules, on the raw upload URL; and the client resumes where the service says.
	var s graph.UploadSession
	if _, err := c.Do(ctx, graph.Request{Method: "POST", Path: "/drives/" + d.ID + "/items/" + docs.ID + ":/raw.bin:/createUploadSession", Body: map[string]any{}}, &s); err != nil {
		t.Fatal(err)
	}
	put := func(first, n, total int) int {
		req, _ := http.NewRequest("PUT", s.UploadURL, bytes.NewReader(make([]byte, n)))
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, first+n-1, total))
		resp, err := r.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const k = 320 << 10
	for _, tc := range []struct{ first, n, want int }{
		{0, 100000, http.StatusBadRequest}, // not a multiple of 320 KiB, and not the last
		{0, k, http.StatusAccepted},
		{0, k, http.StatusRequestedRangeNotSatisfiable}, // again: out of order
		{k, 5, http.StatusCreated},                      // the last may be any size
	} {
		if got := put(tc.first, tc.n, k+5); got != tc.want {
			t.Errorf("PUT bytes %d+%d: %d, want %d", tc.first, tc.n, got, tc.want)
		}
	}

	// Sharing without invitations; the roles the API knows.
	if _, err := c.Invite(ctx, d.ID, small.ID, []string{"bob@fabrikam.com"}, []string{"write"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invite(ctx, d.ID, small.ID, []string{"eve@fabrikam.com"}, []string{"owner"}); !graph.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("an owner invitation: %v, want 400", err)
	}
	perms, err := c.Permissions(ctx, d.ID, small.ID)
	if err != nil || len(perms) != 2 || perms[1].Invitation == nil || perms[1].Invitation.Email != "bob@fabrikam.com" || perms[1].Roles[0] != "write" {
		t.Fatalf("permissions: %+v %v", perms, err)
	}
	if sent := r.sim.SentMail(); len(sent) != 0 {
		t.Fatalf("sharing sent %+v", sent)
	}

	// SharePoint's resource units: a permissions read costs 5, an item read 1.
	r.sim.SetSharePointLimits(throttle.Limits{Requests: 6, Window: time.Hour})
	c2 := graph.New(graph.Config{Cloud: r.cloud, Tokens: mustTokens(t, r, "app-files", "f"), HTTP: r.srv.Client(), MaxAttempts: 1})
	if _, err := c2.Permissions(ctx, d.ID, small.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Do(ctx, graph.Request{Method: "GET", Path: "/drives/" + d.ID + "/items/" + small.ID}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Do(ctx, graph.Request{Method: "GET", Path: "/drives/" + d.ID + "/items/" + small.ID}, nil); !graph.IsStatus(err, http.StatusTooManyRequests) {
		t.Fatalf("the seventh resource unit in the window: %v, want 429", err)
	}
	tok, _ := mustTokens(t, r, "app-files", "f").Token(ctx, r.srv.URL+"/.default")
	req, _ := http.NewRequest("GET", r.srv.URL+"/v1.0/drives/"+d.ID+"/items/"+small.ID, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("RateLimit-Limit") != "6" || resp.Header.Get("RateLimit-Remaining") != "0" || resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit-Reset") != resp.Header.Get("Retry-After") {
		t.Fatalf("a throttled answer: %d, headers %v", resp.StatusCode, resp.Header)
	}
}

func mustTokens(t *testing.T, r *rig, app, secret string) graph.TokenSource {
	t.Helper()
	ts, err := r.creds.For(r.cloud, graph.AppCredential{Tenant: "contoso.onmicrosoft.com", ClientID: app, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}
