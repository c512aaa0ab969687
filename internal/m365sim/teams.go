package m365sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Teams in migration mode, by Microsoft's rules for importing third-party messages: a team or
// channel created with teamCreationMode / channelCreationMode "migration" (and a createdDateTime
// in the past) takes messages with their original createdDateTime and sender, posted by the app
// (Teamwork.Migrate.All); completeMigration on each channel, then on the team, ends it, and no
// more messages are imported after that.

// Teams permissions, as Microsoft names them.
const (
	PermTeamworkMigrate = "Teamwork.Migrate.All" // create in migration mode, import, complete
	PermTeamRead        = "Team.ReadBasic.All"
	PermChannelMsgRead  = "ChannelMessage.Read.All"
)

type team struct {
	ID          string     `json:"id"`
	DisplayName string     `json:"displayName"`
	Description string     `json:"description,omitempty"`
	Created     time.Time  `json:"created"`
	Migrating   bool       `json:"migrating"`
	Channels    []*channel `json:"channels"`
}

type channel struct {
	ID          string         `json:"id"`
	DisplayName string         `json:"displayName"`
	Description string         `json:"description,omitempty"`
	Created     time.Time      `json:"created"`
	Migrating   bool           `json:"migrating"`
	Messages    []*chatMessage `json:"messages"`
}

type chatMessage struct {
	ID          string          `json:"id"`
	Created     time.Time       `json:"created"`
	From        json.RawMessage `json:"from"`
	ContentType string          `json:"contentType"`
	Content     string          `json:"content"`
	ReplyTo     string          `json:"replyTo,omitempty"`
}

func (s *Server) teamHandlers() {
	s.mux.Handle("POST /v1.0/teams", s.graph(PermTeamworkMigrate, s.createTeam))
	s.mux.Handle("GET /v1.0/teams", s.graph(PermTeamRead, s.listTeams))
	s.mux.Handle("GET /v1.0/teams/{tid}", s.graph(PermTeamRead, s.getTeam))
	s.mux.Handle("POST /v1.0/teams/{tid}/completeMigration", s.graph(PermTeamworkMigrate, s.completeTeam))
	s.mux.Handle("GET /v1.0/teams/{tid}/channels", s.graph(PermTeamRead, s.listChannels))
	s.mux.Handle("POST /v1.0/teams/{tid}/channels", s.graph(PermTeamworkMigrate, s.createChannel))
	s.mux.Handle("POST /v1.0/teams/{tid}/channels/{cid}/completeMigration", s.graph(PermTeamworkMigrate, s.completeChannel))
	s.mux.Handle("GET /v1.0/teams/{tid}/channels/{cid}/messages", s.graph(PermChannelMsgRead, s.listChatMessages))
	s.mux.Handle("POST /v1.0/teams/{tid}/channels/{cid}/messages", s.graph(PermTeamworkMigrate, s.importChatMessage))
}

// pastTime reads a createdDateTime that must lie in the past.
func (s *Server) pastTime(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, fmt.Errorf("createdDateTime %q is not an ISO 8601 time", v)
	}
	if t.After(s.now()) {
		return t, fmt.Errorf("createdDateTime %s is in the future", v)
	}
	return t, nil
}

func (t *team) view() map[string]any {
	return map[string]any{"id": t.ID, "displayName": t.DisplayName, "description": t.Description, "createdDateTime": t.Created.UTC().Format(time.RFC3339), "isArchived": false}
}

func (ch *channel) view() map[string]any {
	return map[string]any{"id": ch.ID, "displayName": ch.DisplayName, "description": ch.Description, "membershipType": "standard", "createdDateTime": ch.Created.UTC().Format(time.RFC3339)}
}

func (m *chatMessage) view() map[string]any {
	v := map[string]any{"id": m.ID, "createdDateTime": m.Created.UTC().Format(time.RFC3339Nano), "messageType": "message",
		"from": m.From, "body": map[string]string{"contentType": m.ContentType, "content": m.Content}}
	if m.ReplyTo != "" {
		v["replyToId"] = m.ReplyTo
	}
	return v
}

func (s *Server) createTeam(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Mode        string `json:"@microsoft.graph.teamCreationMode"`
		Template    string `json:"template@odata.bind"`
		DisplayName string `json:"displayName"`
		Description string `json:"description"`
		Created     string `json:"createdDateTime"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || strings.TrimSpace(req.DisplayName) == "" || req.Template == "" {
		graphError(w, http.StatusBadRequest, "BadRequest", "A team needs a displayName and a template@odata.bind.")
		return
	}
	if req.Mode != "migration" {
		graphError(w, http.StatusBadRequest, "BadRequest", "The emulator creates teams for migrations only: set @microsoft.graph.teamCreationMode to migration.")
		return
	}
	created, err := s.pastTime(req.Created)
	if err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	s.mu.Lock()
	n := len(c.tenant.Teams)
	t := &team{ID: stableID(c.tenant.ID, "team", req.DisplayName, strconv.Itoa(n)), DisplayName: req.DisplayName, Description: req.Description, Created: created, Migrating: true}
	// Every team has General, in migration mode with the team.
	t.Channels = []*channel{{ID: "19:" + stableID(t.ID, "general")[:32] + "@thread.tacv2", DisplayName: "General", Created: created, Migrating: true}}
	c.tenant.Teams = append(c.tenant.Teams, t)
	s.mu.Unlock()
	// As the service does, the team is accepted and its location given.
	w.Header().Set("Location", "/teams('"+t.ID+"')/operations('"+stableID(t.ID, "op")+"')")
	w.Header().Set("Content-Location", "/teams('"+t.ID+"')")
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) withTeam(w http.ResponseWriter, r *http.Request, c caller, fn func(t *team)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(c.tenant.Teams, func(t *team) bool { return t.ID == r.PathValue("tid") })
	if i < 0 {
		graphError(w, http.StatusNotFound, "NotFound", "No team found with Group Id "+r.PathValue("tid"))
		return
	}
	fn(c.tenant.Teams[i])
}

func (s *Server) withChannel(w http.ResponseWriter, r *http.Request, c caller, fn func(t *team, ch *channel)) {
	s.withTeam(w, r, c, func(t *team) {
		i := slices.IndexFunc(t.Channels, func(ch *channel) bool { return ch.ID == r.PathValue("cid") })
		if i < 0 {
			graphError(w, http.StatusNotFound, "NotFound", "Channel "+r.PathValue("cid")+" not found.")
			return
		}
		fn(t, t.Channels[i])
	})
}

func (s *Server) listTeams(w http.ResponseWriter, r *http.Request, c caller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, t := range c.tenant.Teams {
		out = append(out, t.view())
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

// AddTeam stores a finished team with channels (General first) and messages, as a seed does.
func (s *Server) AddTeam(tenantID, name string, created time.Time, channels map[string][]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenants[strings.ToLower(tenantID)]
	tm := &team{ID: stableID(t.ID, "team", name), DisplayName: name, Created: created}
	names := []string{"General"}
	for n := range channels {
		if n != "General" {
			names = append(names, n)
		}
	}
	slices.Sort(names[1:])
	for _, n := range names {
		ch := &channel{ID: "19:" + stableID(tm.ID, "channel", n)[:32] + "@thread.tacv2", DisplayName: n, Created: created}
		for i, text := range channels[n] {
			at := created.Add(time.Duration(i+1) * time.Hour)
			from, _ := json.Marshal(map[string]any{"user": map[string]string{"@odata.type": "#microsoft.graph.teamworkUserIdentity", "id": t.Users[i%len(t.Users)].ID, "displayName": t.Users[i%len(t.Users)].DisplayName, "userIdentityType": "aadUser"}})
			ch.Messages = append(ch.Messages, &chatMessage{ID: strconv.FormatInt(at.UnixMilli(), 10), Created: at, From: from, ContentType: "html", Content: text})
		}
		tm.Channels = append(tm.Channels, ch)
	}
	t.Teams = append(t.Teams, tm)
	s.dirty = true
	return tm.ID
}

func (s *Server) getTeam(w http.ResponseWriter, r *http.Request, c caller) {
	s.withTeam(w, r, c, func(t *team) { writeJSON(w, http.StatusOK, t.view()) })
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request, c caller) {
	s.withTeam(w, r, c, func(t *team) {
		out := []map[string]any{}
		for _, ch := range t.Channels {
			out = append(out, ch.view())
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out})
	})
}

func (s *Server) createChannel(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Mode        string `json:"@microsoft.graph.channelCreationMode"`
		DisplayName string `json:"displayName"`
		Description string `json:"description"`
		Membership  string `json:"membershipType"`
		Created     string `json:"createdDateTime"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || strings.TrimSpace(req.DisplayName) == "" {
		graphError(w, http.StatusBadRequest, "BadRequest", "A channel needs a displayName.")
		return
	}
	if req.Mode != "migration" {
		graphError(w, http.StatusBadRequest, "BadRequest", "Set @microsoft.graph.channelCreationMode to migration to import messages into the channel.")
		return
	}
	created, err := s.pastTime(req.Created)
	if err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	s.withTeam(w, r, c, func(t *team) {
		if !t.Migrating {
			graphError(w, http.StatusBadRequest, "BadRequest", "The team's migration is complete: no more channels in migration mode.")
			return
		}
		if slices.ContainsFunc(t.Channels, func(ch *channel) bool { return strings.EqualFold(ch.DisplayName, req.DisplayName) }) {
			graphError(w, http.StatusBadRequest, "NameAlreadyExists", "Channel name already existed, please use other name.")
			return
		}
		ch := &channel{ID: "19:" + stableID(t.ID, "channel", req.DisplayName)[:32] + "@thread.tacv2", DisplayName: req.DisplayName, Description: req.Description, Created: created, Migrating: true}
		t.Channels = append(t.Channels, ch)
		writeJSON(w, http.StatusCreated, ch.view())
	})
}

// importChatMessage takes a message with its original time and sender, while the channel is in
// migration mode; a reply names its thread with replyToId, which must exist.
func (s *Server) importChatMessage(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Created string          `json:"createdDateTime"`
		From    json.RawMessage `json:"from"`
		Body    struct {
			ContentType string `json:"contentType"`
			Content     string `json:"content"`
		} `json:"body"`
		ReplyTo string `json:"replyToId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.From) == 0 || req.Body.Content == "" {
		graphError(w, http.StatusBadRequest, "BadRequest", "An imported message needs from, a body and a createdDateTime.")
		return
	}
	created, err := s.pastTime(req.Created)
	if err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	s.withChannel(w, r, c, func(t *team, ch *channel) {
		switch {
		case !ch.Migrating:
			graphError(w, http.StatusForbidden, "Forbidden", "The channel is not in migration mode: messages can no longer be imported.")
			return
		case created.Before(ch.Created):
			graphError(w, http.StatusBadRequest, "BadRequest", "The message's createdDateTime is before the channel's.")
			return
		case req.ReplyTo != "" && !slices.ContainsFunc(ch.Messages, func(m *chatMessage) bool { return m.ID == req.ReplyTo }):
			graphError(w, http.StatusBadRequest, "BadRequest", "replyToId "+req.ReplyTo+" is not a message of the channel.")
			return
		}
		m := &chatMessage{ID: strconv.FormatInt(created.UnixMilli(), 10) + strconv.Itoa(len(ch.Messages)), Created: created, From: req.From,
			ContentType: or(req.Body.ContentType, "text"), Content: req.Body.Content, ReplyTo: req.ReplyTo}
		ch.Messages = append(ch.Messages, m)
		writeJSON(w, http.StatusCreated, m.view())
	})
}

func (s *Server) listChatMessages(w http.ResponseWriter, r *http.Request, c caller) {
	s.withChannel(w, r, c, func(_ *team, ch *channel) {
		out := []map[string]any{}
		for _, m := range ch.Messages {
			out = append(out, m.view())
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out})
	})
}

func (s *Server) completeChannel(w http.ResponseWriter, r *http.Request, c caller) {
	s.withChannel(w, r, c, func(_ *team, ch *channel) {
		if !ch.Migrating {
			graphError(w, http.StatusBadRequest, "BadRequest", "The channel is not in migration mode.")
			return
		}
		ch.Migrating = false
		w.WriteHeader(http.StatusNoContent)
	})
}

// completeTeam ends the team's migration once every channel's has ended.
func (s *Server) completeTeam(w http.ResponseWriter, r *http.Request, c caller) {
	s.withTeam(w, r, c, func(t *team) {
		for _, ch := range t.Channels {
			if ch.Migrating {
				graphError(w, http.StatusBadRequest, "BadRequest", "Complete the migration of channel "+ch.DisplayName+" first.")
				return
			}
		}
		t.Migrating = false
		w.WriteHeader(http.StatusNoContent)
	})
}
