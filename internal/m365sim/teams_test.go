package m365sim_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/m365sim"
)

// TestTeamsMigrationMode: a seeded team is read with its channels and messages, then moved into a
// team made in migration mode, which takes the messages with their times and senders until its
// channels and then the team complete the migration.
func TestTeamsMigrationMode(t *testing.T) {
	r := newRig(t)
	const tenant = "11111111-1111-1111-1111-111111111111"
	r.sim.AddApp(tenant, "app-teams", "t", nil, m365sim.PermTeamworkMigrate, m365sim.PermTeamRead, m365sim.PermChannelMsgRead)
	c := r.client(t, graph.AppCredential{ClientID: "app-teams", ClientSecret: "t"})
	ctx := context.Background()
	born := time.Date(2023, 4, 5, 6, 0, 0, 0, time.UTC)
	srcID := r.sim.AddTeam(tenant, "Sales", born, map[string][]string{"General": {"<p>hi</p>"}, "Deals": {"<p>won</p>", "<p>lost</p>"}})

	var src []string // "channel: sender at time: text", the source as read
	chans, _ := c.Channels(ctx, srcID)
	var srcChannels []graph.Channel
	for ch, err := range chans {
		if err != nil {
			t.Fatal(err)
		}
		srcChannels = append(srcChannels, ch)
	}
	if len(srcChannels) != 2 || srcChannels[0].DisplayName != "General" {
		t.Fatalf("channels: %+v", srcChannels)
	}
	id, err := c.CreateMigrationTeam(ctx, "Sales", "moved", born)
	if err != nil || id == "" {
		t.Fatalf("migration team: %q %v", id, err)
	}
	if _, err := c.CreateMigrationChannel(ctx, id, "Deals", "", time.Now().Add(time.Hour)); !graph.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("a channel created in the future: %v, want 400", err)
	}
	dstChannels := map[string]string{}
	dch, _ := c.Channels(ctx, id)
	for ch := range dch {
		dstChannels[ch.DisplayName] = ch.ID
	}
	for _, ch := range srcChannels {
		if dstChannels[ch.DisplayName] == "" {
			made, err := c.CreateMigrationChannel(ctx, id, ch.DisplayName, ch.Description, *ch.CreatedDateTime)
			if err != nil {
				t.Fatal(err)
			}
			dstChannels[ch.DisplayName] = made.ID
		}
		msgs, _ := c.ChannelMessages(ctx, srcID, ch.ID)
		for m, err := range msgs {
			if err != nil {
				t.Fatal(err)
			}
			src = append(src, ch.DisplayName+": "+m.From.User.DisplayName+" at "+m.CreatedDateTime.UTC().Format(time.RFC3339)+": "+m.Body.Content)
			if _, err := c.ImportMessage(ctx, id, dstChannels[ch.DisplayName], m); err != nil {
				t.Fatalf("import: %v", err)
			}
		}
	}
	if err := c.CompleteTeamMigration(ctx, id); !graph.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("completing the team before its channels: %v, want 400", err)
	}
	for _, chID := range dstChannels {
		if err := c.CompleteChannelMigration(ctx, id, chID); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CompleteTeamMigration(ctx, id); err != nil {
		t.Fatal(err)
	}
	var got []string
	for name, chID := range dstChannels {
		msgs, _ := c.ChannelMessages(ctx, id, chID)
		for m, err := range msgs {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, name+": "+m.From.User.DisplayName+" at "+m.CreatedDateTime.UTC().Format(time.RFC3339)+": "+m.Body.Content)
		}
	}
	if strings.Join(sorted(got), "\n") != strings.Join(sorted(src), "\n") || len(src) != 3 {
		t.Fatalf("moved messages:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(src, "\n"))
	}
	var again graph.ChatMessage
	again.Body = graph.ItemBody{ContentType: "text", Content: "late"}
	when := born.Add(48 * time.Hour)
	again.CreatedDateTime = &when
	msgs, _ := c.ChannelMessages(ctx, srcID, srcChannels[0].ID)
	for m := range msgs {
		again.From = m.From
	}
	if _, err := c.ImportMessage(ctx, id, dstChannels["General"], again); !graph.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("an import after completion: %v, want 403", err)
	}
}

func sorted(l []string) []string { return slices.Sorted(slices.Values(l)) }
