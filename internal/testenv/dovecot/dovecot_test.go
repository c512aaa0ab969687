package dovecot

import (
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
)

func TestServerStartsAndAcceptsLogin(t *testing.T) {
	s := Start(t, Options{Users: []string{"alice"}})
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", Password("alice")).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	if err := c.Login("alice", "wrong").Wait(); err == nil {
		t.Fatal("wrong password accepted")
	}
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, b := range boxes {
		names[b.Mailbox] = true
	}
	for _, want := range []string{"INBOX", "Sent", "Drafts", "Trash", "Junk"} {
		if !names[want] {
			t.Errorf("mailbox %q missing; have %v", want, names)
		}
	}
}
