package workstation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-migrate/ferry/internal/agent/winreg"
)

// journal records, before each change a task makes, what was there: a value, a whole key, or a
// file or folder moved into the backup. It is saved after every entry, so a task stopped half-way
// still knows the workstation's original state when it runs again; the first record of a thing
// is the one kept.
type journal struct {
	h       *Host
	dir     string
	Entries []entry `json:"entries"`
}

type entry struct {
	Op   string `json:"op"` // value, key, file, created
	Key  string `json:"key,omitempty"`
	Name string `json:"name,omitempty"`
	// Before is a value's old content; nil when there was none.
	Before *winreg.Value `json:"before,omitempty"`
	// Tree is a key's old content; nil when there was none.
	Tree *winreg.Tree `json:"tree,omitempty"`
	// Path is where a file or folder was (or was created); Saved where the backup keeps it.
	Path  string `json:"path,omitempty"`
	Saved string `json:"saved,omitempty"`
}

func (e entry) id() string { return strings.ToLower(e.Op + "|" + e.Key + "|" + e.Name + "|" + e.Path) }

func (h *Host) journal(dir string) (*journal, error) {
	j := &journal{h: h, dir: dir}
	data, err := os.ReadFile(j.file())
	if errors.Is(err, fs.ErrNotExist) {
		return j, nil
	} else if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, j); err != nil {
		return nil, fmt.Errorf("backup %s is damaged: %w", j.file(), err)
	}
	return j, nil
}

func (j *journal) file() string { return filepath.Join(j.dir, "journal.json") }

func (j *journal) find(e entry) (entry, bool) {
	for _, old := range j.Entries {
		if old.id() == e.id() {
			return old, true
		}
	}
	return entry{}, false
}

func (j *journal) record(e entry) error {
	if _, ok := j.find(e); ok {
		return nil
	}
	j.Entries = append(j.Entries, e)
	data, _ := json.MarshalIndent(j, "", " ")
	tmp := j.file() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, j.file())
}

// setValue changes a value, unless it already holds v.
func (j *journal) setValue(key, name string, v winreg.Value) (changed bool, err error) {
	old, ok, err := winreg.Get(j.h.Reg, key, name)
	if err != nil || ok && old.Equal(v) {
		return false, err
	}
	if err := j.newKeys(key); err != nil {
		return false, err
	}
	e := entry{Op: "value", Key: key, Name: name}
	if ok {
		e.Before = &old
	}
	if err := j.record(e); err != nil {
		return false, err
	}
	return true, j.h.Reg.SetValue(key, name, v)
}

func (j *journal) deleteValue(key, name string) error {
	old, ok, err := winreg.Get(j.h.Reg, key, name)
	if err != nil || !ok {
		return err
	}
	if err := j.record(entry{Op: "value", Key: key, Name: name, Before: &old}); err != nil {
		return err
	}
	return j.h.Reg.DeleteValue(key, name)
}

// newKeys records the first of key's ancestors (or key itself) that is not there, which setting
// a value under key creates, so that a rollback removes it again.
func (j *journal) newKeys(key string) error {
	parts := strings.Split(key, `\`)
	for i := 2; i <= len(parts); i++ {
		k := strings.Join(parts[:i], `\`)
		if ok, err := winreg.Exists(j.h.Reg, k); err != nil || !ok {
			if err == nil {
				err = j.record(entry{Op: "key", Key: k})
			}
			return err
		}
	}
	return nil
}

// saveKey records a key with everything below it, before the task creates, changes or deletes it.
func (j *journal) saveKey(key string) error {
	e := entry{Op: "key", Key: key}
	t, err := winreg.Export(j.h.Reg, key)
	switch {
	case errors.Is(err, winreg.ErrNotExist):
	case err != nil:
		return err
	default:
		e.Tree = t
	}
	return j.record(e)
}

func (j *journal) deleteKey(key string) error {
	if err := j.saveKey(key); err != nil {
		return err
	}
	return j.h.Reg.DeleteKey(key)
}

// copyKey makes to a copy of from; to's old content is recorded first.
func (j *journal) copyKey(from, to string) error {
	t, err := winreg.Export(j.h.Reg, from)
	if err != nil {
		return err
	}
	if err := j.saveKey(to); err != nil {
		return err
	}
	return winreg.Import(j.h.Reg, to, t)
}

// moveAside moves a file or folder into the backup. It reports whether there was one.
func (j *journal) moveAside(path string) (bool, error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	e := entry{Op: "file", Path: path, Saved: filepath.Join(j.dir, "files", fmt.Sprintf("%03d-%s", len(j.Entries), filepath.Base(path)))}
	if prev, ok := j.find(e); ok {
		e = prev
		if _, err := os.Lstat(e.Saved); err == nil {
			// Moved aside before: the backup keeps the original, and this is newer.
			_, err := removeAll(path)
			return true, err
		}
	} else if err := j.record(e); err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(e.Saved), 0o700); err != nil {
		return false, err
	}
	return true, os.Rename(path, e.Saved)
}

// created records a file the task writes, which a rollback removes.
func (j *journal) created(path string) error { return j.record(entry{Op: "created", Path: path}) }

// Rollback undoes a task's journal, newest change first, and removes the backup.
func (h *Host) Rollback(_ context.Context, backup string) (string, error) {
	j, err := h.journal(backup)
	if err != nil {
		return "", err
	}
	var errs []error
	for i := len(j.Entries) - 1; i >= 0; i-- {
		e, err := j.Entries[i], error(nil)
		switch e.Op {
		case "value":
			if e.Before == nil {
				err = h.Reg.DeleteValue(e.Key, e.Name)
			} else {
				err = h.Reg.SetValue(e.Key, e.Name, *e.Before)
			}
		case "key":
			if err = h.Reg.DeleteKey(e.Key); err == nil && e.Tree != nil {
				err = winreg.Import(h.Reg, e.Key, e.Tree)
			}
		case "file":
			if _, serr := os.Lstat(e.Saved); serr == nil {
				if _, err = removeAll(e.Path); err == nil {
					err = os.Rename(e.Saved, e.Path)
				}
			}
		case "created":
			_, err = removeAll(e.Path)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("undoing %s %s%s: %w", e.Op, e.Key, e.Path, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	if _, err := removeAll(backup); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d changes undone", len(j.Entries)), nil
}
