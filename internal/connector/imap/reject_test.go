package imap_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
)

func TestRejectedMessageIsRecordedAndPassGoesOn(t *testing.T) {
	p := newPair(t)
	p.dst = dovecot.Start(t, dovecot.Options{Users: []string{"alice"}, Extra: "mail_plugins = $mail_plugins quota\nplugin {\n  quota = maildir:User quota\n  quota_max_mail_size = 64k\n}\n"})
	sc := client(t, p.src)
	appendMsg(t, sc, "INBOX", []byte("Message-ID: <ok1@x>\r\n\r\nsmall\r\n"), time.Now())
	appendMsg(t, sc, "INBOX", append([]byte("Message-ID: <big@x>\r\n\r\n"), []byte(strings.Repeat("y", 100<<10))...), time.Now())
	appendMsg(t, sc, "INBOX", []byte("Message-ID: <ok2@x>\r\n\r\nsmall too\r\n"), time.Now())
	stats, res := p.copyOnce(t, engine.CopyOptions{})
	if stats.Objects != 2 || stats.Errors != 1 {
		t.Fatalf("copied %d with %d errors, want 2 and 1", stats.Objects, stats.Errors)
	}
	errs, _ := p.st.ObjectErrors(ctx, p.item, 10)
	if len(errs) != 1 || !strings.Contains(errs[0].Reason, "server answered") || !strings.Contains(errs[0].Reason, "NO [LIMIT]") {
		t.Fatalf("recorded errors = %+v", errs)
	}
	for _, r := range res {
		if r.Source == "INBOX" && (r.Reconciled || r.TargetCount != 2 || r.SourceCount != 3) {
			t.Fatalf("reconciliation should show the missing message: %+v", r)
		}
	}
}
