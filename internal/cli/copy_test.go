package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ferry-migrate/ferry/internal/m365sim"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
)

func imapURL(s *dovecot.Server, user string) string {
	return fmt.Sprintf("imap://%s:%s@%s/?security=none", user, dovecot.Password(user), s.Addr)
}

func dial(t *testing.T, s *dovecot.Server) *imapclient.Client { return s.Dial(t, "alice") }

// seed fills the source: n messages spread over folders, 1-30 KB each.
func seed(t *testing.T, c *imapclient.Client, folders []string, n int) {
	t.Helper()
	for _, f := range folders {
		if f != "INBOX" {
			if err := c.Create(f, nil).Wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < n; i++ {
		body := []byte(fmt.Sprintf("Message-ID: <m%d@seed>\r\nSubject: message %d\r\n\r\n%s\r\n", i, i, strings.Repeat("x", 1000*(1+i%30))))
		cmd := c.Append(folders[i%len(folders)], int64(len(body)), &goimap.AppendOptions{Flags: []goimap.Flag{goimap.FlagSeen, goimap.Flag("Kw" + fmt.Sprint(i%3))},
			Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)})
		cmd.Write(body)
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// contents lists every message of every folder as "folder hash flags date".
func contents(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	var out []string
	for _, m := range dovecot.Messages(t, c) {
		h := sha256.Sum256(m.Body)
		out = append(out, fmt.Sprintf("%s %s %v %s", m.Mailbox, hex.EncodeToString(h[:8]), m.Flags, m.Date.Format(time.RFC3339)))
	}
	sort.Strings(out)
	return out
}

func TestCopyCommand(t *testing.T) {
	src := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	dst := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	seed(t, dial(t, src), []string{"INBOX", "Archive/2020", "Projekte & Co"}, 60)
	state := filepath.Join(t.TempDir(), "state.db")

	code, out, errs := run(t, "", "copy", imapURL(src, "alice"), imapURL(dst, "alice"), "--state", state, "--dry-run")
	if code != 0 || !strings.Contains(out, "WOULD COPY") || !strings.Contains(out, "Projekte & Co") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errs)
	}
	if got := contents(t, dial(t, dst)); len(got) != 0 {
		t.Fatalf("dry run wrote %d messages", len(got))
	}
	code, out, errs = run(t, "", "copy", imapURL(src, "alice"), imapURL(dst, "alice"), "--state", state)
	if code != 0 || !strings.Contains(out, "60 messages copied") || !strings.Contains(out, "RECONCILED") {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errs)
	}
	want := contents(t, dial(t, src))
	if got := contents(t, dial(t, dst)); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("target differs from source:\n%v\n%v", got, want)
	}
	code, out, _ = run(t, "", "copy", imapURL(src, "alice"), imapURL(dst, "alice"), "--state", state)
	if code != 0 || !strings.Contains(out, "0 messages copied") {
		t.Fatalf("second copy: exit %d\n%s", code, out)
	}
	// Passwords from stdin, bad URLs and bad flags get clear errors and exit 2.
	noPW := func(s *dovecot.Server) string { return fmt.Sprintf("imap://alice@%s/?security=none", s.Addr) }
	code, out, errs = run(t, dovecot.Password("alice")+"\n"+dovecot.Password("alice")+"\n", "copy", noPW(src), noPW(dst), "--state", state, "--src-password-stdin", "--dst-password-stdin")
	if code != 0 {
		t.Fatalf("stdin passwords: exit %d %s %s", code, out, errs)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"copy", "ftp://a@b/", noPW(dst)}, `scheme "ftp" is not supported`},
		{[]string{"copy", noPW(src), noPW(dst)}, "no src password"},
		{[]string{"copy", imapURL(src, "alice") + "&colour=red", imapURL(dst, "alice")}, `unknown option "colour"`},
		{[]string{"copy", imapURL(src, "alice"), imapURL(dst, "alice"), "--pass", "prestage"}, "needs --older-than"},
	} {
		code, _, errs := run(t, "", c.args...)
		if code != ExitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errs, ExitUsage, c.want)
		}
	}
	code, _, errs = run(t, "", "copy", strings.Replace(imapURL(src, "alice"), dovecot.Password("alice"), "wrong", 1), imapURL(dst, "alice"), "--state", state)
	if code == 0 || !strings.Contains(errs, "sign-in as alice failed") {
		t.Fatalf("wrong password: exit %d %s", code, errs)
	}
}

// TestCopyTokenCommand signs in to the source with XOAUTH2 tokens from --src-token-cmd, which
// Dovecot checks with the test's own token issuer: the command runs at every sign-in, its token
// is never shown, and a failing command stops the copy with what it printed.
func TestCopyTokenCommand(t *testing.T) {
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"active": r.PostFormValue("token") == "tok-ok", "username": "alice"})
	}))
	defer issuer.Close()
	src := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}, OAuthIntrospection: issuer.URL})
	dst := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	seed(t, dial(t, src), []string{"INBOX", "Archive", "Projekte"}, 30)
	state := filepath.Join(t.TempDir(), "state.db")
	calls := filepath.Join(t.TempDir(), "calls")
	srcURL := fmt.Sprintf("imap://alice@%s/?security=none", src.Addr)

	code, out, errs := run(t, "", "copy", srcURL, imapURL(dst, "alice"), "--state", state,
		"--src-token-cmd", "echo call >> "+calls+"; echo tok-ok")
	if code != 0 || !strings.Contains(out, "30 messages copied") {
		t.Fatalf("copy with a token command: exit %d\n%s\n%s", code, out, errs)
	}
	if got, want := contents(t, dial(t, dst)), contents(t, dial(t, src)); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("target differs from source:\n%v\n%v", got, want)
	}
	data, _ := os.ReadFile(calls)
	if n := strings.Count(string(data), "call"); n < 2 {
		t.Fatalf("the token command ran %d times, want once per sign-in (at least the check at open and a folder's connection)", n)
	}
	if strings.Contains(out+errs, "tok-ok") {
		t.Fatalf("the token was shown:\n%s\n%s", out, errs)
	}
	code, _, errs = run(t, "", "copy", srcURL, imapURL(dst, "alice"), "--state", state,
		"--src-token-cmd", "echo 'refresh token expired' >&2; exit 1")
	if code == 0 || !strings.Contains(errs, "--src-token-cmd: exit status 1: refresh token expired") {
		t.Fatalf("failing token command: exit %d, stderr %q", code, errs)
	}
	for _, c := range []struct {
		src, want string
	}{
		{srcURL + "&auth=plain", "--src-token-cmd gives OAuth tokens, but the src URL asks for auth=plain"},
		{imapURL(src, "alice"), "src: give a password or --src-token-cmd, not both"},
	} {
		code, _, errs := run(t, "", "copy", c.src, imapURL(dst, "alice"), "--state", state, "--src-token-cmd", "echo tok-ok")
		if code != ExitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", c.src, code, errs, ExitUsage, c.want)
		}
	}
}

// TestCopyKilledMidwayResumesExactly kills `ferry copy` with SIGKILL part-way and runs it again:
// the target ends exactly like the source, nothing missing, nothing twice.
func TestCopyKilledMidwayResumesExactly(t *testing.T) {
	src := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	dst := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	seed(t, dial(t, src), []string{"INBOX", "A", "B", "C"}, 1500)
	state := filepath.Join(t.TempDir(), "state.db")
	cmd := exec.Command(os.Args[0], "copy", imapURL(src, "alice"), imapURL(dst, "alice"), "--state", state, "--connections", "2")
	cmd.Env = append(os.Environ(), "FERRY_TEST_EXEC=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dc := dial(t, dst)
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := 0
		for _, f := range []string{"INBOX", "A", "B", "C"} {
			if st, err := dc.Status(f, &goimap.StatusOptions{NumMessages: true}).Wait(); err == nil {
				n += int(*st.NumMessages)
			}
		}
		if n >= 200 {
			if n >= 1500 {
				t.Fatalf("copy finished before it could be killed (%d messages)", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("copy made no progress: %d messages", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	code, out, errs := run(t, "", "copy", imapURL(src, "alice"), imapURL(dst, "alice"), "--state", state)
	if code != 0 {
		t.Fatalf("re-run after kill: exit %d\n%s\n%s", code, out, errs)
	}
	want, got := contents(t, dial(t, src)), contents(t, dial(t, dst))
	if len(got) != 1500 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after kill and re-run the target holds %d messages, source %d, or they differ", len(got), len(want))
	}
}

func TestCopyRulesDateFilterAndDeletions(t *testing.T) {
	src := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	dst := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	sc := dial(t, src)
	for _, f := range []string{"Work", "Spam-ish", "Old Stuff"} {
		if err := sc.Create(f, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	put := func(folder, id string, date time.Time) {
		body := []byte("Message-ID: <" + id + "@x>\r\n\r\n" + id + "\r\n")
		cmd := sc.Append(folder, int64(len(body)), &goimap.AppendOptions{Time: date})
		cmd.Write(body)
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	old, recent := time.Now().AddDate(0, 0, -200), time.Now().AddDate(0, 0, -2)
	put("Work", "w-old", old)
	put("Work", "w-new", recent)
	put("Spam-ish", "s1", old)
	put("Old Stuff", "o1", old)
	state := filepath.Join(t.TempDir(), "state.db")
	args := []string{"copy", imapURL(src, "alice"), imapURL(dst, "alice"), "--state", state, "--exclude", "^Spam", "--folder-map", "Old (.*)=Archive/$1"}

	code, out, errs := run(t, "", append(args, "--pass", "prestage", "--older-than", "90d")...)
	if code != 0 || !strings.Contains(out, "left for a later pass") {
		t.Fatalf("prestage: exit %d\n%s\n%s", code, out, errs)
	}
	dc := dial(t, dst)
	count := func(box string) int {
		st, err := dc.Status(box, &goimap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return -1
		}
		return int(*st.NumMessages)
	}
	if count("Work") != 1 || count("Archive/Stuff") != 1 || count("Spam-ish") != -1 {
		t.Fatalf("after prestage: Work %d, Archive/Stuff %d, Spam-ish %d; want 1, 1, absent", count("Work"), count("Archive/Stuff"), count("Spam-ish"))
	}
	if code, out, errs := run(t, "", args...); code != 0 || count("Work") != 2 {
		t.Fatalf("full after prestage: exit %d, Work %d\n%s\n%s", code, count("Work"), out, errs)
	}
	// Delete w-old at the source: only --delete removes it from the target.
	if _, err := sc.Select("Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Store(goimap.SeqSetNum(1), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	// Without --delete the target keeps it: one message more than the source, which is no match.
	if code, out, errs := run(t, "", args...); code != ExitIncomplete || count("Work") != 2 || !strings.Contains(out, "NO: 1 extra") ||
		!strings.Contains(errs, "messages deleted at the source stay at the target unless --delete") {
		t.Fatalf("without --delete: exit %d, Work %d, want 3 and 2\n%s\n%s", code, count("Work"), out, errs)
	}
	code, out, errs = run(t, "", append(args, "--delete")...)
	if code != 0 || count("Work") != 1 {
		t.Fatalf("with --delete: exit %d, Work %d, want 1\n%s\n%s", code, count("Work"), out, errs)
	}
}

// TestCopyM365 copies a mailbox between two emulated tenants with `ferry copy m365://… m365://…`.
func TestCopyM365(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "sim.db")
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- RunSim(ctx, SimOptions{Listen: "127.0.0.1:0", State: state, Seed: "users=2,messages=16,archives=12", Ready: func(u string) { ready <- u }}, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sim: %v", err)
		}
	}()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("sim did not start: %v", err)
	}
	m365 := func(tenant, user string) string {
		return fmt.Sprintf("m365://%s.onmicrosoft.com/%s@%s.com?client_id=%s&graph=%s&ca_cert=%s", tenant, user, tenant, m365sim.SeedClientID, base, state+".pem")
	}
	t.Setenv("FERRY_SRC_PASSWORD", m365sim.SeedSecret("contoso"))
	t.Setenv("FERRY_DST_PASSWORD", m365sim.SeedSecret("fabrikam"))
	copyState := filepath.Join(dir, "copy.db")
	code, out, errs := run(t, "", "copy", m365("contoso", "user01"), m365("fabrikam", "user01"), "--state", copyState)
	if code != 0 || !strings.Contains(out, "24 messages copied") || !strings.Contains(out, "RECONCILED") {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = run(t, "", "copy", m365("contoso", "user01"), m365("fabrikam", "user01"), "--state", copyState)
	if code != 0 || !strings.Contains(out, "0 messages copied") {
		t.Fatalf("second copy: exit %d\n%s", code, out)
	}
	// The archive, by its own id (the seed gives each user 12 archived messages).
	code, out, errs = run(t, "", "copy", m365("contoso", "user01")+"&mailbox=archive", m365("fabrikam", "user01")+"&mailbox=archive", "--state", filepath.Join(dir, "archive.db"))
	if code != 0 || !strings.Contains(out, "12 messages copied") || !strings.Contains(out, "RECONCILED") {
		t.Fatalf("archive copy: exit %d\n%s\n%s", code, out, errs)
	}
	for _, c := range []struct {
		args []string
		env  string
		want string
		code int
	}{
		{[]string{"copy", "m365://contoso.onmicrosoft.com/", m365("fabrikam", "user01")}, "", "want m365://TENANT/USER@DOMAIN", ExitUsage},
		{[]string{"copy", strings.Replace(m365("contoso", "user01"), "client_id="+m365sim.SeedClientID, "client_id=", 1), m365("fabrikam", "user01")}, "", "no client id", ExitUsage},
		{[]string{"copy", m365("contoso", "user01") + "&cloud=mars", m365("fabrikam", "user01")}, "", `unknown cloud "mars"`, ExitUsage},
		{[]string{"copy", m365("contoso", "user01") + "&mailbox=vault", m365("fabrikam", "user01")}, "", `mailbox="vault": want primary or archive`, ExitUsage},
		{[]string{"copy", m365("contoso", "user01"), m365("fabrikam", "user01")}, "FERRY_DST_PASSWORD", "no dst client secret", ExitUsage},
		{[]string{"copy", m365("contoso", "nobody"), m365("fabrikam", "user01"), "--state", filepath.Join(dir, "x.db")}, "", "mailbox nobody@contoso.com does not exist in tenant contoso.onmicrosoft.com", ExitError},
		// The real cause, at once: a certificate no CA vouches for, a port nothing listens on.
		{[]string{"copy", strings.Replace(m365("contoso", "user01"), "&ca_cert="+state+".pem", "", 1), m365("fabrikam", "user01"), "--state", filepath.Join(dir, "y.db")}, "",
			"its TLS certificate is not trusted; set the endpoint's ca_cert", ExitError},
		{[]string{"copy", strings.Replace(m365("contoso", "user01"), base, "https://127.0.0.1:"+closedPort(t), 1), m365("fabrikam", "user01"), "--state", filepath.Join(dir, "z.db")}, "",
			"the connection was refused (nothing listens on that port)", ExitError},
	} {
		if c.env != "" {
			t.Setenv(c.env, "")
		}
		code, _, errs := run(t, "", c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errs, c.code, c.want)
		}
		if c.env != "" {
			t.Setenv(c.env, m365sim.SeedSecret("fabrikam"))
		}
	}
}

// closedPort is a loopback port nothing listens on: one just given up.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// ferry copy tells the truth: an --include that matches no folder is an error, a password in the
// URL wins over the environment (and one beside a password on standard input is refused), and the
// footer adds up what the table shows.
func TestCopyMessagesSayWhatHappened(t *testing.T) {
	src := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	dst := dovecot.Start(t, dovecot.Options{Users: []string{"alice"}})
	seed(t, dial(t, src), []string{"INBOX", "Work"}, 10)
	state := filepath.Join(t.TempDir(), "state.db")

	code, _, errs := run(t, "", "copy", imapURL(src, "alice"), imapURL(dst, "alice"), "--state", state, "--include", "^Nothing$")
	if code != ExitUsage || !strings.Contains(errs, "--include/--exclude leave none of the source's") || !strings.Contains(errs, "6 folders (Drafts, INBOX, Junk, Sent, Trash, Work)") {
		t.Errorf("an include matching nothing: exit %d, stderr %q", code, errs)
	}
	if got := contents(t, dial(t, dst)); len(got) != 0 {
		t.Fatalf("an include matching nothing copied %d messages", len(got))
	}

	t.Setenv("FERRY_SRC_PASSWORD", "not-the-password")
	t.Setenv("FERRY_DST_PASSWORD", "not-the-password")
	code, out, errs := run(t, "", "copy", imapURL(src, "alice"), imapURL(dst, "alice"), "--state", state)
	if code != 0 || !strings.Contains(out, "6 folders, 10 messages copied") {
		t.Fatalf("URL passwords beside wrong ones in the environment: exit %d\n%s\n%s", code, out, errs)
	}
	code, _, errs = run(t, "x\n", "copy", imapURL(src, "alice"), imapURL(dst, "alice"), "--state", state, "--src-password-stdin")
	if code != ExitUsage || !strings.Contains(errs, "src: the URL holds a password and --src-password-stdin reads another; give one") {
		t.Errorf("URL and standard input: exit %d, stderr %q", code, errs)
	}

	// Four flag changes: the footer and the table both say 4 updated.
	sc := dial(t, src)
	if _, err := sc.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Store(goimap.SeqSetNum(1, 2, 3, 4), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errs = run(t, "", "copy", imapURL(src, "alice"), imapURL(dst, "alice"), "--state", state)
	if code != 0 || !strings.Contains(out, "0 messages copied (0.0 MB), 4 updated, 0 deleted, 0 errors") {
		t.Fatalf("after 4 flag changes: exit %d\n%s\n%s", code, out, errs)
	}
	updated := 0
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 9 && (f[0] == "INBOX" || f[0] == "Work") {
			var n int
			fmt.Sscan(f[5], &n)
			updated += n
		}
	}
	if updated != 4 {
		t.Errorf("the table's UPDATED column adds up to %d, want 4:\n%s", updated, out)
	}
	code, out, _ = run(t, "", "copy", imapURL(src, "alice"), imapURL(dst, "alice"), "--state", state)
	if code != 0 || !strings.Contains(out, "0 messages copied (0.0 MB), 0 updated, 0 deleted, 0 errors") {
		t.Fatalf("a run with no change: exit %d\n%s", code, out)
	}
}
