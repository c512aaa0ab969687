// Package dovecot starts a real Dovecot IMAP server for tests and benchmarks: its own config in a
// temp dir, maildir with LAYOUT=fs (so folder names may contain dots), on a free loopback port.
// scripts/test installs Debian's dovecot-imapd.
package dovecot

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Server is a running Dovecot.
type Server struct {
	Dir     string // everything lives here
	Addr    string // plain IMAP (STARTTLS offered when TLS is on)
	TLSAddr string // implicit TLS, when TLS is on
	CertPEM []byte // the self-signed certificate, when TLS is on
	cmd     *exec.Cmd
}

// Options shape a server.
type Options struct {
	Users []string // user names; each gets the password "pw-" + name
	TLS   bool     // serve TLS with a fresh self-signed certificate for 127.0.0.1
	// OAuthIntrospection, when set, makes the server take XOAUTH2 and OAUTHBEARER as well: it
	// POSTs each token to this URL (RFC 7662 introspection) and signs in the "username" the
	// answer names, if the answer says "active": true.
	OAuthIntrospection string
	// Extra config lines appended to dovecot.conf.
	Extra string
}

// Binary returns the dovecot binary path, or "" if it is not installed.
func Binary() string {
	for _, p := range []string{"/usr/sbin/dovecot", "/usr/local/sbin/dovecot"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p
	}
	return ""
}

// Password returns the test password of a user.
func Password(user string) string { return "pw-" + user }

// Start starts a Dovecot for the test and stops it at cleanup. Without Dovecot the test fails in CI
// and is skipped elsewhere, so a missing server is never passed off as coverage.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("dovecot is not installed: run the tests through scripts/test")
		}
		t.Skip("dovecot not installed; scripts/test installs dovecot-imapd")
	}
	// Dovecot's unprivileged login processes must reach base_dir: t.TempDir is 0700, so use our own.
	dir, err := os.MkdirTemp("", "ferry-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot.log:\n%s", log)
		}
		os.RemoveAll(dir)
	})
	s := &Server{Dir: dir}
	port := freePort(t)
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	var users strings.Builder
	for _, u := range append([]string{}, o.Users...) {
		fmt.Fprintf(&users, "%s:{PLAIN}%s::::::\n", u, Password(u))
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(users.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	me, _ := user.Current()
	internal, login, uid, gid := "dovecot", "dovenull", me.Uid, me.Gid
	if me.Uid == "0" {
		// Dovecot refuses uid 0 for mail: store it as the unprivileged dovecot user.
		du, err := user.Lookup("dovecot")
		if err != nil {
			t.Fatalf("running as root needs the dovecot user: %v", err)
		}
		uid, gid = du.Uid, du.Gid
	} else {
		internal, login = me.Username, me.Username
	}
	if err := os.MkdirAll(filepath.Join(dir, "home"), 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "home"), 0o777)
	mechanisms, oauthPassdb := "plain login", ""
	if o.OAuthIntrospection != "" {
		ext := fmt.Sprintf("introspection_mode = post\nintrospection_url = %s\nusername_attribute = username\nactive_attribute = active\nactive_value = true\n", o.OAuthIntrospection)
		if err := os.WriteFile(filepath.Join(dir, "oauth2.conf.ext"), []byte(ext), 0o644); err != nil {
			t.Fatal(err)
		}
		mechanisms += " xoauth2 oauthbearer"
		oauthPassdb = fmt.Sprintf("passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = %s/oauth2.conf.ext\n}\n", dir)
	}
	sslConf := "ssl = no\n"
	tlsListener := ""
	if o.TLS {
		tlsPort := freePort(t)
		s.TLSAddr = fmt.Sprintf("127.0.0.1:%d", tlsPort)
		certPEM, keyPEM := selfSigned(t)
		s.CertPEM = certPEM
		os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o644)
		os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
		sslConf = fmt.Sprintf("ssl = yes\nssl_cert = <%s/cert.pem\nssl_key = <%s/key.pem\n", dir, dir)
		tlsListener = fmt.Sprintf("  inet_listener imaps {\n    address = 127.0.0.1\n    port = %d\n    ssl = yes\n  }\n", tlsPort)
	} else {
		tlsListener = "  inet_listener imaps {\n    port = 0\n  }\n"
	}
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = %[3]s
default_login_user = %[4]s
first_valid_uid = 0
disable_plaintext_auth = no
auth_mechanisms = %[10]s
%[5]s
%[11]spassdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%%u %[1]s/users
}
userdb {
  driver = static
  args = uid=%[6]s gid=%[7]s home=%[1]s/home/%%u
}
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_fsync = never
namespace inbox {
  inbox = yes
  separator = /
  prefix =
  mailbox Sent {
    special_use = \Sent
    auto = create
  }
  mailbox Drafts {
    special_use = \Drafts
    auto = create
  }
  mailbox Trash {
    special_use = \Trash
    auto = create
  }
  mailbox Junk {
    special_use = \Junk
    auto = create
  }
}
imap_capability = +SPECIAL-USE
mail_max_userip_connections = 100
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
%[8]s}
service imap {
  process_limit = 200
}
%[9]s
`, dir, port, internal, login, sslConf, uid, gid, tlsListener, o.Extra, mechanisms, oauthPassdb)
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "-F", "-c", confPath)
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Fatalf("dovecot did not start listening on %s: %v\n%s", s.Addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Dial opens an IMAP session signed in as user, closed when the test ends.
func (s *Server) Dial(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, Password(user)).Wait(); err != nil {
		t.Fatalf("sign in as %s: %v", user, err)
	}
	return c
}

// Message is one message as the server holds it.
type Message struct {
	Mailbox string
	Body    []byte
	Flags   []string // sorted, without \Recent
	Date    time.Time
}

// Messages reads every message of every mailbox through a session, mailbox by mailbox.
func Messages(t testing.TB, c *imapclient.Client) []Message {
	t.Helper()
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []Message
	for _, b := range boxes {
		sd, err := c.Select(b.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil || sd.NumMessages == 0 {
			continue
		}
		msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, InternalDate: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			var fl []string
			for _, f := range m.Flags {
				if f != `\Recent` {
					fl = append(fl, string(f))
				}
			}
			sort.Strings(fl)
			out = append(out, Message{Mailbox: b.Mailbox, Body: m.BodySection[0].Bytes, Flags: fl, Date: m.InternalDate.UTC()})
		}
	}
	return out
}

// Append stores a message in a mailbox with its flags and internal date.
func Append(t testing.TB, c *imapclient.Client, mailbox string, body []byte, date time.Time, flags ...imap.Flag) {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(body)), &imap.AppendOptions{Flags: flags, Time: date})
	if _, err := cmd.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("append to %s: %v", mailbox, err)
	}
}

// Maildir returns the maildir root of a user.
func (s *Server) Maildir(user string) string { return filepath.Join(s.Dir, "home", user, "Maildir") }

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// CPU returns the CPU time Dovecot's finished processes have used so far (the master's children's
// user+system time), to see how much of a copy's cost is the server's.
func (s *Server) CPU() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	var cu, cs, u, st int64
	fmt.Sscan(f[11], &u)
	fmt.Sscan(f[12], &st)
	fmt.Sscan(f[13], &cu)
	fmt.Sscan(f[14], &cs)
	return time.Duration(u+st+cu+cs) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
