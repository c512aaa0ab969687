// Package mimecorpus is the project's own corpus of hard MIME cases (testdata/mime) with the
// exact reading expected of each, for every test that reads mail: the parser's own, and the round
// trip through Exchange.
package mimecorpus

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/mailparse"
	"github.com/ferry-migrate/ferry/internal/testenv/reference"
)

// Expected is one message's exact expected reading, from testdata/mime/expected.json.
type Expected struct {
	Subject     string      `json:"subject"`
	From        [][2]string `json:"from"`
	To          [][2]string `json:"to"`
	BodyHTML    bool        `json:"body_html"`
	Body        string      `json:"body"`
	Attachments []struct {
		Name        string `json:"name"`
		ContentType string `json:"content_type"`
		Size        int64  `json:"size"`
		SHA256      string `json:"sha256"`
	} `json:"attachments"`
}

// Load returns the corpus folder and the expected reading of every message in it.
func Load(t testing.TB) (string, map[string]Expected) {
	t.Helper()
	dir := reference.Own(t, "testdata/mime")
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp map[string]Expected
	if err := json.Unmarshal(data, &exp); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != len(exp) || len(files) < 30 {
		t.Fatalf("%d messages and %d expected readings in %s; every message needs one", len(files), len(exp), dir)
	}
	return dir, exp
}

// Pairs turns addresses into [name, address] pairs, as Expected holds them.
func Pairs(l []mailparse.Address) [][2]string {
	out := [][2]string{}
	for _, a := range l {
		out = append(out, [2]string{a.Name, a.Address})
	}
	return out
}

// Reading is what a reader made of a message, to hold against its Expected.
type Reading struct {
	Subject     string
	From, To    [][2]string
	Body        *mailparse.Body
	Attachments []Attachment
	// Canonical compares body texts in MIME's canonical form: a message that went through a
	// server that re-encodes it (Exchange) comes back with CRLF line ends and a last line end.
	Canonical bool
}

// Attachment is one attachment as read.
type Attachment struct {
	Name, ContentType string
	Size              int64
	SHA256            string
}

// canonical makes every line end CRLF and drops the line ends at the end of the text.
func canonical(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
	return strings.TrimRight(s, "\r\n")
}

// Check compares a reading with the expected one, naming every difference.
func Check(t testing.TB, want Expected, got Reading) {
	t.Helper()
	if got.Subject != want.Subject {
		t.Errorf("subject %q, want %q", got.Subject, want.Subject)
	}
	eq := func(a, b [][2]string) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	if want.From == nil {
		want.From = [][2]string{}
	}
	if want.To == nil {
		want.To = [][2]string{}
	}
	if !eq(got.From, want.From) {
		t.Errorf("from %q, want %q", got.From, want.From)
	}
	if !eq(got.To, want.To) {
		t.Errorf("to %q, want %q", got.To, want.To)
	}
	body, html := "", false
	if got.Body != nil {
		body, html = got.Body.Text, got.Body.HTML
	}
	wantBody := want.Body
	if got.Canonical {
		body, wantBody = canonical(body), canonical(wantBody)
	}
	if body != wantBody || html != want.BodyHTML {
		t.Errorf("body (html %v) %q, want (html %v) %q", html, body, want.BodyHTML, want.Body)
	}
	if len(got.Attachments) != len(want.Attachments) {
		t.Errorf("%d attachments %+v, want %d %+v", len(got.Attachments), got.Attachments, len(want.Attachments), want.Attachments)
		return
	}
	for i, w := range want.Attachments {
		g := got.Attachments[i]
		if g.Name != w.Name || g.ContentType != w.ContentType || g.Size != w.Size || g.SHA256 != w.SHA256 {
			t.Errorf("attachment %d: %q %s %d bytes %s, want %q %s %d bytes %s", i+1, g.Name, g.ContentType, g.Size, g.SHA256[:12], w.Name, w.ContentType, w.Size, w.SHA256[:12])
		}
	}
}
