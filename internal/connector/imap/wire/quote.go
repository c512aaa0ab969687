package wire

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"
)

// Quote makes an IMAP quoted string of a mailbox name in modified UTF-7 (RFC 3501 5.1.3), or of
// any ASCII string.
func Quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// UTF7 encodes a mailbox name in modified UTF-7: printable ASCII stays, "&" is "&-", anything
// else is UTF-16 in base64 (with "," for "/") between "&" and "-".
func UTF7(name string) string {
	var out strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		b := make([]byte, 0, 4*len(run))
		for _, u := range utf16.Encode(run) {
			b = append(b, byte(u>>8), byte(u))
		}
		out.WriteByte('&')
		out.WriteString(strings.ReplaceAll(base64.RawStdEncoding.EncodeToString(b), "/", ","))
		out.WriteByte('-')
		run = run[:0]
	}
	for _, r := range name {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				out.WriteString("&-")
			} else {
				out.WriteRune(r)
			}
			continue
		}
		run = append(run, r)
	}
	flush()
	return out.String()
}
