package model

import "testing"

func TestStatusTransitions(t *testing.T) {
	cases := []struct {
		from, to ItemStatus
		ok       bool
	}{
		{StatusNotStarted, StatusQueued, true},
		{StatusNotStarted, StatusRunning, false},
		{StatusQueued, StatusRunning, true},
		{StatusRunning, StatusCompleted, true},
		{StatusRunning, StatusQueued, true}, // shutdown hands the item back
		{StatusCompleted, StatusRunning, false},
		{StatusCompleted, StatusQueued, true},
		{StatusStopped, StatusCompleted, false},
	}
	for _, c := range cases {
		if got := c.from.CanTransition(c.to); got != c.ok {
			t.Errorf("%s -> %s: %v, want %v", c.from, c.to, got, c.ok)
		}
	}
	if !StatusQueued.Active() || StatusCompleted.Active() || !StatusFailed.Terminal() || StatusRunning.Terminal() {
		t.Fatal("Active/Terminal disagree with the state machine")
	}
	if OutcomeStatus(ItemStats{Errors: 1}) != StatusCompletedWithErrors || OutcomeStatus(ItemStats{Objects: 9}) != StatusCompleted {
		t.Fatal("OutcomeStatus")
	}
}

func TestRolesAndParsing(t *testing.T) {
	if !RoleOwner.AtLeast(RoleManager) || RoleReader.AtLeast(RoleOperator) || Role("Guest").AtLeast(RoleReader) {
		t.Fatal("role order wrong")
	}
	if r, err := ParseRole("operator"); err != nil || r != RoleOperator {
		t.Fatalf("ParseRole(operator) = %v, %v", r, err)
	}
	if _, err := ParseRole("root"); err == nil || err.Error() != `unknown role "root": want Owner, Manager, Operator or Reader` {
		t.Fatalf("ParseRole(root) error = %v", err)
	}
	if _, err := ParseWorkload("exchange"); err == nil {
		t.Fatal("unknown workload accepted")
	}
	if s, err := ParseStatus("completedwitherrors"); err != nil || s != StatusCompletedWithErrors {
		t.Fatalf("ParseStatus = %v %v", s, err)
	}
}
