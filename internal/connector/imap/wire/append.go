package wire

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// A long batch of messages gets ten minutes to be sent.
const appendTimeout = 10 * time.Minute

// Message is one message of an APPEND.
type Message struct {
	ID    string // the caller's name for it, in errors
	Flags []imap.Flag
	Date  time.Time // the internal date; zero leaves it to the server
	Size  int64     // the exact byte count Body yields
	Body  io.Reader
}

// MultiAppend stores n messages in mailbox with one APPEND (RFC 3502), every message a
// non-synchronising literal (LITERAL+, RFC 7888), and returns the UIDs the server gave them
// (APPENDUID, RFC 4315), in order. The server stores all of them or none. next gives message i.
func (c *Conn) MultiAppend(mailbox string, n int, next func(i int) (Message, error)) ([]imap.UID, error) {
	c.nc.SetWriteDeadline(time.Now().Add(appendTimeout))
	tag := c.send("APPEND " + Quote(UTF7(mailbox)))
	for i := range n {
		m, err := next(i)
		if err != nil {
			return nil, err
		}
		var fl strings.Builder
		for j, f := range m.Flags {
			if j > 0 {
				fl.WriteByte(' ')
			}
			fl.WriteString(string(f))
		}
		date := ""
		if !m.Date.IsZero() {
			date = ` "` + m.Date.Format("02-Jan-2006 15:04:05 -0700") + `"`
		}
		fmt.Fprintf(c.w, " (%s)%s {%d+}\r\n", fl.String(), date, m.Size)
		got, err := io.Copy(c.w, m.Body)
		if err != nil {
			return nil, err
		}
		if got != m.Size {
			return nil, fmt.Errorf("message %s is %d bytes, the source said %d", m.ID, got, m.Size)
		}
	}
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	line, err := c.wait(tag)
	if err != nil {
		return nil, err
	}
	uids, err := appendUIDs(line)
	if err != nil {
		return nil, err
	}
	if len(uids) != n {
		return nil, fmt.Errorf("server gave %d UIDs for %d messages: %q", len(uids), n, line)
	}
	return uids, nil
}

// appendUIDs reads "[APPENDUID validity set]" from a tagged OK. The server numbers the messages
// in the order sent, so the set's ranges ("5:7,9") list them in that order.
func appendUIDs(line string) ([]imap.UID, error) {
	i := strings.Index(strings.ToUpper(line), "[APPENDUID ")
	fields := []string{}
	if i >= 0 {
		fields = strings.Fields(line[i+1:])
	}
	if len(fields) < 3 {
		return nil, fmt.Errorf("no APPENDUID in %q", line)
	}
	var out []imap.UID
	for _, r := range strings.Split(strings.TrimSuffix(fields[2], "]"), ",") {
		lo, hi, isRange := strings.Cut(r, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		b := a
		if err == nil && isRange {
			b, err = strconv.ParseUint(hi, 10, 32)
		}
		if err != nil || a == 0 || b == 0 {
			return nil, fmt.Errorf("bad APPENDUID in %q", line)
		}
		for u := min(a, b); u <= max(a, b); u++ {
			out = append(out, imap.UID(u))
		}
	}
	return out, nil
}
