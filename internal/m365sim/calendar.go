package m365sim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Calendar permissions, as Microsoft names them.
const (
	PermCalendarsRead      = "Calendars.Read"
	PermCalendarsReadWrite = "Calendars.ReadWrite"
)

// event is a calendar item: what Graph shows of it, kept on the item in a calendar folder so
// that it travels in the full-fidelity export like any item.
type event struct {
	Subject    string      `json:"subject"`
	Start      dateTimeTZ  `json:"start"`
	End        dateTimeTZ  `json:"end"`
	IsAllDay   bool        `json:"isAllDay"`
	Location   string      `json:"location,omitempty"`
	Organizer  string      `json:"organizer"`
	Attendees  []attendee  `json:"attendees,omitempty"`
	Recurrence *recurrence `json:"recurrence,omitempty"`
	ICalUID    string      `json:"iCalUId"`
	// What the calendar API can write besides; kept for the JSON path's round trip.
	Body            *itemBody `json:"body,omitempty"`
	Categories      []string  `json:"categories,omitempty"`
	ShowAs          string    `json:"showAs,omitempty"`
	Importance      string    `json:"importance,omitempty"`
	Sensitivity     string    `json:"sensitivity,omitempty"`
	IsReminderOn    bool      `json:"isReminderOn,omitempty"`
	ReminderMinutes int       `json:"reminderMinutesBeforeStart,omitempty"`
}

type itemBody struct {
	ContentType string `json:"contentType"`
	Content     string `json:"content"`
}

// eventKind lists what a client may write on an event.
var eventKind = kind{"IPF.Appointment", "event", []string{"subject", "body", "start", "end", "isAllDay", "location", "attendees", "recurrence",
	"categories", "showAs", "importance", "sensitivity", "isReminderOn", "reminderMinutesBeforeStart"}}

// eventRequest is the JSON of a created or updated event.
type eventRequest struct {
	Subject  *string     `json:"subject"`
	Body     *itemBody   `json:"body"`
	Start    *dateTimeTZ `json:"start"`
	End      *dateTimeTZ `json:"end"`
	IsAllDay *bool       `json:"isAllDay"`
	Location *struct {
		DisplayName string `json:"displayName"`
	} `json:"location"`
	Attendees       *[]attendee `json:"attendees"`
	Recurrence      *recurrence `json:"recurrence"`
	Categories      *[]string   `json:"categories"`
	ShowAs          *string     `json:"showAs"`
	Importance      *string     `json:"importance"`
	Sensitivity     *string     `json:"sensitivity"`
	IsReminderOn    *bool       `json:"isReminderOn"`
	ReminderMinutes *int        `json:"reminderMinutesBeforeStart"`
}

// apply writes the request's fields onto the event.
func (q eventRequest) apply(e *event) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&e.Subject, q.Subject)
	set(&e.ShowAs, q.ShowAs)
	set(&e.Importance, q.Importance)
	set(&e.Sensitivity, q.Sensitivity)
	if q.Body != nil {
		e.Body = q.Body
	}
	if q.Start != nil {
		e.Start = *q.Start
	}
	if q.End != nil {
		e.End = *q.End
	}
	if q.IsAllDay != nil {
		e.IsAllDay = *q.IsAllDay
	}
	if q.Location != nil {
		e.Location = q.Location.DisplayName
	}
	if q.Attendees != nil {
		e.Attendees = *q.Attendees
	}
	if q.Recurrence != nil {
		e.Recurrence = q.Recurrence
	}
	if q.Categories != nil {
		e.Categories = *q.Categories
	}
	if q.IsReminderOn != nil {
		e.IsReminderOn = *q.IsReminderOn
	}
	if q.ReminderMinutes != nil {
		e.ReminderMinutes = *q.ReminderMinutes
	}
}

type dateTimeTZ struct {
	DateTime string `json:"dateTime"` // 2025-01-06T09:00:00.0000000
	TimeZone string `json:"timeZone"`
}

type emailAddress struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
}

type attendee struct {
	Type         string       `json:"type"` // required, optional, resource
	EmailAddress emailAddress `json:"emailAddress"`
}

type recurrence struct {
	Pattern struct {
		Type           string   `json:"type"` // daily, weekly, absoluteMonthly…
		Interval       int      `json:"interval"`
		DaysOfWeek     []string `json:"daysOfWeek,omitempty"`
		FirstDayOfWeek string   `json:"firstDayOfWeek,omitempty"`
	} `json:"pattern"`
	Range struct {
		Type                string `json:"type"` // endDate, noEnd, numbered
		StartDate           string `json:"startDate"`
		EndDate             string `json:"endDate,omitempty"`
		NumberOfOccurrences int    `json:"numberOfOccurrences,omitempty"`
	} `json:"range"`
}

// SentMail is one message the service sent on a user's behalf: a sendMail, or the meeting
// requests of an event created with attendees. A migration must leave this list empty.
type SentMail struct {
	From    string    `json:"from"`
	To      []string  `json:"to"`
	Subject string    `json:"subject"`
	Kind    string    `json:"kind"` // message, meetingRequest
	At      time.Time `json:"at"`
}

// SentMail returns every message the emulator sent, in all tenants.
func (s *Server) SentMail() []SentMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SentMail
	seen := map[*Tenant]bool{} // a tenant is found under its id and each of its domains
	for _, t := range s.tenants {
		if !seen[t] {
			seen[t] = true
			out = append(out, t.Sent...)
		}
	}
	slices.SortFunc(out, func(a, b SentMail) int { return a.At.Compare(b.At) })
	return out
}

func (s *Server) calendarHandlers() {
	s.mux.Handle("GET /v1.0/users/{id}/events", s.graph(PermCalendarsRead, s.listEvents))
	s.mux.Handle("POST /v1.0/users/{id}/events", s.graph(PermCalendarsReadWrite, s.createEvent))
	s.mux.Handle("POST /v1.0/users/{id}/sendMail", s.graph(PermMailSend, s.sendMail))
}

// PermMailSend lets an app send mail as any user.
const PermMailSend = "Mail.Send"

func (m *message) eventView() map[string]any {
	e := m.Event
	v := map[string]any{"id": m.ID, "changeKey": strconv.Itoa(m.ChangeKey), "subject": e.Subject, "start": e.Start, "end": e.End,
		"isAllDay": e.IsAllDay, "iCalUId": e.ICalUID, "location": map[string]string{"displayName": e.Location},
		"organizer": map[string]any{"emailAddress": map[string]string{"address": e.Organizer}}, "attendees": []attendee{}}
	if len(e.Attendees) > 0 {
		v["attendees"] = e.Attendees
	}
	if e.Recurrence != nil {
		v["recurrence"] = e.Recurrence
	} else {
		v["recurrence"] = nil
	}
	body := itemBody{ContentType: "text"}
	if e.Body != nil {
		body = *e.Body
	}
	v["body"], v["categories"], v["isReminderOn"], v["reminderMinutesBeforeStart"] = body, nonNil(e.Categories), e.IsReminderOn, e.ReminderMinutes
	v["showAs"], v["importance"], v["sensitivity"] = or(e.ShowAs, "busy"), or(e.Importance, "normal"), or(e.Sensitivity, "normal")
	v["createdDateTime"] = m.Received.UTC().Format(time.RFC3339)
	return v
}

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// listEvents lists the events of every calendar folder of the user.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, c caller) {
	s.withMailbox(w, r, c, func(mb *mailbox) {
		out := []map[string]any{}
		for _, f := range mb.Folders {
			for _, m := range f.Messages {
				if m.Event != nil {
					out = append(out, m.eventView())
				}
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out})
	})
}

// createEvent adds an event to a calendar (the default one without {fid}). As in Exchange, an
// event created with attendees sends them meeting requests.
func (s *Server) createEvent(w http.ResponseWriter, r *http.Request, c caller) {
	q, props, ok := readEvent(w, r)
	if !ok {
		return
	}
	var e event
	q.apply(&e)
	if strings.TrimSpace(e.Subject) == "" || e.Start.DateTime == "" || e.End.DateTime == "" {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "An event needs a subject, a start and an end.")
		return
	}
	s.withMailbox(w, r, c, func(mb *mailbox) {
		u, _ := s.mailboxOf(c.tenant, r.PathValue("id"))
		cal := mb.folder("calendar")
		if fid := r.PathValue("fid"); fid != "" {
			if cal = mb.folder(fid); cal == nil || cal.Class != "IPF.Appointment" {
				graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified calendar was not found.")
				return
			}
		}
		mb.Seq++
		e.Organizer = u.UserPrincipalName
		m := &message{ID: stableID(cal.ID, "event", strconv.Itoa(mb.Seq)), ChangeKey: 1, Touched: mb.Seq, Subject: e.Subject, Received: s.now(), Sent: s.now(),
			Flag: "notFlagged", Props: map[string]string{}, Event: &e}
		for _, p := range props {
			m.Props[p.ID] = p.Value
		}
		e.ICalUID = "040000008200E00074C5B7101A82E008" + stableID(m.ID, "ical")
		cal.Messages = append(cal.Messages, m)
		c.tenant.invite(u, e)
		writeJSON(w, http.StatusCreated, m.eventView())
	})
}

// readEvent reads an event's JSON, refusing properties a client may not write; it answers the
// error itself.
func readEvent(w http.ResponseWriter, r *http.Request) (eventRequest, []ExtendedPropertyValue, bool) {
	var q eventRequest
	body, err := readBody(w, r)
	if err != nil {
		return q, nil, false
	}
	_, props, err := eventKind.parse(body)
	if err == nil {
		err = json.Unmarshal(body, &q)
	}
	if err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return q, nil, false
	}
	return q, props, true
}

// invite records the meeting requests an event with attendees sends.
func (t *Tenant) invite(u *User, e event) {
	if len(e.Attendees) == 0 {
		return
	}
	var to []string
	for _, a := range e.Attendees {
		to = append(to, a.EmailAddress.Address)
	}
	t.Sent = append(t.Sent, SentMail{From: u.UserPrincipalName, To: to, Subject: e.Subject, Kind: "meetingRequest", At: time.Now()})
}

// calendarEvents lists one calendar's events, paged, filterable by an extended property.
func (s *Server) calendarEvents(w http.ResponseWriter, r *http.Request, c caller) {
	s.listItems(w, r, c, eventKind, func(m *message) bool { return m.Event != nil },
		func(_ *folder, m *message) map[string]any { return m.eventView() })
}

func (s *Server) withEvent(w http.ResponseWriter, r *http.Request, c caller, fn func(mb *mailbox, m *message)) {
	s.withMailbox(w, r, c, func(mb *mailbox) {
		_, m := s.findMessage(mb, r.PathValue("mid"))
		if m == nil || m.Event == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
			return
		}
		fn(mb, m)
	})
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request, c caller) {
	s.withEvent(w, r, c, func(_ *mailbox, m *message) { writeJSON(w, http.StatusOK, m.eventView()) })
}

// updateEvent PATCHes an event; attendees added by the update are invited, as in Exchange.
func (s *Server) updateEvent(w http.ResponseWriter, r *http.Request, c caller) {
	q, props, ok := readEvent(w, r)
	if !ok {
		return
	}
	s.withEvent(w, r, c, func(mb *mailbox, m *message) {
		before := len(m.Event.Attendees)
		q.apply(m.Event)
		m.Subject = m.Event.Subject
		for _, p := range props {
			m.Props[p.ID] = p.Value
		}
		if q.Attendees != nil && len(*q.Attendees) > before {
			u, _ := s.mailboxOf(c.tenant, r.PathValue("id"))
			c.tenant.invite(u, *m.Event)
		}
		mb.Seq++
		m.ChangeKey, m.Touched = m.ChangeKey+1, mb.Seq
		writeJSON(w, http.StatusOK, m.eventView())
	})
}

// sendMail records a sent message; the emulator delivers nothing.
func (s *Server) sendMail(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Message struct {
			Subject      string `json:"subject"`
			ToRecipients []struct {
				EmailAddress emailAddress `json:"emailAddress"`
			} `json:"toRecipients"`
		} `json:"message"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Message.ToRecipients) == 0 {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRecipients", "At least one recipient is not valid.")
		return
	}
	s.withMailbox(w, r, c, func(mb *mailbox) {
		u, _ := s.mailboxOf(c.tenant, r.PathValue("id"))
		var to []string
		for _, a := range req.Message.ToRecipients {
			to = append(to, a.EmailAddress.Address)
		}
		c.tenant.Sent = append(c.tenant.Sent, SentMail{From: u.UserPrincipalName, To: to, Subject: req.Message.Subject, Kind: "message", At: s.now()})
		w.WriteHeader(http.StatusAccepted)
	})
}

// seedEvents puts three events in a seeded user's calendar: a meeting, a weekly recurring meeting
// and an all-day event. They are stored, not created through the API, so nothing is sent.
func seedEvents(mb *mailbox, upn, tenant string, day time.Time, u int) {
	cal := mb.folder("calendar")
	at := func(t time.Time) dateTimeTZ {
		return dateTimeTZ{DateTime: t.Format("2006-01-02T15:04:05.0000000"), TimeZone: "UTC"}
	}
	who := func(typ string, n int) attendee {
		return attendee{Type: typ, EmailAddress: emailAddress{Name: "Colleague " + strconv.Itoa(n), Address: "colleague" + strconv.Itoa(n) + "@" + tenant + ".com"}}
	}
	weekly := &recurrence{}
	weekly.Pattern.Type, weekly.Pattern.Interval, weekly.Pattern.DaysOfWeek, weekly.Pattern.FirstDayOfWeek = "weekly", 1, []string{"monday", "wednesday"}, "monday"
	weekly.Range.Type, weekly.Range.StartDate, weekly.Range.EndDate = "endDate", day.Format("2006-01-02"), day.AddDate(0, 3, 0).Format("2006-01-02")
	start := day.Add(time.Duration(9+u%4) * time.Hour)
	events := []event{
		{Subject: "Project kickoff", Start: at(start), End: at(start.Add(time.Hour)), Location: "Room 4.12", Attendees: []attendee{who("required", 1), who("optional", 2)}},
		{Subject: "Weekly team sync", Start: at(start.Add(24 * time.Hour)), End: at(start.Add(24*time.Hour + 30*time.Minute)), Recurrence: weekly,
			Attendees: []attendee{who("required", 1), who("required", 3), who("optional", 4)}},
		{Subject: "Company holiday", Start: at(day.AddDate(0, 0, 14)), End: at(day.AddDate(0, 0, 15)), IsAllDay: true},
	}
	for i := range events {
		e := events[i]
		mb.Seq++
		m := &message{ID: stableID(cal.ID, "event", strconv.Itoa(mb.Seq)), ChangeKey: 1, Touched: mb.Seq, Subject: e.Subject, Received: day, Sent: day,
			Flag: "notFlagged", Props: map[string]string{}, Event: &e}
		e.Organizer, e.ICalUID = upn, "040000008200E00074C5B7101A82E008"+stableID(m.ID, "ical")
		cal.Messages = append(cal.Messages, m)
	}
}
