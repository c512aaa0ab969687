package graph

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"
)

// Teams in migration mode: a team and its channels created with their original dates, messages
// imported with their original senders and times, then the migration completed.

// Team is microsoft.graph.team.
type Team struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Description string `json:"description,omitempty"`
}

// Channel is microsoft.graph.channel.
type Channel struct {
	ID              string     `json:"id"`
	DisplayName     string     `json:"displayName"`
	Description     string     `json:"description,omitempty"`
	CreatedDateTime *time.Time `json:"createdDateTime,omitempty"`
}

// ChatMessage is the part of microsoft.graph.chatMessage a migration carries.
type ChatMessage struct {
	ID              string     `json:"id,omitempty"`
	CreatedDateTime *time.Time `json:"createdDateTime,omitempty"`
	ReplyToID       string     `json:"replyToId,omitempty"`
	From            *struct {
		User *struct {
			ODataType        string `json:"@odata.type,omitempty"` // #microsoft.graph.teamworkUserIdentity
			ID               string `json:"id"`
			DisplayName      string `json:"displayName,omitempty"`
			UserIdentityType string `json:"userIdentityType,omitempty"`
		} `json:"user,omitempty"`
	} `json:"from,omitempty"`
	Body ItemBody `json:"body"`
}

// Teams lists the tenant's teams.
func (c *Client) Teams(ctx context.Context) (func(yield func(Team, error) bool), func() string) {
	return All[Team](ctx, c, "/teams")
}

var teamLocation = regexp.MustCompile(`teams\('([^']+)'\)`)

// CreateMigrationTeam creates a team in migration mode with its original creation time and
// returns its id; the service accepts it (202) and names it in the Location headers.
func (c *Client) CreateMigrationTeam(ctx context.Context, name, description string, created time.Time) (string, error) {
	h, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/teams", Body: map[string]any{
		"@microsoft.graph.teamCreationMode": "migration", "template@odata.bind": c.url("/teamsTemplates('standard')"),
		"displayName": name, "description": description, "createdDateTime": created.UTC().Format(time.RFC3339)}}, nil)
	if err != nil {
		return "", err
	}
	for _, k := range []string{"Content-Location", "Location"} {
		if m := teamLocation.FindStringSubmatch(h.Get(k)); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("graph: the created team's id is in neither Location header")
}

// Channels lists a team's channels.
func (c *Client) Channels(ctx context.Context, teamID string) (func(yield func(Channel, error) bool), func() string) {
	return All[Channel](ctx, c, "/teams/"+url.PathEscape(teamID)+"/channels")
}

// CreateMigrationChannel creates a channel in migration mode with its original creation time.
func (c *Client) CreateMigrationChannel(ctx context.Context, teamID, name, description string, created time.Time) (Channel, error) {
	var ch Channel
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/teams/" + url.PathEscape(teamID) + "/channels", Body: map[string]any{
		"@microsoft.graph.channelCreationMode": "migration", "displayName": name, "description": description, "membershipType": "standard",
		"createdDateTime": created.UTC().Format(time.RFC3339)}}, &ch)
	return ch, err
}

// ChannelMessages lists a channel's messages.
func (c *Client) ChannelMessages(ctx context.Context, teamID, channelID string) (func(yield func(ChatMessage, error) bool), func() string) {
	return All[ChatMessage](ctx, c, "/teams/"+url.PathEscape(teamID)+"/channels/"+url.PathEscape(channelID)+"/messages")
}

// ImportMessage posts a message into a channel in migration mode with its original sender and time.
func (c *Client) ImportMessage(ctx context.Context, teamID, channelID string, m ChatMessage) (ChatMessage, error) {
	m.ID = ""
	var out ChatMessage
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/teams/" + url.PathEscape(teamID) + "/channels/" + url.PathEscape(channelID) + "/messages", Body: m}, &out)
	return out, err
}

// CompleteChannelMigration ends a channel's migration mode.
func (c *Client) CompleteChannelMigration(ctx context.Context, teamID, channelID string) error {
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/teams/" + url.PathEscape(teamID) + "/channels/" + url.PathEscape(channelID) + "/completeMigration"}, nil)
	return err
}

// CompleteTeamMigration ends a team's migration mode, once every channel's has ended.
func (c *Client) CompleteTeamMigration(ctx context.Context, teamID string) error {
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/teams/" + url.PathEscape(teamID) + "/completeMigration"}, nil)
	return err
}
