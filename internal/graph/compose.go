package graph

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Outlook's attachment limits: a file under MaxInlineAttachment goes in one POST, a bigger one
// through an upload session, in chunks of at most 4 MB, up to MaxAttachment.
const (
	MaxInlineAttachment = 3 << 20
	MaxAttachment       = 150 << 20
	// AttachmentChunk is the size of each upload PUT: under Outlook's 4 MB, and a multiple of
	// 320 KiB so the same chunks suit OneDrive's sessions.
	AttachmentChunk = 12 * 320 << 10
)

// ItemBody is a message body.
type ItemBody struct {
	ContentType string `json:"contentType"` // text or html
	Content     string `json:"content"`
}

// InternetMessageHeader is one header kept on a created message. Graph takes only x- headers.
type InternetMessageHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// FileAttachment is a microsoft.graph.fileAttachment; ContentBytes is base64 in JSON.
type FileAttachment struct {
	ODataType    string `json:"@odata.type"`
	Name         string `json:"name"`
	ContentType  string `json:"contentType,omitempty"`
	ContentBytes []byte `json:"contentBytes"`
	IsInline     bool   `json:"isInline"`
	ContentID    string `json:"contentId,omitempty"`
}

// NewFileAttachment fills in the OData type Graph needs to tell attachment kinds apart.
func NewFileAttachment(name, contentType, contentID string, inline bool, data []byte) FileAttachment {
	return FileAttachment{ODataType: "#microsoft.graph.fileAttachment", Name: name, ContentType: contentType, ContentBytes: data, IsInline: inline, ContentID: contentID}
}

// NewMessage is a message to create from its parts (the JSON form of POST …/messages). With
// PidTagMessageFlags among its properties it is created as a received message, not a draft.
type NewMessage struct {
	Subject                       string                  `json:"subject"`
	Body                          *ItemBody               `json:"body,omitempty"`
	From                          *Recipient              `json:"from,omitempty"`
	Sender                        *Recipient              `json:"sender,omitempty"`
	ToRecipients                  []Recipient             `json:"toRecipients,omitempty"`
	CcRecipients                  []Recipient             `json:"ccRecipients,omitempty"`
	BccRecipients                 []Recipient             `json:"bccRecipients,omitempty"`
	ReplyTo                       []Recipient             `json:"replyTo,omitempty"`
	InternetMessageID             string                  `json:"internetMessageId,omitempty"`
	InternetMessageHeaders        []InternetMessageHeader `json:"internetMessageHeaders,omitempty"`
	Importance                    string                  `json:"importance,omitempty"`
	Categories                    []string                `json:"categories,omitempty"`
	Flag                          *Flag                   `json:"flag,omitempty"`
	SingleValueExtendedProperties []ExtendedProperty      `json:"singleValueExtendedProperties,omitempty"`
	Attachments                   []FileAttachment        `json:"attachments,omitempty"`
}

// CreateMessage creates a message in a folder from its parts.
func (c *Client) CreateMessage(ctx context.Context, user, folder string, m NewMessage) (Message, error) {
	var out Message
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/users/" + url.PathEscape(user) + "/mailFolders/" + url.PathEscape(folder) + "/messages", Body: m}, &out)
	return out, err
}

// DeleteMessage removes a message.
func (c *Client) DeleteMessage(ctx context.Context, user, id string) error {
	_, err := c.Do(ctx, Request{Method: http.MethodDelete, Path: "/users/" + url.PathEscape(user) + "/messages/" + url.PathEscape(id)}, nil)
	return err
}

// AddAttachment attaches a file under MaxInlineAttachment to a message in one request.
func (c *Client) AddAttachment(ctx context.Context, user, msgID string, a FileAttachment) error {
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/users/" + url.PathEscape(user) + "/messages/" + url.PathEscape(msgID) + "/attachments", Body: a}, nil)
	return err
}

// AttachmentItem describes a file to attach through an upload session.
type AttachmentItem struct {
	AttachmentType string `json:"attachmentType"` // file
	Name           string `json:"name"`
	Size           int64  `json:"size"`
	ContentType    string `json:"contentType,omitempty"`
	IsInline       bool   `json:"isInline"`
	ContentID      string `json:"contentId,omitempty"`
}

// UploadSession is where the chunks of a large attachment (or file) go.
type UploadSession struct {
	UploadURL          string    `json:"uploadUrl"`
	ExpirationDateTime time.Time `json:"expirationDateTime"`
	NextExpectedRanges []string  `json:"nextExpectedRanges"`
}

// AttachLarge attaches a file of the given size, read from r, to a message through an upload
// session: the content is streamed in AttachmentChunk pieces, never held whole.
func (c *Client) AttachLarge(ctx context.Context, user, msgID string, a AttachmentItem, r io.Reader) error {
	if a.Size > MaxAttachment {
		return fmt.Errorf("attachment %q is %d bytes; Outlook takes at most %d", a.Name, a.Size, MaxAttachment)
	}
	a.AttachmentType = "file"
	var s UploadSession
	path := "/users/" + url.PathEscape(user) + "/messages/" + url.PathEscape(msgID) + "/attachments/createUploadSession"
	if _, err := c.Do(ctx, Request{Method: http.MethodPost, Path: path, Body: map[string]any{"AttachmentItem": a}}, &s); err != nil {
		return err
	}
	return c.upload(ctx, s, r, a.Size)
}

// upload PUTs the content to an upload session in order. Each chunk is a replayable body, so the
// retry layer can send it again after a dropped connection or a 5xx.
func (c *Client) upload(ctx context.Context, s UploadSession, r io.Reader, size int64) error {
	buf := make([]byte, AttachmentChunk)
	for off := int64(0); off < size; {
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), size-off)])
		if err != nil {
			return fmt.Errorf("read upload content at %d of %d: %w", off, size, err)
		}
		h := http.Header{"Content-Range": {fmt.Sprintf("bytes %d-%d/%d", off, off+int64(n)-1, size)}}
		// The upload URL carries its own authorization: the token must not be sent.
		if _, err := c.Do(ctx, Request{Method: http.MethodPut, Path: s.UploadURL, Body: buf[:n:n], Content: "application/octet-stream", Header: h, NoAuth: true}, nil); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}
