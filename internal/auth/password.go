package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters: the OWASP minimum (19 MiB, 2 passes, 1 lane). The PHC string records them,
// so they can be raised later without invalidating existing hashes.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Limits on parameters read back from a stored hash: a corrupt or hostile row must not make one
// sign-in allocate gigabytes or spin for minutes.
const (
	maxArgonMemory = 1 << 22 // KiB, 4 GiB
	maxArgonTime   = 64
)

// MinPasswordLen is the shortest password CheckPasswordPolicy accepts, in characters.
const MinPasswordLen = 12

var (
	// ErrMalformedHash means a stored password hash could not be parsed.
	ErrMalformedHash = errors.New("malformed password hash")
	// ErrWeakPassword means a password fails CheckPasswordPolicy.
	ErrWeakPassword = errors.New("password too weak")
)

var phcBase64 = base64.RawStdEncoding

// HashPassword hashes a password with argon2id and a random salt, encoded as a PHC string:
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>".
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		phcBase64.EncodeToString(salt), phcBase64.EncodeToString(key)), nil
}

// VerifyPassword checks a password against a PHC string from HashPassword, using the parameters
// the string records. A wrong password is (false, nil); an error means the hash itself is bad.
func VerifyPassword(encoded, password string) (bool, error) {
	h, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1, nil
}

type argonHash struct {
	time, memory uint32
	threads      uint8
	salt, key    []byte
}

func parsePHC(encoded string) (argonHash, error) {
	var h argonHash
	bad := func(format string, args ...any) (argonHash, error) {
		return argonHash{}, fmt.Errorf("%w: "+format, append([]any{ErrMalformedHash}, args...)...)
	}
	// "$argon2id$v=19$m=..,t=..,p=..$salt$hash" splits into 6 parts, the first empty.
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("want 5 $-separated fields")
	}
	if parts[1] != "argon2id" {
		return bad("algorithm %q, want argon2id", parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("version %q, want v=%d", parts[2], argon2.Version)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return bad("parameters %q, want m=,t=,p=", parts[3])
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return bad("parameters %q, want m=,t=,p=", parts[3])
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameter %s: %w", name, err)
		}
		switch name {
		case "m":
			h.memory = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > 255 {
				return bad("parameter p=%d out of range", n)
			}
			h.threads = uint8(n)
		}
	}
	if h.time < 1 || h.time > maxArgonTime || h.threads < 1 || h.memory < 8*uint32(h.threads) || h.memory > maxArgonMemory {
		return bad("parameters %q out of range", parts[3])
	}
	var err error
	if h.salt, err = phcBase64.DecodeString(parts[4]); err != nil {
		return bad("salt: %w", err)
	}
	if h.key, err = phcBase64.DecodeString(parts[5]); err != nil {
		return bad("hash: %w", err)
	}
	if len(h.salt) < 8 || len(h.key) < 16 {
		return bad("salt or hash too short")
	}
	return h, nil
}

// passwordAlphabet leaves out characters that are easy to misread or mistype: 0 O o 1 l I.
const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"

// GeneratePassword returns a random 20-character password from an unambiguous alphabet
// (about 116 bits of entropy).
func GeneratePassword() string {
	const n = 20
	// Reject bytes past the largest multiple of the alphabet size so every character is equally likely.
	limit := byte(256 - 256%len(passwordAlphabet))
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		rand.Read(buf) // never fails since Go 1.24
		for _, b := range buf {
			if b < limit && len(out) < n {
				out = append(out, passwordAlphabet[int(b)%len(passwordAlphabet)])
			}
		}
	}
	return string(out)
}

// CheckPasswordPolicy reports why a password chosen by a person is not acceptable, or nil.
func CheckPasswordPolicy(p string) error {
	if n := utf8.RuneCountInString(p); n < MinPasswordLen {
		return fmt.Errorf("%w: needs at least %d characters, has %d", ErrWeakPassword, MinPasswordLen, n)
	}
	first, _ := utf8.DecodeRuneInString(p)
	if strings.Trim(p, string(first)) == "" {
		return fmt.Errorf("%w: is one character repeated", ErrWeakPassword)
	}
	return nil
}
