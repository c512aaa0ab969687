package imap_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// peakRSSFile names, in a re-executed test binary, the file to write its child's peak RSS to.
const peakRSSFile = "FERRY_PEAK_RSS_FILE"

func TestMain(m *testing.M) {
	if path := os.Getenv(peakRSSFile); path != "" {
		os.Exit(runMeasured(path, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// measuredCommand returns a command that runs name with args through a fresh copy of this test
// binary, and a function that reads the child's peak RSS in KiB once the command has run.
//
// Go starts children with vfork, and Linux folds the parent's high-water RSS into a child's
// ru_maxrss when the child execs. Read directly, a child of the benchmark would report the
// benchmark's own peak (which holds generated messages of up to 20 MB), not the child's. The
// fresh copy is small at that moment, so the figure it passes back is the child's own.
func measuredCommand(tb testing.TB, name string, args ...string) (*exec.Cmd, func() int64) {
	path := tb.TempDir() + "/peak-rss"
	cmd := exec.Command(os.Args[0], append([]string{name}, args...)...)
	cmd.Env = append(os.Environ(), peakRSSFile+"="+path)
	return cmd, func() int64 {
		data, err := os.ReadFile(path)
		if err != nil {
			tb.Fatalf("peak RSS of %s: %v", name, err)
		}
		kib, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err != nil {
			tb.Fatalf("peak RSS of %s: %v", name, err)
		}
		return kib
	}
}

// runMeasured runs argv with this process's stdio, writes its peak RSS in KiB to path, and
// returns its exit code.
func runMeasured(path string, argv []string) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	maxrss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
	if werr := os.WriteFile(path, []byte(strconv.FormatInt(maxrss, 10)), 0o600); werr != nil {
		fmt.Fprintln(os.Stderr, werr)
		return 1
	}
	return cmd.ProcessState.ExitCode()
}

// TestPeakRSSIsTheChildsOwn holds 256 MiB in this process and checks that a small child's
// measured peak stays small.
func TestPeakRSSIsTheChildsOwn(t *testing.T) {
	ballast := make([]byte, 256<<20)
	for i := range ballast {
		ballast[i] = byte(i)
	}
	cmd, peakRSS := measuredCommand(t, "/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	kib := peakRSS()
	if kib <= 0 || kib > 64<<10 {
		t.Fatalf("peak RSS of /bin/true measured as %d KiB, want (0, 64 MiB]", kib)
	}
	direct := exec.Command("/bin/true")
	if err := direct.Run(); err != nil {
		t.Fatal(err)
	}
	t.Logf("peak RSS of /bin/true: %d KiB measured, %d KiB read directly", kib,
		direct.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
	runtime.KeepAlive(ballast)
}
