package age

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"": 0, "90d": 90 * 24 * time.Hour, " 2w ": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "1h30m": 90 * time.Minute, "0s": 0,
		"36500d": 36500 * 24 * time.Hour,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"-3d": "want a number of days", "xd": "want a number of days", "-5h": "want a duration", "soon": "want a duration",
		"36501d": "more than 36500 days", "999999999999w": "more than 36500 days", "9999999h": "want a duration",
	} {
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Parse(%q): %v, want an error saying %q", in, err, msg)
		}
	}
}
