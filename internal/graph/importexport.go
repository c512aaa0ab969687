package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// The mailbox import/export API (GA in v1.0): full-fidelity export and import of Exchange items,
// including calendar items, without sending anything.

// MailboxFolder is microsoft.graph.mailboxFolder.
type MailboxFolder struct {
	ID               string `json:"id"`
	DisplayName      string `json:"displayName"`
	ParentFolderID   string `json:"parentFolderId,omitempty"`
	ChildFolderCount int    `json:"childFolderCount"`
	TotalItemCount   int    `json:"totalItemCount"`
	Type             string `json:"type"` // IPF.Note, IPF.Appointment, IPF.Contact, IPF.Task, IPF.StickyNote
	Removed          *struct {
		Reason string `json:"reason"`
	} `json:"@removed,omitempty"` // in a folder delta: the folder was deleted
}

// MailboxItem is microsoft.graph.mailboxItem.
type MailboxItem struct {
	ID         string   `json:"id"`
	ChangeKey  string   `json:"changeKey"`
	Size       int64    `json:"size"`
	Type       string   `json:"type"`
	Categories []string `json:"categories,omitempty"`
	// CreatedDateTime is when the item came into the mailbox: a message's arrival, the date that
	// prestage and newer-than filters use.
	CreatedDateTime *time.Time `json:"createdDateTime,omitempty"`
	Removed         *struct {
		Reason string `json:"reason"`
	} `json:"@removed,omitempty"`
}

// ExportedItem is one item of an exportItems answer; Data is the item in Exchange's opaque
// full-fidelity format (base64 of a FastTransfer stream).
type ExportedItem struct {
	ItemID    string `json:"itemId"`
	ChangeKey string `json:"changeKey"`
	Data      string `json:"data"`
	Error     *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// MailboxFolders lists a mailbox's top-level folders (parent "") or a folder's children.
func (c *Client) MailboxFolders(ctx context.Context, mailboxID, parent string) (func(yield func(MailboxFolder, error) bool), func() string) {
	path := "/admin/exchange/mailboxes/" + url.PathEscape(mailboxID) + "/folders"
	if parent != "" {
		path += "/" + url.PathEscape(parent) + "/childFolders"
	}
	return All[MailboxFolder](ctx, c, path)
}

// MailboxItems lists a folder's items.
func (c *Client) MailboxItems(ctx context.Context, mailboxID, folder string) (func(yield func(MailboxItem, error) bool), func() string) {
	return All[MailboxItem](ctx, c, "/admin/exchange/mailboxes/"+url.PathEscape(mailboxID)+"/folders/"+url.PathEscape(folder)+"/items")
}

// MailboxFoldersDelta starts (link "") or continues a delta query of a mailbox's whole folder tree.
func (c *Client) MailboxFoldersDelta(ctx context.Context, mailboxID, link string) (func(yield func(MailboxFolder, error) bool), func() string) {
	if link == "" {
		link = "/admin/exchange/mailboxes/" + url.PathEscape(mailboxID) + "/folders/delta"
	}
	return All[MailboxFolder](ctx, c, link)
}

// MailboxItemsDelta starts (link "") or continues a delta query of a folder's items; deleted items
// come with Removed set.
func (c *Client) MailboxItemsDelta(ctx context.Context, mailboxID, folder, link string) (func(yield func(MailboxItem, error) bool), func() string) {
	if link == "" {
		link = "/admin/exchange/mailboxes/" + url.PathEscape(mailboxID) + "/folders/" + url.PathEscape(folder) + "/items/delta"
	}
	return All[MailboxItem](ctx, c, link)
}

// MaxExport is the most items one exportItems call takes.
const MaxExport = 20

// ExportItems exports up to 20 items in full fidelity.
func (c *Client) ExportItems(ctx context.Context, mailboxID string, ids []string) ([]ExportedItem, error) {
	if len(ids) == 0 || len(ids) > MaxExport {
		return nil, fmt.Errorf("graph: exportItems takes 1 to %d items, got %d", MaxExport, len(ids))
	}
	return c.exportItems(ctx, "/admin/exchange/mailboxes/"+url.PathEscape(mailboxID)+"/exportItems", ids, 0)
}

// ErrArchiveMoved is the per-item error of exportItems for an item whose folder an
// auto-expanding archive moved to an auxiliary mailbox; its message is the exportItems URL to use.
const ErrArchiveMoved = "ErrorArchiveFolderMovedPermanently"

// exportItems posts the ids to an exportItems URL and asks again where the service says items
// moved, so callers see every item's data or its real error.
func (c *Client) exportItems(ctx context.Context, path string, ids []string, depth int) ([]ExportedItem, error) {
	var out struct {
		Value []ExportedItem `json:"value"`
	}
	if _, err := c.Do(ctx, Request{Method: http.MethodPost, Path: path, Body: map[string]any{"ItemIds": ids}}, &out); err != nil {
		return nil, err
	}
	moved := map[string][]string{} // exportItems URL -> ids
	var order []string
	for _, it := range out.Value {
		if it.Error != nil && it.Error.Code == ErrArchiveMoved && depth < maxRedirects {
			if err := c.trusted(it.Error.Message); err != nil {
				return nil, err
			}
			if moved[it.Error.Message] == nil {
				order = append(order, it.Error.Message)
			}
			moved[it.Error.Message] = append(moved[it.Error.Message], it.ItemID)
		}
	}
	if len(order) == 0 {
		return out.Value, nil
	}
	got := map[string]ExportedItem{}
	for _, u := range order {
		items, err := c.exportItems(ctx, u, moved[u], depth+1)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			got[it.ItemID] = it
		}
	}
	for i, it := range out.Value {
		if again, ok := got[it.ItemID]; ok && it.Error != nil && it.Error.Code == ErrArchiveMoved {
			out.Value[i] = again
		}
	}
	return out.Value, nil
}

// ImportSession is where exported items are uploaded; the URL carries its own authorization.
type ImportSession struct {
	ImportURL          string    `json:"importUrl"`
	ExpirationDateTime time.Time `json:"expirationDateTime"`
}

// CreateImportSession opens an import session for a mailbox.
func (c *Client) CreateImportSession(ctx context.Context, mailboxID string) (ImportSession, error) {
	var s ImportSession
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/admin/exchange/mailboxes/" + url.PathEscape(mailboxID) + "/createImportSession"}, &s)
	return s, err
}

// ImportItem uploads one exported item into a folder: Mode "create", or "update" with the item's
// id and current changeKey. It returns the item's id and new changeKey.
func (c *Client) ImportItem(ctx context.Context, s ImportSession, folderID, mode, data, itemID, changeKey string) (string, string, error) {
	body := map[string]string{"FolderId": folderID, "Mode": mode, "Data": data}
	if mode == "update" {
		body["ItemId"], body["ChangeKey"] = itemID, changeKey
	}
	var out struct {
		ItemID    string `json:"itemId"`
		ChangeKey string `json:"changeKey"`
	}
	// The import URL is pre-authorized: sending the token would be refused.
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: s.ImportURL, Body: body, NoAuth: true}, &out)
	return out.ItemID, out.ChangeKey, err
}

// ArchiveMailboxID returns the id of a user's main archive mailbox (inPlaceArchiveMailboxId, which
// Graph documents in beta only), or an error saying the user has none.
func (c *Client) ArchiveMailboxID(ctx context.Context, user string) (string, error) {
	var s struct {
		Archive string `json:"inPlaceArchiveMailboxId"`
	}
	if _, err := c.Beta().Do(ctx, Request{Method: http.MethodGet, Path: "/users/" + url.PathEscape(user) + "/settings/exchange"}, &s); err != nil {
		return "", err
	}
	if s.Archive == "" {
		return "", ErrNoArchive
	}
	return s.Archive, nil
}

// ErrNoArchive says a user has no archive mailbox.
var ErrNoArchive = errors.New("the user has no archive mailbox")

// RenameMailboxFolder changes a folder's display name.
func (c *Client) RenameMailboxFolder(ctx context.Context, mailboxID, folderID, name string) (MailboxFolder, error) {
	var f MailboxFolder
	_, err := c.Do(ctx, Request{Method: http.MethodPatch, Path: "/admin/exchange/mailboxes/" + url.PathEscape(mailboxID) + "/folders/" + url.PathEscape(folderID),
		Body: map[string]string{"displayName": name}}, &f)
	return f, err
}

// DeleteMailboxFolder deletes a folder and what it holds.
func (c *Client) DeleteMailboxFolder(ctx context.Context, mailboxID, folderID string) error {
	_, err := c.Do(ctx, Request{Method: http.MethodDelete, Path: "/admin/exchange/mailboxes/" + url.PathEscape(mailboxID) + "/folders/" + url.PathEscape(folderID)}, nil)
	return err
}

// CreateMailboxFolder creates a folder of a class (IPF.Note, IPF.Appointment…) at the top of a
// mailbox (parent "") or under a folder.
func (c *Client) CreateMailboxFolder(ctx context.Context, mailboxID, parent, name, class string) (MailboxFolder, error) {
	path := "/admin/exchange/mailboxes/" + url.PathEscape(mailboxID) + "/folders"
	if parent != "" {
		path += "/" + url.PathEscape(parent) + "/childFolders"
	}
	body := map[string]string{"displayName": name}
	if class != "" {
		body["type"] = class
	}
	var f MailboxFolder
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: path, Body: body}, &f)
	return f, err
}
