// Package wire speaks the few IMAP commands Ferry needs that go-imap's client cannot send — an
// APPEND of many messages at once (MULTIAPPEND, RFC 3502) — on a connection of its own: the
// greeting, STARTTLS, sign-in, SELECT, APPEND and LOGOUT. One file per command, as go-imap lays out
// its client. Which TLS settings and which sign-in mechanism to use is the caller's to choose, so
// the connector's pool and its batch connections choose them in one place.
package wire

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Deadlines: a short command gets a minute to be sent, any answer line five minutes to arrive.
const (
	writeTimeout = time.Minute
	readTimeout  = 5 * time.Minute
)

// Conn is one hand-spoken IMAP connection. It is not safe for concurrent use.
type Conn struct {
	nc  net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	tag int
	// Selected is the mailbox the last successful SELECT chose.
	Selected string
}

// New wraps a connected socket (plain or TLS); read the greeting next.
func New(nc net.Conn) *Conn {
	c := &Conn{}
	c.setConn(nc)
	return c
}

func (c *Conn) setConn(nc net.Conn) {
	c.nc, c.r, c.w = nc, bufio.NewReaderSize(nc, 16<<10), bufio.NewWriterSize(nc, 64<<10)
}

// Greeting reads the server's first line.
func (c *Conn) Greeting() error {
	_, err := c.readLine()
	return err
}

// Close closes the socket without a LOGOUT.
func (c *Conn) Close() error { return c.nc.Close() }

// send buffers one tagged command (cmd ends in CRLF, or goes on with literals) and returns its tag.
func (c *Conn) send(cmd string) string {
	c.tag++
	tag := "B" + strconv.Itoa(c.tag)
	c.w.WriteString(tag + " " + cmd)
	return tag
}

// flush sends what is buffered, giving a short command a minute: a deadline left by a long batch
// must not fail the next command on a connection that sat idle.
func (c *Conn) flush() error {
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.w.Flush()
}

// command sends one line and returns the tagged answer's text.
func (c *Conn) command(cmd string) (string, error) {
	tag := c.send(cmd + "\r\n")
	if err := c.flush(); err != nil {
		return "", err
	}
	return c.wait(tag)
}

// wait reads up to tag's answer; a NO or BAD comes back as the server's text.
func (c *Conn) wait(tag string) (string, error) {
	for {
		line, err := c.readLine()
		if err != nil {
			return "", err
		}
		if done, err := tagged(line, tag); done {
			return line, err
		}
	}
}

func tagged(line, tag string) (bool, error) {
	rest, ok := strings.CutPrefix(line, tag+" ")
	if !ok {
		return false, nil
	}
	if strings.HasPrefix(rest, "OK") {
		return true, nil
	}
	return true, &imap.Error{Type: imap.StatusResponseType(strings.Fields(rest + " ")[0]), Text: rest}
}

// readLine reads one response line, skipping any literal it carries (untagged data nobody asked
// for), with a deadline so a silent server cannot hang the connection.
func (c *Conn) readLine() (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(readTimeout))
	var out strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		out.WriteString(strings.TrimRight(line, "\r\n"))
		n, ok := literalSize(line)
		if !ok {
			return out.String(), nil
		}
		if _, err := io.CopyN(io.Discard, c.r, n); err != nil {
			return "", err
		}
	}
}

func literalSize(line string) (int64, bool) {
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(line[i+1:len(line)-1], "+"), 10, 64)
	return n, err == nil
}
