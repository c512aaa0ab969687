package graph

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// ItemAPI is one of Outlook's item APIs (calendars and events, contact folders and contacts, To Do
// lists and tasks): where a user's folders and a folder's items are listed and created, and where
// one item is read and changed. {u}, {f} and {i} stand for the user, folder and item.
type ItemAPI struct {
	Name                 string // what the items are, in messages
	Folders, Items, Item string
	FolderName           string   // the folder's name property: name (calendars) or displayName
	Writable             []string // the item properties a client may set
}

// The item APIs a mailbox migration uses where the import/export API is not offered.
var (
	CalendarAPI = ItemAPI{Name: "event", Folders: "/users/{u}/calendars", Items: "/users/{u}/calendars/{f}/events", Item: "/users/{u}/events/{i}",
		FolderName: "name", Writable: []string{"subject", "body", "start", "end", "isAllDay", "location", "attendees", "recurrence",
			"categories", "showAs", "importance", "sensitivity", "isReminderOn", "reminderMinutesBeforeStart"}}
	ContactAPI = ItemAPI{Name: "contact", Folders: "/users/{u}/contactFolders", Items: "/users/{u}/contactFolders/{f}/contacts", Item: "/users/{u}/contacts/{i}",
		FolderName: "displayName", Writable: []string{"displayName", "givenName", "middleName", "surname", "nickName", "title", "emailAddresses",
			"businessPhones", "homePhones", "mobilePhone", "companyName", "department", "jobTitle", "officeLocation", "birthday", "personalNotes",
			"categories", "businessAddress", "homeAddress", "otherAddress", "imAddresses", "spouseName", "businessHomePage", "fileAs"}}
	TaskAPI = ItemAPI{Name: "task", Folders: "/users/{u}/todo/lists", Items: "/users/{u}/todo/lists/{f}/tasks", Item: "/users/{u}/todo/lists/{f}/tasks/{i}",
		FolderName: "displayName", Writable: []string{"title", "body", "importance", "status", "dueDateTime", "startDateTime", "completedDateTime",
			"reminderDateTime", "isReminderOn", "categories", "recurrence"}}
)

func (a ItemAPI) path(tmpl, user, folder, item string) string {
	return strings.NewReplacer("{u}", url.PathEscape(user), "{f}", url.PathEscape(folder), "{i}", url.PathEscape(item)).Replace(tmpl)
}

// ItemFolder is a calendar, a contact folder or a To Do list.
type ItemFolder struct {
	ID      string
	Name    string
	Default bool // the user's default calendar, contact folder or task list
}

// ItemFolders lists a user's folders of an item API.
func (c *Client) ItemFolders(ctx context.Context, a ItemAPI, user string) ([]ItemFolder, error) {
	items, _ := All[map[string]any](ctx, c, a.path(a.Folders, user, "", ""))
	var out []ItemFolder
	for f, err := range items {
		if err != nil {
			return nil, err
		}
		out = append(out, itemFolder(a, f))
	}
	return out, nil
}

func itemFolder(a ItemAPI, f map[string]any) ItemFolder {
	s := func(k string) string { v, _ := f[k].(string); return v }
	def, _ := f["isDefaultCalendar"].(bool)
	return ItemFolder{ID: s("id"), Name: s(a.FolderName), Default: def || s("wellknownListName") == "defaultList"}
}

// CreateItemFolder creates a calendar, contact folder or To Do list.
func (c *Client) CreateItemFolder(ctx context.Context, a ItemAPI, user, name string) (ItemFolder, error) {
	var f map[string]any
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: a.path(a.Folders, user, "", ""), Body: map[string]string{a.FolderName: name}}, &f)
	return itemFolder(a, f), err
}

// Item is an event, contact or task as Graph answers it.
type Item map[string]json.RawMessage

// String reads one of the item's string properties.
func (it Item) String(k string) string {
	var s string
	json.Unmarshal(it[k], &s)
	return s
}

// Items lists a folder's items; query adds $filter, $expand or $select.
func (c *Client) Items(ctx context.Context, a ItemAPI, user, folder, query string) (func(yield func(Item, error) bool), func() string) {
	return All[Item](ctx, c, a.path(a.Items, user, folder, "")+query)
}

// GetItem reads one item.
func (c *Client) GetItem(ctx context.Context, a ItemAPI, user, folder, id string) (Item, error) {
	var it Item
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: a.path(a.Item, user, folder, id)}, &it)
	return it, err
}

// CreateItem creates an item in a folder from its JSON.
func (c *Client) CreateItem(ctx context.Context, a ItemAPI, user, folder string, body any) (Item, error) {
	var it Item
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: a.path(a.Items, user, folder, ""), Body: body}, &it)
	return it, err
}

// UpdateItem PATCHes an item.
func (c *Client) UpdateItem(ctx context.Context, a ItemAPI, user, folder, id string, body any) (Item, error) {
	var it Item
	_, err := c.Do(ctx, Request{Method: http.MethodPatch, Path: a.path(a.Item, user, folder, id), Body: body}, &it)
	return it, err
}

// WritableOf keeps the properties of an item a client may set: what travels from one mailbox to
// another.
func (a ItemAPI) WritableOf(it Item) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, k := range a.Writable {
		if v, ok := it[k]; ok && string(v) != "null" {
			out[k] = v
		}
	}
	return out
}
