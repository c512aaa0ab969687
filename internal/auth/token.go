package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// Tokens are shown once; only their SHA-256 is stored. A plain hash (no salt, no argon2) is enough
// because tokens carry 256 random bits: there is nothing to guess or to look up in a table.

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewToken returns a token "<prefix>_<52 lowercase base32 characters>" (32 random bytes) and
// its hash. The prefix tells a leaked token's kind at a glance and helps secret scanners.
func NewToken(prefix string) (plaintext string, hash string) {
	b := make([]byte, 32)
	rand.Read(b) // never fails since Go 1.24
	plaintext = prefix + "_" + strings.ToLower(tokenEncoding.EncodeToString(b))
	return plaintext, HashToken(plaintext)
}

// HashToken returns hex(SHA-256(token)), the form tokens and session ids are stored and looked up in.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
