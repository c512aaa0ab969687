package mailparse

import (
	"bufio"
	"bytes"
	"io"
	"regexp"
	"strings"
)

// uuBegin is the first line of a uuencoded file: "begin 644 name".
var uuBegin = regexp.MustCompile(`^begin(?:-base64)? +([0-7]{3,4}) +(.+?)\s*$`)

// uuFile is a uuencoded file found in text.
type uuFile struct {
	name string
	data []byte
}

// extractUU takes the uuencoded files out of a plain-text body, as mail readers show them: as
// attachments, and the text around them as the body.
func extractUU(text []byte) (rest []byte, files []uuFile) {
	if !bytes.Contains(text, []byte("begin ")) {
		return text, nil
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(scanLinesKeepEOL)
	var cur *uuFile
	var held bytes.Buffer // the lines of a file being decoded, returned to the text if it never ends
	for sc.Scan() {
		line := sc.Bytes()
		trimmed := strings.TrimRight(string(line), "\r\n")
		if cur == nil {
			if m := uuBegin.FindStringSubmatch(trimmed); m != nil {
				cur = &uuFile{name: m[2]}
				held.Reset()
				held.Write(line)
				continue
			}
			out.Write(line)
			continue
		}
		held.Write(line)
		if trimmed == "end" {
			files = append(files, *cur)
			cur = nil
			continue
		}
		if b, ok := uuLine(trimmed); ok {
			cur.data = append(cur.data, b...)
			continue
		}
		// Not uuencode after all: give the lines back to the text.
		out.Write(held.Bytes())
		cur = nil
	}
	if cur != nil {
		out.Write(held.Bytes())
	}
	return out.Bytes(), files
}

// decodeUUPart decodes a part whose transfer encoding is x-uuencode: its body is one uuencoded file.
func decodeUUPart(r io.Reader) ([]byte, string, error) {
	text, err := io.ReadAll(r)
	if err != nil {
		return nil, "", err
	}
	rest, files := extractUU(text)
	if len(files) == 0 {
		return rest, "", nil
	}
	return files[0].data, files[0].name, nil
}

// uuLine decodes one line: a length character, then four characters for every three bytes.
func uuLine(line string) ([]byte, bool) {
	if line == "" {
		return nil, true
	}
	n := int((line[0] - ' ') & 0x3f)
	if n == 0 {
		return nil, line == "`" || line[0] == ' ' || line[0] == '`'
	}
	body := line[1:]
	need := (n + 2) / 3 * 4
	if len(body) < need {
		// Some encoders drop trailing spaces: pad them back.
		body += strings.Repeat(" ", need-len(body))
	}
	out := make([]byte, 0, n)
	for i := 0; i+4 <= len(body) && len(out) < n; i += 4 {
		var c [4]byte
		for k := range 4 {
			ch := body[i+k]
			if ch < ' ' || ch > '`' {
				return nil, false
			}
			c[k] = (ch - ' ') & 0x3f
		}
		out = append(out, c[0]<<2|c[1]>>4, c[1]<<4|c[2]>>2, c[2]<<6|c[3])
	}
	if len(out) < n {
		return nil, false
	}
	return out[:n], true
}

func scanLinesKeepEOL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i+1], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
