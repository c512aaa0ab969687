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
	"github.com/ferry-migrate/ferry/internal/testenv/reference"
)

// decomposeFile takes apart one of the project's own test messages (testdata/mime).
func decomposeFile(t *testing.T, name string, flags ...string) *decomposed {
	t.Helper()
	return decomposePath(t, filepath.Join(reference.Own(t, "testdata/mime"), name), flags...)
}

func decomposePath(t *testing.T, path string, flags ...string) *decomposed {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := decompose(bytes.NewReader(b), int64(len(b)), time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), flags)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Every message of the corpus, malformed ones included, comes apart into a message with its
// subject or body or attachments: none is left unreadable.
func TestDecomposeCorpus(t *testing.T) {
	files := reference.MIMECorpus(t)
	var parts int
	for _, f := range files {
		d := decomposePath(t, f)
		if d.msg.Subject == "(unreadable message)" {
			t.Errorf("%s was not readable", filepath.Base(f))
		}
		if prop(d.msg, graph.PropMessageFlags) != "0" {
			t.Errorf("%s: PidTagMessageFlags %q, want 0 (unread, not a draft)", filepath.Base(f), prop(d.msg, graph.PropMessageFlags))
		}
		parts += len(d.parts)
	}
	// The project's own 20 messages hold 11 attachments; the public corpus adds more than 40.
	if want := 11 + 40*min(1, len(files)/60); parts < want {
		t.Errorf("the corpus of %d messages gave %d attachments, want at least %d; attachments are being lost", len(files), parts, want)
	}
}

func TestDecomposeParts(t *testing.T) {
	// HTML wins over its plain-text alternative; the related image stays inline with its Content-ID.
	d := decomposeFile(t, "html-related-inline.eml")
	if d.msg.Body.ContentType != "html" || !strings.HasPrefix(d.msg.Body.Content, "<html><body><p>The new logo:</p>") {
		t.Errorf("body %s %.40q, want the HTML alternative", d.msg.Body.ContentType, d.msg.Body.Content)
	}
	if len(d.parts) != 1 || d.parts[0].name != "logo.png" || !d.parts[0].inline || d.parts[0].contentID != "logo-7f3a@ferry.test" || d.parts[0].size != 74 {
		t.Errorf("parts %+v, want the inline logo.png of 74 bytes", d.parts)
	}
	if h := prop(d.msg, propTransportHeaders); !strings.Contains(h, "Message-ID: <html-related-1@ferry.test>") {
		t.Errorf("the header block is not kept: %.200q", h)
	}

	// Encoded words in names and subject, in UTF-8, Latin-2, KOI8-R and ISO-2022-JP.
	d = decomposeFile(t, "encoded-words-utf8.eml")
	if d.msg.Subject != "Café au lait €5" || len(d.msg.ToRecipients) != 1 || d.msg.ToRecipients[0].EmailAddress.Name != "Zoë Łukasiewicz" ||
		d.msg.From == nil || d.msg.From.EmailAddress.Name != "Radosław Wiśniewski" || d.msg.Body.Content != "Zoë, the café bill was €5.\r\n" {
		t.Errorf("subject %q, from %+v, to %+v, body %q", d.msg.Subject, d.msg.From, d.msg.ToRecipients, d.msg.Body.Content)
	}
	d = decomposeFile(t, "koi8r-quoted-printable.eml")
	if d.msg.Subject != "Отчёт" || d.msg.From.EmailAddress.Name != "Иван Петров" || d.msg.Body.Content != "Привет, коллеги!\r\nОтчёт готов.\r\n" {
		t.Errorf("koi8-r: subject %q, from %+v, body %q", d.msg.Subject, d.msg.From, d.msg.Body.Content)
	}
	d = decomposeFile(t, "iso-2022-jp.eml")
	if d.msg.Subject != "会議の件" || d.msg.From.EmailAddress.Name != "鈴木" || d.msg.Body.Content != "お世話になっております。\r\n会議は明日です。\r\n" {
		t.Errorf("iso-2022-jp: subject %q, from %+v, body %q", d.msg.Subject, d.msg.From, d.msg.Body.Content)
	}

	// A raw UTF-8 file name, and one in RFC 2231's extended form.
	d = decomposeFile(t, "raw-utf8-filename.eml")
	if len(d.parts) != 1 || d.parts[0].contentType != "application/msword" || d.parts[0].name != "報告書.doc" || d.parts[0].size != 776 {
		t.Errorf("parts %+v, want 報告書.doc of 776 bytes as application/msword", d.parts)
	}
	data, _ := io.ReadAll(d.content(d.parts[0]))
	if int64(len(data)) != d.parts[0].size || !bytes.HasPrefix(data, []byte("\xd0\xcf\x11\xe0")) {
		t.Errorf("spooled %d bytes (%.8q) for a part of %d", len(data), data, d.parts[0].size)
	}
	d = decomposeFile(t, "rfc2231-filenames.eml")
	if len(d.parts) != 2 || d.parts[0].name != "€ budget 2019.xlsx" {
		t.Errorf("parts %+v, want the first named € budget 2019.xlsx", d.parts)
	}

	// Mended structure: a first field indented, a multipart whose final boundary never comes, a
	// damaged base64 attachment, a document with no header at all.
	if d := decomposeFile(t, "header-leading-space.eml"); d.msg.Subject != "indented first field" || d.msg.Body.Content != "A line of body text\n" {
		t.Errorf("indented first field: %q %q", d.msg.Subject, d.msg.Body.Content)
	}
	if d := decomposeFile(t, "missing-final-boundary.eml"); d.msg.Body.Content != "First part survives." || len(d.parts) != 1 || d.parts[0].name != "numbers.csv" {
		t.Errorf("missing final boundary: body %q, parts %+v", d.msg.Body.Content, d.parts)
	}
	if d := decomposeFile(t, "bad-base64-attachment.eml"); len(d.parts) != 1 || d.parts[0].name != "data.bin" {
		t.Errorf("damaged base64: parts %+v, want data.bin kept", d.parts)
	}
	if d := decomposeFile(t, "no-header.eml"); !strings.HasPrefix(d.msg.Body.Content, "# Build notes, not a message\r\n") {
		t.Errorf("a document without a header lost its text: %q", d.msg.Body.Content)
	}
	// An address header that does not parse is kept as written.
	d = decomposeFile(t, "broken-address-list.eml")
	if d.msg.From == nil || !strings.Contains(d.msg.From.EmailAddress.Address, "bobby@extern.ferry.test") {
		t.Errorf("from %+v, want the header's text kept", d.msg.From)
	}
}

func TestDecomposeState(t *testing.T) {
	d := decomposeFile(t, "attachment-pdf.eml", `\Seen`, `\Flagged`, `\Answered`, "Project-X", `\Recent`)
	if prop(d.msg, graph.PropMessageFlags) != "1" || d.msg.Flag == nil || d.msg.Flag.FlagStatus != "flagged" ||
		!slices.Equal(d.msg.Categories, []string{"Project-X"}) || prop(d.msg, graph.PropLastVerb) != "102" {
		t.Errorf("state: flags %q, flag %+v, categories %v, last verb %q", prop(d.msg, graph.PropMessageFlags), d.msg.Flag, d.msg.Categories, prop(d.msg, graph.PropLastVerb))
	}
	if prop(d.msg, graph.PropDeliveryTime) != "2020-01-02T03:04:05Z" || prop(d.msg, graph.PropSubmitTime) == "" {
		t.Errorf("dates: delivered %q, submitted %q", prop(d.msg, graph.PropDeliveryTime), prop(d.msg, graph.PropSubmitTime))
	}
	if d := decomposeFile(t, "attachment-pdf.eml", `\Draft`); prop(d.msg, graph.PropMessageFlags) != "8" {
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
