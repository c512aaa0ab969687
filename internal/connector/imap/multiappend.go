package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/model"
)

// Batches of small messages go in one MULTIAPPEND (RFC 3502): Dovecot's cost is mostly per APPEND
// command (a transaction on the folder's index and uidlist), so 50 messages in one command cost
// it about half of what 50 commands do. go-imap cannot send MULTIAPPEND, so a batch goes over a
// connection of its own, spoken by hand: sign-in, SELECT and APPEND only.
const batchSize = 50

// MaxBatch is batchSize when the server offers MULTIAPPEND, LITERAL+ (literals need no round trip
// each) and UIDPLUS (the new UIDs come back), else 0.
func (m *Mailbox) MaxBatch() int {
	c := m.p.caps
	if c.Has(imap.CapMultiAppend) && c.Has(imap.CapLiteralPlus) && c.Has(imap.CapUIDPlus) {
		return batchSize
	}
	return 0
}

// PutBatch appends objs in one MULTIAPPEND; the server stores all of them or none.
func (m *Mailbox) PutBatch(ctx context.Context, dst connector.FolderRef, objs []connector.Object, open func(i int) (io.Reader, int64, error)) ([]connector.TargetRef, error) {
	if len(objs) == 0 {
		return nil, nil
	}
	uids, err := m.batch(ctx, dst.ID, objs, open)
	if err != nil {
		if isNetErr(err) {
			m.forgetIndex(dst.ID) // the server may have stored the batch before the line dropped
			return nil, connector.Classify(connector.Transient, err)
		}
		return nil, err
	}
	if ix, err := m.index(ctx, dst); err == nil {
		for i, o := range objs {
			ix.add(o.MessageID, o.Size, uids[i])
		}
	}
	out := make([]connector.TargetRef, len(uids))
	for i, u := range uids {
		out[i] = connector.TargetRef{ID: strconv.FormatUint(uint64(u), 10)}
	}
	return out, nil
}

// batch sends one MULTIAPPEND on a batch connection, which counts against the mailbox's connections.
func (m *Mailbox) batch(ctx context.Context, mailbox string, objs []connector.Object, open func(i int) (io.Reader, int64, error)) ([]imap.UID, error) {
	select {
	case m.p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-m.p.sem }()
	rc, err := m.rawConn(ctx, mailbox)
	if err != nil {
		return nil, err
	}
	uids, err := rc.multiAppend(mailbox, objs, open)
	if err != nil {
		rc.close() // whatever broke, the command may be half sent
		return nil, err
	}
	m.mu.Lock()
	m.raws = append(m.raws, rc)
	m.mu.Unlock()
	return uids, nil
}

// forgetIndex drops a folder's cached index, so the next lookup reads what the server holds.
func (m *Mailbox) forgetIndex(name string) {
	m.mu.Lock()
	delete(m.indexes, name)
	m.mu.Unlock()
}

// rawConn returns an idle batch connection, preferring one with mailbox selected, or dials one.
func (m *Mailbox) rawConn(ctx context.Context, mailbox string) (*rawConn, error) {
	m.mu.Lock()
	pick := -1
	for i, rc := range m.raws {
		if pick < 0 || rc.selected == mailbox {
			pick = i
		}
	}
	var rc *rawConn
	if pick >= 0 {
		rc = m.raws[pick]
		m.raws = append(m.raws[:pick], m.raws[pick+1:]...)
	}
	m.mu.Unlock()
	if rc == nil {
		var err error
		if rc, err = dialRaw(ctx, m.p.cf, m.p.caps); err != nil {
			return nil, err
		}
	}
	if rc.selected != mailbox {
		if _, err := rc.command("SELECT " + quote(utf7(mailbox))); err != nil {
			rc.close()
			return nil, err
		}
		rc.selected = mailbox
	}
	return rc, nil
}

func (m *Mailbox) closeRaws() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rc := range m.raws {
		rc.send("LOGOUT\r\n")
		rc.flush()
		rc.close()
	}
	m.raws = nil
}

// rawConn is one hand-spoken IMAP connection.
type rawConn struct {
	nc       net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	tag      int
	selected string
	release  func()
}

// dialRaw connects as dial does (host slot, security, certificate checks) and signs in.
func dialRaw(ctx context.Context, cf Config, caps imap.CapSet) (*rawConn, error) {
	release, err := cf.takeSlot(ctx)
	if err != nil {
		return nil, err
	}
	rc := &rawConn{release: release}
	tc, err := cf.tlsConfig()
	if err != nil {
		rc.release()
		return nil, connector.Classify(connector.Fatal, err)
	}
	d := &net.Dialer{Timeout: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", cf.addr())
	if err != nil {
		rc.release()
		return nil, fmt.Errorf("connect to %s: %w", cf.addr(), err)
	}
	rc.setConn(nc)
	// As in dial: anything but none and starttls (an empty setting too) means TLS from the start.
	if cf.Security != model.SecurityNone && cf.Security != model.SecuritySTARTTLS {
		if err := rc.startTLS(tc); err != nil {
			rc.close()
			return nil, err
		}
	}
	if _, err := rc.readLine(); err != nil { // greeting
		rc.close()
		return nil, err
	}
	if cf.Security == model.SecuritySTARTTLS {
		if _, err := rc.command("STARTTLS"); err != nil {
			rc.close()
			return nil, err
		}
		if err := rc.startTLS(tc); err != nil {
			rc.close()
			return nil, err
		}
	}
	if err := rc.login(ctx, cf, caps); err != nil {
		rc.close()
		return nil, connector.Classify(connector.Fatal, fmt.Errorf("%s: sign-in as %s failed: %w", cf.addr(), cf.User, err))
	}
	return rc, nil
}

func (rc *rawConn) setConn(nc net.Conn) {
	rc.nc, rc.r, rc.w = nc, bufio.NewReaderSize(nc, 16<<10), bufio.NewWriterSize(nc, 64<<10)
}

func (rc *rawConn) startTLS(tc *tls.Config) error {
	t := tls.Client(rc.nc, tc)
	if err := t.Handshake(); err != nil {
		return fmt.Errorf("TLS with %s: %w", tc.ServerName, err)
	}
	rc.setConn(t)
	return nil
}

// login signs in as the pool's connections do (see login in conn.go), with the same mechanisms.
func (rc *rawConn) login(ctx context.Context, cf Config, caps imap.CapSet) error {
	var sc sasl.Client
	switch strings.ToLower(cf.Auth) {
	case "xoauth2":
		x, err := cf.xoauth2(ctx)
		if err != nil {
			return err
		}
		sc = x
	case "plain", "":
		if caps.Has(imap.AuthCap(sasl.Plain)) {
			sc = sasl.NewPlainClient("", cf.User, cf.Password)
		}
	}
	if sc == nil {
		if strings.ContainsAny(cf.User+cf.Password, "\r\n\x00") {
			return errors.New("user or password holds a line break")
		}
		_, err := rc.command("LOGIN " + quote(cf.User) + " " + quote(cf.Password))
		return err
	}
	mech, ir, err := sc.Start()
	if err != nil {
		return err
	}
	tag := rc.send("AUTHENTICATE " + mech + "\r\n")
	if err := rc.flush(); err != nil {
		return err
	}
	for {
		line, err := rc.readLine()
		if err != nil {
			return err
		}
		if strings.HasPrefix(line, "+") {
			// The first challenge takes the initial response; later ones go to the mechanism.
			resp := ir
			if ir == nil {
				challenge, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(line, "+")))
				if err != nil {
					return fmt.Errorf("AUTHENTICATE challenge: %w", err)
				}
				if resp, err = sc.Next(challenge); err != nil {
					return err
				}
			}
			rc.w.WriteString(base64.StdEncoding.EncodeToString(resp) + "\r\n")
			ir = nil
			if err := rc.flush(); err != nil {
				return err
			}
			continue
		}
		if done, err := tagged(line, tag); done {
			return err
		}
	}
}

func (rc *rawConn) close() {
	rc.nc.Close()
	rc.release()
}

// flush sends what is buffered, giving a short command a minute: a deadline left by a long batch
// must not fail the next command on a connection that sat idle.
func (rc *rawConn) flush() error {
	rc.nc.SetWriteDeadline(time.Now().Add(time.Minute))
	return rc.w.Flush()
}

func (rc *rawConn) send(cmd string) string {
	rc.tag++
	tag := "B" + strconv.Itoa(rc.tag)
	rc.w.WriteString(tag + " " + cmd)
	return tag
}

// command sends one line and returns the tagged answer's text.
func (rc *rawConn) command(cmd string) (string, error) {
	tag := rc.send(cmd + "\r\n")
	if err := rc.flush(); err != nil {
		return "", err
	}
	return rc.wait(tag)
}

// wait reads up to tag's answer; a NO or BAD comes back as the server's text.
func (rc *rawConn) wait(tag string) (string, error) {
	for {
		line, err := rc.readLine()
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
// for), with a deadline so a silent server cannot hang the batch.
func (rc *rawConn) readLine() (string, error) {
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Minute))
	var out strings.Builder
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		out.WriteString(strings.TrimRight(line, "\r\n"))
		n, ok := literalSize(line)
		if !ok {
			return out.String(), nil
		}
		if _, err := io.CopyN(io.Discard, rc.r, n); err != nil {
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

// multiAppend sends one APPEND with every message as a non-synchronising literal and returns the
// UIDs the server gave them (APPENDUID), in order.
func (rc *rawConn) multiAppend(mailbox string, objs []connector.Object, open func(i int) (io.Reader, int64, error)) ([]imap.UID, error) {
	rc.nc.SetWriteDeadline(time.Now().Add(10 * time.Minute))
	tag := rc.send("APPEND " + quote(utf7(mailbox)))
	for i, o := range objs {
		body, size, err := open(i)
		if err != nil {
			return nil, err
		}
		var fl strings.Builder
		for j, f := range imapFlags(o.Flags) {
			if j > 0 {
				fl.WriteByte(' ')
			}
			fl.WriteString(string(f))
		}
		date := ""
		if !o.Date.IsZero() {
			date = ` "` + o.Date.Format("02-Jan-2006 15:04:05 -0700") + `"`
		}
		fmt.Fprintf(rc.w, " (%s)%s {%d+}\r\n", fl.String(), date, size)
		n, err := io.Copy(rc.w, body)
		if err != nil {
			return nil, err
		}
		if n != size {
			return nil, fmt.Errorf("message %s is %d bytes, the source said %d", o.ID, n, size)
		}
	}
	rc.w.WriteString("\r\n")
	if err := rc.w.Flush(); err != nil {
		return nil, err
	}
	line, err := rc.wait(tag)
	if err != nil {
		return nil, err
	}
	uids, err := appendUIDs(line)
	if err != nil {
		return nil, err
	}
	if len(uids) != len(objs) {
		return nil, fmt.Errorf("server gave %d UIDs for %d messages: %q", len(uids), len(objs), line)
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

// quote makes an IMAP quoted string of a mailbox name in modified UTF-7 (RFC 3501 5.1.3), or of
// any ASCII string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// utf7 encodes a mailbox name in modified UTF-7: printable ASCII stays, "&" is "&-", anything
// else is UTF-16 in base64 (with "," for "/") between "&" and "-".
func utf7(name string) string {
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

// OpenBatch fetches a batch's bodies in one UID FETCH (BODY.PEEK[]), streaming each in turn. The
// server answers in UID order, as List gave them; a message gone since, or a body that does not
// come after its UID, is an error, and the engine then copies the batch one by one.
func (m *Mailbox) OpenBatch(ctx context.Context, f connector.Folder, objs []connector.Object) (func() (io.Reader, int64, error), func() error, error) {
	fi, err := m.info(ctx, f.Path)
	if err != nil {
		return nil, nil, err
	}
	uids := make([]imap.UID, len(objs))
	var set imap.UIDSet
	for i, o := range objs {
		if uids[i], err = parseID(o.ID); err != nil {
			return nil, nil, connector.Classify(connector.Permanent, err)
		}
		if i > 0 && uids[i] <= uids[i-1] {
			return nil, nil, fmt.Errorf("batch not in UID order at %s", o.ID)
		}
		set.AddNum(uids[i])
	}
	cn, err := m.p.get(ctx, fi.name)
	if err != nil {
		return nil, nil, err
	}
	if _, err := cn.sel(fi.name, true); err != nil {
		m.p.put(cn, err)
		return nil, nil, err
	}
	cmd := cn.c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	i, closed := 0, false
	next := func() (io.Reader, int64, error) {
		if i >= len(uids) {
			return nil, 0, errors.New("read past the end of a batch")
		}
		want := objs[i]
		msg := cmd.Next() // discards what is left of the previous message
		if msg == nil {
			return nil, 0, fmt.Errorf("message %s is gone from %q", want.ID, f.Path)
		}
		var uid imap.UID
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil {
					continue
				}
				// Only a UID ahead of the body proves whose body it is (Dovecot sends it first).
				if uid != uids[i] {
					return nil, 0, fmt.Errorf("message %s: the server sent UID %d with the body, so it may be gone from %q", want.ID, uid, f.Path)
				}
				i++
				return it.Literal, it.Literal.Size(), nil
			}
		}
		return nil, 0, fmt.Errorf("message %s came without its body: it may be gone from %q", want.ID, f.Path)
	}
	done := func() error {
		if closed {
			return nil
		}
		closed = true
		err := cmd.Close()
		m.p.put(cn, err)
		return err
	}
	return next, done, nil
}
