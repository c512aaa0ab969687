package mailparse

import (
	"encoding/base64"
	"regexp"
	"strings"
	"unicode/utf8"
)

// encodedWord matches an RFC 2047 encoded word. The text may hold raw 8-bit bytes, as broken
// mailers send them; white space inside it is not allowed, as the RFC says.
var encodedWord = regexp.MustCompile(`=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=`)

// DecodeHeader decodes a header value to UTF-8: encoded words in their charsets (white space
// between two of them dropped), raw 8-bit text by the fallbacks, as Decode does.
func DecodeHeader(v string, fallbacks ...string) string {
	locs := encodedWord.FindAllStringSubmatchIndex(v, -1)
	if len(locs) == 0 {
		return raw(v, fallbacks)
	}
	var out strings.Builder
	last := 0
	prevWord := false
	for _, m := range locs {
		between := v[last:m[0]]
		if !(prevWord && strings.TrimSpace(between) == "") {
			out.WriteString(raw(between, fallbacks))
		}
		cs, enc, text := v[m[2]:m[3]], v[m[4]:m[5]], v[m[6]:m[7]]
		var b []byte
		if enc == "b" || enc == "B" {
			b = lenientBase64(text)
		} else {
			b = qDecode(text)
		}
		out.WriteString(Decode(b, cs, fallbacks...))
		last, prevWord = m[1], true
	}
	out.WriteString(raw(v[last:], fallbacks))
	return out.String()
}

// raw decodes text that is not in an encoded word: UTF-8 where it is, else by the fallbacks.
func raw(s string, fallbacks []string) string {
	if utf8.ValidString(s) {
		return s
	}
	return Decode([]byte(s), "", fallbacks...)
}

// qDecode reads the Q encoding: "_" is a space, "=XX" a byte; anything else, raw 8-bit bytes and
// a broken escape included, stays as it is.
func qDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '_':
			out = append(out, ' ')
		case c == '=' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// lenientBase64 decodes base64, skipping characters outside the alphabet and ignoring a missing
// or wrong padding: what decodes is kept.
func lenientBase64(s string) []byte {
	var clean strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; isB64(c) {
			clean.WriteByte(c)
		}
	}
	t := clean.String()
	if len(t)%4 == 1 {
		t = t[:len(t)-1]
	}
	b, _ := base64.RawStdEncoding.DecodeString(t)
	return b
}
