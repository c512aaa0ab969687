package workstation

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ferry-migrate/ferry/internal/agent"
	"github.com/ferry-migrate/ferry/internal/agent/winreg"
	"github.com/ferry-migrate/ferry/internal/model"
)

// entra removes the user's Entra registration with the source tenant: its WorkplaceJoin entries
// and the token broker's accounts. A device joined to the source tenant leaves it with
// dsregcmd /leave when the project allows it; that step cannot be rolled back.
type entra struct{ base }

const workplaceJoin = `HKCU\Software\Microsoft\Windows NT\CurrentVersion\WorkplaceJoin`

func (e entra) Run(ctx context.Context, job agent.Job) (string, error) {
	h, t := e.h, job.Target
	j, err := h.journal(job.Backup)
	if err != nil {
		return "", err
	}
	source, target := strings.ToLower(t.SourceTenantID), strings.ToLower(t.TargetTenantID)
	// Which entries go: the source tenant's, or, when the project does not name it, every
	// tenant's but the target's.
	goes := func(tenant string) bool {
		tenant = strings.ToLower(tenant)
		if source != "" {
			return tenant == source
		}
		return tenant != "" && tenant != target
	}
	var removed []string
	for _, sub := range []string{"JoinInfo", "AADNGC"} {
		entries, err := h.Reg.SubKeys(workplaceJoin + `\` + sub)
		if err != nil && !errors.Is(err, winreg.ErrNotExist) {
			return "", err
		}
		for _, id := range entries {
			key := workplaceJoin + `\` + sub + `\` + id
			tenant, _, err := winreg.Get(h.Reg, key, "TenantId")
			if err != nil {
				return "", err
			}
			if goes(tenant.Text()) {
				if err := j.deleteKey(key); err != nil {
					return "", err
				}
				removed = append(removed, sub+`\`+id)
			}
		}
	}
	tenants, err := h.Reg.SubKeys(workplaceJoin + `\TenantInfo`)
	if err != nil && !errors.Is(err, winreg.ErrNotExist) {
		return "", err
	}
	for _, id := range tenants {
		if goes(id) {
			if err := j.deleteKey(workplaceJoin + `\TenantInfo\` + id); err != nil {
				return "", err
			}
			removed = append(removed, `TenantInfo\`+id)
		}
	}
	if len(removed) > 0 {
		broker := filepath.Join(h.LocalAppData, "Packages", "Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy", "AC", "TokenBroker", "Accounts")
		if ok, err := j.moveAside(broker); err != nil {
			return "", err
		} else if ok {
			removed = append(removed, "the token broker's accounts")
		}
	}
	detail := "removed: " + list(removed)
	joined, err := e.leave(ctx, t, goes)
	if err != nil {
		return "", err
	}
	return detail + "; " + joined, nil
}

// leave asks dsregcmd whether the device is joined to a tenant that goes, and leaves it when the
// project allows that.
func (e entra) leave(ctx context.Context, t model.AgentTarget, goes func(string) bool) (string, error) {
	if e.h.Run == nil {
		return "the device's join state is unknown", nil
	}
	out, err := e.h.Run(ctx, "dsregcmd", "/status")
	if err != nil {
		return "dsregcmd /status did not run (" + err.Error() + "): the device's join state is unknown", nil
	}
	st := dsregStatus(out)
	switch {
	case !strings.EqualFold(st["AzureAdJoined"], "YES"):
		return "the device is not Entra-joined", nil
	case !goes(st["TenantId"]):
		return "the device is joined to tenant " + st["TenantId"] + ", which stays", nil
	case !t.EntraLeave:
		return "", fmt.Errorf("the device is joined to the source tenant %s, and the project does not allow dsregcmd /leave (entra_leave)", st["TenantId"])
	}
	if out, err := e.h.Run(ctx, "dsregcmd", "/leave"); err != nil {
		return "", fmt.Errorf("dsregcmd /leave: %w: %s", err, strings.TrimSpace(out))
	}
	return "the device left the source tenant " + st["TenantId"] + " (dsregcmd /leave)", nil
}

// dsregStatus reads dsregcmd /status's "Name : value" lines.
func dsregStatus(out string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " : "); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}
