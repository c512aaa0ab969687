package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
)

// BenchmarkItemsPage renders a project's page with 10,000 items, through the whole server: the
// session check, the in-process API calls (project, counts, a page of items, schedules, passes)
// and the template. The views are the ones an administrator uses on a big project.
func BenchmarkItemsPage(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchItemsPage(b, newEnvOn(b, storetest.SQLite(b))) })
	b.Run("postgres", func(b *testing.B) { benchItemsPage(b, newEnvOn(b, storetest.Postgres(b))) })
}

func benchItemsPage(b *testing.B, e *env) {
	e.memoryProject(b, "big")
	var csv strings.Builder
	csv.WriteString("source_email,target_email\n")
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&csv, "user%05d@old.example,user%05d@new.example\n", i, i)
	}
	var res api.ImportResponse
	if err := e.admin.Upload(context.Background(), "POST", "/api/v1/projects/big/items/import", "text/csv", strings.NewReader(csv.String()), &res); err != nil || res.Created != 10000 {
		b.Fatalf("import: %+v %v", res, err)
	}
	br := e.signIn(b, "admin", adminPassword)
	for _, v := range []struct{ name, query, want string }{
		{"first-page", "", "10000 items match; page 1 of 200."},
		{"200-per-page", "?per=200", "10000 items match; page 1 of 50."},
		{"last-page-sorted-by-target-desc", "?sort=-target&page=200", "page 200 of 200."},
		{"text-filter", "?q=user09", "1000 items match; page 1 of 20."},
		{"status-filter-sorted-by-updated", "?status=NotStarted&sort=-updated", "10000 items match; page 1 of 200."},
	} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				status, body := br.get("/projects/big" + v.query)
				if status != http.StatusOK || !strings.Contains(body, v.want) {
					b.Fatalf("GET %s: %d, page lacks %q", v.query, status, v.want)
				}
			}
		})
	}
}
