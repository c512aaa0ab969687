package m365sim_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/graph"
)

// TestMessagesFromParts holds the emulator to Outlook's rules for messages created from JSON:
// PidTagMessageFlags decides draft and read state, the MAPI times the dates, only x- headers,
// 4 MB a request, attachments under 3 MB in one POST and larger ones through an upload session
// taken in order, at most 4 MB a PUT, without the token.
func TestMessagesFromParts(t *testing.T) {
	r := newRig(t)
	r.sim.AddApp("11111111-1111-1111-1111-111111111111", "app-mail", "m", nil, "Mail.ReadWrite", "User.Read.All")
	c := r.client(t, graph.AppCredential{ClientID: "app-mail", ClientSecret: "m"})
	ctx := context.Background()
	const user = "user3@contoso.com"

	draft, err := c.CreateMessage(ctx, user, "inbox", graph.NewMessage{Subject: "no flags"})
	if err != nil || !draft.IsDraft {
		t.Fatalf("a message without PidTagMessageFlags: %+v %v, want a draft", draft, err)
	}
	m, err := c.CreateMessage(ctx, user, "inbox", graph.NewMessage{Subject: "Résumé", Body: &graph.ItemBody{ContentType: "html", Content: "<p>Bonjour</p>"},
		InternetMessageID: "<r@x>", InternetMessageHeaders: []graph.InternetMessageHeader{{Name: "X-Source", Value: "imap"}},
		SingleValueExtendedProperties: []graph.ExtendedProperty{{ID: graph.PropMessageFlags, Value: "1"},
			{ID: graph.PropDeliveryTime, Value: "2022-05-06T07:08:09Z"}, {ID: graph.PropSubmitTime, Value: "2022-05-06T07:00:00Z"}}})
	if err != nil || m.IsDraft || !m.IsRead || m.ReceivedDateTime.Format("2006-01-02T15:04:05") != "2022-05-06T07:08:09" || m.SentDateTime.Format("15:04") != "07:00" {
		t.Fatalf("a received message: %+v %v", m, err)
	}
	if _, err := c.CreateMessage(ctx, user, "inbox", graph.NewMessage{Subject: "h", InternetMessageHeaders: []graph.InternetMessageHeader{{Name: "Received", Value: "x"}}}); !graph.IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "should start with 'x-'") {
		t.Fatalf("a non-x- header: %v, want 400", err)
	}
	if _, err := c.CreateMessage(ctx, user, "inbox", graph.NewMessage{Subject: "big", Body: &graph.ItemBody{ContentType: "text", Content: strings.Repeat("a", 5<<20)}}); !graph.IsStatus(err, http.StatusRequestEntityTooLarge) {
		t.Fatalf("a 5 MB request: %v, want 413", err)
	}
	if err := c.AddAttachment(ctx, user, m.ID, graph.NewFileAttachment("big.bin", "", "", false, make([]byte, 3<<20))); !graph.IsStatus(err, http.StatusRequestEntityTooLarge) {
		t.Fatalf("a 3 MB attachment in one POST: %v, want 413", err)
	}

	// An upload session: chunks in order, the last one attaches the file.
	data := make([]byte, 2*graph.AttachmentChunk+12345)
	for i := range data {
		data[i] = byte(i % 251)
	}
	if err := c.AttachLarge(ctx, user, m.ID, graph.AttachmentItem{Name: "plan.pdf", Size: int64(len(data)), ContentType: "application/pdf"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var atts struct {
		Value []struct {
			Name         string `json:"name"`
			Size         int    `json:"size"`
			ContentBytes []byte `json:"contentBytes"`
		} `json:"value"`
	}
	if _, err := c.Do(ctx, graph.Request{Method: "GET", Path: "/users/" + user + "/messages/" + m.ID + "/attachments"}, &atts); err != nil {
		t.Fatal(err)
	}
	if len(atts.Value) != 1 || atts.Value[0].Size != len(data) || sha256.Sum256(atts.Value[0].ContentBytes) != sha256.Sum256(data) {
		t.Fatalf("attachments after the upload: %d, want plan.pdf of %d bytes intact", len(atts.Value), len(data))
	}
	rc, err := c.MessageMIME(ctx, user, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	mime, _ := io.ReadAll(rc)
	rc.Close()
	for _, want := range []string{"Message-ID: <r@x>\r\n", "X-Source: imap\r\n", "Content-Type: text/html; charset=\"utf-8\"", "filename=\"plan.pdf\"", "Content-Type: multipart/mixed"} {
		if !bytes.Contains(mime, []byte(want)) {
			t.Errorf("$value lacks %q:\n%.600s", want, mime)
		}
	}

	// The session's rules, on the raw upload URL.
	var s graph.UploadSession
	if _, err := c.Do(ctx, graph.Request{Method: "POST", Path: "/users/" + user + "/messages/" + m.ID + "/attachments/createUploadSession",
		Body: map[string]any{"AttachmentItem": graph.AttachmentItem{AttachmentType: "file", Name: "x.bin", Size: 10 << 20}}}, &s); err != nil || len(s.NextExpectedRanges) != 1 || s.NextExpectedRanges[0] != "0-" {
		t.Fatalf("create upload session: %+v %v", s, err)
	}
	put := func(first, n int, auth bool) int {
		req, _ := http.NewRequest("PUT", s.UploadURL, bytes.NewReader(make([]byte, n)))
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, first+n-1, 10<<20))
		if auth {
			req.Header.Set("Authorization", "Bearer x")
		}
		resp, err := r.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		first, n int
		auth     bool
		want     int
	}{
		{0, 1 << 20, true, http.StatusBadRequest},                          // the token must not be sent
		{0, 5 << 20, false, http.StatusRequestEntityTooLarge},              // more than 4 MB in one PUT
		{1 << 20, 1 << 20, false, http.StatusRequestedRangeNotSatisfiable}, // out of order
		{0, 1 << 20, false, http.StatusOK},
	} {
		if got := put(tc.first, tc.n, tc.auth); got != tc.want {
			t.Errorf("PUT bytes %d+%d (auth %v): %d, want %d", tc.first, tc.n, tc.auth, got, tc.want)
		}
	}
	if _, err := c.Do(ctx, graph.Request{Method: "POST", Path: "/users/" + user + "/messages/" + m.ID + "/attachments/createUploadSession",
		Body: map[string]any{"AttachmentItem": graph.AttachmentItem{AttachmentType: "file", Name: "x.bin", Size: 151 << 20}}}, nil); !graph.IsStatus(err, http.StatusRequestEntityTooLarge) {
		t.Fatalf("a 151 MB upload session: %v, want 413", err)
	}
}
