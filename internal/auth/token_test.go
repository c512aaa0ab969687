package auth

import (
	"regexp"
	"testing"
)

func TestNewToken(t *testing.T) {
	shape := regexp.MustCompile(`^fy_[a-z2-7]{52}$`)
	hexHash := regexp.MustCompile(`^[0-9a-f]{64}$`)
	seen := map[string]bool{}
	for range 100 {
		plain, hash := NewToken("fy")
		if !shape.MatchString(plain) {
			t.Fatalf("token %q does not match %s", plain, shape)
		}
		if !hexHash.MatchString(hash) {
			t.Fatalf("hash %q is not 64 hex characters", hash)
		}
		if hash != HashToken(plain) {
			t.Fatalf("NewToken hash %s != HashToken(plaintext) %s", hash, HashToken(plain))
		}
		seen[plain] = true
	}
	if len(seen) != 100 {
		t.Fatalf("100 tokens have only %d distinct", len(seen))
	}
}

func TestHashToken(t *testing.T) {
	// SHA-256("abc") from FIPS 180-2.
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := HashToken("abc"); got != want {
		t.Fatalf("HashToken(abc) = %s, want %s", got, want)
	}
	if HashToken("abc") == HashToken("abd") {
		t.Fatal("different tokens hash the same")
	}
}
