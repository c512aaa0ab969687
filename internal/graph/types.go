package graph

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// User is the part of microsoft.graph.user Ferry reads.
type User struct {
	ID                    string   `json:"id"`
	DisplayName           string   `json:"displayName,omitempty"`
	UserPrincipalName     string   `json:"userPrincipalName,omitempty"`
	Mail                  string   `json:"mail,omitempty"`
	ProxyAddresses        []string `json:"proxyAddresses,omitempty"`
	OnPremisesImmutableID string   `json:"onPremisesImmutableId,omitempty"`
	EmployeeID            string   `json:"employeeId,omitempty"`
	AccountEnabled        *bool    `json:"accountEnabled,omitempty"`
	UsageLocation         string   `json:"usageLocation,omitempty"`
}

// UserSelect is the $select Ferry uses for users.
const UserSelect = "id,displayName,userPrincipalName,mail,proxyAddresses,onPremisesImmutableId,employeeId,accountEnabled,usageLocation"

// Users lists the tenant's users.
func (c *Client) Users(ctx context.Context) (func(yield func(User, error) bool), func() string) {
	return All[User](ctx, c, "/users"+Query("$select", UserSelect, "$top", "999"))
}

// User gets one user by id or user principal name.
func (c *Client) User(ctx context.Context, id string) (User, error) {
	var u User
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/users/" + url.PathEscape(id) + Query("$select", UserSelect)}, &u)
	return u, err
}

// NewUser is a user to create at the target.
type NewUser struct {
	AccountEnabled        bool             `json:"accountEnabled"`
	DisplayName           string           `json:"displayName"`
	MailNickname          string           `json:"mailNickname"`
	UserPrincipalName     string           `json:"userPrincipalName"`
	UsageLocation         string           `json:"usageLocation,omitempty"`
	EmployeeID            string           `json:"employeeId,omitempty"`
	OnPremisesImmutableID string           `json:"onPremisesImmutableId,omitempty"`
	PasswordProfile       *PasswordProfile `json:"passwordProfile"`
}

// PasswordProfile is a new user's first password.
type PasswordProfile struct {
	Password                      string `json:"password"`
	ForceChangePasswordNextSignIn bool   `json:"forceChangePasswordNextSignIn"`
}

// CreateUser creates a user.
func (c *Client) CreateUser(ctx context.Context, u NewUser) (User, error) {
	var out User
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/users", Body: u}, &out)
	return out, err
}

// AssignLicense adds licences (SKU ids) to a user and removes others, in one call.
func (c *Client) AssignLicense(ctx context.Context, user string, add, remove []string) error {
	adds := []map[string]any{}
	for _, id := range add {
		adds = append(adds, map[string]any{"skuId": id, "disabledPlans": []string{}})
	}
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/users/" + url.PathEscape(user) + "/assignLicense",
		Body: map[string]any{"addLicenses": adds, "removeLicenses": nonNilStrings(remove)}}, nil)
	return err
}

// SubscribedSku is a licence the tenant owns.
type SubscribedSku struct {
	ID            string `json:"id"`
	SkuID         string `json:"skuId"`
	SkuPartNumber string `json:"skuPartNumber"`
	ConsumedUnits int    `json:"consumedUnits"`
	PrepaidUnits  struct {
		Enabled   int `json:"enabled"`
		Suspended int `json:"suspended"`
		Warning   int `json:"warning"`
	} `json:"prepaidUnits"`
	ServicePlans []struct {
		ServicePlanID   string `json:"servicePlanId"`
		ServicePlanName string `json:"servicePlanName"`
	} `json:"servicePlans"`
}

// SubscribedSkus lists the tenant's licences.
func (c *Client) SubscribedSkus(ctx context.Context) ([]SubscribedSku, error) {
	var out []SubscribedSku
	seq, _ := All[SubscribedSku](ctx, c, "/subscribedSkus")
	for s, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// MailFolder is microsoft.graph.mailFolder.
type MailFolder struct {
	ID               string `json:"id"`
	DisplayName      string `json:"displayName"`
	ParentFolderID   string `json:"parentFolderId,omitempty"`
	ChildFolderCount int    `json:"childFolderCount"`
	TotalItemCount   int    `json:"totalItemCount"`
	UnreadItemCount  int    `json:"unreadItemCount"`
	IsHidden         bool   `json:"isHidden,omitempty"`
	Removed          *struct {
		Reason string `json:"reason"`
	} `json:"@removed,omitempty"`
}

// MailFolders lists a mailbox's top-level folders (parent "") or a folder's children.
func (c *Client) MailFolders(ctx context.Context, user, parent string) (func(yield func(MailFolder, error) bool), func() string) {
	path := "/users/" + url.PathEscape(user) + "/mailFolders"
	if parent != "" {
		path += "/" + url.PathEscape(parent) + "/childFolders"
	}
	return All[MailFolder](ctx, c, path+Query("includeHiddenFolders", "true", "$top", "250"))
}

// MailFoldersDelta starts (link "") or continues a delta query over a user's mail folders, every
// level; deleted folders come with Removed set.
func (c *Client) MailFoldersDelta(ctx context.Context, user, link string) (func(yield func(MailFolder, error) bool), func() string) {
	if link == "" {
		link = "/users/" + url.PathEscape(user) + "/mailFolders/delta"
	}
	return All[MailFolder](ctx, c, link)
}

// CreateMailFolder creates a folder under parent ("" for the top level).
func (c *Client) CreateMailFolder(ctx context.Context, user, parent, name string) (MailFolder, error) {
	path := "/users/" + url.PathEscape(user) + "/mailFolders"
	if parent != "" {
		path += "/" + url.PathEscape(parent) + "/childFolders"
	}
	var f MailFolder
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: path, Body: map[string]string{"displayName": name}}, &f)
	return f, err
}

// Recipient is an email address with a name.
type Recipient struct {
	EmailAddress struct {
		Name    string `json:"name,omitempty"`
		Address string `json:"address"`
	} `json:"emailAddress"`
}

// Message is the part of microsoft.graph.message Ferry reads.
type Message struct {
	ID                            string             `json:"id"`
	ChangeKey                     string             `json:"changeKey,omitempty"`
	Subject                       string             `json:"subject,omitempty"`
	InternetMessageID             string             `json:"internetMessageId,omitempty"`
	ReceivedDateTime              *time.Time         `json:"receivedDateTime,omitempty"`
	SentDateTime                  *time.Time         `json:"sentDateTime,omitempty"`
	IsRead                        bool               `json:"isRead"`
	IsDraft                       bool               `json:"isDraft"`
	Categories                    []string           `json:"categories,omitempty"`
	ParentFolderID                string             `json:"parentFolderId,omitempty"`
	From                          *Recipient         `json:"from,omitempty"`
	HasAttachments                bool               `json:"hasAttachments"`
	Flag                          *Flag              `json:"flag,omitempty"`
	SingleValueExtendedProperties []ExtendedProperty `json:"singleValueExtendedProperties,omitempty"`
	Removed                       *struct {
		Reason string `json:"reason"`
	} `json:"@removed,omitempty"`
}

// Flag is a message's follow-up flag.
type Flag struct {
	FlagStatus string `json:"flagStatus"` // notFlagged, flagged, complete
}

// ExtendedProperty is a MAPI property set on an item, e.g. PidTagMessageFlags (0x0E07).
type ExtendedProperty struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// Properties Ferry sets on messages it creates.
const (
	// PidTagMessageFlags: 1 = read; without it (or with 8 = unsent) a message created from MIME is a draft.
	PropMessageFlags = "Integer 0x0E07"
	// PidTagMessageDeliveryTime and PidTagClientSubmitTime keep the original dates.
	PropDeliveryTime = "SystemTime 0x0E06"
	PropSubmitTime   = "SystemTime 0x0039"
	// PidTagLastVerbExecuted: 102 replied, 103 replied to all, 104 forwarded; what Outlook shows
	// as the message's icon and IMAP keeps as \Answered and $Forwarded.
	PropLastVerb = "Integer 0x1081"
)

// Last verbs of PropLastVerb.
const (
	VerbReply    = "102"
	VerbReplyAll = "103"
	VerbForward  = "104"
)

// MessagesDelta starts (link "") or continues a delta query on a folder's messages.
func (c *Client) MessagesDelta(ctx context.Context, user, folder, link string) (func(yield func(Message, error) bool), func() string) {
	if link == "" {
		link = "/users/" + url.PathEscape(user) + "/mailFolders/" + url.PathEscape(folder) + "/messages/delta" +
			Query("$select", "id,changeKey,internetMessageId,receivedDateTime,isRead,isDraft,categories,flag,parentFolderId",
				"$expand", "singleValueExtendedProperties($filter=id eq '"+PropLastVerb+"')")
	}
	return All[Message](ctx, c, link)
}

// MessageMIME streams a message's MIME ($value).
func (c *Client) MessageMIME(ctx context.Context, user, id string) (io.ReadCloser, error) {
	return c.Stream(ctx, Request{Method: http.MethodGet, Path: "/users/" + url.PathEscape(user) + "/messages/" + url.PathEscape(id) + "/$value"})
}

// CreateMessageFromMIME creates a message in a folder from MIME (base64, as Graph requires).
// The result is a draft unless the caller's later PATCH or properties say otherwise; see
// PropMessageFlags.
func (c *Client) CreateMessageFromMIME(ctx context.Context, user, folder string, mime []byte) (Message, error) {
	var m Message
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/users/" + url.PathEscape(user) + "/mailFolders/" + url.PathEscape(folder) + "/messages",
		Body: base64.StdEncoding.EncodeToString(mime), Content: "text/plain"}, &m)
	return m, err
}

// UpdateMessage PATCHes read state, flag and categories.
func (c *Client) UpdateMessage(ctx context.Context, user, id string, isRead bool, flag string, categories []string) error {
	body := map[string]any{"isRead": isRead, "categories": nonNilStrings(categories)}
	if flag != "" {
		body["flag"] = Flag{FlagStatus: flag}
	}
	_, err := c.Do(ctx, Request{Method: http.MethodPatch, Path: "/users/" + url.PathEscape(user) + "/messages/" + url.PathEscape(id), Body: body}, nil)
	return err
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// MailboxSettings is microsoft.graph.exchangeSettings: the id the import/export API uses for the
// user's mailbox.
type MailboxSettings struct {
	PrimaryMailboxID string `json:"primaryMailboxId"`
}

// ExchangeSettings reads users/{id}/settings/exchange.
func (c *Client) ExchangeSettings(ctx context.Context, user string) (MailboxSettings, error) {
	var s MailboxSettings
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/users/" + url.PathEscape(user) + "/settings/exchange"}, &s)
	return s, err
}

func (m Message) String() string { return fmt.Sprintf("message %s (%s)", m.ID, m.Subject) }

// SetMessageProperty sets one extended property on an existing message and returns the message
// as it now is (with its new changeKey).
func (c *Client) SetMessageProperty(ctx context.Context, user, id, prop, value string) (Message, error) {
	body := map[string]any{"singleValueExtendedProperties": []ExtendedProperty{{ID: prop, Value: value}}}
	var m Message
	_, err := c.Do(ctx, Request{Method: http.MethodPatch, Path: "/users/" + url.PathEscape(user) + "/messages/" + url.PathEscape(id), Body: body}, &m)
	return m, err
}

// MessagesWithProperty lists the messages of a folder whose extended property prop equals value.
func (c *Client) MessagesWithProperty(ctx context.Context, user, folder, prop, value string) ([]Message, error) {
	q := func(s string) string { return strings.ReplaceAll(s, "'", "''") }
	path := "/users/" + url.PathEscape(user) + "/mailFolders/" + url.PathEscape(folder) + "/messages" +
		Query("$filter", "singleValueExtendedProperties/any(ep: ep/id eq '"+q(prop)+"' and ep/value eq '"+q(value)+"')", "$select", "id,changeKey")
	var out []Message
	items, _ := All[Message](ctx, c, path)
	for m, err := range items {
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Event is the part of microsoft.graph.event a migration checks: when, who, how it repeats.
type Event struct {
	ID       string `json:"id"`
	Subject  string `json:"subject"`
	ICalUID  string `json:"iCalUId,omitempty"`
	IsAllDay bool   `json:"isAllDay"`
	Start    struct {
		DateTime string `json:"dateTime"`
		TimeZone string `json:"timeZone"`
	} `json:"start"`
	End struct {
		DateTime string `json:"dateTime"`
		TimeZone string `json:"timeZone"`
	} `json:"end"`
	Attendees []struct {
		Type         string `json:"type"`
		EmailAddress struct {
			Name    string `json:"name,omitempty"`
			Address string `json:"address"`
		} `json:"emailAddress"`
	} `json:"attendees,omitempty"`
	Recurrence *struct {
		Pattern struct {
			Type       string   `json:"type"`
			Interval   int      `json:"interval"`
			DaysOfWeek []string `json:"daysOfWeek,omitempty"`
		} `json:"pattern"`
		Range struct {
			Type                string `json:"type"`
			StartDate           string `json:"startDate"`
			EndDate             string `json:"endDate,omitempty"`
			NumberOfOccurrences int    `json:"numberOfOccurrences,omitempty"`
		} `json:"range"`
	} `json:"recurrence,omitempty"`
}

// Events lists a user's events.
func (c *Client) Events(ctx context.Context, user string) (func(yield func(Event, error) bool), func() string) {
	return All[Event](ctx, c, "/users/"+url.PathEscape(user)+"/events")
}
