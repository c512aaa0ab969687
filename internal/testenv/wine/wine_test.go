package wine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A booted prefix is whole and runs a Windows program; one that lost kernel32.dll, as Wine leaves
// it when its setup helper dies, is caught by the check instead of failing later with status 53.
func TestStartMakesAWholePrefix(t *testing.T) {
	p := Start(t)
	if err := p.whole(); err != nil {
		t.Fatal(err)
	}
	out, err := p.Command(context.Background(), "cmd", "/c", "echo", "ferry-wine-ok").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ferry-wine-ok") {
		t.Fatalf("cmd /c echo: %v %q", err, out)
	}
	if err := os.Remove(filepath.Join(p.Dir, "drive_c", "windows", "system32", "kernel32.dll")); err != nil {
		t.Fatal(err)
	}
	if err := p.whole(); err == nil || !strings.Contains(err.Error(), "kernel32.dll") {
		t.Fatalf("a prefix without kernel32.dll: %v, want an error naming it", err)
	}
}
