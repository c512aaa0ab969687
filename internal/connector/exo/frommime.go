package exo

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	_ "github.com/emersion/go-message/charset" // decode every charset the corpus of real mail uses

	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/mailparse"
)

// Graph creates a received message (not a draft) only from JSON with PidTagMessageFlags, and keeps
// MIME only as a draft, so a message from another protocol is taken apart here (by package
// mailparse): headers become the message's properties, the text a reader shows its body, every
// other part an attachment. The
// original header block is kept whole in PidTagTransportMessageHeaders, where Outlook shows it.
const (
	propTransportHeaders = "String 0x007D"
	propInReplyTo        = "String 0x1042"
	propReferences       = "String 0x1039"
	msgFlagRead          = 0x1
	msgFlagUnsent        = 0x8
)

// maxBody is the largest body sent in the create request (Graph takes 4 MB a request); a bigger
// body travels as an attachment, so nothing is cut.
const maxBody = 1 << 20

// part is one attachment, its decoded bytes spooled to a temp file at off.
type part struct {
	name, contentType, contentID string
	inline                       bool
	off, size                    int64
}

// decomposed is a MIME message taken apart for Graph.
type decomposed struct {
	msg   graph.NewMessage
	parts []part
	spool *os.File // the parts' bytes, one after another
	// unreadable is why the message could not be read, when it is kept whole as original.eml.
	unreadable string
}

func (d *decomposed) Close() error {
	if d.spool == nil {
		return nil
	}
	name := d.spool.Name()
	d.spool.Close()
	return os.Remove(name)
}

// content reads a part's bytes back from the spool.
func (d *decomposed) content(p part) io.Reader { return io.NewSectionReader(d.spool, p.off, p.size) }

// decompose reads the raw message (size bytes at r) into a message to create. A message whose
// header cannot be parsed at all is kept whole: its raw bytes become the attachment original.eml.
func decompose(r io.ReaderAt, size int64, received time.Time, flags []string) (*decomposed, error) {
	spool, err := os.CreateTemp("", "ferry-parts-*")
	if err != nil {
		return nil, err
	}
	d := &decomposed{spool: spool}
	if err := d.read(io.NewSectionReader(r, 0, size)); err != nil {
		// Keep what cannot be read, whole, rather than lose it.
		if _, serr := spool.Seek(0, io.SeekStart); serr != nil {
			d.Close()
			return nil, serr
		}
		d.unreadable = err.Error()
		d.parts, d.msg = nil, graph.NewMessage{Subject: "(unreadable message)",
			Body: &graph.ItemBody{ContentType: "text", Content: "Ferry could not read this message (" + err.Error() + "); the original is attached as original.eml."}}
		if err := d.add(part{name: "original.eml", contentType: "message/rfc822"}, io.NewSectionReader(r, 0, size)); err != nil {
			d.Close()
			return nil, err
		}
	}
	d.state(received, flags)
	return d, nil
}

// add spools an attachment's bytes.
func (d *decomposed) add(p part, r io.Reader) error {
	off, err := d.spool.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	n, err := io.Copy(d.spool, r)
	if err != nil && !mailparse.Tolerable(err) {
		return fmt.Errorf("attachment %q: %w", p.name, err)
	}
	p.off, p.size = off, n
	d.parts = append(d.parts, p)
	return nil
}

func (d *decomposed) read(r io.Reader) error {
	msg, err := mailparse.Read(r, maxBody, func(p mailparse.Part, content io.Reader) error {
		return d.add(part{name: p.Name, contentType: p.ContentType, contentID: p.ContentID, inline: p.Inline}, content)
	})
	if err != nil {
		return err
	}
	d.headers(msg.Header)
	d.msg.Body = &graph.ItemBody{ContentType: "text"}
	if msg.Body != nil {
		d.msg.Body.Content = msg.Body.Text
		if msg.Body.HTML {
			d.msg.Body.ContentType = "html"
		}
	}
	return nil
}

// headers maps the header onto the message; what has no Graph property is kept in the whole
// header block (PidTagTransportMessageHeaders).
func (d *decomposed) headers(h mailparse.Header) {
	m := &d.msg
	m.Subject = h.Subject
	one := func(l []mailparse.Address) *graph.Recipient {
		if r := recipients(l); len(r) > 0 {
			return &r[0]
		}
		return nil
	}
	m.From, m.Sender = one(h.From), one(h.Sender)
	m.ToRecipients, m.CcRecipients, m.BccRecipients, m.ReplyTo = recipients(h.To), recipients(h.Cc), recipients(h.Bcc), recipients(h.ReplyTo)
	m.InternetMessageID = h.MessageID
	m.Importance = h.Importance
	prop := func(id, v string) {
		if v = strings.TrimSpace(v); v != "" {
			m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties, graph.ExtendedProperty{ID: id, Value: v})
		}
	}
	if !h.Date.IsZero() {
		prop(graph.PropSubmitTime, h.Date.UTC().Format(time.RFC3339))
	}
	prop(propInReplyTo, h.InReplyTo)
	prop(propReferences, h.References)
	prop(propTransportHeaders, h.Raw)
}

func recipients(l []mailparse.Address) []graph.Recipient {
	out := make([]graph.Recipient, 0, len(l))
	for _, a := range l {
		var r graph.Recipient
		r.EmailAddress.Name, r.EmailAddress.Address = a.Name, a.Address
		out = append(out, r)
	}
	return out
}

// state sets what IMAP keeps as flags: read, follow-up flag, answered or forwarded, keywords as
// categories, a draft as a draft; and the received date.
func (d *decomposed) state(received time.Time, flags []string) {
	m := &d.msg
	mflags := 0
	for _, f := range flags {
		switch {
		case strings.EqualFold(f, `\Seen`):
			mflags |= msgFlagRead
		case strings.EqualFold(f, `\Draft`):
			mflags |= msgFlagUnsent
		case strings.EqualFold(f, `\Flagged`):
			m.Flag = &graph.Flag{FlagStatus: "flagged"}
		case strings.EqualFold(f, `\Answered`):
			m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties, graph.ExtendedProperty{ID: graph.PropLastVerb, Value: graph.VerbReply})
		case strings.EqualFold(f, `$Forwarded`):
			m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties, graph.ExtendedProperty{ID: graph.PropLastVerb, Value: graph.VerbForward})
		case strings.HasPrefix(f, `\`):
			// \Deleted and \Recent have no Exchange counterpart.
		default:
			m.Categories = append(m.Categories, f)
		}
	}
	m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties, graph.ExtendedProperty{ID: graph.PropMessageFlags, Value: fmt.Sprint(mflags)})
	if !received.IsZero() {
		m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties, graph.ExtendedProperty{ID: graph.PropDeliveryTime, Value: received.UTC().Format(time.RFC3339)})
		// A message without a Date (or with one no reader can read) was sent when it arrived,
		// as far as anyone can tell: not in the year 1, nor at the time of the copy.
		if prop(*m, graph.PropSubmitTime) == "" {
			m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties, graph.ExtendedProperty{ID: graph.PropSubmitTime, Value: received.UTC().Format(time.RFC3339)})
		}
	}
}

// prop is the value of one of a message's extended properties.
func prop(m graph.NewMessage, id string) string {
	for _, p := range m.SingleValueExtendedProperties {
		if p.ID == id {
			return p.Value
		}
	}
	return ""
}
