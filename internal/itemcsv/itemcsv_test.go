package itemcsv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// genCSV returns a header and n valid data lines; the line numbered L holds userL.
func genCSV(n int) []string {
	lines := []string{"source_email,target_email"}
	for l := 2; l <= n+1; l++ {
		lines = append(lines, fmt.Sprintf("user%d@source.example.com,user%d@target.example.com", l, l))
	}
	return lines
}

// parseError parses s and returns its *Error, failing the test if there is none.
func parseError(t *testing.T, s string) *Error {
	t.Helper()
	rows, err := Parse(strings.NewReader(s))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse(%q) error = %v (%T), want *Error", s, err, err)
	}
	if rows != nil {
		t.Fatalf("Parse(%q) returned %d rows with an error", s, len(rows))
	}
	return e
}

func wantLines(t *testing.T, s string, want ...LineError) {
	t.Helper()
	if got := parseError(t, s).Lines; !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse(%q) lines:\n got %v\nwant %v", s, got, want)
	}
}

func parseRows(t *testing.T, s string) []Row {
	t.Helper()
	rows, err := Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return rows
}

// The acceptance case: 1,000 lines, 3 bad ones, and exactly those are named.
func TestParseThousandLinesThreeBad(t *testing.T) {
	lines := genCSV(999)
	lines[100-1] = "user100@,user100@target.example.com"
	lines[500-1] = "USER10@Source.Example.com,user500@target.example.com" // same source as line 10, other case
	lines[800-1] = "user800@source.example.com,user800@target.example.com,extra"
	in := strings.Join(lines, "\n") + "\n"
	if n := strings.Count(in, "\n"); n != 1000 {
		t.Fatalf("generated %d lines, want 1000", n)
	}

	e := parseError(t, in)
	want := []LineError{
		{100, `bad source_email "user100@": missing domain`},
		{500, `duplicate source_email "USER10@Source.Example.com" (first on line 10)`},
		{800, "wrong number of fields: got 3, want 2"},
	}
	if !reflect.DeepEqual(e.Lines, want) {
		t.Fatalf("lines:\n got %v\nwant %v", e.Lines, want)
	}
	wantMsg := `items CSV rejected, 3 bad lines:
line 100: bad source_email "user100@": missing domain
line 500: duplicate source_email "USER10@Source.Example.com" (first on line 10)
line 800: wrong number of fields: got 3, want 2`
	if e.Error() != wantMsg {
		t.Fatalf("Error() =\n%s\nwant\n%s", e.Error(), wantMsg)
	}
}

func TestParseAllColumns(t *testing.T) {
	in := "Source_Email, TARGET_EMAIL ,source_login,Source_Password,target_login,target_password\r\n" +
		" Ann@Source.example.com , ann@target.example.com,ann@src.onmicrosoft.com,s3cret,,\r\n" +
		// A password without its login is fine: the login defaults to the email.
		`bob@source.example.com,bob@target.example.com,,"pw, with comma",,"x""y"` + "\r\n"
	got := parseRows(t, in)
	want := []Row{
		{Line: 2, SourceEmail: "Ann@Source.example.com", TargetEmail: "ann@target.example.com",
			SourceLogin: "ann@src.onmicrosoft.com", SourcePassword: "s3cret"},
		{Line: 3, SourceEmail: "bob@source.example.com", TargetEmail: "bob@target.example.com",
			SourcePassword: "pw, with comma", TargetPassword: `x"y`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseColumnOrderAndOptional(t *testing.T) {
	got := parseRows(t, "target_login,target_email,source_email\nt1,b@y.com,a@x.com\n")
	want := []Row{{Line: 2, SourceEmail: "a@x.com", TargetEmail: "b@y.com", TargetLogin: "t1"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %+v, want %+v", got, want)
	}
}

func TestParseBOM(t *testing.T) {
	got := parseRows(t, "\xEF\xBB\xBFsource_email,target_email\na@x.com,b@y.com\n")
	want := []Row{{Line: 2, SourceEmail: "a@x.com", TargetEmail: "b@y.com"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %+v, want %+v", got, want)
	}
}

func TestParseSemicolons(t *testing.T) {
	in := "\xEF\xBB\xBFsource_email;target_email;source_password\r\n" +
		"a@x.com;b@y.com;\"p;w,1\"\r\n" +
		"c@x.com;d@y.com;pw,2\r\n"
	got := parseRows(t, in)
	want := []Row{
		{Line: 2, SourceEmail: "a@x.com", TargetEmail: "b@y.com", SourcePassword: "p;w,1"},
		{Line: 3, SourceEmail: "c@x.com", TargetEmail: "d@y.com", SourcePassword: "pw,2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %+v, want %+v", got, want)
	}
	// A header with both is comma-separated.
	wantLines(t, "source_email,target_email;x\na@x.com,b@y.com\n", LineError{1, `unknown column "target_email;x"; missing required column "target_email"`})
}

// A quoted field spanning lines must not shift the line numbers of later records.
func TestParseMultilineFieldsKeepLineNumbers(t *testing.T) {
	in := "source_email,target_email,source_password\n" +
		"a@x.com,b@y.com,\"two\nlines, and a comma\"\n" + // lines 2-3
		"c@x.com,d@y.com,\"three\n\nlines\"\n" + // lines 4-6
		"e@x.com,f@y.com,plain\n" // line 7
	got := parseRows(t, in)
	want := []Row{
		{Line: 2, SourceEmail: "a@x.com", TargetEmail: "b@y.com", SourcePassword: "two\nlines, and a comma"},
		{Line: 4, SourceEmail: "c@x.com", TargetEmail: "d@y.com", SourcePassword: "three\n\nlines"},
		{Line: 7, SourceEmail: "e@x.com", TargetEmail: "f@y.com", SourcePassword: "plain"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows:\n got %+v\nwant %+v", got, want)
	}

	wantLines(t, in+"bad,f2@y.com,x\n", LineError{8, `bad source_email "bad": missing @`})
}

func TestParseBlankLinesSkipped(t *testing.T) {
	in := "\n\nsource_email,target_email\n\n   \n,\n , \t\na@x.com,b@y.com\n\n"
	got := parseRows(t, in)
	want := []Row{{Line: 8, SourceEmail: "a@x.com", TargetEmail: "b@y.com"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %+v, want %+v", got, want)
	}
}

func TestParseEncoding(t *testing.T) {
	wantLines(t, "source_email,target_email\na@x.com,b@y.com\nj\xf6rg@x.com,j@y.com\nc@x.com,d@y.com,\xff\n",
		LineError{3, "not valid UTF-8"},
		LineError{4, "wrong number of fields: got 3, want 2; not valid UTF-8"})
	wantLines(t, "\xff\xfes\x00o\x00u\x00", LineError{1, reasonUTF16})
	wantLines(t, "\xfe\xff\x00s\x00o\x00u", LineError{1, reasonUTF16})
	wantLines(t, "s\x00o\x00u\x00r\x00c\x00e\x00", LineError{1, reasonUTF16})
	if !strings.Contains(reasonUTF16, "save the file as UTF-8") {
		t.Fatalf("UTF-16 reason %q lacks the hint", reasonUTF16)
	}
	// UTF-8 that is not ASCII is fine.
	got := parseRows(t, "source_email,target_email,source_password\njörg@bücher.de,j@y.com,pässwörd\n")
	if got[0].SourceEmail != "jörg@bücher.de" || got[0].SourcePassword != "pässwörd" {
		t.Fatalf("rows %+v", got)
	}
}

func TestParseHeaderErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"source_email\na@x.com\n", `missing required column "target_email"`},
		{"sorce_email,target_email\na@x.com,b@y.com\n", `unknown column "sorce_email"; missing required column "source_email"`},
		{"source_email,target_email,Notes\n", `unknown column "Notes"`},
		{"source_email,target_email,Source_Email\n", `duplicate column "Source_Email" (columns 1 and 3)`},
		{"source_email,,target_email\n", "column 2 has no name"},
		{"a@x.com,b@y.com\nc@x.com,d@y.com\n", `no header: the first line must name the columns, e.g. "source_email,target_email"`},
		{"source_email,tar\"get_email\n", `bad quoting: bare " in non-quoted-field (column 17)`},
	}
	for _, tt := range tests {
		wantLines(t, tt.in, LineError{1, tt.want})
	}
}

func TestParseNoItems(t *testing.T) {
	for _, in := range []string{"", "\n\n", "  \n", "\xEF\xBB\xBF", "source_email,target_email", "source_email,target_email\n,\n\n"} {
		wantLines(t, in, LineError{1, "no items"})
	}
}

func TestParseLineErrors(t *testing.T) {
	in := "source_email,target_email\n" +
		"a@x.com,b@y.com\n" + // 2
		"c@x.com\n" + // 3
		",d@y.com\n" + // 4
		"John <e@x.com>,e@y.com\n" + // 5
		"f@x.com,B@Y.COM\n" + // 6
		"g@x,g@y.com\n" + // 7
		"h@x.com,\n" + // 8
		"a@x.com,a@y\n" + // 9: both columns bad
		"i@x.com,i\"@y.com\n" + // 10: csv stops at the quote and goes on with the next line
		"j@x.com,\"j@y.com\"x\n" + // 11
		"k@x.com,k@y.com\n" + // 12
		"l@x.com,\"l@y.com\n" // 13: never closed, so csv reads to the end
	wantLines(t, in,
		LineError{3, "wrong number of fields: got 1, want 2"},
		LineError{4, "missing source_email"},
		LineError{5, `bad source_email "John <e@x.com>": give the bare address, without a display name or angle brackets`},
		LineError{6, `duplicate target_email "B@Y.COM" (first on line 2)`},
		LineError{7, `bad source_email "g@x": domain "x" has no dot`},
		LineError{8, "missing target_email"},
		LineError{9, `duplicate source_email "a@x.com" (first on line 2); bad target_email "a@y": domain "y" has no dot`},
		LineError{10, `bad quoting: bare " in non-quoted-field (column 10)`},
		LineError{11, `bad quoting: extraneous or missing " in quoted-field (column 17)`},
		LineError{13, `bad quoting: extraneous or missing " in quoted-field (column 18)`},
	)
}

func TestCheckAddress(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"ann@example.com", ""},
		{"Ann.Lee+tag@mail.example.co.uk", ""},
		{"o'brien@example.com", ""},
		{"jörg@bücher.de", ""},
		{"a@xn--bcher-kva.de", ""},
		{"foo", "missing @"},
		{"foo@", "missing domain"},
		{"@example.com", "missing the part before @"},
		{"a b@example.com", "contains a space"},
		{"a@x.com,b@x.com", "one address per field"},
		{"a@x.com;b@x.com", "one address per field"},
		{"<a@x.com>", "give the bare address, without a display name or angle brackets"},
		{"a@x.com (Ann)", "contains a space"},
		{"a@x.com(Ann)", "give the bare address, without a display name, comment or quotes"},
		{`"a"@x.com`, "give the bare address, without a display name, comment or quotes"},
		{"a..b@x.com", "not an email address (missing '@' or angle-addr)"},
		{".a@x.com", "not an email address (missing '@' or angle-addr)"},
		{"a.@x.com", "not an email address (missing '@' or angle-addr)"},
		{"a@x.com.", "not an email address (missing '@' or angle-addr)"},
		{"a@b@x.com", "more than one @"},
		{"a@@x.com", "more than one @"},
		{"a@x..com", "not an email address (missing '@' or angle-addr)"},
		{"a@localhost", `domain "localhost" has no dot`},
		{"a@x!y.com", `domain "x!y.com" is not a host name`},
		{"a@-x.com", `domain "-x.com" is not a host name`},
		{"a@[1.2.3.4]", `domain "[1.2.3.4]" is not a host name`},
		{strings.Repeat("a", 250) + "@x.com", "longer than 254 characters"},
	}
	for _, tt := range tests {
		if got := checkAddress(tt.addr); got != tt.want {
			t.Errorf("checkAddress(%q) = %q, want %q", tt.addr, got, tt.want)
		}
		// The fast path must not accept anything net/mail would not.
		if plainAddress(tt.addr) {
			if a, err := mail.ParseAddress(tt.addr); err != nil || a.Address != tt.addr || tt.want != "" {
				t.Errorf("plainAddress(%q) = true, but net/mail says %v, checkAddress %q", tt.addr, err, tt.want)
			}
		}
	}
	for _, s := range []string{"ann@example.com", "o'brien@example.com", "a.b-c_d+e@x-y.example.org"} {
		if !plainAddress(s) {
			t.Errorf("plainAddress(%q) = false, want the fast path", s)
		}
	}
}

func TestErrorMessageTruncates(t *testing.T) {
	lines := genCSV(30)
	for i := 1; i <= 25; i++ {
		lines[i] = fmt.Sprintf("nobody,x%d@y.com", i)
	}
	e := parseError(t, strings.Join(lines, "\n"))
	if len(e.Lines) != 25 {
		t.Fatalf("%d lines, want 25", len(e.Lines))
	}
	msg := e.Error()
	if !strings.HasPrefix(msg, "items CSV rejected, 25 bad lines:\nline 2: ") {
		t.Fatalf("message starts %q", msg[:60])
	}
	if n := strings.Count(msg, "\nline "); n != 20 {
		t.Fatalf("message lists %d lines, want 20", n)
	}
	if !strings.HasSuffix(msg, "\nline 21: bad source_email \"nobody\": missing @\n... and 5 more") {
		t.Fatalf("message ends %q", msg[len(msg)-80:])
	}
	one := &Error{Lines: []LineError{{1, "no items"}}}
	if one.Error() != "items CSV rejected: line 1: no items" {
		t.Fatalf("one-line message %q", one.Error())
	}
}

// Values echoed in reasons are shortened, and passwords never appear.
func TestReasonsAreShort(t *testing.T) {
	long := strings.Repeat("é", 200)
	e := parseError(t, "source_email,target_email,source_password\n"+long+",b@y.com,hunter2secret\n")
	r := e.Lines[0].Reason
	if len(r) > 250 || !strings.Contains(r, "…") || strings.Contains(r, "hunter2secret") {
		t.Fatalf("reason %q", r)
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("source_email,target_email\na@x.com,b@y.com\n"), iotest.ErrReader(boom))
	rows, err := Parse(r)
	if rows != nil || !errors.Is(err, boom) || err.Error() != "read items CSV: boom" {
		t.Fatalf("Parse = %d rows, %v; want none, read items CSV: boom", len(rows), err)
	}
}

// Parse must stay far below the 5 s import budget; 10,000 lines take a few ms.
func TestParse10kIsFast(t *testing.T) {
	in := gen10k()
	start := time.Now()
	rows, err := Parse(bytes.NewReader(in))
	took := time.Since(start)
	if err != nil || len(rows) != 10000 {
		t.Fatalf("Parse: %d rows, %v", len(rows), err)
	}
	if rows[9999].Line != 10001 {
		t.Fatalf("last row on line %d, want 10001", rows[9999].Line)
	}
	// Generous bound for a loaded CI machine or -race.
	if took > time.Second {
		t.Fatalf("Parse of 10,000 lines took %v", took)
	}
}

func gen10k() []byte {
	var b bytes.Buffer
	b.WriteString("source_email,target_email,source_login,source_password,target_login,target_password\r\n")
	for i := range 10000 {
		fmt.Fprintf(&b, "User.%d@contoso.com,user.%d@fabrikam.com,svc-%d@contoso.onmicrosoft.com,\"p@ss,%d\",,Target-%d!\r\n", i, i, i, i, i)
	}
	return b.Bytes()
}

func BenchmarkParse10k(b *testing.B) {
	in := gen10k()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		rows, err := Parse(bytes.NewReader(in))
		if err != nil || len(rows) != 10000 {
			b.Fatalf("Parse: %d rows, %v", len(rows), err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"source_email,target_email\na@x.com,b@y.com\n",
		"\xEF\xBB\xBFSource_Email;Target_Email;source_password\r\na@x.com;b@y.com;\"p;w\"\r\n",
		"source_email,target_email,source_password\na@x.com,b@y.com,\"multi\nline\"\nc@x.com,d@y.com,x\n",
		"source_email,target_email\na@x.com,b@y.com\nA@X.com,c@y.com\nbad,d@y.com\ne@x.com\n",
		"source_email,target_email\na@x.com,b\"@y.com\nc@x.com,\"d@y.com\n",
		"sorce_email,target_email\n",
		"source_email,target_email\n\xff@x.com,b@y.com\n",
		"\xff\xfes\x00",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rows, err := Parse(bytes.NewReader(in))
		maxLine := bytes.Count(in, []byte("\n")) + 1
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			if rows != nil {
				t.Fatalf("%d rows returned with an error", len(rows))
			}
			if len(e.Lines) == 0 {
				t.Fatal("*Error without lines")
			}
			prev := 0
			for _, l := range e.Lines {
				if l.Line < 1 || l.Line > maxLine || l.Line <= prev || l.Reason == "" {
					t.Fatalf("bad LineError %v after line %d (file has %d lines)", l, prev, maxLine)
				}
				prev = l.Line
			}
			_ = e.Error()
			return
		}
		if len(rows) == 0 {
			t.Fatal("no rows and no error")
		}
		sources := map[string]bool{}
		targets := map[string]bool{}
		prev := 1
		for _, r := range rows {
			if r.Line <= prev || r.Line > maxLine {
				t.Fatalf("row line %d after %d (file has %d lines)", r.Line, prev, maxLine)
			}
			prev = r.Line
			for _, addr := range []string{r.SourceEmail, r.TargetEmail} {
				a, err := mail.ParseAddress(addr)
				if err != nil || a.Address != addr || a.Name != "" || !strings.Contains(addr[strings.LastIndexByte(addr, '@'):], ".") {
					t.Fatalf("row on line %d has bad address %q (%v)", r.Line, addr, err)
				}
			}
			src, dst := strings.ToLower(r.SourceEmail), strings.ToLower(r.TargetEmail)
			if sources[src] || targets[dst] {
				t.Fatalf("row on line %d repeats %q or %q", r.Line, src, dst)
			}
			sources[src], targets[dst] = true, true
		}
	})
}
