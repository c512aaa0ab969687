package mailparse

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// Address is one mailbox of an address header.
type Address struct{ Name, Address string }

// Header is a message's header, decoded.
type Header struct {
	Subject                          string
	From, Sender                     []Address
	To, Cc, Bcc, ReplyTo             []Address
	Date                             time.Time // zero when missing or unreadable
	MessageID, InReplyTo, References string
	Importance                       string // "high", "low" or ""
	Raw                              string // the whole header block, as UTF-8
}

// readHeader decodes the top-level header; fallbacks read raw 8-bit text.
func readHeader(h textproto.Header, fallbacks []string) Header {
	get := func(k string) string { return strings.TrimSpace(unfold(h.Get(k))) }
	out := Header{
		Subject:    DecodeHeader(get("Subject"), fallbacks...),
		MessageID:  get("Message-Id"),
		InReplyTo:  get("In-Reply-To"),
		References: get("References"),
	}
	out.From, out.Sender = addresses(get("From"), fallbacks), addresses(get("Sender"), fallbacks)
	out.To, out.Cc, out.Bcc, out.ReplyTo = addresses(get("To"), fallbacks), addresses(get("Cc"), fallbacks), addresses(get("Bcc"), fallbacks), addresses(get("Reply-To"), fallbacks)
	if t, err := mail.ParseDate(get("Date")); err == nil {
		out.Date = t
	}
	switch strings.ToLower(get("Importance")) {
	case "high":
		out.Importance = "high"
	case "low":
		out.Importance = "low"
	}
	if p := get("X-Priority"); out.Importance == "" && p != "" {
		switch p[0] {
		case '1', '2':
			out.Importance = "high"
		case '4', '5':
			out.Importance = "low"
		}
	}
	var block bytes.Buffer
	writeHeader(&block, h)
	out.Raw = raw(escapeWords(block.String()), fallbacks)
	return out
}

// escapeWords writes the raw 8-bit bytes inside Q-encoded words as the "=XX" they should have
// been, so the words still decode in their own charset once the rest of the block is UTF-8.
func escapeWords(block string) string {
	return encodedWord.ReplaceAllStringFunc(block, func(w string) string {
		m := encodedWord.FindStringSubmatch(w)
		if m[2] != "q" && m[2] != "Q" {
			return w
		}
		var text strings.Builder
		for i := 0; i < len(m[3]); i++ {
			if c := m[3][i]; c >= 0x80 {
				fmt.Fprintf(&text, "=%02X", c)
			} else {
				text.WriteByte(c)
			}
		}
		return "=?" + m[1] + "?" + m[2] + "?" + text.String() + "?="
	})
}

// writeHeader writes the header fields as they came.
func writeHeader(w *bytes.Buffer, h textproto.Header) {
	fields := h.Fields()
	for fields.Next() {
		if raw, err := fields.Raw(); err == nil {
			w.Write(raw)
		}
	}
}

// placeholder stands in for an encoded word while an address list is parsed, so that a word the
// standard library cannot decode (raw 8-bit bytes, an unknown charset) cannot fail the whole list.
var placeholder = regexp.MustCompile(`FERRYEW([0-9]+)X`)

// addresses parses an address header. A value that does not parse is kept as the name of one
// recipient whose address is what the header says, so it is not silently dropped.
func addresses(v string, fallbacks []string) []Address {
	if v == "" {
		return nil
	}
	// Encoded words are set aside before raw 8-bit text is read: their bytes are in their own
	// charset.
	var words []string
	protected := raw(encodedWord.ReplaceAllStringFunc(v, func(w string) string {
		words = append(words, w)
		return "FERRYEW" + strconv.Itoa(len(words)-1) + "X"
	}), fallbacks)
	list, err := mail.ParseAddressList(protected)
	if err != nil || len(list) == 0 {
		return []Address{{Name: DecodeHeader(v, fallbacks...), Address: raw(v, fallbacks)}}
	}
	out := make([]Address, 0, len(list))
	for _, a := range list {
		name := placeholder.ReplaceAllStringFunc(a.Name, func(ph string) string {
			i, _ := strconv.Atoi(placeholder.FindStringSubmatch(ph)[1])
			return words[i]
		})
		out = append(out, Address{Name: DecodeHeader(name, fallbacks...), Address: a.Address})
	}
	return out
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

// base64Reader decodes base64 leniently: characters outside the alphabet (line ends, stray
// punctuation) are skipped and padding is not required, so a damaged part keeps what decodes.
type base64Reader struct {
	r    io.Reader
	in   []byte // alphabet characters not yet decoded (fewer than 4)
	out  []byte // decoded bytes not yet returned
	buf  [4096]byte
	done bool
}

func (b *base64Reader) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.done {
			return 0, io.EOF
		}
		n, err := b.r.Read(b.buf[:])
		for _, c := range b.buf[:n] {
			if isB64(c) {
				b.in = append(b.in, c)
			}
		}
		whole := len(b.in) / 4 * 4
		if err != nil {
			if err != io.EOF && !Tolerable(err) {
				return 0, err
			}
			b.done, whole = true, len(b.in)
			if whole%4 == 1 {
				whole--
			}
		}
		if whole > 0 {
			dec, _ := base64.RawStdEncoding.DecodeString(string(b.in[:whole]))
			b.out = append(b.out, dec...)
			b.in = append(b.in[:0], b.in[whole:]...)
		}
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}
