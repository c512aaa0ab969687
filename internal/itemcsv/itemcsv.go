// Package itemcsv reads the CSV file of items (mailboxes, users) an administrator imports into a
// project. Validation is all-or-nothing: either every line is good and all rows are returned, or
// the file is rejected with every bad line listed, so a fix-and-retry loop takes one round.
package itemcsv

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Row is one item to migrate. Logins and passwords are optional; an empty login means the email.
type Row struct {
	Line                        int    // 1-based line of the record's start in the file; the header is line 1
	SourceEmail, TargetEmail    string // trimmed, case as given
	SourceLogin, SourcePassword string
	TargetLogin, TargetPassword string
}

// LineError is why one line of the file was rejected.
type LineError struct {
	Line   int
	Reason string
}

func (e LineError) String() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Error rejects a file. It lists every bad line, in file order, one entry per line.
type Error struct {
	Lines []LineError
}

// maxListed bounds Error's message; callers wanting all lines read Lines.
const maxListed = 20

func (e *Error) Error() string {
	if len(e.Lines) == 1 {
		return "items CSV rejected: " + e.Lines[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "items CSV rejected, %d bad lines:", len(e.Lines))
	for i, l := range e.Lines {
		if i == maxListed {
			fmt.Fprintf(&b, "\n... and %d more", len(e.Lines)-maxListed)
			break
		}
		b.WriteString("\n")
		b.WriteString(l.String())
	}
	return b.String()
}

// Column names, lower case. The first two are required.
const (
	colSourceEmail = iota
	colTargetEmail
	colSourceLogin
	colSourcePassword
	colTargetLogin
	colTargetPassword
	numCols
)

var columnNames = [numCols]string{"source_email", "target_email", "source_login", "source_password", "target_login", "target_password"}

const required = 2 // columnNames[:required] must be present

const (
	reasonUTF8   = "not valid UTF-8"
	reasonUTF16  = `not valid UTF-8: the file is UTF-16 (in Excel choose "CSV UTF-8"); save the file as UTF-8`
	maxEmailLen  = 254 // RFC 5321 path limit
	maxQuotedLen = 80  // of a value echoed in a reason
)

// Parse reads an items CSV and returns all its rows, or an *Error listing every bad line and no
// rows. Other errors are the reader's.
//
// The header names columns case-insensitively: source_email and target_email are required;
// source_login, source_password, target_login and target_password are optional; any other name is
// rejected as a likely typo. The delimiter is ',' or, when the header has ';' and no ',' (Excel in
// many European locales), ';'. A UTF-8 byte order mark is skipped. Blank lines, including lines of
// empty fields, are skipped. Every field is trimmed, passwords too: a hand-typed ", " separator is
// far more common than a password that starts or ends with a space. Emails must be bare
// addresses with a dotted domain, and each source and each target may appear only once, ignoring
// case.
func Parse(r io.Reader) ([]Row, error) {
	br := bufio.NewReader(r) // encoding/csv uses it as is, and 4 KiB holds any real header line
	if b, _ := br.Peek(2); len(b) == 2 && (b[0] == 0xFF && b[1] == 0xFE || b[0] == 0xFE && b[1] == 0xFF) {
		return nil, &Error{Lines: []LineError{{Line: 1, Reason: reasonUTF16}}}
	}
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\xEF\xBB\xBF")) {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.Comma = sniffDelimiter(br)
	cr.FieldsPerRecord = -1 // checked here, so a short line is one LineError rather than the end
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true

	p := parser{firstSource: map[string]int{}, firstTarget: map[string]int{}}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, fmt.Errorf("read items CSV: %w", err)
			}
			p.bad = append(p.bad, LineError{Line: pe.StartLine, Reason: quotingReason(pe)})
			// encoding/csv drops the rest of the bad line and goes on with the next one, for the
			// quoting errors it reports here; without a header there is nothing to go on with.
			if p.cols == nil || (pe.Err != csv.ErrQuote && pe.Err != csv.ErrBareQuote) {
				return nil, &Error{Lines: p.bad}
			}
			continue
		}
		if blank(rec) {
			continue
		}
		line, _ := cr.FieldPos(0)
		if p.cols == nil {
			if reasons := p.header(rec); len(reasons) > 0 {
				p.bad = append(p.bad, LineError{Line: line, Reason: strings.Join(reasons, "; ")})
				return nil, &Error{Lines: p.bad}
			}
			continue
		}
		p.record(rec, line)
	}
	if len(p.bad) > 0 {
		return nil, &Error{Lines: p.bad}
	}
	if len(p.rows) == 0 {
		return nil, &Error{Lines: []LineError{{Line: 1, Reason: "no items"}}}
	}
	return p.rows, nil
}

type parser struct {
	cols        []int // field index of each of columnNames, -1 if absent; nil until the header is read
	nfields     int   // in the header, so in every record
	rows        []Row
	bad         []LineError
	firstSource map[string]int // lower-case address → line it first appeared on
	firstTarget map[string]int
}

// header maps the columns, or says what is wrong with them.
func (p *parser) header(rec []string) []string {
	var reasons []string
	cols := make([]int, numCols)
	for c := range cols {
		cols[c] = -1
	}
	seen := map[string]int{}
	hasAt := false
	for i, raw := range rec {
		if !utf8.ValidString(raw) {
			return []string{reasonUTF8}
		}
		if strings.IndexByte(raw, 0) >= 0 {
			return []string{reasonUTF16} // UTF-16 without a byte order mark: every other byte is 0
		}
		name := strings.TrimSpace(raw)
		key := strings.ToLower(name)
		hasAt = hasAt || strings.Contains(name, "@")
		switch c := slices.Index(columnNames[:], key); {
		case name == "":
			reasons = append(reasons, fmt.Sprintf("column %d has no name", i+1))
		case seen[key] > 0:
			reasons = append(reasons, fmt.Sprintf("duplicate column %s (columns %d and %d)", quote(name), seen[key], i+1))
		case c < 0:
			seen[key] = i + 1
			reasons = append(reasons, "unknown column "+quote(name))
		default:
			seen[key] = i + 1
			cols[c] = i
		}
	}
	if hasAt && !slices.ContainsFunc(cols, func(i int) bool { return i >= 0 }) {
		return []string{`no header: the first line must name the columns, e.g. "source_email,target_email"`}
	}
	for c := range required {
		if cols[c] < 0 {
			reasons = append(reasons, "missing required column "+strconv.Quote(columnNames[c]))
		}
	}
	if len(reasons) == 0 {
		p.cols, p.nfields = cols, len(rec)
	}
	return reasons
}

// record checks one data record and keeps it as a row, or records why it is bad.
func (p *parser) record(rec []string, line int) {
	fail := func(reasons ...string) {
		p.bad = append(p.bad, LineError{Line: line, Reason: strings.Join(reasons, "; ")})
	}
	var reasons []string
	if len(rec) != p.nfields {
		reasons = append(reasons, fmt.Sprintf("wrong number of fields: got %d, want %d", len(rec), p.nfields))
	}
	if slices.ContainsFunc(rec, func(f string) bool { return !utf8.ValidString(f) }) {
		reasons = append(reasons, reasonUTF8)
	}
	if len(reasons) > 0 {
		fail(reasons...)
		return
	}
	field := func(c int) string {
		if i := p.cols[c]; i >= 0 {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	row := Row{
		Line:           line,
		SourceEmail:    field(colSourceEmail),
		TargetEmail:    field(colTargetEmail),
		SourceLogin:    field(colSourceLogin),
		SourcePassword: field(colSourcePassword),
		TargetLogin:    field(colTargetLogin),
		TargetPassword: field(colTargetPassword),
	}
	reasons = checkUnique(reasons, "source_email", row.SourceEmail, line, p.firstSource)
	reasons = checkUnique(reasons, "target_email", row.TargetEmail, line, p.firstTarget)
	if len(reasons) > 0 {
		fail(reasons...)
		return
	}
	if len(p.bad) == 0 { // once the file is rejected, rows are not needed
		p.rows = append(p.rows, row)
	}
}

// checkUnique validates an address and that it did not appear before in its column, recording
// where it first appeared. Problems are appended to reasons.
func checkUnique(reasons []string, col, addr string, line int, first map[string]int) []string {
	if addr == "" {
		return append(reasons, "missing "+col)
	}
	if why := checkAddress(addr); why != "" {
		return append(reasons, fmt.Sprintf("bad %s %s: %s", col, quote(addr), why))
	}
	key := strings.ToLower(addr)
	if l, dup := first[key]; dup {
		return append(reasons, fmt.Sprintf("duplicate %s %s (first on line %d)", col, quote(addr), l))
	}
	first[key] = line
	return reasons
}

// checkAddress says what is wrong with an email address, or "" if nothing is. net/mail decides
// validity; the checks before it only give its common failures a clearer reason.
func checkAddress(s string) string {
	if plainAddress(s) {
		return "" // net/mail accepts all of these; skipping it halves the time for a large file
	}
	if len(s) > maxEmailLen {
		return fmt.Sprintf("longer than %d characters", maxEmailLen)
	}
	if strings.ContainsAny(s, "<>") {
		return "give the bare address, without a display name or angle brackets"
	}
	if strings.ContainsAny(s, ",;") {
		return "one address per field"
	}
	if strings.ContainsAny(s, " \t") {
		return "contains a space"
	}
	at := strings.LastIndexByte(s, '@')
	switch {
	case at < 0:
		return "missing @"
	case at == 0:
		return "missing the part before @"
	case at == len(s)-1:
		return "missing domain"
	case strings.IndexByte(s, '@') != at:
		return "more than one @"
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "not an email address (" + strings.TrimPrefix(err.Error(), "mail: ") + ")"
	}
	if a.Name != "" || a.Address != s {
		// A comment such as "a@x.com (Ann)", or a quoted local part.
		return "give the bare address, without a display name, comment or quotes"
	}
	domain := s[at+1:]
	if !strings.Contains(domain, ".") {
		return fmt.Sprintf("domain %s has no dot", quote(domain))
	}
	for label := range strings.SplitSeq(domain, ".") {
		if !hostLabel(label) {
			return fmt.Sprintf("domain %s is not a host name", quote(domain))
		}
	}
	return ""
}

// plainAddress reports whether s is an ASCII dot-atom "local@host.domain" of at most maxEmailLen
// bytes: the shape of nearly every address, and a subset of what checkAddress accepts.
func plainAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || len(s) > maxEmailLen {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") || !strings.Contains(domain, ".") {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".!#$%&'*+/=?^_`{|}~-", c) >= 0) {
			return false
		}
	}
	for label := range strings.SplitSeq(domain, ".") {
		if !hostLabel(label) || !isASCII(label) {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// hostLabel reports whether s is a DNS label: letters, digits and inner hyphens. Non-ASCII is
// allowed for internationalised domains.
func hostLabel(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c >= utf8.RuneSelf) {
			return false
		}
	}
	return true
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func quotingReason(pe *csv.ParseError) string {
	where := fmt.Sprintf("column %d", pe.Column)
	if pe.Line != pe.StartLine {
		where = fmt.Sprintf("line %d, column %d", pe.Line, pe.Column)
	}
	return fmt.Sprintf("bad quoting: %v (%s)", pe.Err, where)
}

// quote quotes a value for a reason, shortened so a runaway field cannot flood the message.
func quote(s string) string {
	if len(s) > maxQuotedLen {
		cut := maxQuotedLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

// sniffDelimiter picks ';' when the header line has ';' and no ','.
func sniffDelimiter(br *bufio.Reader) rune {
	buf, _ := br.Peek(br.Size())
	buf = bytes.TrimLeft(buf, " \t\r\n")
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i]
	}
	if bytes.IndexByte(buf, ';') >= 0 && bytes.IndexByte(buf, ',') < 0 {
		return ';'
	}
	return ','
}
