package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/secret"
	"github.com/ferry-migrate/ferry/internal/store"
)

// openCopyState opens the state file: a Ferry database holding one item for this pair.
func openCopyState(ctx context.Context, path string, src, dst endpointURL) (*store.Store, string, error) {
	if path == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = "."
		}
		sum := sha256.Sum256([]byte(src.String() + " -> " + dst.String()))
		path = filepath.Join(dir, "ferry", "copy-"+hex.EncodeToString(sum[:6])+".db")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", err
	}
	// The state holds no credentials; the keyring is only there because the store wants one.
	keys, _ := secret.NewKeyring(secret.GenerateKey())
	st, err := store.Open(ctx, "", "sqlite:"+path, keys)
	if err != nil {
		return nil, "", fmt.Errorf("state file %s: %w", path, err)
	}
	id, err := copyItem(ctx, st, src, dst)
	if err != nil {
		st.Close()
		return nil, "", fmt.Errorf("state file %s: %w", path, err)
	}
	return st, id, nil
}

func copyItem(ctx context.Context, st *store.Store, src, dst endpointURL) (string, error) {
	wg, err := st.Workgroup(ctx, "copy")
	if store.IsNotFound(err) {
		wg, err = st.CreateWorkgroup(ctx, "copy", true)
	}
	if err != nil {
		return "", err
	}
	ep := func(name string, e endpointURL) (model.Endpoint, error) {
		got, err := st.Endpoint(ctx, wg.ID, name)
		if store.IsNotFound(err) {
			return st.CreateEndpoint(ctx, model.Endpoint{WorkgroupID: wg.ID, Name: name, Kind: e.kind, Settings: e.settings})
		}
		return got, err
	}
	se, err := ep("source "+src.String(), src)
	if err != nil {
		return "", err
	}
	de, err := ep("target "+dst.String(), dst)
	if err != nil {
		return "", err
	}
	name := src.String() + " -> " + dst.String()
	prj, err := st.Project(ctx, []string{wg.ID}, name)
	if store.IsNotFound(err) {
		prj, err = st.CreateProject(ctx, model.Project{WorkgroupID: wg.ID, Name: name, Workload: model.WorkloadMailbox, SourceID: se.ID, TargetID: de.ID, CreatedBy: "ferry copy"})
	}
	if err != nil {
		return "", err
	}
	items, _, err := st.Items(ctx, prj.ID, store.ItemFilter{})
	if err != nil {
		return "", err
	}
	if len(items) == 1 {
		return items[0].ID, nil
	}
	if _, err := st.ImportItems(ctx, prj.ID, "ferry copy", []store.ItemInput{{SourceEmail: src.user, TargetEmail: dst.user}}); err != nil {
		return "", err
	}
	items, _, err = st.Items(ctx, prj.ID, store.ItemFilter{})
	if err != nil || len(items) != 1 {
		return "", fmt.Errorf("state item: %v", err)
	}
	return items[0].ID, nil
}
