// Package mailparse reads a MIME message the way the most forgiving mail readers do, for targets
// that take a message apart (Exchange through Graph): every header decoded, with a fallback order
// for text that is not valid in its declared charset; RFC 2231 parameters; tolerant multipart
// parsing; the alternative RFC 2046 prefers as the body; uuencoded files as attachments; and no
// part dropped. Attachment bytes are only ever transfer-decoded, never transcoded.
package mailparse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"regexp"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// Part is an attachment, or an inline part of an HTML body.
type Part struct {
	Name, ContentType, ContentID string
	Inline                       bool
}

// Body is the text a reader shows.
type Body struct {
	HTML bool
	Text string
}

// Save receives each part's bytes, in the order of the message.
type Save func(p Part, content io.Reader) error

// Message is what Read found.
type Message struct {
	Header  Header
	Body    *Body // nil when the message has no text to show
	Parts   []Part
	Charset []string // the charsets the message declares, in order, for reading raw 8-bit text
}

// Read parses a message from r. maxBody bounds the body text kept in memory; a longer body is
// saved as a part (body.txt or body.html) instead. Every attachment goes to save as it is read.
// An error means the header could not be read at all.
func Read(r io.Reader, maxBody int, save Save) (*Message, error) {
	lr := &headerLimit{r: lenient(r), n: maxHeader}
	br := bufio.NewReader(lr)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, err
	}
	lr.n = -1
	p := &parser{maxBody: maxBody, save: save, msg: &Message{}}
	if err := p.entity(h, br, "", true); err != nil {
		return nil, err
	}
	p.msg.Header = readHeader(h, p.msg.Charset)
	return p.msg, nil
}

type parser struct {
	maxBody int
	save    Save
	msg     *Message
	// bodyBy is the multipart/alternative whose form is the body so far, which a later, preferred
	// form of the same alternative replaces; 0 for none.
	bodyBy, alts int
	// related counts the multipart/related parts being read beyond their root: an image there
	// with a Content-ID is the HTML body's, inline even without a Content-Disposition.
	related int
}

// entity reads one entity: a leaf, a multipart, an attached message. canBody says whether a text
// leaf here may be the message's body.
func (p *parser) entity(h textproto.Header, body io.Reader, defaultType string, canBody bool) error {
	mt, params := MediaHeader(unfold(h.Get("Content-Type")), p.msg.Charset...)
	if !strings.Contains(mt, "/") {
		mt = defaultType
	}
	if mt == "" {
		mt = "text/plain"
	}
	if cs := params["charset"]; cs != "" {
		p.msg.Charset = append(p.msg.Charset, cs)
	}
	if strings.HasPrefix(mt, "multipart/") {
		return p.multipart(mt, params, body, canBody)
	}
	disp, dparams := MediaHeader(unfold(h.Get("Content-Disposition")), p.msg.Charset...)
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	part := Part{Name: name, ContentType: mt, ContentID: strings.Trim(strings.TrimSpace(h.Get("Content-Id")), "<>")}
	part.Inline = part.ContentID != "" && (disp == "inline" || (p.related > 0 && disp != "attachment"))

	if mt == "message/external-body" {
		// Its parameters (where the content is) are its whole meaning: keep header and body, as
		// text any target can hold.
		var whole bytes.Buffer
		writeHeader(&whole, h)
		whole.WriteString("\r\n")
		part.ContentType = "text/plain"
		return p.add(part, "external-body.txt", io.MultiReader(&whole, body))
	}
	if isUU(cte) {
		data, uuName, err := decodeUUPart(body)
		if err != nil && !Tolerable(err) {
			return err
		}
		if part.Name == "" {
			part.Name = uuName
		}
		return p.add(part, "", bytes.NewReader(data))
	}
	content := transferDecoder(cte, body)
	isText := mt == "text/plain" || mt == "text/html"
	if isText && canBody && disp != "attachment" && name == "" && p.msg.Body == nil {
		return p.text(mt, params["charset"], content, part)
	}
	return p.add(part, "", content)
}

// text reads a body text; one too long for memory is saved as a part instead.
func (p *parser) text(mt, charset string, content io.Reader, part Part) error {
	b, err := io.ReadAll(io.LimitReader(content, int64(p.maxBody)+1))
	if err != nil && !Tolerable(err) {
		return err
	}
	if len(b) > p.maxBody {
		ext := map[bool]string{true: "html", false: "txt"}[mt == "text/html"]
		return p.add(Part{Name: "body." + ext, ContentType: mt}, "", io.MultiReader(bytes.NewReader(b), content))
	}
	if mt == "text/plain" {
		var files []uuFile
		if b, files = extractUU(b); len(files) > 0 {
			for _, f := range files {
				ct, _, _ := mime.ParseMediaType(mime.TypeByExtension(extOf(f.name)))
				if ct == "" {
					ct = "application/octet-stream"
				}
				if err := p.add(Part{Name: f.name, ContentType: ct}, "", bytes.NewReader(f.data)); err != nil {
					return err
				}
			}
		}
	}
	p.msg.Body = &Body{HTML: mt == "text/html", Text: Decode(b, charset, p.msg.Charset...)}
	return nil
}

// add saves a part, naming it by its type when it has no name.
func (p *parser) add(part Part, fallbackName string, content io.Reader) error {
	if part.Name == "" {
		part.Name = fallbackName
	}
	if part.Name == "" {
		part.Name = defaultName(part.ContentType, len(p.msg.Parts))
	}
	if err := p.save(part, content); err != nil {
		return err
	}
	p.msg.Parts = append(p.msg.Parts, part)
	return nil
}

// multipart reads the parts of a multipart entity. A multipart whose boundary never appears (none
// given, or a different one used) is shown as mail readers show it: as the text it holds.
func (p *parser) multipart(mt string, params map[string]string, body io.Reader, canBody bool) error {
	// Keep what the reader skips before the first boundary, to fall back on if none comes.
	var skipped boundedBuffer
	skipped.max = p.maxBody
	boundary := params["boundary"]
	var mr *textproto.MultipartReader
	if boundary != "" {
		mr = textproto.NewMultipartReader(io.TeeReader(body, &skipped), boundary)
	}
	defaultType := "text/plain"
	if mt == "multipart/digest" {
		defaultType = "message/rfc822"
	}
	alt, outer := 0, p.bodyBy
	if mt == "multipart/alternative" {
		p.alts++
		alt = p.alts
	}
	n := 0
	for mr != nil {
		part, err := mr.NextPart()
		if err == io.EOF || part == nil {
			break // the end, or a final boundary that never came: the parts read so far count
		}
		if n == 0 {
			skipped.stop()
		}
		n++
		childCanBody := canBody
		switch {
		case mt == "multipart/alternative":
			// Each form that can be shown replaces the previous one: the last is the one RFC 2046
			// prefers. Forms that cannot be shown are kept as attachments.
			ct, _ := MediaHeader(unfold(part.Header.Get("Content-Type")))
			showable := ct == "" || ct == "text/plain" || ct == "text/html" || strings.HasPrefix(ct, "multipart/")
			if !showable {
				childCanBody = false
			} else if canBody && (p.msg.Body == nil || p.bodyBy == alt) {
				p.msg.Body, p.bodyBy = nil, alt
			} else if !canBody {
				// The body came from elsewhere: this alternative is one more part. Keep its
				// preferred (last) form; earlier forms say the same thing.
				if err := p.keepLastForm(part, mr, defaultType); err != nil {
					return err
				}
				return nil
			}
		case mt == "multipart/related" && n > 1:
			childCanBody = false // the root is the body; the rest are its inline parts
		default:
			childCanBody = canBody && p.msg.Body == nil
		}
		inRelated := mt == "multipart/related" && n > 1
		if inRelated {
			p.related++
		}
		err = p.entity(part.Header, part, defaultType, childCanBody)
		if inRelated {
			p.related--
		}
		if err != nil {
			return err
		}
	}
	if alt != 0 {
		p.bodyBy = outer // settled: only an alternative around this one may still replace it
	}
	if n > 0 {
		return nil
	}
	// No part at all. A sender that used another boundary than it declared is read with the one it
	// used, as readers do; otherwise what the multipart holds is its text.
	rest := io.MultiReader(bytes.NewReader(skipped.Bytes()), body)
	if used := usedBoundary(skipped.Bytes()); used != "" && used != boundary {
		params["boundary"] = used
		return p.multipart(mt, params, rest, canBody)
	}
	if canBody && p.msg.Body == nil {
		return p.text("text/plain", params["charset"], rest, Part{ContentType: "text/plain"})
	}
	return p.add(Part{ContentType: "text/plain"}, "", rest)
}

// boundaryLine is a line that opens a part: "--" and a boundary of at most 70 characters.
var boundaryLine = regexp.MustCompile(`(?m)^--([0-9A-Za-z'()+_,./:=?-]{1,70})\r?$`)

// usedBoundary is the boundary of the first line that looks like one, or "".
func usedBoundary(b []byte) string {
	if m := boundaryLine.FindSubmatch(b); m != nil {
		return strings.TrimSuffix(string(m[1]), "--")
	}
	return ""
}

// keepLastForm reads the rest of an alternative that is not the body and saves its last form
// that can be shown (and any that cannot) as parts.
func (p *parser) keepLastForm(first *textproto.Part, mr *textproto.MultipartReader, defaultType string) error {
	var lastHdr textproto.Header
	var last []byte
	part := first
	for part != nil {
		ct, _ := MediaHeader(unfold(part.Header.Get("Content-Type")))
		if ct == "" || ct == "text/plain" || ct == "text/html" {
			b, err := io.ReadAll(io.LimitReader(part, int64(p.maxBody)+1))
			if err != nil && !Tolerable(err) {
				return err
			}
			lastHdr, last = part.Header, b
		} else if err := p.entity(part.Header, part, defaultType, false); err != nil {
			return err
		}
		next, err := mr.NextPart()
		if err != nil {
			break
		}
		part = next
	}
	if last == nil {
		return nil
	}
	return p.entity(lastHdr, bytes.NewReader(last), defaultType, false)
}

// transferDecoder undoes a Content-Transfer-Encoding; an unknown one is read as it is.
func transferDecoder(cte string, r io.Reader) io.Reader {
	switch cte {
	case "base64":
		return &base64Reader{r: r}
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

func isUU(cte string) bool {
	return cte == "x-uuencode" || cte == "x-uue" || cte == "uuencode" || cte == "x-uu"
}

// Tolerable errors are those of malformed content that real mail carries (a truncated part, bad
// base64, a bad quoted-printable escape): what decoded so far is kept.
func Tolerable(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || strings.HasPrefix(err.Error(), "quotedprintable:") ||
		strings.HasPrefix(err.Error(), "multipart:")
}

// maxHeader bounds the top-level header: a corrupt message must not make a header of gigabytes.
const maxHeader = 1 << 20

// headerLimit fails a read past n bytes, until n is set to -1.
type headerLimit struct {
	r io.Reader
	n int64
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errors.New("header larger than 1 MiB")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// boundedBuffer keeps the first max bytes written to it, until stopped.
type boundedBuffer struct {
	bytes.Buffer
	max     int
	stopped bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if !b.stopped && b.Len() < b.max {
		b.Buffer.Write(p[:min(len(p), b.max-b.Len())])
	}
	return len(p), nil
}

func (b *boundedBuffer) stop() { b.stopped = true; b.Reset() }

// defaultName names an attachment that has no file name, by its type.
func defaultName(mediaType string, n int) string {
	ext := map[string]string{"message/rfc822": ".eml", "message/global": ".eml", "text/plain": ".txt", "text/html": ".html",
		"text/calendar": ".ics", "text/csv": ".csv", "application/octet-stream": ".bin"}[mediaType]
	if ext == "" {
		if exts, _ := mime.ExtensionsByType(mediaType); len(exts) > 0 {
			ext = exts[0]
		} else if strings.HasPrefix(mediaType, "text/") {
			ext = ".txt"
		} else {
			ext = ".bin"
		}
	}
	return fmt.Sprintf("attachment%d%s", n+1, ext)
}

func extOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i:]
	}
	return ""
}

var unfolder = strings.NewReplacer("\r\n", "", "\n", "", "\r", "")

// unfold joins a folded header value's lines.
func unfold(s string) string { return unfolder.Replace(s) }
