package mailparse

import (
	"fmt"
	"testing"
)

func TestDecodeHeader(t *testing.T) {
	for in, want := range map[string]string{
		"plain ascii":                                "plain ascii",
		"=?UTF-8?Q?a?= =?UTF-8?Q?b?=":                "ab", // white space between words is dropped
		"=?UTF-8?Q?a?= x =?UTF-8?Q?b?=":              "a x b",
		"=?utf-8?b?w6TDtsO8?=":                       "äöü",
		"=?utf-8?b?w6TDtsO8?":                        "=?utf-8?b?w6TDtsO8?", // not a word: kept
		"=?iso-8859-1?q?caf=E9?=":                    "café",
		"=?iso-8859-1?q?caf\xe9?=":                   "café", // a raw byte inside the word
		"=?windows-1252?Q?=93q=94?=":                 "“q”",
		"=?utf-7?Q?Hi_+AKM-1?=":                      "Hi £1",
		"=?x-unknown?Q?abc?=":                        "abc",
		"=?utf-8*en?Q?lang?=":                        "lang", // RFC 2231 language in a word
		"Gr\xfc\xdfe":                                "Grüße",
		"=?koi8-r?B?8NLJ18XU?=":                      "Привет",
		"=?iso-2022-jp?B?GyRCJDMkcyRLJEEkTxsoQg==?=": "こんにちは",
	} {
		if got := DecodeHeader(in); got != want {
			t.Errorf("DecodeHeader(%q) = %q, want %q", in, got, want)
		}
	}
	if got := DecodeHeader("K\xf6ln", "koi8-r"); got != "KЖln" {
		t.Errorf("a declared fallback charset is tried before windows-1252: %q", got)
	}
}

func TestMediaHeader(t *testing.T) {
	for in, want := range map[string]string{
		`text/plain; charset=utf-8`:                                     `text/plain map[charset:utf-8]`,
		`Multipart/Mixed; Boundary="a;b"`:                               `multipart/mixed map[boundary:a;b]`,
		`multipart/mixed boundary="x"`:                                  `multipart/mixed map[boundary:x]`,
		`text/plain; charset=utf-8; charset=us-ascii`:                   `text/plain map[charset:utf-8]`,
		`attachment; filename*=UTF-8''%E2%82%AC%20x.txt`:                `attachment map[filename:€ x.txt]`,
		`attachment; filename*0*=iso-8859-1''M%E4r; filename*1="z.txt"`: `attachment map[filename:März.txt]`,
		"attachment; filename=\"Pr\xfcf.pdf\"":                          `attachment map[filename:Prüf.pdf]`,
		`attachment; filename="=?utf-8?q?=C3=A4.txt?="`:                 `attachment map[filename:ä.txt]`,
		`application/pdf; name=report (final).pdf`:                      `application/pdf map[name:report (final).pdf]`,
		``: ` map[]`,
	} {
		v, p := MediaHeader(in)
		if got := fmt.Sprintf("%s %v", v, p); got != want {
			t.Errorf("MediaHeader(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDecodeFallbacks(t *testing.T) {
	for _, c := range []struct {
		in, declared string
		fallbacks    []string
		want         string
	}{
		{"caf\xc3\xa9", "utf-8", nil, "café"},
		{"caf\xe9", "utf-8", nil, "café"},               // not UTF-8 after all: windows-1252
		{"\x93x\x94", "iso-8859-1", nil, "“x”"},         // ISO-8859-1 read as windows-1252
		{"\xf0\xd2\xc9", "", []string{"koi8-r"}, "При"}, // undeclared: the message's other charset
		{"A+ImIDkQ.", "utf-7", nil, "A≢Α."},             // RFC 2152's example
		{"plain", "x-nonsense", nil, "plain"},           // an unknown charset, ASCII bytes
		{"\x81 x", "shift_jis", nil, "\u0081 x"},        // invalid there: windows-1252
	} {
		if got := Decode([]byte(c.in), c.declared, c.fallbacks...); got != c.want {
			t.Errorf("Decode(%q, %q, %v) = %q, want %q", c.in, c.declared, c.fallbacks, got, c.want)
		}
	}
}
