package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
)

// statuses is the order the console shows item statuses in.
var statuses = []model.ItemStatus{
	model.StatusNotStarted, model.StatusQueued, model.StatusRunning, model.StatusCompleted,
	model.StatusCompletedWithErrors, model.StatusFailed, model.StatusStopped, model.StatusWaitingForEndUser,
}

var funcs = template.FuncMap{
	"bytes":    humanBytes,
	"when":     when,
	"statuses": func() []model.ItemStatus { return statuses },
	"status":   func(s model.ItemStatus) string { return strings.ToLower(string(s)) },
	"label":    statusLabel,
	"add":      func(a, b int) int { return a + b },
	"total": func(counts map[model.ItemStatus]int) int {
		n := 0
		for _, c := range counts {
			n += c
		}
		return n
	},
	"atLeast": func(r model.Role, min string) bool { return r.AtLeast(model.Role(min)) },
}

// humanBytes matches fmtBytes in console.js, which redraws the same cells live.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return "—"
		}
		return v.UTC().Format("2006-01-02 15:04:05") + " UTC"
	case *time.Time:
		if v == nil {
			return "—"
		}
		return when(*v)
	}
	return ""
}

// statusLabel spells a status for people: "CompletedWithErrors" reads "Completed with errors".
func statusLabel(s model.ItemStatus) string {
	var b strings.Builder
	for i, r := range string(s) {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
