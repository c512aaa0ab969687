package mailparse

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // every charset x/text knows, for message.CharsetReader
	"golang.org/x/text/encoding/charmap"
)

// Decode turns bytes in a declared charset into UTF-8 the way forgiving mail readers do: the
// declared charset if the bytes are valid in it, then each fallback in turn (a charset declared
// elsewhere in the message), then windows-1252, which maps every byte. ISO-8859-1 and US-ASCII are
// read as windows-1252, as every browser and mail reader does, so "smart quotes" survive.
func Decode(b []byte, declared string, fallbacks ...string) string {
	if len(b) == 0 {
		return ""
	}
	for _, cs := range append([]string{declared}, fallbacks...) {
		if s, ok := decodeAs(b, cs); ok {
			return s
		}
	}
	s, _ := decodeAs(b, "windows-1252")
	return s
}

// decodeAs decodes b as charset cs; ok is false when cs is unknown or b is not valid in it.
func decodeAs(b []byte, cs string) (string, bool) {
	cs = strings.ToLower(strings.Trim(strings.TrimSpace(cs), `"'`))
	if i := strings.IndexByte(cs, '*'); i >= 0 { // RFC 2231 language suffix
		cs = cs[:i]
	}
	switch cs {
	case "":
		// No charset said: UTF-8 if it is, else not decided here.
		if utf8.Valid(b) {
			return string(b), true
		}
		return "", false
	case "utf-8", "utf8":
		if utf8.Valid(b) {
			return string(b), true
		}
		return "", false
	case "utf-7", "unicode-1-1-utf-7", "csunicode11utf7":
		return decodeUTF7(b)
	case "us-ascii", "ascii", "iso-8859-1", "iso8859-1", "latin1", "l1", "iso_8859-1", "cp819", "windows-1252", "cp1252", "x-user-defined":
		if isASCII(b) {
			return string(b), true
		}
		return windows1252(b), true
	}
	r, err := message.CharsetReader(cs, bytes.NewReader(b))
	if err != nil {
		return "", false
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return "", false
	}
	// A multi-byte decoder marks what it cannot read with U+FFFD: then the charset was wrong.
	if bytes.ContainsRune(out, utf8.RuneError) && !bytes.Contains(b, []byte("\xef\xbf\xbd")) {
		return "", false
	}
	return string(out), true
}

// windows1252 maps every byte, as the WHATWG encoding standard does: the five bytes windows-1252
// leaves undefined become the C1 controls of the same number.
func windows1252(b []byte) string {
	var out strings.Builder
	for _, c := range b {
		r := charmap.Windows1252.DecodeByte(c)
		if r == utf8.RuneError {
			r = rune(c)
		}
		out.WriteRune(r)
	}
	return out.String()
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
