// Package reference finds the data tests use that is not the project's own: Microsoft's Graph
// CSDL and documentation samples, the EWS schemas, a public MIME corpus. It lives in the folder
// FERRY_REFERENCE_DIR names, or else in ../shared beside the repository. Without it, the tests
// that need it skip with one line naming the variable; under CI=true they fail instead, so CI can
// never pass with them silently missing.
package reference

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Env is the variable that names the reference folder.
const Env = "FERRY_REFERENCE_DIR"

// SkippedLogEnv names a file that each skip appends one line to, so scripts/test can list them.
const SkippedLogEnv = "FERRY_SKIPPED_LOG"

// Dir returns the reference folder and whether it exists.
func Dir() (string, bool) {
	dir := os.Getenv(Env)
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return "", false
		}
		dir = filepath.Join(filepath.Dir(root), "shared")
	}
	st, err := os.Stat(dir)
	return dir, err == nil && st.IsDir()
}

// Path returns the reference file or folder at rel (slash-separated, inside the reference
// folder). When the folder or the file is missing the test skips, or fails under CI=true or when
// FERRY_REFERENCE_DIR names a folder that does not exist.
func Path(t testing.TB, rel string) string {
	t.Helper()
	p, why := find(rel)
	if why == "" {
		return p
	}
	missing(t, why)
	report(t, "skipped", why)
	t.Skip(why)
	return ""
}

// Optional is Path for a test that also runs without the reference data, on the project's own
// data alone: it says so in the test log and the skipped list instead of skipping.
func Optional(t testing.TB, rel string) (string, bool) {
	t.Helper()
	p, why := find(rel)
	if why == "" {
		return p, true
	}
	missing(t, why)
	report(t, "ran without it", why)
	t.Log(why)
	return "", false
}

// Own returns a path inside the repository, for the project's own test data ("testdata/mime").
func Own(t testing.TB, rel string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, filepath.FromSlash(rel))
}

func find(rel string) (path, why string) {
	dir, ok := Dir()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if ok {
		if _, err := os.Stat(p); err == nil {
			return p, ""
		}
	}
	return "", fmt.Sprintf("reference data %s not found (set %s to the folder holding reference/ and testdata/)", p, Env)
}

// missing fails the test where reference data must be there: in CI, and where FERRY_REFERENCE_DIR
// was set on purpose.
func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" || os.Getenv(Env) != "" {
		t.Fatal(why)
	}
}

// report appends one line for scripts/test's list of tests that lacked reference data.
func report(t testing.TB, what, why string) {
	log := os.Getenv(SkippedLogEnv)
	if log == "" {
		return
	}
	if f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintf(f, "%s (%s): %s\n", t.Name(), what, why)
		f.Close()
	}
}

// repoRoot is the nearest folder above the working directory (a test's package folder) that
// holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// MIMECorpus lists the project's own malformed and legacy messages (testdata/mime) and, where the
// reference data is there, the public MIME corpus beside them.
func MIMECorpus(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(Own(t, "testdata/mime"), "*.eml"))
	if err != nil || len(files) < 20 {
		t.Fatalf("testdata/mime holds %d messages (%v), want at least 20", len(files), err)
	}
	if dir, ok := Optional(t, "testdata/mime-enmime"); ok {
		more, err := filepath.Glob(filepath.Join(dir, "*.raw"))
		if err != nil || len(more) < 50 {
			t.Fatalf("reference MIME corpus %s: %d files, %v", dir, len(more), err)
		}
		files = append(files, more...)
	}
	return files
}
