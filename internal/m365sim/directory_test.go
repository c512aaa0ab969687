package m365sim_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/graph"
	"github.com/ferry-migrate/ferry/internal/m365sim"
)

// TestUsersAndLicences holds user creation and licence assignment to Entra ID's rules.
func TestUsersAndLicences(t *testing.T) {
	r := newRig(t)
	r.sim.AddApp("11111111-1111-1111-1111-111111111111", "app-dir", "d", nil, m365sim.PermUserReadWrite, m365sim.PermOrgRead)
	c := r.client(t, graph.AppCredential{ClientID: "app-dir", ClientSecret: "d"})
	ctx := context.Background()
	newUser := func(upn, loc string) graph.NewUser {
		return graph.NewUser{AccountEnabled: true, DisplayName: upn, MailNickname: strings.Split(upn, "@")[0], UserPrincipalName: upn, UsageLocation: loc,
			PasswordProfile: &graph.PasswordProfile{Password: "Pa55-w0rd!x", ForceChangePasswordNextSignIn: true}}
	}
	for _, tc := range []struct {
		u    graph.NewUser
		want string
	}{
		{newUser("ann@fabrikam.com", "US"), "verified domain names"},
		{newUser("user1@contoso.com", "US"), "same value for property userPrincipalName"},
		{graph.NewUser{AccountEnabled: true, DisplayName: "x", MailNickname: "x", UserPrincipalName: "x@contoso.com"}, "'passwordProfile'"},
	} {
		if _, err := c.CreateUser(ctx, tc.u); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %s: %v, want %q", tc.u.UserPrincipalName, err, tc.want)
		}
	}
	noLoc, err := c.CreateUser(ctx, newUser("noloc@contoso.com", ""))
	if err != nil {
		t.Fatal(err)
	}
	const exchange = "4b9405b0-7788-4568-add1-99614e613b69" // 10 seats
	if err := c.AssignLicense(ctx, noLoc.ID, []string{exchange}, nil); err == nil || !strings.Contains(err.Error(), "invalid usage location") {
		t.Fatalf("a licence without a usage location: %v", err)
	}
	for i := range 10 {
		u, err := c.CreateUser(ctx, newUser(fmt.Sprintf("hire%d@contoso.com", i), "DE"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AssignLicense(ctx, u.ID, []string{exchange}, nil); err != nil {
			t.Fatalf("seat %d: %v", i+1, err)
		}
		if i == 9 {
			// Assigning again what the user has takes no second seat.
			if err := c.AssignLicense(ctx, u.ID, []string{exchange}, nil); err != nil {
				t.Fatalf("re-assigning: %v", err)
			}
		}
	}
	extra, _ := c.CreateUser(ctx, newUser("hire10@contoso.com", "DE"))
	if err := c.AssignLicense(ctx, extra.ID, []string{exchange}, nil); err == nil || !strings.Contains(err.Error(), "no available licenses") {
		t.Fatalf("the eleventh seat: %v", err)
	}
	skus, _ := c.SubscribedSkus(ctx)
	for _, k := range skus {
		if k.SkuID == exchange && (k.ConsumedUnits != 10 || k.PrepaidUnits.Enabled != 10) {
			t.Errorf("EXCHANGESTANDARD: %d of %d used, want 10 of 10", k.ConsumedUnits, k.PrepaidUnits.Enabled)
		}
	}
}
