package m365sim_test

import (
	"context"
	"testing"

	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/m365sim"
)

// TestSentMailRecord shows what the record of sent mail catches: an event created with attendees
// sends meeting requests, sendMail sends a message; an event without attendees sends nothing.
func TestSentMailRecord(t *testing.T) {
	r := newRig(t)
	r.sim.AddApp("11111111-1111-1111-1111-111111111111", "app-cal", "c", nil, "Calendars.ReadWrite", "Mail.Send")
	c := r.client(t, graph.AppCredential{ClientID: "app-cal", ClientSecret: "c"})
	ctx := context.Background()
	ev := func(subject string, attendees ...string) map[string]any {
		e := map[string]any{"subject": subject, "start": map[string]string{"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
			"end": map[string]string{"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"}}
		var as []map[string]any
		for _, a := range attendees {
			as = append(as, map[string]any{"type": "required", "emailAddress": map[string]string{"address": a}})
		}
		if as != nil {
			e["attendees"] = as
		}
		return e
	}
	if _, err := c.Do(ctx, graph.Request{Method: "POST", Path: "/users/user1@contoso.com/events", Body: ev("Focus time")}, nil); err != nil {
		t.Fatal(err)
	}
	if sent := r.sim.SentMail(); len(sent) != 0 {
		t.Fatalf("an event without attendees sent %v", sent)
	}
	if _, err := c.Do(ctx, graph.Request{Method: "POST", Path: "/users/user1@contoso.com/events", Body: ev("Review", "a@contoso.com", "b@fabrikam.com")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, graph.Request{Method: "POST", Path: "/users/user1@contoso.com/sendMail",
		Body: map[string]any{"message": map[string]any{"subject": "Hi", "toRecipients": []map[string]any{{"emailAddress": map[string]string{"address": "c@contoso.com"}}}}}}, nil); err != nil {
		t.Fatal(err)
	}
	sent := r.sim.SentMail()
	if len(sent) != 2 || sent[0].Kind != "meetingRequest" || len(sent[0].To) != 2 || sent[0].From != "user1@contoso.com" || sent[1].Kind != "message" || sent[1].Subject != "Hi" {
		t.Fatalf("sent mail: %+v", sent)
	}
	var n int
	evs, _ := c.Events(ctx, "user1@contoso.com")
	for e, err := range evs {
		if err != nil {
			t.Fatal(err)
		}
		if e.Subject == "Review" && (len(e.Attendees) != 2 || e.Attendees[1].EmailAddress.Address != "b@fabrikam.com") {
			t.Errorf("event Review: %+v", e)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d events listed, want 2", n)
	}
	// Without the permission the route says which one is missing.
	weak := r.client(t, graph.AppCredential{ClientID: "app-secret", ClientSecret: "s3cret-value"})
	if _, err := weak.Do(ctx, graph.Request{Method: "GET", Path: "/users/user1@contoso.com/events"}, nil); !graph.IsStatus(err, 403) {
		t.Errorf("events without Calendars.Read: %v", err)
	}
	_ = m365sim.PermCalendarsRead
}
