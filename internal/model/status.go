package model

import "fmt"

// ItemStatus is where an item stands. Every transition is recorded as an event.
type ItemStatus string

const (
	StatusNotStarted          ItemStatus = "NotStarted"
	StatusQueued              ItemStatus = "Queued"
	StatusRunning             ItemStatus = "Running"
	StatusCompleted           ItemStatus = "Completed"
	StatusCompletedWithErrors ItemStatus = "CompletedWithErrors"
	StatusFailed              ItemStatus = "Failed"
	StatusStopped             ItemStatus = "Stopped"
	StatusWaitingForEndUser   ItemStatus = "WaitingForEndUser"
)

// Statuses lists every status in display order.
var Statuses = []ItemStatus{StatusNotStarted, StatusQueued, StatusRunning, StatusCompleted,
	StatusCompletedWithErrors, StatusFailed, StatusStopped, StatusWaitingForEndUser}

func ParseStatus(s string) (ItemStatus, error) {
	for _, st := range Statuses {
		if equalFold(string(st), s) {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown status %q", s)
}

// Terminal reports whether no work is pending for the item.
func (s ItemStatus) Terminal() bool {
	switch s {
	case StatusCompleted, StatusCompletedWithErrors, StatusFailed, StatusStopped, StatusNotStarted:
		return true
	}
	return false
}

// Active reports whether a pass is queued or running for the item.
func (s ItemStatus) Active() bool { return s == StatusQueued || s == StatusRunning }

var transitions = map[ItemStatus][]ItemStatus{
	StatusNotStarted:          {StatusQueued},
	StatusQueued:              {StatusRunning, StatusStopped, StatusFailed, StatusQueued},
	StatusRunning:             {StatusCompleted, StatusCompletedWithErrors, StatusFailed, StatusStopped, StatusQueued, StatusWaitingForEndUser, StatusRunning},
	StatusCompleted:           {StatusQueued},
	StatusCompletedWithErrors: {StatusQueued},
	StatusFailed:              {StatusQueued},
	StatusStopped:             {StatusQueued},
	StatusWaitingForEndUser:   {StatusQueued, StatusStopped},
}

// CanTransition reports whether an item may go from s to next.
func (s ItemStatus) CanTransition(next ItemStatus) bool {
	for _, t := range transitions[s] {
		if t == next {
			return true
		}
	}
	return false
}

// OutcomeStatus derives the end status of a run from its counters.
func OutcomeStatus(st ItemStats) ItemStatus {
	if st.Errors > 0 {
		return StatusCompletedWithErrors
	}
	return StatusCompleted
}
