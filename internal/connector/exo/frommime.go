package exo

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode every charset the corpus of real mail uses
	"github.com/emersion/go-message/mail"

	"github.com/ferry-migrate/ferry/internal/graph"
)

// Graph creates a received message (not a draft) only from JSON with PidTagMessageFlags, and keeps
// MIME only as a draft, so a message from another protocol is taken apart here: headers become
// the message's properties, the first body part its body, every other part an attachment. The
// original header block is kept whole in PidTagTransportMessageHeaders, where Outlook shows it.
const (
	propTransportHeaders = "String 0x007D"
	propInReplyTo        = "String 0x1042"
	propReferences       = "String 0x1039"
	propLastVerb         = "Integer 0x1081" // PidTagLastVerbExecuted: 102 replied, 104 forwarded
	msgFlagRead          = 0x1
	msgFlagUnsent        = 0x8
)

// maxBody is the largest body sent in the create request (Graph takes 4 MB a request); a bigger
// body travels as an attachment, so nothing is cut.
const maxBody = 1 << 20

// part is one attachment, its decoded bytes spooled to a temp file at off.
type part struct {
	name, contentType, contentID string
	inline                       bool
	off, size                    int64
}

// decomposed is a MIME message taken apart for Graph.
type decomposed struct {
	msg   graph.NewMessage
	parts []part
	spool *os.File // the parts' bytes, one after another
}

func (d *decomposed) Close() error {
	if d.spool == nil {
		return nil
	}
	name := d.spool.Name()
	d.spool.Close()
	return os.Remove(name)
}

// content reads a part's bytes back from the spool.
func (d *decomposed) content(p part) io.Reader { return io.NewSectionReader(d.spool, p.off, p.size) }

// decompose reads the raw message (size bytes at r) into a message to create. A message whose
// header cannot be parsed at all is kept whole: its raw bytes become the attachment original.eml.
func decompose(r io.ReaderAt, size int64, received time.Time, flags []string) (*decomposed, error) {
	spool, err := os.CreateTemp("", "ferry-parts-*")
	if err != nil {
		return nil, err
	}
	d := &decomposed{spool: spool}
	if err := d.read(io.NewSectionReader(r, 0, size)); err != nil {
		// Keep what cannot be read, whole, rather than lose it.
		if _, serr := spool.Seek(0, io.SeekStart); serr != nil {
			d.Close()
			return nil, serr
		}
		d.parts, d.msg = nil, graph.NewMessage{Subject: "(unreadable message)",
			Body: &graph.ItemBody{ContentType: "text", Content: "Ferry could not read this message (" + err.Error() + "); the original is attached as original.eml."}}
		if err := d.add(part{name: "original.eml", contentType: "message/rfc822"}, io.NewSectionReader(r, 0, size)); err != nil {
			d.Close()
			return nil, err
		}
	}
	d.state(received, flags)
	return d, nil
}

// add spools an attachment's bytes.
func (d *decomposed) add(p part, r io.Reader) error {
	off, err := d.spool.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	n, err := io.Copy(d.spool, r)
	if err != nil && !tolerable(err) {
		return fmt.Errorf("attachment %q: %w", p.name, err)
	}
	p.off, p.size = off, n
	d.parts = append(d.parts, p)
	return nil
}

// tolerable errors are those of malformed content that real mail carries (a truncated part, bad
// base64, a bad quoted-printable escape): what decoded so far is kept.
func tolerable(err error) bool {
	var ce base64.CorruptInputError
	return errors.As(err, &ce) || errors.Is(err, io.ErrUnexpectedEOF) || strings.HasPrefix(err.Error(), "quotedprintable:") ||
		strings.HasPrefix(err.Error(), "multipart:")
}

// lenient mends a header block the strict parser refuses, as mail readers do: white space before
// the first field is dropped, and a line that is neither a field nor a continuation ends the
// header, as the missing blank line would have.
func lenient(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr bytes.Buffer
	for first := true; hdr.Len() < 1<<20; first = false {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line this long is no header line: leave it to the parser to refuse.
			return io.MultiReader(&hdr, bytes.NewReader(slices.Clone(line)), br)
		}
		if first {
			line = bytes.TrimLeft(line, " \t")
		}
		text := bytes.TrimRight(line, "\r\n")
		switch {
		case len(text) == 0:
			hdr.Write(line)
			return io.MultiReader(&hdr, br)
		case !first && (line[0] == ' ' || line[0] == '\t'), isField(text):
			hdr.Write(line)
		default:
			hdr.WriteString("\r\n")
			return io.MultiReader(&hdr, bytes.NewReader(slices.Clone(line)), br)
		}
		if err != nil {
			return &hdr
		}
	}
	return io.MultiReader(&hdr, br)
}

// isField reports whether a line starts a header field: a name of printable characters, a colon.
func isField(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	for _, c := range line[:i] {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

func (d *decomposed) read(r io.Reader) error {
	e, err := message.Read(lenient(r))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return err
	}
	h := mail.Header{Header: e.Header}
	d.headers(h)
	var body *graph.ItemBody
	var walk func(e *message.Entity, alternative bool) error
	walk = func(e *message.Entity, alternative bool) error {
		if mr := e.MultipartReader(); mr != nil {
			mt, _, _ := e.Header.ContentType()
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return nil
				}
				if p == nil {
					return nil // a bad final boundary: the parts read so far are the message
				}
				// A related part inside an alternative is still one form of the body.
				if err := walk(p, alternative || mt == "multipart/alternative"); err != nil {
					return err
				}
			}
		}
		mt, params := headerParams(e.Header, "Content-Type")
		if mt == "" {
			mt = "text/plain"
		}
		disp, dparams := headerParams(e.Header, "Content-Disposition")
		name := dparams["filename"]
		if name == "" {
			name = params["name"]
		}
		name = decodeWord(name)
		isText := mt == "text/plain" || mt == "text/html"
		if isText && disp != "attachment" && name == "" {
			kind := "text"
			if mt == "text/html" {
				kind = "html"
			}
			// The first text part is the body; in an alternative, HTML wins over plain text.
			if body == nil || (alternative && kind == "html" && body.ContentType == "text") {
				text, err := io.ReadAll(io.LimitReader(e.Body, maxBody+1))
				if err != nil && !tolerable(err) {
					return err
				}
				if len(text) <= maxBody {
					body = &graph.ItemBody{ContentType: kind, Content: validUTF8(text)}
					return nil
				}
				return d.add(part{name: "body." + map[string]string{"text": "txt", "html": "html"}[kind], contentType: mt},
					io.MultiReader(bytes.NewReader(text), e.Body))
			}
			if alternative {
				return nil // another form of the body already taken
			}
		}
		if name == "" {
			name = defaultName(mt, len(d.parts))
		}
		cid := strings.Trim(e.Header.Get("Content-Id"), "<> ")
		return d.add(part{name: name, contentType: mt, contentID: cid, inline: disp == "inline" && cid != ""}, e.Body)
	}
	if err := walk(e, false); err != nil {
		return err
	}
	if body == nil {
		body = &graph.ItemBody{ContentType: "text"}
	}
	d.msg.Body = body
	return nil
}

// headers maps the header block onto the message; what has no Graph property is kept in the whole
// header block (PidTagTransportMessageHeaders).
func (d *decomposed) headers(h mail.Header) {
	m := &d.msg
	if s, err := h.Subject(); err == nil {
		m.Subject = s
	} else {
		m.Subject = h.Get("Subject")
	}
	one := func(key string) *graph.Recipient {
		if l := addresses(h, key); len(l) > 0 {
			return &l[0]
		}
		return nil
	}
	m.From, m.Sender = one("From"), one("Sender")
	m.ToRecipients, m.CcRecipients, m.BccRecipients, m.ReplyTo = addresses(h, "To"), addresses(h, "Cc"), addresses(h, "Bcc"), addresses(h, "Reply-To")
	if id := strings.TrimSpace(h.Get("Message-Id")); id != "" {
		m.InternetMessageID = id
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Importance"))) {
	case "high":
		m.Importance = "high"
	case "low":
		m.Importance = "low"
	}
	if p := strings.TrimSpace(h.Get("X-Priority")); m.Importance == "" && p != "" {
		switch p[0] {
		case '1', '2':
			m.Importance = "high"
		case '4', '5':
			m.Importance = "low"
		}
	}
	prop := func(id, v string) {
		if v = strings.TrimSpace(v); v != "" {
			m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties, graph.ExtendedProperty{ID: id, Value: v})
		}
	}
	if t, err := h.Date(); err == nil {
		prop(graph.PropSubmitTime, t.UTC().Format(time.RFC3339))
	}
	prop(propInReplyTo, h.Get("In-Reply-To"))
	prop(propReferences, h.Get("References"))
	var block strings.Builder
	fields := h.Fields()
	for fields.Next() {
		raw, err := fields.Raw()
		if err != nil {
			continue
		}
		block.Write(raw)
	}
	prop(propTransportHeaders, validUTF8([]byte(block.String())))
}

// state sets what IMAP keeps as flags: read, follow-up flag, answered or forwarded, keywords as
// categories, a draft as a draft; and the received date.
func (d *decomposed) state(received time.Time, flags []string) {
	m := &d.msg
	mflags := 0
	for _, f := range flags {
		switch {
		case strings.EqualFold(f, `\Seen`):
			mflags |= msgFlagRead
		case strings.EqualFold(f, `\Draft`):
			mflags |= msgFlagUnsent
		case strings.EqualFold(f, `\Flagged`):
			m.Flag = &graph.Flag{FlagStatus: "flagged"}
		case strings.EqualFold(f, `\Answered`):
			m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties, graph.ExtendedProperty{ID: propLastVerb, Value: "102"})
		case strings.EqualFold(f, `$Forwarded`):
			m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties, graph.ExtendedProperty{ID: propLastVerb, Value: "104"})
		case strings.HasPrefix(f, `\`):
			// \Deleted and \Recent have no Exchange counterpart.
		default:
			m.Categories = append(m.Categories, f)
		}
	}
	m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties, graph.ExtendedProperty{ID: graph.PropMessageFlags, Value: fmt.Sprint(mflags)})
	if !received.IsZero() {
		m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties, graph.ExtendedProperty{ID: graph.PropDeliveryTime, Value: received.UTC().Format(time.RFC3339)})
	}
}

// prop is the value of one of a message's extended properties.
func prop(m graph.NewMessage, id string) string {
	for _, p := range m.SingleValueExtendedProperties {
		if p.ID == id {
			return p.Value
		}
	}
	return ""
}

// addresses parses an address header; a value that does not parse is kept as the name of one
// recipient whose address is what the header says, so it is not silently dropped.
func addresses(h mail.Header, key string) []graph.Recipient {
	raw := strings.TrimSpace(h.Get(key))
	if raw == "" {
		return nil
	}
	list, err := h.AddressList(key)
	if err != nil || len(list) == 0 {
		var r graph.Recipient
		r.EmailAddress.Name = decodeWord(raw)
		r.EmailAddress.Address = raw
		return []graph.Recipient{r}
	}
	out := make([]graph.Recipient, 0, len(list))
	for _, a := range list {
		var r graph.Recipient
		r.EmailAddress.Name, r.EmailAddress.Address = decodeWord(a.Name), a.Address
		out = append(out, r)
	}
	return out
}

// headerParams reads a header of the Content-Type kind; a value the strict parser refuses (8-bit
// bytes in a parameter, a missing quote) is read leniently, so the part keeps its type and name.
func headerParams(h message.Header, key string) (string, map[string]string) {
	var v string
	var params map[string]string
	var err error
	if key == "Content-Type" {
		v, params, err = h.ContentType()
	} else {
		v, params, err = h.ContentDisposition()
	}
	if err == nil {
		return v, params
	}
	fields := strings.Split(h.Get(key), ";")
	params = map[string]string{}
	for _, f := range fields[1:] {
		if k, val, ok := strings.Cut(f, "="); ok {
			params[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return strings.ToLower(strings.TrimSpace(fields[0])), params
}

var wordDecoder = mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
	return message.CharsetReader(strings.ToLower(cs), r)
}}

func decodeWord(s string) string {
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// validUTF8 makes text JSON can carry unchanged where it is UTF-8 already.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// defaultName names an attachment that has no file name, by its type.
func defaultName(mediaType string, n int) string {
	ext := ".bin"
	switch {
	case mediaType == "message/rfc822":
		ext = ".eml"
	case strings.HasPrefix(mediaType, "text/"):
		ext = ".txt"
	default:
		if exts, _ := mime.ExtensionsByType(mediaType); len(exts) > 0 {
			ext = exts[0]
		}
	}
	return fmt.Sprintf("attachment%d%s", n+1, ext)
}
