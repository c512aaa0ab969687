package exo_test

import (
	"encoding/pem"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/connector/exo"
	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/m365sim"
	"github.com/ferry-migrate/ferry/internal/model"
)

// TestArchiveToArchive moves an archive mailbox whose folder 2019 an auto-expanding archive moved
// to an auxiliary mailbox: reads follow the service's 308s and exports its moved-item errors; the
// target's own expanded folder answers an import 409 and the item goes through a session for the
// auxiliary mailbox; nothing is copied twice.
func TestArchiveToArchive(t *testing.T) {
	sim := m365sim.New()
	srv := httptest.NewTLSServer(sim)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	sim.Apply(m365sim.Seed{Tenants: []string{"contoso", "fabrikam"}, Users: 2, Messages: 4, Archives: 30})
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	ep := func(tenant string) model.Endpoint {
		return model.Endpoint{Name: tenant, Kind: model.KindM365,
			Settings: model.EndpointSettings{Tenant: tenant + ".onmicrosoft.com", ClientID: m365sim.SeedClientID, Host: srv.URL, CACert: ca},
			Secret:   &model.EndpointSecret{ClientSecret: m365sim.SeedSecret(tenant)}}
	}
	r := &rig{sim: sim, srv: srv, src: ep("contoso"), dst: ep("fabrikam")}
	base := newRig(t) // for its store and item
	r.st, r.item = base.st, base.item
	src := connector.Side{Endpoint: r.src, Email: "user00@contoso.com", Workload: model.WorkloadArchive}
	dst := connector.Side{Endpoint: r.dst, Email: "user00@fabrikam.com", Workload: model.WorkloadArchive}
	pass := func() (model.ItemStats, []engine.FolderResult) { t.Helper(); return r.between(t, src, dst, "a") }
	if err := (exo.Connector{}).Verify(ctx, src); err != nil {
		t.Fatalf("verify the archive: %v", err)
	}
	stats, res := pass()
	if stats.Objects != 30 || stats.Errors != 0 {
		t.Fatalf("first pass: %+v, want the 30 archived items", stats)
	}
	for _, f := range res {
		if !f.Reconciled || f.TargetCount != f.SourceCount {
			t.Errorf("folder %s: source %d, target %d", f.Source, f.SourceCount, f.TargetCount)
		}
	}

	// The archives hold the same items; the source's 2019 lives in its auxiliary mailbox.
	sc, tc := r.client(t, r.src, "user00@contoso.com").Beta(), r.client(t, r.dst, "user00@fabrikam.com").Beta()
	srcArch, _ := sc.ArchiveMailboxID(ctx, "user00@contoso.com")
	dstArch, _ := tc.ArchiveMailboxID(ctx, "user00@fabrikam.com")
	want, got := archiveContent(t, sc, srcArch), archiveContent(t, tc, dstArch)
	if want["2019"] != 15 || want["2020"] != 15 || got["2019"] != 15 || got["2020"] != 15 {
		t.Fatalf("items per folder: source %v, target %v", want, got)
	}

	// The target's 2019 is expanded too; a new item of the source's 2019 must go into it.
	folders, _ := tc.MailboxFolders(ctx, dstArch, "")
	var f2019 string
	for f, err := range folders {
		if err != nil {
			t.Fatal(err)
		}
		if f.DisplayName == "2019" {
			f2019 = f.ID
		}
	}
	dstAux, err := sim.Expand(m365sim.TenantID("fabrikam"), "user00@fabrikam.com", f2019)
	if err != nil {
		t.Fatal(err)
	}
	addToSourceAux(t, sim, sc, srcArch)
	stats, _ = pass()
	if stats.Objects != 1 || stats.Errors != 0 {
		t.Fatalf("the pass after a new item in the expanded folder: %+v, want 1 copied", stats)
	}
	aux, _ := tc.MailboxItems(ctx, dstAux, f2019)
	n := 0
	for _, err := range aux {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 16 {
		t.Fatalf("the target's auxiliary 2019 holds %d items, want 16", n)
	}
	if stats, _ := pass(); stats.Objects != 0 {
		t.Fatalf("a pass with nothing new copied %d", stats.Objects)
	}
	if redirects, moved, conflicts := sim.ArchiveAnswers(); redirects == 0 || moved == 0 || conflicts != 1 {
		t.Fatalf("the emulator answered %d redirects, %d moved items and %d conflicts: the expanded folders were not exercised", redirects, moved, conflicts)
	}

	// A user without an archive is named as such.
	noArch := newRig(t) // seeded without archives
	err = exo.Connector{}.Verify(ctx, connector.Side{Endpoint: noArch.src, Email: "user01@contoso.com", Workload: model.WorkloadArchive})
	if err == nil || !strings.Contains(err.Error(), "user01@contoso.com has no archive mailbox") {
		t.Fatalf("verify without an archive: %v", err)
	}
}

// archiveContent counts the items of each folder of an archive, following its redirects.
func archiveContent(t *testing.T, c *graph.Client, mbx string) map[string]int {
	t.Helper()
	out := map[string]int{}
	folders, _ := c.MailboxFolders(ctx, mbx, "")
	for f, err := range folders {
		if err != nil {
			t.Fatal(err)
		}
		items, _ := c.MailboxItems(ctx, mbx, f.ID)
		for _, err := range items {
			if err != nil {
				t.Fatal(err)
			}
			out[f.DisplayName]++
		}
	}
	return out
}

// addToSourceAux puts one more item into the source archive's 2019, which its auxiliary mailbox
// holds: an export of one of its items, imported again through a session for that mailbox.
func addToSourceAux(t *testing.T, sim *m365sim.Server, c *graph.Client, mbx string) {
	t.Helper()
	folders, _ := c.MailboxFolders(ctx, mbx, "")
	for f, err := range folders {
		if err != nil || f.DisplayName != "2019" {
			continue
		}
		items, _ := c.MailboxItems(ctx, mbx, f.ID)
		for it, err := range items {
			if err != nil {
				t.Fatal(err)
			}
			exp, err := c.ExportItems(ctx, mbx, []string{it.ID})
			if err != nil || len(exp) != 1 || exp[0].Error != nil {
				t.Fatalf("export through the main archive: %+v %v", exp, err)
			}
			boxes := sim.ArchiveMailboxes(m365sim.TenantID("contoso"), "user00@contoso.com")
			if len(boxes) != 2 {
				t.Fatalf("the source archive's mailboxes: %v, want the main one and one auxiliary", boxes)
			}
			aux := boxes[1]
			s, err := c.CreateImportSession(ctx, aux)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.ImportItem(ctx, s, f.ID, "create", exp[0].Data, "", ""); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("the source archive has no 2019 items")
}
