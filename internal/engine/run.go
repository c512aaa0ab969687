package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/model"
)

// runItem does the pass's work for one item; progress receives the running totals.
func (e *Engine) runItem(ctx context.Context, a ItemArgs, progress func(Progress)) (model.ItemStats, []FolderResult, error) {
	var stats model.ItemStats
	it, err := e.st.ItemWithSecret(ctx, a.ItemID)
	if err != nil {
		return stats, nil, err
	}
	p, err := e.st.Project(ctx, nil, it.ProjectID)
	if err != nil {
		return stats, nil, err
	}
	passes, err := e.st.Passes(ctx, p.ID, 0)
	if err != nil {
		return stats, nil, err
	}
	var pass model.Pass
	for _, ps := range passes {
		if ps.ID == a.PassID {
			pass = ps
		}
	}
	if pass.ID == "" {
		return stats, nil, connector.Classify(connector.Fatal, fmt.Errorf("pass %s not found", a.PassID))
	}
	if p.Workload != model.WorkloadMailbox && p.Workload != model.WorkloadArchive {
		return stats, nil, connector.Classify(connector.Fatal, fmt.Errorf("project %s moves %s, which Ferry cannot run yet: only mailbox and archive projects run", p.Name, p.Workload))
	}
	src, srcConn, err := e.side(ctx, p.SourceID, it.SourceEmail, it.SourceLogin, secretOf(it, true))
	if err != nil {
		return stats, nil, err
	}
	dst, dstConn, err := e.side(ctx, p.TargetID, it.TargetEmail, it.TargetLogin, secretOf(it, false))
	if err != nil {
		return stats, nil, err
	}
	src.Workload, dst.Workload = p.Workload, p.Workload
	if pass.Type == model.PassVerify {
		if err := srcConn.Verify(ctx, src); err != nil {
			return stats, nil, connector.Classify(connector.Fatal, fmt.Errorf("source %s: %w", it.SourceEmail, err))
		}
		if err := dstConn.Verify(ctx, dst); err != nil {
			return stats, nil, connector.Classify(connector.Fatal, fmt.Errorf("target %s: %w", it.TargetEmail, err))
		}
		return stats, nil, nil
	}
	opts, err := e.copyOptions(p, pass, it.ID)
	if err != nil {
		return stats, nil, connector.Classify(connector.Fatal, err)
	}
	opts.Progress = progress
	// Folders in parallel, one per source connection the endpoint allows.
	if opts.Connections = src.Endpoint.Settings.Connections; opts.Connections <= 0 {
		opts.Connections = DefaultConnections
	}
	source, err := srcConn.OpenSource(ctx, src)
	if err != nil {
		return stats, nil, fmt.Errorf("open source %s: %w", it.SourceEmail, err)
	}
	defer source.Close()
	target, err := dstConn.OpenTarget(ctx, dst)
	if err != nil {
		return stats, nil, fmt.Errorf("open target %s: %w", it.TargetEmail, err)
	}
	defer target.Close()
	return CopyMailbox(ctx, e.st, source, target, opts)
}

// DefaultConnections is how many folders of one mailbox are copied at once unless the endpoint says.
const DefaultConnections = 4

func secretOf(it model.Item, source bool) string {
	if it.Secret == nil {
		return ""
	}
	if source {
		return it.Secret.SourcePassword
	}
	return it.Secret.TargetPassword
}

func (e *Engine) side(ctx context.Context, endpointID, email, login, password string) (connector.Side, connector.Connector, error) {
	ep, err := e.st.EndpointWithSecret(ctx, endpointID)
	if err != nil {
		return connector.Side{}, nil, err
	}
	c, err := connector.For(ep.Kind)
	if err != nil {
		return connector.Side{}, nil, connector.Classify(connector.Fatal, err)
	}
	if login == "" {
		login = email
	}
	return connector.Side{Endpoint: ep, Email: email, Login: login, Password: password}, c, nil
}

func (e *Engine) copyOptions(p model.Project, pass model.Pass, itemID string) (CopyOptions, error) {
	inc, exc, rules, err := CompileOptions(p.Options)
	if err != nil {
		return CopyOptions{}, fmt.Errorf("project %s: %w", p.Name, err)
	}
	o := CopyOptions{ItemID: itemID, PassID: pass.ID, Include: inc, Exclude: exc, FolderMap: rules,
		// Only a full pass sees every object, so only it may conclude that one is gone.
		PropagateDeletions: p.Options.PropagateDeletions && pass.Type == model.PassFull}
	day := 24 * time.Hour
	switch {
	case pass.Type == model.PassPrestage && pass.OlderThan > 0:
		o.OlderThan = time.Duration(pass.OlderThan) * day
	case pass.Type == model.PassPrestage && p.Options.OlderThanDays > 0:
		o.OlderThan = time.Duration(p.Options.OlderThanDays) * day
	}
	if p.Options.NewerThanDays > 0 {
		o.NewerThan = time.Duration(p.Options.NewerThanDays) * day
	}
	return o, nil
}
