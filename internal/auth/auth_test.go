package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/store/storetest"
)

// With every password-check slot taken, a sign-in waits hashWait and is then told to come back;
// the attempt is not counted as a failure.
func TestSignInWaitsForAHashingSlot(t *testing.T) {
	st := storetest.SQLite(t).Open(t)
	defer st.Close()
	s := New(st)
	ctx := context.Background()
	if _, err := s.Bootstrap(ctx, "Bootstrap-Password-1"); err != nil {
		t.Fatal(err)
	}
	s.hashWait = 50 * time.Millisecond
	for range cap(s.hashing) {
		s.hashing <- struct{}{}
	}
	for range MaxFailsUserAddr + 1 {
		_, err := s.Login(ctx, "admin", "wrong", "192.0.2.1")
		var busy *BusyError
		if !errors.As(err, &busy) || busy.RetryAfter <= 0 {
			t.Fatalf("sign-in with every slot taken: %v, want BusyError with a retry time", err)
		}
	}
	for range cap(s.hashing) {
		<-s.hashing
	}
	if _, err := s.Login(ctx, "admin", "Bootstrap-Password-1", "192.0.2.1"); err != nil {
		t.Fatalf("sign-in once slots are free: %v (busy attempts must not count as failures)", err)
	}
	if len(s.pairs.inflight)+len(s.users.inflight)+len(s.addrs.inflight) != 0 {
		t.Fatal("attempts left in flight")
	}
}
