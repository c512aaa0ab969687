package workstation

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ferry-migrate/ferry/internal/agent"
)

// teams clears the caches of classic Teams and of new Teams, so that both sign in afresh to the
// target tenant. Caches are deleted, not kept: Teams rebuilds them. Classic Teams' settings file,
// which names the signed-in tenant, is kept in the backup.
type teams struct{ base }

// classicTeamsCaches are the folders in %APPDATA%\Microsoft\Teams that hold the signed-in state.
var classicTeamsCaches = []string{"Application Cache", "blob_storage", "Cache", "Code Cache", "databases", "GPUCache", "IndexedDB", "Local Storage", "Service Worker", "Session Storage", "tmp", "Cookies", "Cookies-journal", "storage.json"}

func (t teams) Run(ctx context.Context, job agent.Job) (string, error) {
	h := t.h
	classic := filepath.Join(h.AppData, "Microsoft", "Teams")
	newTeams := filepath.Join(h.LocalAppData, "Packages", "MSTeams_8wekyb3d8bbwe", "LocalCache")
	_, errC := os.Stat(classic)
	_, errN := os.Stat(newTeams)
	if errC != nil && errN != nil {
		return "", fmt.Errorf("%w: neither classic nor new Teams has a cache", agent.ErrSkip)
	}
	detail, err := h.closeApps(ctx, job.Target, "Teams", "Teams.exe", "ms-teams.exe")
	if err != nil {
		return "", err
	}
	j, err := h.journal(job.Backup)
	if err != nil {
		return "", err
	}
	var freed int64
	if errC == nil {
		if _, err := j.moveAside(filepath.Join(classic, "desktop-config.json")); err != nil {
			return "", err
		}
		for _, c := range classicTeamsCaches {
			n, err := removeAll(filepath.Join(classic, c))
			if err != nil {
				return "", err
			}
			freed += n
		}
		detail += "classic Teams cache cleared; "
	}
	if errN == nil {
		entries, err := os.ReadDir(newTeams)
		if err != nil {
			return "", err
		}
		for _, e := range entries {
			n, err := removeAll(filepath.Join(newTeams, e.Name()))
			if err != nil {
				return "", err
			}
			freed += n
		}
		detail += "new Teams cache cleared; "
	}
	return fmt.Sprintf("%s%.1f MB freed", detail, float64(freed)/1e6), nil
}

// removeAll deletes a file or folder and returns the bytes it held. It removes one entry at a
// time, children first, instead of calling os.RemoveAll: on Windows that uses a file-disposition
// call Wine does not implement, and the tests run the agent under Wine.
func removeAll(path string) (int64, error) {
	var n int64
	var dirs []string
	err := filepath.Walk(path, func(p string, fi os.FileInfo, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		case fi.IsDir():
			dirs = append(dirs, p)
			return nil
		}
		n += fi.Size()
		return os.Remove(p)
	})
	for i := len(dirs) - 1; err == nil && i >= 0; i-- {
		err = os.Remove(dirs[i])
	}
	if err != nil {
		return 0, fmt.Errorf("clearing %s (is the application still running?): %w", path, err)
	}
	return n, nil
}
