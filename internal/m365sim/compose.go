package m365sim

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/throttle"
)

// Outlook's attachment rules, as documented: under 3 MB in one POST, up to 150 MB through an
// upload session whose PUTs carry at most 4 MB each.
const (
	MaxPostAttachment = 3 << 20
	MaxAttachment     = 150 << 20
	MaxUploadChunk    = 4 << 20
)

// composed is a message created from its parts (JSON): what the emulator renders its MIME from,
// as Exchange renders MIME from an item's properties.
type composed struct {
	From, Sender          *recipient
	To, Cc, Bcc, ReplyTo  []recipient
	Body                  struct{ ContentType, Content string }
	Headers               []struct{ Name, Value string }
	Importance            string
	TransportHeaders      string // PidTagTransportMessageHeaders, the original header block
	InReplyTo, References string
	Attachments           []attachment
}

type recipient struct {
	EmailAddress struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"emailAddress"`
}

type attachment struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ContentType string `json:"contentType"`
	ContentID   string `json:"contentId,omitempty"`
	IsInline    bool   `json:"isInline"`
	Data        []byte `json:"data"`
}

// messageRequest is the JSON body of POST …/messages.
type messageRequest struct {
	Subject    string      `json:"subject"`
	IsRead     *bool       `json:"isRead"`
	Categories []string    `json:"categories"`
	Importance string      `json:"importance"`
	From       *recipient  `json:"from"`
	Sender     *recipient  `json:"sender"`
	To         []recipient `json:"toRecipients"`
	Cc         []recipient `json:"ccRecipients"`
	Bcc        []recipient `json:"bccRecipients"`
	ReplyTo    []recipient `json:"replyTo"`
	InternetID string      `json:"internetMessageId"`
	Body       *struct {
		ContentType string `json:"contentType"`
		Content     string `json:"content"`
	} `json:"body"`
	Headers []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"internetMessageHeaders"`
	Flag *struct {
		FlagStatus string `json:"flagStatus"`
	} `json:"flag"`
	Props []struct {
		ID    string `json:"id"`
		Value string `json:"value"`
	} `json:"singleValueExtendedProperties"`
	Attachments []attachmentRequest `json:"attachments"`
}

type attachmentRequest struct {
	ODataType    string `json:"@odata.type"`
	Name         string `json:"name"`
	ContentType  string `json:"contentType"`
	ContentBytes []byte `json:"contentBytes"`
	IsInline     bool   `json:"isInline"`
	ContentID    string `json:"contentId"`
}

func (a attachmentRequest) check() error {
	if a.ODataType != "#microsoft.graph.fileAttachment" {
		return fmt.Errorf("attachment %q: @odata.type %q is not supported; use #microsoft.graph.fileAttachment", a.Name, a.ODataType)
	}
	if strings.TrimSpace(a.Name) == "" {
		return fmt.Errorf("an attachment needs a name")
	}
	return nil
}

// fromJSON fills a new message from a JSON create request, as Exchange would: PidTagMessageFlags
// decides draft and read state (and is taken only now), the delivery and submit times its dates.
func (m *message) fromJSON(req messageRequest) (status int, code, msg string) {
	for _, h := range req.Headers {
		if !strings.HasPrefix(strings.ToLower(h.Name), "x-") {
			return http.StatusBadRequest, "InvalidInternetMessageHeader", fmt.Sprintf("The internet message header name '%s' should start with 'x-' or 'X-'.", h.Name)
		}
	}
	if req.Flag != nil && !slices.Contains([]string{"notFlagged", "flagged", "complete"}, req.Flag.FlagStatus) {
		return http.StatusBadRequest, "ErrorInvalidArgument", fmt.Sprintf("flagStatus %q is not valid.", req.Flag.FlagStatus)
	}
	if req.Importance != "" && !slices.Contains([]string{"low", "normal", "high"}, req.Importance) {
		return http.StatusBadRequest, "ErrorInvalidArgument", fmt.Sprintf("importance %q is not valid.", req.Importance)
	}
	c := &composed{From: req.From, Sender: req.Sender, To: req.To, Cc: req.Cc, Bcc: req.Bcc, ReplyTo: req.ReplyTo, Importance: req.Importance}
	if req.Body != nil {
		c.Body.ContentType, c.Body.Content = strings.ToLower(req.Body.ContentType), req.Body.Content
		if c.Body.ContentType != "html" && c.Body.ContentType != "text" && c.Body.ContentType != "" {
			return http.StatusBadRequest, "ErrorInvalidArgument", fmt.Sprintf("body contentType %q is not text or html.", req.Body.ContentType)
		}
	}
	for _, h := range req.Headers {
		c.Headers = append(c.Headers, struct{ Name, Value string }{h.Name, h.Value})
	}
	m.Subject, m.InternetMessageID, m.Categories = req.Subject, req.InternetID, req.Categories
	if req.IsRead != nil {
		m.IsRead = *req.IsRead
	}
	if req.Flag != nil {
		m.Flag = req.Flag.FlagStatus
	}
	for _, p := range req.Props {
		m.Props[p.ID] = p.Value
		switch strings.ToLower(p.ID) {
		case "integer 0x0e07":
			n, err := strconv.Atoi(p.Value)
			if err != nil {
				return http.StatusBadRequest, "ErrorInvalidExtendedPropertyValue", "PidTagMessageFlags must be an integer."
			}
			m.IsDraft, m.IsRead = n&8 != 0, n&1 != 0
		case "systemtime 0x0e06", "systemtime 0x0039":
			t, err := time.Parse(time.RFC3339, p.Value)
			if err != nil {
				return http.StatusBadRequest, "ErrorInvalidExtendedPropertyValue", fmt.Sprintf("%s: %q is not an ISO 8601 time.", p.ID, p.Value)
			}
			if strings.HasSuffix(strings.ToLower(p.ID), "0e06") {
				m.Received = t
			} else {
				m.Sent = t
			}
		case "string 0x007d":
			c.TransportHeaders = p.Value
		case "string 0x1042":
			c.InReplyTo = p.Value
		case "string 0x1039":
			c.References = p.Value
		}
	}
	for _, a := range req.Attachments {
		if err := a.check(); err != nil {
			return http.StatusBadRequest, "ErrorInvalidAttachment", err.Error()
		}
		c.Attachments = append(c.Attachments, attachment{ID: newID(), Name: a.Name, ContentType: a.ContentType, ContentID: a.ContentID, IsInline: a.IsInline, Data: a.ContentBytes})
	}
	m.Compose = c
	m.render()
	return 0, "", ""
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// structural headers are regenerated from the item, never copied from the kept header block.
var structural = regexp.MustCompile(`(?i)^(content-[a-z-]+|mime-version)$`)

// render writes the message's MIME from its parts: the original header block when one was kept
// (less the headers that describe the old structure), else headers made from the properties; then
// the body and the attachments. It is deterministic, so $value answers the same bytes every time.
func (m *message) render() {
	c := m.Compose
	var b bytes.Buffer
	hdr := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if c.TransportHeaders != "" {
		for _, f := range splitFields(c.TransportHeaders) {
			name, _, _ := strings.Cut(f, ":")
			if !structural.MatchString(strings.TrimSpace(name)) {
				b.WriteString(f)
			}
		}
	} else {
		hdr("From", c.From.format())
		hdr("Sender", c.Sender.format())
		hdr("To", formatList(c.To))
		hdr("Cc", formatList(c.Cc))
		hdr("Reply-To", formatList(c.ReplyTo))
		hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
		if !m.Sent.IsZero() {
			hdr("Date", m.Sent.Format(time.RFC1123Z))
		}
		hdr("Message-ID", m.InternetMessageID)
		hdr("In-Reply-To", c.InReplyTo)
		hdr("References", c.References)
		if c.Importance != "" && c.Importance != "normal" {
			hdr("Importance", c.Importance)
		}
		for _, h := range c.Headers {
			hdr(h.Name, h.Value)
		}
	}
	hdr("MIME-Version", "1.0")
	bodyType := "text/plain"
	if c.Body.ContentType == "html" {
		bodyType = "text/html"
	}
	writeBody := func() {
		b.WriteString("Content-Type: " + bodyType + "; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		q := quotedprintable.NewWriter(&b)
		q.Write([]byte(c.Body.Content))
		q.Close()
		b.WriteString("\r\n")
	}
	if len(c.Attachments) == 0 {
		writeBody()
		m.MIME = b.Bytes()
		return
	}
	boundary := "_ferrysim_" + m.ID + "_"
	b.WriteString("Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n")
	b.WriteString("--" + boundary + "\r\n")
	writeBody()
	for _, a := range c.Attachments {
		b.WriteString("--" + boundary + "\r\n")
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		name := mime.QEncoding.Encode("utf-8", a.Name)
		fmt.Fprintf(&b, "Content-Type: %s; name=\"%s\"\r\n", ct, name)
		disp := "attachment"
		if a.IsInline {
			disp = "inline"
		}
		fmt.Fprintf(&b, "Content-Disposition: %s; filename=\"%s\"; size=%d\r\n", disp, name, len(a.Data))
		if a.ContentID != "" {
			fmt.Fprintf(&b, "Content-ID: <%s>\r\n", a.ContentID)
		}
		b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString(a.Data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	m.MIME = b.Bytes()
}

// splitFields splits a header block into its fields, each with its folded lines and line end.
func splitFields(block string) []string {
	var out []string
	for _, line := range strings.SplitAfter(block, "\n") {
		if line == "" || line == "\r\n" || line == "\n" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1] += line
			continue
		}
		out = append(out, line)
	}
	for i, f := range out {
		if !strings.HasSuffix(f, "\n") {
			out[i] = f + "\r\n"
		}
	}
	return out
}

func (r *recipient) format() string {
	if r == nil {
		return ""
	}
	if r.EmailAddress.Name == "" {
		return r.EmailAddress.Address
	}
	return mime.QEncoding.Encode("utf-8", r.EmailAddress.Name) + " <" + r.EmailAddress.Address + ">"
}

func formatList(l []recipient) string {
	var parts []string
	for i := range l {
		parts = append(parts, l[i].format())
	}
	return strings.Join(parts, ", ")
}

func (a attachment) view() map[string]any {
	return map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "id": a.ID, "name": a.Name, "contentType": a.ContentType,
		"size": len(a.Data), "isInline": a.IsInline, "contentId": a.ContentID, "contentBytes": a.Data}
}

// attach adds an attachment to a message composed from parts; its MIME and version change with it.
func (mb *mailbox) attach(m *message, a attachment) {
	m.Compose.Attachments = append(m.Compose.Attachments, a)
	m.render()
	mb.Seq++
	m.ChangeKey, m.Touched = m.ChangeKey+1, mb.Seq
}

// composedOnly refuses attachments to a message created from MIME, whose MIME the emulator keeps
// as it was sent and does not rebuild.
func composedOnly(w http.ResponseWriter, m *message) bool {
	if m.Compose == nil {
		graphError(w, http.StatusBadRequest, "ErrorInvalidOperation", "The emulator adds attachments only to messages created from JSON; put them in the MIME instead.")
		return false
	}
	return true
}

func (s *Server) composeHandlers() {
	s.mux.Handle("POST /v1.0/users/{id}/messages/{mid}/attachments", s.graph(PermMailReadWrite, s.addAttachment))
	s.mux.Handle("GET /v1.0/users/{id}/messages/{mid}/attachments", s.graph(PermMailRead, s.listAttachments))
	s.mux.Handle("POST /v1.0/users/{id}/messages/{mid}/attachments/createUploadSession", s.graph(PermMailReadWrite, s.createUploadSession))
	s.mux.HandleFunc("PUT /upload/attachments/{session}", s.uploadChunk)
}

func (s *Server) addAttachment(w http.ResponseWriter, r *http.Request, c caller) {
	var a attachmentRequest
	if r.ContentLength > 2*MaxPostAttachment {
		graphError(w, http.StatusRequestEntityTooLarge, "ErrorRequestEntityTooLarge", "Attachments of 3 MB or more need an upload session.")
		return
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 2*MaxPostAttachment)).Decode(&a); err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", "Invalid JSON: "+err.Error())
		return
	}
	if err := a.check(); err != nil {
		graphError(w, http.StatusBadRequest, "ErrorInvalidAttachment", err.Error())
		return
	}
	if len(a.ContentBytes) >= MaxPostAttachment {
		graphError(w, http.StatusRequestEntityTooLarge, "ErrorRequestEntityTooLarge", "Attachments of 3 MB or more need an upload session.")
		return
	}
	s.withMessage(w, r, c, func(mb *mailbox, _ *folder, m *message) {
		if !composedOnly(w, m) {
			return
		}
		at := attachment{ID: newID(), Name: a.Name, ContentType: a.ContentType, ContentID: a.ContentID, IsInline: a.IsInline, Data: a.ContentBytes}
		mb.attach(m, at)
		writeJSON(w, http.StatusCreated, at.view())
	})
}

func (s *Server) listAttachments(w http.ResponseWriter, r *http.Request, c caller) {
	s.withMessage(w, r, c, func(_ *mailbox, _ *folder, m *message) {
		out := []map[string]any{}
		if m.Compose != nil {
			for _, a := range m.Compose.Attachments {
				out = append(out, a.view())
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out})
	})
}

// uploadSession is an attachment being uploaded in ranges.
type uploadSession struct {
	tenant, app, user, msgID string
	item                     attachment
	size                     int64
	expires                  time.Time
}

func (s *Server) createUploadSession(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Item *struct {
			AttachmentType string `json:"attachmentType"`
			Name           string `json:"name"`
			Size           int64  `json:"size"`
			ContentType    string `json:"contentType"`
			IsInline       bool   `json:"isInline"`
			ContentID      string `json:"contentId"`
		} `json:"AttachmentItem"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Item == nil {
		graphError(w, http.StatusBadRequest, "BadRequest", "The body must hold an AttachmentItem.")
		return
	}
	it := req.Item
	switch {
	case it.AttachmentType != "file":
		graphError(w, http.StatusBadRequest, "ErrorInvalidAttachmentType", fmt.Sprintf("attachmentType %q: only file attachments can be uploaded.", it.AttachmentType))
		return
	case strings.TrimSpace(it.Name) == "" || it.Size <= 0:
		graphError(w, http.StatusBadRequest, "ErrorInvalidArgument", "An upload needs a name and a size above zero.")
		return
	case it.Size > MaxAttachment:
		graphError(w, http.StatusRequestEntityTooLarge, "ErrorAttachmentSizeShouldNotBeMoreThanMaximumSize", "Attachments are limited to 150 MB.")
		return
	}
	base := s.BaseURL()
	s.withMessage(w, r, c, func(_ *mailbox, _ *folder, m *message) {
		if !composedOnly(w, m) {
			return
		}
		id := newID() + newID()
		exp := s.now().Add(24 * time.Hour)
		if s.uploads == nil {
			s.uploads = map[string]*uploadSession{}
		}
		s.uploads[id] = &uploadSession{tenant: c.tenant.ID, app: c.app.ClientID, user: r.PathValue("id"), msgID: m.ID, size: it.Size, expires: exp,
			item: attachment{ID: newID(), Name: it.Name, ContentType: it.ContentType, ContentID: it.ContentID, IsInline: it.IsInline}}
		writeJSON(w, http.StatusCreated, map[string]any{"uploadUrl": base + "/upload/attachments/" + id,
			"expirationDateTime": exp.UTC().Format(time.RFC3339Nano), "nextExpectedRanges": []string{"0-"}})
	})
}

var contentRangeRE = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+)$`)

// contentRange reads an upload PUT's Content-Range, answering 400 with code itself when it is
// not "bytes first-last/total".
func contentRange(w http.ResponseWriter, r *http.Request, code string) (first, last, total int64, ok bool) {
	m := contentRangeRE.FindStringSubmatch(r.Header.Get("Content-Range"))
	if m == nil {
		graphError(w, http.StatusBadRequest, code, "Content-Range must be 'bytes first-last/total'.")
		return 0, 0, 0, false
	}
	first, _ = strconv.ParseInt(m[1], 10, 64)
	last, _ = strconv.ParseInt(m[2], 10, 64)
	total, _ = strconv.ParseInt(m[3], 10, 64)
	return first, last, total, true
}

// uploadChunk takes one range of an upload: in order, at most 4 MB, with no Authorization header
// (the URL authorizes itself). The last range attaches the file and answers 201 with its Location.
func (s *Server) uploadChunk(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "Do not send an Authorization header to an upload URL.")
		return
	}
	s.mu.Lock()
	sess, ok := s.uploads[r.PathValue("session")]
	s.mu.Unlock()
	if !ok || s.now().After(sess.expires) {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The upload session does not exist or has expired.")
		return
	}
	first, last, total, ok := contentRange(w, r, "ErrorInvalidContentRange")
	if !ok {
		return
	}
	n := last - first + 1
	switch {
	case total != sess.size:
		graphError(w, http.StatusBadRequest, "ErrorInvalidContentRange", fmt.Sprintf("The total %d is not the session's size %d.", total, sess.size))
		return
	case n <= 0 || last >= total:
		graphError(w, http.StatusBadRequest, "ErrorInvalidContentRange", "The range is empty or past the end.")
		return
	case n > MaxUploadChunk:
		graphError(w, http.StatusRequestEntityTooLarge, "ErrorRequestEntityTooLarge", "Each upload request carries at most 4 MB.")
		return
	case r.ContentLength != n:
		graphError(w, http.StatusBadRequest, "ErrorInvalidContentRange", fmt.Sprintf("Content-Length %d does not match the range's %d bytes.", r.ContentLength, n))
		return
	}
	key := throttle.Key{Tenant: sess.tenant, App: sess.app, Resource: strings.ToLower(sess.user)}
	release := s.admitted(w, key, n, 1)
	if release == nil {
		return
	}
	defer release()
	data, err := io.ReadAll(io.LimitReader(r.Body, n))
	if err != nil || int64(len(data)) != n {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "The body ended before the range did.")
		return
	}
	base := s.BaseURL()
	s.mu.Lock()
	defer s.mu.Unlock()
	have := int64(len(sess.item.Data))
	if first != have {
		graphError(w, http.StatusRequestedRangeNotSatisfiable, "ErrorInvalidContentRange", fmt.Sprintf("Expected the range starting at %d.", have))
		return
	}
	sess.item.Data = append(sess.item.Data, data...)
	if int64(len(sess.item.Data)) < sess.size {
		writeJSON(w, http.StatusOK, map[string]any{"expirationDateTime": sess.expires.UTC().Format(time.RFC3339Nano),
			"nextExpectedRanges": []string{strconv.FormatInt(int64(len(sess.item.Data)), 10) + "-"}})
		return
	}
	delete(s.uploads, r.PathValue("session"))
	_, mb := s.mailboxOf(s.tenants[sess.tenant], sess.user)
	if mb == nil {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The message is gone.")
		return
	}
	_, msg := s.findMessage(mb, sess.msgID)
	if msg == nil {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The message is gone.")
		return
	}
	mb.attach(msg, sess.item)
	s.dirty = true
	w.Header().Set("Location", base+"/v1.0/users('"+sess.user+"')/messages('"+sess.msgID+"')/attachments('"+sess.item.ID+"')")
	w.WriteHeader(http.StatusCreated)
}
