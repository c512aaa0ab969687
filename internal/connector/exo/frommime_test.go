package exo

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/graph"
)

func decomposeFile(t *testing.T, name string, flags ...string) *decomposed {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../../../shared/testdata/mime-enmime", name))
	if err != nil {
		t.Fatal(err)
	}
	d, err := decompose(bytes.NewReader(b), int64(len(b)), time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), flags)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Every message of the corpus, malformed ones included, comes apart into a message with its
// subject or body or attachments: none is left unreadable.
func TestDecomposeCorpus(t *testing.T) {
	files, _ := filepath.Glob("../../../../shared/testdata/mime-enmime/*.raw")
	if len(files) < 50 {
		t.Fatalf("corpus has %d files", len(files))
	}
	var parts int
	for _, f := range files {
		d := decomposeFile(t, filepath.Base(f))
		if d.msg.Subject == "(unreadable message)" {
			t.Errorf("%s was not readable", filepath.Base(f))
		}
		if prop(d.msg, graph.PropMessageFlags) != "0" {
			t.Errorf("%s: PidTagMessageFlags %q, want 0 (unread, not a draft)", filepath.Base(f), prop(d.msg, graph.PropMessageFlags))
		}
		parts += len(d.parts)
	}
	if parts < 40 {
		t.Errorf("the corpus gave %d attachments; its attachments are being lost", parts)
	}
}

func TestDecomposeParts(t *testing.T) {
	// HTML wins over its plain-text alternative; the related image stays inline with its Content-ID.
	d := decomposeFile(t, "mail__html-mime-inline.raw")
	if d.msg.Body.ContentType != "html" || !strings.Contains(d.msg.Body.Content, "<html>") {
		t.Errorf("body %s %.40q, want the HTML alternative", d.msg.Body.ContentType, d.msg.Body.Content)
	}
	if len(d.parts) != 1 || d.parts[0].name != "favicon.png" || !d.parts[0].inline || d.parts[0].contentID != "8B8481A2-25CA-4886-9B5A-8EB9115DD064@skynet" || d.parts[0].size != 687 {
		t.Errorf("parts %+v, want the inline favicon.png of 687 bytes", d.parts)
	}
	if h := prop(d.msg, propTransportHeaders); !strings.Contains(h, "Message-ID: <") && !strings.Contains(h, "Message-Id: <") {
		t.Errorf("the header block is not kept: %.200q", h)
	}

	// Encoded words in names, a lenient parameter with 8-bit bytes.
	d = decomposeFile(t, "mail__qp-utf8-header.raw")
	if d.msg.Subject != "MIME UTF8 Test ¢ More Text" || len(d.msg.ToRecipients) != 1 || d.msg.ToRecipients[0].EmailAddress.Name != "Mirosław Marczak" {
		t.Errorf("subject %q, to %+v", d.msg.Subject, d.msg.ToRecipients)
	}
	d = decomposeFile(t, "mail__mime-bad-8bit-filename.raw")
	if len(d.parts) != 1 || d.parts[0].contentType != "application/msword" || d.parts[0].name != "管理.doc" {
		t.Errorf("parts %+v, want 管理.doc as application/msword", d.parts)
	}
	data, _ := io.ReadAll(d.content(d.parts[0]))
	if int64(len(data)) != d.parts[0].size || len(data) == 0 {
		t.Errorf("spooled %d bytes for a part of %d", len(data), d.parts[0].size)
	}

	// Mended headers: white space before the first field, a missing blank line, no header at all.
	if d := decomposeFile(t, "low-quality__bad-header-start.raw"); d.msg.Subject != "plain text" || d.msg.Body.Content != "A text section" {
		t.Errorf("bad header start: %q %q", d.msg.Subject, d.msg.Body.Content)
	}
	if d := decomposeFile(t, "mail__erroneous.raw"); !strings.HasPrefix(d.msg.Body.Content, "// Not an RFC-822 Document") {
		t.Errorf("a document without a header lost its text: %q", d.msg.Body.Content)
	}
	// An address header that does not parse is kept as written.
	d = decomposeFile(t, "mail__malformed-multiple-address-header-values.raw")
	if d.msg.From == nil || !strings.Contains(d.msg.From.EmailAddress.Address, "bobby@extern") {
		t.Errorf("from %+v, want the header's text kept", d.msg.From)
	}
}

func TestDecomposeState(t *testing.T) {
	d := decomposeFile(t, "mail__attachment.raw", `\Seen`, `\Flagged`, `\Answered`, "Project-X", `\Recent`)
	if prop(d.msg, graph.PropMessageFlags) != "1" || d.msg.Flag == nil || d.msg.Flag.FlagStatus != "flagged" ||
		!slices.Equal(d.msg.Categories, []string{"Project-X"}) || prop(d.msg, propLastVerb) != "102" {
		t.Errorf("state: flags %q, flag %+v, categories %v, last verb %q", prop(d.msg, graph.PropMessageFlags), d.msg.Flag, d.msg.Categories, prop(d.msg, propLastVerb))
	}
	if prop(d.msg, graph.PropDeliveryTime) != "2020-01-02T03:04:05Z" || prop(d.msg, graph.PropSubmitTime) == "" {
		t.Errorf("dates: delivered %q, submitted %q", prop(d.msg, graph.PropDeliveryTime), prop(d.msg, graph.PropSubmitTime))
	}
	if d := decomposeFile(t, "mail__attachment.raw", `\Draft`); prop(d.msg, graph.PropMessageFlags) != "8" {
		t.Errorf("a draft's flags %q, want 8 (unsent)", prop(d.msg, graph.PropMessageFlags))
	}
}

// A message the parser cannot read at all (a header past its 1 MB bound) is kept whole.
func TestDecomposeUnreadableKeepsTheOriginal(t *testing.T) {
	raw := []byte("Subject: " + strings.Repeat("x", 2<<20) + "\r\n\r\nbody\r\n")
	d, err := decompose(bytes.NewReader(raw), int64(len(raw)), time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if len(d.parts) != 1 || d.parts[0].name != "original.eml" || d.parts[0].size != int64(len(raw)) {
		t.Fatalf("parts %+v, want the whole original of %d bytes", d.parts, len(raw))
	}
	got, _ := io.ReadAll(d.content(d.parts[0]))
	if !bytes.Equal(got, raw) {
		t.Fatal("the kept original differs from the message")
	}
}
