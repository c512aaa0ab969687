// Package age reads the durations administrators type — "90d", "2w", "36h" — for the CLI's flags
// and the API's fields alike ("older than", "repeat every", a token's lifetime).
package age

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxDays is a bound well inside what a time.Duration holds (about 106,000 days).
const maxDays = 36500

// Parse reads "90d", "12h" or "2w" as a duration; days and weeks are what administrators type.
func Parse(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	unit := s[len(s)-1]
	if unit == 'd' || unit == 'w' {
		n, err := strconv.Atoi(s[:len(s)-1])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad age %q: want a number of days like 90d", s)
		}
		if n > maxDays {
			return 0, fmt.Errorf("bad age %q: more than %d days", s, maxDays)
		}
		d := time.Duration(n) * 24 * time.Hour
		if unit == 'w' {
			d *= 7
		}
		return d, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad age %q: want a duration like 90d or 36h", s)
	}
	return d, nil
}
