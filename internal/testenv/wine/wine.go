// Package wine runs Windows builds of Ferry's programs under Debian's Wine for tests: a fresh
// prefix per test, with the ProcessPrng shim Go binaries need on Wine 8 (see docs/DESIGN.md), and
// reading the prefix's registry files.
package wine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shim exports ProcessPrng, which Go's runtime calls at start and Wine 8's bcryptprimitives.dll
// lacks, forwarding it to advapi32's RtlGenRandom (SystemFunction036).
const shim = `#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len);
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
	while (len > 0) {
		ULONG n = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
		if (!SystemFunction036(data, n)) return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
`

const shimDef = "LIBRARY bcryptprimitives\nEXPORTS\nProcessPrng\n"

// Binary finds wine64: Debian's wine64 package puts it in /usr/lib/wine.
func Binary() string {
	for _, p := range []string{"/usr/lib/wine/wine64", "/usr/bin/wine64", "/usr/bin/wine"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, _ := exec.LookPath("wine64")
	return p
}

// Prefix is a Wine prefix: a Windows installation in a folder.
type Prefix struct {
	Dir  string
	wine string
	env  []string
}

// Start makes a prefix for the test and shuts its wineserver down at cleanup. Without Wine or
// MinGW the test fails in CI and is skipped elsewhere.
func Start(t testing.TB) *Prefix {
	t.Helper()
	bin, cc := Binary(), "x86_64-w64-mingw32-gcc"
	if _, err := exec.LookPath(cc); bin == "" || err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("wine64 or gcc-mingw-w64-x86-64 is not installed: run the tests through scripts/test")
		}
		t.Skip("wine64 or gcc-mingw-w64-x86-64 not installed; scripts/test installs them")
	}
	dir, err := os.MkdirTemp("", "ferry-wine-")
	if err != nil {
		t.Fatal(err)
	}
	p := &Prefix{Dir: filepath.Join(dir, "prefix"), wine: bin}
	p.env = append(os.Environ(), "WINEPREFIX="+p.Dir, "WINEDEBUG=-all", "WINEDLLOVERRIDES=bcryptprimitives=n;mscoree,mshtml=", "DISPLAY=")
	t.Cleanup(func() {
		p.server("-k").Run()
		os.RemoveAll(dir)
	})
	src, def, dll := filepath.Join(dir, "shim.c"), filepath.Join(dir, "shim.def"), filepath.Join(dir, "bcryptprimitives.dll")
	os.WriteFile(src, []byte(shim), 0o644)
	os.WriteFile(def, []byte(shimDef), 0o644)
	if out, err := exec.Command(cc, "-shared", "-O2", "-o", dll, src, def, "-ladvapi32").CombinedOutput(); err != nil {
		t.Fatalf("building the ProcessPrng shim: %v\n%s", err, out)
	}
	if out, err := p.boot(t); err != nil {
		// Wine's prefix setup runs in helper processes (wineboot, rundll32 DefaultInstall) whose
		// failure wineboot does not check: the prefix is then left without kernel32.dll and the
		// next Wine program exits with status 53 (c0000135). That is inside Wine, so the test
		// says what Wine said and boots once more into a fresh folder.
		t.Logf("Wine left an incomplete prefix (%v); booting once more. Wine said:\n%s", err, out)
		p.server("-k").Run()
		if err := os.RemoveAll(p.Dir); err != nil {
			t.Fatal(err)
		}
		if out, err := p.boot(t); err != nil {
			t.Fatalf("wineboot, second try: %v\n%s", err, out)
		}
	}
	data, _ := os.ReadFile(dll)
	if err := os.WriteFile(filepath.Join(p.Dir, "drive_c", "windows", "system32", "bcryptprimitives.dll"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// boot makes the prefix with wineboot and checks that it is whole: wineboot reports success even
// when its setup helper died before copying the system DLLs. Wine's own error lines are kept
// (WINEDEBUG=err+all for the boot only), so a failure names its cause.
func (p *Prefix) boot(t testing.TB) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.wine, "wineboot", "--init")
	cmd.Env = append(p.env, "WINEDEBUG=err+all,fixme-all")
	out, err := cmd.CombinedOutput()
	if werr := p.server("-w").Run(); err == nil && werr != nil {
		err = fmt.Errorf("wineserver -w: %w", werr)
	}
	if err != nil {
		return out, fmt.Errorf("wineboot: %w", err)
	}
	return out, p.whole()
}

// whole checks that the prefix has what every Wine program loads first.
func (p *Prefix) whole() error {
	for _, f := range []string{"drive_c/windows/system32/kernel32.dll", "drive_c/windows/system32/ntdll.dll", "system.reg", "user.reg"} {
		if _, err := os.Stat(filepath.Join(p.Dir, f)); err != nil {
			return fmt.Errorf("the prefix lacks %s", f)
		}
	}
	return nil
}

// Command is a Windows program run in the prefix.
func (p *Prefix) Command(ctx context.Context, exe string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p.wine, append([]string{exe}, args...)...)
	cmd.Env = p.env
	return cmd
}

// Wait waits until every program in the prefix has ended and Wine has written the registry
// back to user.reg and system.reg.
func (p *Prefix) Wait(t testing.TB) {
	t.Helper()
	if out, err := p.server("-w").CombinedOutput(); err != nil {
		t.Fatalf("wineserver -w: %v\n%s", err, out)
	}
}

// server is a wineserver command for the prefix: the one beside wine64, else the one on PATH.
func (p *Prefix) server(arg string) *exec.Cmd {
	server := filepath.Join(filepath.Dir(p.wine), "wineserver")
	if _, err := os.Stat(server); err != nil {
		server = "wineserver"
	}
	cmd := exec.Command(server, arg)
	cmd.Env = p.env
	return cmd
}

// Path turns a Windows path on C: into the host's path of it.
func (p *Prefix) Path(win string) string {
	rest, ok := strings.CutPrefix(strings.ToUpper(win[:3]), `C:\`)
	if !ok || rest != "" {
		panic("not a path on C: " + win)
	}
	return filepath.Join(p.Dir, "drive_c", filepath.FromSlash(strings.ReplaceAll(win[3:], `\`, "/")))
}

// User is the Windows account Wine signs the tests in as: the host's user name.
func (p *Prefix) User() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

// Import merges a REGEDIT4 file into the prefix's registry.
func (p *Prefix) Import(t testing.TB, reg string) {
	t.Helper()
	f := filepath.Join(p.Dir, "drive_c", "seed.reg")
	if err := os.WriteFile(f, []byte(strings.ReplaceAll(reg, "\n", "\r\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := p.Command(context.Background(), "regedit", "/S", `C:\seed.reg`).CombinedOutput(); err != nil {
		t.Fatalf("regedit: %v\n%s", err, out)
	}
	p.Wait(t)
}

// Registry reads user.reg (HKCU) or system.reg (HKLM) as keys, below their root, to values as
// the file writes them (`"text"`, `dword:00000001`, `hex:…`). Call Wait first.
func (p *Prefix) Registry(t testing.TB, file string) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(p.Dir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]string{}
	var key string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var pending string
	for sc.Scan() {
		line := sc.Text()
		if pending != "" {
			line = pending + strings.TrimLeft(line, " ")
		}
		pending = ""
		if strings.HasSuffix(line, `\`) && !strings.HasPrefix(line, "[") { // continued hex
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		switch {
		case strings.HasPrefix(line, "["):
			end := strings.LastIndex(line, "]")
			key = strings.ToLower(strings.ReplaceAll(line[1:end], `\\`, `\`))
			out[key] = map[string]string{}
		case strings.HasPrefix(line, `"`) || strings.HasPrefix(line, "@="):
			name, val, ok := cutValue(line)
			if ok && key != "" {
				out[key][strings.ToLower(name)] = val
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// cutValue splits `"name"=value`, unescaping the name and a string value.
func cutValue(line string) (string, string, bool) {
	if strings.HasPrefix(line, "@=") {
		return "", unquote(line[2:]), true
	}
	i := 1
	for ; i < len(line); i++ {
		if line[i] == '\\' {
			i++
		} else if line[i] == '"' {
			break
		}
	}
	if i+1 >= len(line) || line[i+1] != '=' {
		return "", "", false
	}
	return unquote(line[:i+1]), unquote(line[i+2:]), true
}

func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// String quotes a value for a REGEDIT4 file.
func String(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Hex writes bytes as a REGEDIT4 hex value.
func Hex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return "hex:" + strings.Join(parts, ",")
}
