package mailparse

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"
)

// decodeUTF7 decodes UTF-7 (RFC 2152): ASCII as it is, "+-" for "+", and "+" base64 of UTF-16
// up to the first character outside base64 (a "-" there is dropped). ok is false for bytes that
// cannot be UTF-7.
func decodeUTF7(b []byte) (string, bool) {
	var out strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 0x80 {
			return "", false
		}
		if c != '+' {
			out.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(b) && isB64(b[j]) {
			j++
		}
		if j == i+1 {
			if j < len(b) && b[j] == '-' {
				out.WriteByte('+')
				i = j
				continue
			}
			out.WriteByte('+') // a lone "+": readers keep it
			continue
		}
		raw, err := base64.RawStdEncoding.DecodeString(trimBits(string(b[i+1 : j])))
		if err != nil || len(raw)%2 != 0 {
			return "", false
		}
		units := make([]uint16, len(raw)/2)
		for k := range units {
			units[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		out.WriteString(string(utf16.Decode(units)))
		i = j - 1
		if j < len(b) && b[j] == '-' {
			i = j
		}
	}
	return out.String(), true
}

func isB64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}

// trimBits drops the trailing base64 characters that carry only padding bits: UTF-7 ends a run
// wherever its UTF-16 units end, not on a base64 quantum.
func trimBits(s string) string {
	// n characters carry 6n bits; whole bytes are floor(6n/8); RawStdEncoding wants n%4 != 1.
	if len(s)%4 == 1 {
		return s[:len(s)-1]
	}
	return s
}
