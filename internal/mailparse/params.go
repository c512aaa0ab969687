package mailparse

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// MediaHeader reads a header of the Content-Type kind as forgiving mail readers do: the value in
// lower case, and its parameters with lower-case names. It takes a missing ";" before a parameter,
// a repeated parameter (the first one counts), unquoted values with special characters, 8-bit
// bytes, and RFC 2231 extended values and continuations (name*=utf-8”%E2%82%AC,
// name*0*=…; name*1=…), decoding their charsets.
func MediaHeader(v string, fallbacks ...string) (string, map[string]string) {
	tokens := splitParams(v)
	if len(tokens) == 0 {
		return "", map[string]string{}
	}
	value := strings.ToLower(strings.TrimSpace(tokens[0]))
	// "multipart/mixed boundary=x": a parameter without its ";".
	if i := strings.IndexAny(value, " \t"); i >= 0 {
		if rest := strings.TrimSpace(tokens[0][i:]); strings.Contains(rest, "=") {
			tokens = append([]string{tokens[0][:i], rest}, tokens[1:]...)
			value = strings.ToLower(strings.TrimSpace(tokens[0]))
		}
	}
	params := map[string]string{}
	type piece struct {
		n       int
		encoded bool
		value   string
	}
	ext := map[string][]piece{}
	for _, t := range tokens[1:] {
		k, val, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = unquote(strings.TrimSpace(val))
		if name, rest, isExt := strings.Cut(k, "*"); isExt {
			p := piece{encoded: strings.HasSuffix(rest, "*") || rest == "", value: val}
			num := strings.TrimSuffix(rest, "*")
			if num != "" {
				n, err := strconv.Atoi(num)
				if err != nil {
					continue
				}
				p.n = n
			}
			ext[name] = append(ext[name], p)
			continue
		}
		if _, seen := params[k]; !seen {
			params[k] = DecodeHeader(val, fallbacks...)
		}
	}
	for name, pieces := range ext {
		sort.SliceStable(pieces, func(i, j int) bool { return pieces[i].n < pieces[j].n })
		charset := ""
		var b []byte
		for i, p := range pieces {
			s := p.value
			if p.encoded {
				if i == 0 {
					// charset'language'text
					if cs, rest, ok := strings.Cut(s, "'"); ok {
						if _, text, ok := strings.Cut(rest, "'"); ok {
							charset, s = cs, text
						}
					}
				}
				if u, err := url.PathUnescape(s); err == nil {
					s = u
				}
			}
			b = append(b, s...)
		}
		// An extended value wins over a plain one of the same name: it is the exact one.
		params[name] = Decode(b, charset, fallbacks...)
	}
	return value, params
}

// splitParams splits at ";" outside quotes.
func splitParams(v string) []string {
	var out []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(v):
			cur.WriteByte(c)
			cur.WriteByte(v[i+1])
			i++
			continue
		case c == '"':
			inQuote = !inQuote
		case c == ';' && !inQuote:
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	if s := cur.String(); strings.TrimSpace(s) != "" || len(out) == 0 {
		out = append(out, s)
	}
	return out
}

// unquote removes the quotes of a quoted string and its backslash escapes; an unbalanced quote
// is dropped.
func unquote(s string) string {
	if len(s) < 1 || s[0] != '"' {
		return s
	}
	s = s[1:]
	s = strings.TrimSuffix(s, `"`)
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		out.WriteByte(s[i])
	}
	return out.String()
}
