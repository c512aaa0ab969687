package mailparse_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/testenv/mimecorpus"
)

// The expected attachment hashes are not only the project's own word: Debian's ripmime, munpack
// (mpack) and uudecode (sharutils) extract the same bytes from the source messages. A text part
// (never base64 here) may come out of ripmime with one more CRLF: the one RFC 2046 (5.1.1) says
// belongs to the boundary that follows. A part kept whole (an attached message, which ripmime
// opens up instead of saving; an external body with its header) must stand in the source byte
// for byte.
func TestAttachmentsAgreeWithOtherTools(t *testing.T) {
	tools := map[string]string{"ripmime": "ripmime", "munpack": "mpack", "uudecode": "sharutils"}
	for tool, pkg := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s (Debian package %s) is not installed: run the tests through scripts/test", tool, pkg)
			}
			t.Skipf("%s (Debian package %s) is not installed; scripts/test installs it", tool, pkg)
		}
	}
	dir, exp := mimecorpus.Load(t)
	checked := 0
	for name, want := range exp {
		if len(want.Attachments) == 0 {
			continue
		}
		src := filepath.Join(dir, name)
		out := t.TempDir()
		run := func(sub string, args ...string) {
			d := filepath.Join(out, sub)
			os.MkdirAll(d, 0o755)
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Dir = d
			cmd.Run() // the tools exit non-zero on the damaged messages; what they wrote is what counts
		}
		run("ripmime", "ripmime", "-i", src, "-d", ".")
		run("munpack", "munpack", "-q", "-t", src)
		run("uudecode", "uudecode", "-o", "out.bin", src)
		exact, minusCRLF := map[string]string{}, map[string]string{}
		filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			data, _ := os.ReadFile(p)
			tool := strings.SplitN(strings.TrimPrefix(p, out+string(filepath.Separator)), string(filepath.Separator), 2)[0]
			exact[sum(data)] = tool
			if t, ok := bytes.CutSuffix(data, []byte("\r\n")); ok && tool == "ripmime" {
				minusCRLF[sum(t)] = tool
			}
			return nil
		})
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range want.Attachments {
			switch {
			case exact[a.SHA256] != "":
			case strings.HasPrefix(a.ContentType, "text/") && minusCRLF[a.SHA256] != "":
			case !containsWithHash(raw, a.Size, a.SHA256):
				t.Errorf("%s: no tool extracted %q (%d bytes, SHA-256 %s), nor does it stand in the source", name, a.Name, a.Size, a.SHA256[:12])
			}
			checked++
		}
	}
	if checked < 15 {
		t.Fatalf("checked %d attachments, want at least 15", checked)
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// containsWithHash reports whether some run of size bytes of raw hashes to want.
func containsWithHash(raw []byte, size int64, want string) bool {
	for i := 0; int64(i)+size <= int64(len(raw)); i++ {
		if sum(raw[i:int64(i)+size]) == want {
			return true
		}
	}
	return false
}
