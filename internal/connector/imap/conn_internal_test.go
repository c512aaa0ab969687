package imap

import (
	"context"
	"testing"
)

func TestXOAUTH2InitialResponse(t *testing.T) {
	mech, ir, err := (&xoauth2{user: "alice@contoso.com", token: "ya29.token"}).Start()
	if err != nil || mech != "XOAUTH2" {
		t.Fatalf("mech %q err %v", mech, err)
	}
	if want := "user=alice@contoso.com\x01auth=Bearer ya29.token\x01\x01"; string(ir) != want {
		t.Fatalf("initial response %q, want %q", ir, want)
	}
	if _, err := (&xoauth2{}).Next([]byte(`{"status":"401"}` + "\n")); err == nil || err.Error() != `token refused: {"status":"401"}` {
		t.Fatalf("error challenge: %v, want the server's reason", err)
	}
}

func TestHostConnectionCap(t *testing.T) {
	slot := hostSlot("cap-test:1", 2)
	slot <- struct{}{}
	slot <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := dial(ctx, Config{Host: "cap-test", Port: "1", HostConnections: 2})
	if err != context.Canceled {
		t.Fatalf("dial beyond the host cap: %v, want to wait (and give up on cancel)", err)
	}
}
