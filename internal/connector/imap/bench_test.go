package imap_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
)

// BenchmarkCopyVsMbsync copies one generated mailbox (3,000+ messages, 800+ MB, 16 folders, sizes
// up to 20 MB) from a Dovecot to fresh Dovecots, with `ferry copy` and with mbsync (Debian's
// isync), in the same run, and checks Ferry's copy is byte-identical with flags, keywords and
// internal dates. Run with -benchtime 1x; it needs 1.5 GB of /tmp and 3 GB more per round.
//
//	go test -run '^$' -bench CopyVsMbsync -benchtime 1x -timeout 30m ./internal/connector/imap/
//
// The machine's speed drifts from run to run, and on a VM the tool that runs first after memory
// was freed can be much faster (see pageReporting), so the two tools are timed in paired
// rounds, taking turns at going first, and the reported ratio is the median of the
// rounds' ratios (ratio-min and ratio-max give the spread). FERRY_BENCH_ROUNDS sets the number of
// rounds (default 3); FERRY_BENCH_CONNECTIONS sets ferry copy's --connections (default 4).
func BenchmarkCopyVsMbsync(b *testing.B) {
	mbsync, err := exec.LookPath("mbsync")
	if err != nil {
		b.Skip("mbsync not installed (apt-get install isync)")
	}
	rounds := 3
	if v := os.Getenv("FERRY_BENCH_ROUNDS"); v != "" {
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			b.Fatalf("FERRY_BENCH_ROUNDS=%q: want a positive whole number", v)
		}
	}
	conns := os.Getenv("FERRY_BENCH_CONNECTIONS")
	if conns == "" {
		conns = "4"
	}
	if r := pageReporting(); r != "" {
		b.Logf("free page reporting: %s (see docs/BENCHMARKS.md: pages the host took back cost a fault when the page cache next fills them)", r)
	}
	src := dovecot.Start(b, dovecot.Options{Users: []string{"alice"}})
	folders := generate(b, src)
	want := mailboxState(b, src)

	bin := filepath.Join(b.TempDir(), "ferry")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../cmd/ferry").CombinedOutput(); err != nil {
		b.Fatalf("build ferry: %v\n%s", err, out)
	}
	url := func(s *dovecot.Server) string {
		return fmt.Sprintf("imap://alice:%s@%s/?security=none", dovecot.Password("alice"), s.Addr)
	}
	cpu := func(p *os.ProcessState) time.Duration { return p.UserTime() + p.SystemTime() }
	runFerry := func(dst *dovecot.Server, state string) (wall, cpuTime time.Duration, peakKiB int64) {
		cmd, peakRSS := measuredCommand(b, bin, "copy", url(src), url(dst), "--state", state, "--connections", conns)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("ferry copy: %v\n%s", err, out.String())
		}
		return time.Since(start), cpu(cmd.ProcessState), peakRSS()
	}
	// Each tool starts with nothing left to write back (the generator's or the other tool's 1.5 GB
	// would otherwise be flushed during its run), and Dovecot's CPU is read from its master's
	// reaped children: let the previous sessions end.
	settle := func() {
		syscall.Sync()
		time.Sleep(2 * time.Second)
	}
	// serverCPU runs f and returns the CPU the source and dst Dovecots spent meanwhile.
	serverCPU := func(dst *dovecot.Server, f func()) (srcCPU, dstCPU time.Duration) {
		settle()
		s0, d0 := src.CPU(), dst.CPU()
		f()
		time.Sleep(time.Second)
		return src.CPU() - s0, dst.CPU() - d0
	}
	var res []roundResult
	b.ResetTimer()
	for i := range rounds {
		var r roundResult
		ferryDst := dovecot.Start(b, dovecot.Options{Users: []string{"alice"}})
		mbsyncDst := dovecot.Start(b, dovecot.Options{Users: []string{"alice"}})
		state := filepath.Join(b.TempDir(), "state.db")
		ferry := func() {
			r.ferrySrc, r.ferryDst = serverCPU(ferryDst, func() {
				var kib int64
				r.ferry, r.ferryCPU, kib = runFerry(ferryDst, state)
				r.peakKiB = max(r.peakKiB, kib)
			})
			var kib int64
			r.delta, _, kib = runFerry(ferryDst, state)
			r.peakKiB = max(r.peakKiB, kib)
		}
		mb := func() {
			r.mbSrc, r.mbDst = serverCPU(mbsyncDst, func() { r.mbsync, r.mbsyncCPU = runMbsync(b, mbsync, src, mbsyncDst) })
		}
		first := "ferry"
		if i%2 == 0 {
			ferry()
			mb()
		} else {
			first = "mbsync"
			mb()
			ferry()
		}

		// Verify Ferry's copy: every message byte-identical, with flags, keywords and internal date.
		got := mailboxState(b, ferryDst)
		if identical := countIdentical(want, got); identical != len(want) || len(got) != len(want) {
			b.Fatalf("round %d: ferry: %d of %d messages identical (target holds %d)", i+1, identical, len(want), len(got))
		}
		r.mbIdentical = countIdentical(want, mailboxState(b, mbsyncDst))
		res = append(res, r)
		b.Logf("round %d (%s first): ferry %s (cpu %s; dovecot %s + %s), delta %s, peak RSS %d MB; mbsync %s (cpu %s; dovecot %s + %s); ratio %.2f",
			i+1, first, r.ferry.Round(time.Millisecond), r.ferryCPU.Round(10*time.Millisecond), r.ferrySrc.Round(10*time.Millisecond), r.ferryDst.Round(10*time.Millisecond),
			r.delta.Round(time.Millisecond), r.peakKiB/1024,
			r.mbsync.Round(time.Millisecond), r.mbsyncCPU.Round(10*time.Millisecond), r.mbSrc.Round(10*time.Millisecond), r.mbDst.Round(10*time.Millisecond),
			r.ratio())
	}
	b.StopTimer()

	median := func(f func(roundResult) float64) float64 {
		v := make([]float64, len(res))
		for i, r := range res {
			v[i] = f(r)
		}
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	ratios := make([]float64, len(res))
	var worstDelta time.Duration
	var peakKiB int64
	mbIdentical := len(want)
	for i, r := range res {
		ratios[i] = r.ratio()
		worstDelta, peakKiB = max(worstDelta, r.delta), max(peakKiB, r.peakKiB)
		mbIdentical = min(mbIdentical, r.mbIdentical)
	}
	ratio := median(roundResult.ratio)
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
	b.ReportMetric(median(func(r roundResult) float64 { return r.ferry.Seconds() }), "ferry-full-s")
	b.ReportMetric(median(func(r roundResult) float64 { return r.mbsync.Seconds() }), "mbsync-full-s")
	b.ReportMetric(worstDelta.Seconds(), "ferry-delta-max-s")
	b.ReportMetric(float64(peakKiB)/1024, "ferry-peak-rss-MB")
	b.ReportMetric(median(func(r roundResult) float64 { return r.ferryCPU.Seconds() }), "ferry-cpu-s")
	b.ReportMetric(median(func(r roundResult) float64 { return r.mbsyncCPU.Seconds() }), "mbsync-cpu-s")
	// Each server's share, to tell which side a difference comes from.
	b.ReportMetric(median(func(r roundResult) float64 { return r.ferrySrc.Seconds() }), "src-dovecot-cpu-s-under-ferry")
	b.ReportMetric(median(func(r roundResult) float64 { return r.ferryDst.Seconds() }), "dst-dovecot-cpu-s-under-ferry")
	b.ReportMetric(median(func(r roundResult) float64 { return r.mbSrc.Seconds() }), "src-dovecot-cpu-s-under-mbsync")
	b.ReportMetric(median(func(r roundResult) float64 { return r.mbDst.Seconds() }), "dst-dovecot-cpu-s-under-mbsync")
	// The run is CPU-bound and the two Dovecots share the machine's cores with the client: no
	// client can finish before the servers' own CPU, spread over every core, is spent.
	b.ReportMetric(median(func(r roundResult) float64 {
		return (r.ferrySrc + r.ferryDst).Seconds() / float64(runtime.NumCPU()) / r.mbsync.Seconds()
	}), "servers-cpu-floor-ratio")
	b.ReportMetric(100, "ferry-identical-%") // every round checked above, or the benchmark failed
	b.ReportMetric(100*float64(mbIdentical)/float64(len(want)), "mbsync-identical-%")
	b.Logf("%d messages in %d folders, %d rounds; median ratio %.2f (%.2f-%.2f); worst delta %s; peak RSS %d MB; identical: ferry %d/%d every round, mbsync %d/%d in its worst round",
		len(want), folders, len(res), ratio, slices.Min(ratios), slices.Max(ratios),
		worstDelta.Round(time.Millisecond), peakKiB/1024, len(want), len(want), mbIdentical, len(want))
}

// roundResult is what one round of BenchmarkCopyVsMbsync measured.
type roundResult struct {
	ferry, mbsync, delta             time.Duration
	ferryCPU, mbsyncCPU              time.Duration
	ferrySrc, ferryDst, mbSrc, mbDst time.Duration // source and target Dovecots' CPU under each tool
	peakKiB                          int64
	mbIdentical                      int
}

func (r roundResult) ratio() float64 { return r.ferry.Seconds() / r.mbsync.Seconds() }

// countIdentical counts the messages of want that got holds with the same hash, flags and date.
func countIdentical(want, got map[string]string) int {
	n := 0
	for k, v := range want {
		if got[k] == v {
			n++
		}
	}
	return n
}

// pageReporting describes the guest's free page reporting settings, if the kernel has them: on a
// VM that hands free memory back to its host, every page the target Dovecot's page cache takes
// costs a host fault, which can double the servers' CPU and slows both tools alike.
func pageReporting() string {
	dir := "/sys/module/page_reporting/parameters"
	var parts []string
	for _, name := range []string{"page_reporting_order", "min_free_ms"} {
		if v, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			parts = append(parts, name+"="+strings.TrimSpace(string(v)))
		}
	}
	return strings.Join(parts, " ")
}

// generate APPENDs the benchmark mailbox: 3,000 messages over 16 folders; 2,880 of 4-60 KB and
// 120 of 2-20 MB (two of exactly 20 MB); flags, keywords and distinct dates. Deterministic.
func generate(b testing.TB, s *dovecot.Server) int {
	folders := []string{"INBOX", "Sent", "Drafts", "Archive", "Archive/2021", "Archive/2022", "Archive/2023", "Projects", "Projects/Alpha",
		"Projects/Beta.v2", "Clients & Partners", "Receipts", "Travel", "Newsletters", "Team [internal]", "Отчёты"}
	r := rand.New(rand.NewPCG(1, 2))
	type msg struct {
		folder string
		body   []byte
		flags  []goimap.Flag
		date   time.Time
	}
	msgs := make(chan msg, 8)
	var wg sync.WaitGroup
	var once sync.Once
	var fail error
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := benchClient(b, s)
			defer c.Close()
			for m := range msgs {
				cmd := c.Append(m.folder, int64(len(m.body)), &goimap.AppendOptions{Flags: m.flags, Time: m.date})
				cmd.Write(m.body)
				cmd.Close()
				if _, err := cmd.Wait(); err != nil {
					once.Do(func() { fail = err })
				}
			}
		}()
	}
	c := benchClient(b, s)
	for _, f := range folders {
		c.Create(f, nil).Wait()
	}
	c.Close()
	filler := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog. 0123456789 ABCDEFGHIJ\r\n"), 20<<20/68+1)
	for i := 0; i < 3000; i++ {
		size := 4<<10 + r.IntN(56<<10)
		if i%25 == 0 {
			size = 2<<20 + r.IntN(18<<20)
		}
		if i == 500 || i == 2500 {
			size = 20 << 20
		}
		head := fmt.Sprintf("Message-ID: <bench-%d@ferry.test>\r\nFrom: sender%d@example.com\r\nTo: alice@example.com\r\nSubject: benchmark message %d\r\nDate: Mon, 2 Jan 2023 15:04:05 +0000\r\n\r\n", i, i%37, i)
		body := append([]byte(head), filler[:max(0, size-len(head))]...)
		flags := []goimap.Flag{}
		if i%2 == 0 {
			flags = append(flags, goimap.FlagSeen)
		}
		if i%7 == 0 {
			flags = append(flags, goimap.FlagFlagged, "$Important")
		}
		if i%11 == 0 {
			flags = append(flags, "Kunde-"+goimap.Flag(fmt.Sprint(i%5)), goimap.FlagAnswered)
		}
		msgs <- msg{folder: folders[i%len(folders)], body: body, flags: flags, date: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 17 * time.Minute)}
	}
	close(msgs)
	wg.Wait()
	if fail != nil {
		b.Fatalf("generate: %v", fail)
	}
	return len(folders)
}

func benchClient(b testing.TB, s *dovecot.Server) *imapclient.Client {
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Login("alice", dovecot.Password("alice")).Wait(); err != nil {
		b.Fatal(err)
	}
	return c
}

// mailboxState maps "folder/Message-ID" to a message's hash, sorted flags and internal date.
func mailboxState(b testing.TB, s *dovecot.Server) map[string]string {
	c := benchClient(b, s)
	defer c.Close()
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]string{}
	for _, box := range boxes {
		sd, err := c.Select(box.Mailbox, &goimap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil || sd.NumMessages == 0 {
			continue
		}
		cmd := c.Fetch(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{Flags: true, InternalDate: true,
			BodySection: []*goimap.FetchItemBodySection{{Peek: true}}})
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			buf, err := m.Collect()
			if err != nil {
				b.Fatal(err)
			}
			body := buf.BodySection[0].Bytes
			var fl []string
			for _, f := range buf.Flags {
				if f != `\Recent` {
					fl = append(fl, string(f))
				}
			}
			sort.Strings(fl)
			h := sha256.Sum256(body)
			id := headerLine(body, "message-id:")
			out[box.Mailbox+"/"+id] = hex.EncodeToString(h[:]) + " " + strings.Join(fl, ",") + " " + buf.InternalDate.UTC().Format(time.RFC3339)
		}
		if err := cmd.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

func headerLine(body []byte, name string) string {
	for _, l := range bytes.Split(body, []byte("\r\n")) {
		if len(l) == 0 {
			break
		}
		if bytes.HasPrefix(bytes.ToLower(l), []byte(name)) {
			return string(bytes.TrimSpace(l[len(name):]))
		}
	}
	return ""
}

func runMbsync(b testing.TB, bin string, src, dst *dovecot.Server) (time.Duration, time.Duration) {
	dir, _ := os.MkdirTemp("", "mbsync-")
	defer os.RemoveAll(dir)
	account := func(name string, s *dovecot.Server) string {
		host, port, _ := strings.Cut(s.Addr, ":")
		return fmt.Sprintf("IMAPAccount %[1]s\nHost %[2]s\nPort %[3]s\nUser alice\nPass %[4]s\nSSLType None\nAuthMechs LOGIN\n\nIMAPStore %[1]s\nAccount %[1]s\n\n", name, host, port, dovecot.Password("alice"))
	}
	conf := account("src", src) + account("dst", dst) +
		"Channel copy\nFar :src:\nNear :dst:\nPatterns *\nCreate Near\nSync Pull\nExpunge None\nCopyArrivalDate yes\nSyncState " + dir + "/\n"
	path := filepath.Join(dir, "mbsyncrc")
	os.WriteFile(path, []byte(conf), 0o600)
	cmd := exec.Command(bin, "-c", path, "-a", "-q")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("mbsync: %v\n%s", err, out.String())
	}
	return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}
