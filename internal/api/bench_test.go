package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/api"
	"github.com/ferry-migrate/ferry/internal/store/storetest"
)

// BenchmarkImport10k imports a valid 10,000-line CSV through the API: HTTP upload, parse,
// validate, insert in one transaction. Each iteration uses a fresh project.
func BenchmarkImport10k(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchImport(b, newEnvOn(b, storetest.SQLite(b))) })
	b.Run("postgres", func(b *testing.B) { benchImport(b, newEnvOn(b, storetest.Postgres(b))) })
}

func benchImport(b *testing.B, e *env) {
	e.project(b)
	var sb strings.Builder
	sb.WriteString("source_email,target_email,source_login\n")
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&sb, "user%05d@old.example,user%05d@new.example,user%05d\n", i, i, i)
	}
	body := sb.String()
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		name := fmt.Sprintf("bench%d", i)
		if err := e.admin.Do(ctx, "POST", "/api/v1/projects", map[string]any{"name": name, "workload": "mailbox", "source": "src", "target": "dst"}, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var res api.ImportResponse
		if err := e.admin.Upload(ctx, "POST", "/api/v1/projects/"+name+"/items/import", "text/csv", strings.NewReader(body), &res); err != nil {
			b.Fatal(err)
		}
		if res.Created != 10000 {
			b.Fatalf("created %d", res.Created)
		}
	}
}
