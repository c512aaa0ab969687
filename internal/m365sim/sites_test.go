package m365sim_test

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/m365sim"
)

// seededFiles lists every file of a drive as "parent path/name hash".
func seededFiles(t *testing.T, c *graph.Client, driveID string) []string {
	t.Helper()
	var out []string
	items, _ := c.DriveDelta(context.Background(), driveID, "")
	for it, err := range items {
		if err != nil {
			t.Fatal(err)
		}
		if it.File != nil {
			out = append(out, it.ParentReference.Path+"/"+it.Name+" "+it.File.Hashes.QuickXorHash)
		}
	}
	slices.Sort(out)
	return out
}

// TestSeededSitesAndDrives: the seed gives sites with document libraries in every tenant, files in
// nested folders in the first tenant's libraries and OneDrives, the same files on every run.
func TestSeededSitesAndDrives(t *testing.T) {
	run := func() ([]string, []string, int, int) {
		sim := m365sim.New()
		srv := httptest.NewTLSServer(sim)
		defer srv.Close()
		sim.SetBaseURL(srv.URL)
		sim.Apply(m365sim.Seed{Tenants: []string{"contoso", "fabrikam"}, Users: 2, Files: 8, Sites: 2})
		client := func(tenant string) *graph.Client {
			cloud := graph.Cloud{Name: "sim", LoginURL: srv.URL, GraphURL: srv.URL}
			creds := &graph.Credentials{Options: azcore.ClientOptions{Transport: srv.Client()}}
			ts, err := creds.For(cloud, graph.AppCredential{Tenant: tenant + ".onmicrosoft.com", ClientID: m365sim.SeedClientID, ClientSecret: m365sim.SeedSecret(tenant)})
			if err != nil {
				t.Fatal(err)
			}
			return graph.New(graph.Config{Cloud: cloud, Tokens: ts, HTTP: srv.Client()})
		}
		ctx := context.Background()
		c, f := client("contoso"), client("fabrikam")
		sites, err := c.SearchSites(ctx, "project")
		if err != nil || len(sites) != 2 {
			t.Fatalf("contoso sites: %+v %v", sites, err)
		}
		libs, err := c.SiteDrives(ctx, sites[0].ID)
		if err != nil || len(libs) != 1 || libs[0].DriveType != "documentLibrary" {
			t.Fatalf("libraries: %+v %v", libs, err)
		}
		d, err := c.UserDrive(ctx, "user01@contoso.com")
		if err != nil {
			t.Fatal(err)
		}
		fsites, _ := f.SearchSites(ctx, "*")
		flibs, _ := f.SiteDrives(ctx, fsites[0].ID)
		return seededFiles(t, c, libs[0].ID), seededFiles(t, c, d.ID), len(fsites), len(seededFiles(t, f, flibs[0].ID))
	}
	lib, one, fsites, ffiles := run()
	if len(lib) != 8 || len(one) != 8 || fsites != 2 || ffiles != 0 {
		t.Fatalf("seeded %d library files, %d OneDrive files, %d target sites with %d files; want 8, 8, 2, 0", len(lib), len(one), fsites, ffiles)
	}
	if !slices.ContainsFunc(one, func(s string) bool { return strings.HasPrefix(s, "/drive/root:/Documents/Reports/2024/") }) {
		t.Errorf("no file three folders deep: %v", one)
	}
	lib2, one2, _, _ := run()
	if !slices.Equal(lib, lib2) || !slices.Equal(one, one2) {
		t.Error("the same seed gave other files")
	}
}
