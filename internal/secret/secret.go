// Package secret seals credentials with envelope encryption under a master key: each value gets a
// fresh AES-256-GCM data key, and the data key is wrapped with AES-256-GCM under the master key.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// KeyFileName is the key file in the data dir; KeyFileName+".new" is a key being rotated in.
const KeyFileName = "master.key"

var (
	ErrUnknownKey = errors.New("sealed under a master key this keyring does not have")
	ErrMalformed  = errors.New("malformed sealed value")
	ErrAuth       = errors.New("sealed value failed authentication (tampered, or bound to another owner)")
)

const (
	keyLen   = 32
	idLen    = 8 // hex chars
	version  = "v1"
	nonceLen = 12 // GCM standard nonce
	tagLen   = 16
	// wrappedLen is a data key sealed under the master key.
	wrappedLen = keyLen + tagLen
)

type key struct {
	id  string
	raw []byte
}

// Keyring holds the current master key and any older keys still needed to open values.
// Keys are held through pointers so that fmt/slog printing a Keyring nested in another struct
// (where our String method is not consulted) shows addresses, not key bytes.
type Keyring struct {
	keys []*key // keys[0] is current
}

func keyID(raw []byte) string {
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:idLen/2])
}

// NewKeyring builds a keyring from raw 32-byte keys (first is current). For tests and rotation.
func NewKeyring(current []byte, old ...[]byte) (*Keyring, error) {
	k := &Keyring{}
	for i, raw := range append([][]byte{current}, old...) {
		if len(raw) != keyLen {
			return nil, fmt.Errorf("master key %d is %d bytes, want %d", i+1, len(raw), keyLen)
		}
		k.keys = append(k.keys, &key{id: keyID(raw), raw: append([]byte(nil), raw...)})
	}
	return k, nil
}

// GenerateKey returns 32 random bytes.
func GenerateKey() []byte {
	b := make([]byte, keyLen)
	rand.Read(b) // never fails since Go 1.24 (it crashes the program instead)
	return b
}

// EncodeKey returns the base64 (std) text form used in key files and FERRY_MASTER_KEY.
func EncodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// DecodeKey parses a key's text form: std or url base64, padded or not, surrounding space ignored.
// Errors never echo the input, which is key material.
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != keyLen {
				return nil, fmt.Errorf("master key is %d bytes, want %d (base64 of 32 random bytes)", len(b), keyLen)
			}
			return b, nil
		}
	}
	return nil, errors.New("master key is not base64")
}

// Load builds a keyring from FERRY_MASTER_KEY (envValue: comma-separated keys, first current) or,
// when that is empty, from dataDir/master.key, created on first start. A leftover master.key.new
// (interrupted rotation) becomes the current key with master.key still accepted for Open.
// created reports whether a new key file was written.
func Load(dataDir, envValue string) (k *Keyring, created bool, err error) {
	if envValue != "" {
		var raws [][]byte
		for i, part := range strings.Split(envValue, ",") {
			raw, err := DecodeKey(part)
			if err != nil {
				return nil, false, fmt.Errorf("FERRY_MASTER_KEY key %d: %w", i+1, err)
			}
			raws = append(raws, raw)
		}
		k, err := NewKeyring(raws[0], raws[1:]...)
		return k, false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create data dir: %w", err)
	}
	cur, next, err := readKeyFiles(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		cur = GenerateKey()
		if err := writeKeyFile(filepath.Join(dataDir, KeyFileName), cur); err != nil {
			return nil, false, err
		}
		created = true
	} else if err != nil {
		return nil, false, err
	}
	if next != nil {
		k, err = NewKeyring(next, cur)
	} else {
		k, err = NewKeyring(cur)
	}
	return k, created, err
}

// readKeyFiles reads master.key and, if present, master.key.new (next is nil otherwise).
// It returns an os.ErrNotExist error only when neither file exists, i.e. on first start.
func readKeyFiles(dataDir string) (cur, next []byte, err error) {
	path := filepath.Join(dataDir, KeyFileName)
	cur, err = readKeyFile(path)
	curMissing := errors.Is(err, os.ErrNotExist)
	if err != nil && !curMissing {
		return nil, nil, err
	}
	next, err = readKeyFile(path + ".new")
	if errors.Is(err, os.ErrNotExist) {
		if curMissing {
			return nil, nil, fmt.Errorf("no key file %s: %w", path, os.ErrNotExist)
		}
		return cur, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if curMissing {
		// Generating a fresh master.key here would hide that the real one is gone; values in the
		// database may be under either key, so let the operator decide.
		return nil, nil, fmt.Errorf("key file %s is missing but %s.new exists: restore %s (or, if the last rotation finished re-encrypting, rename %s.new to it)", path, path, path, path)
	}
	return cur, next, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// Windows has no Unix mode bits (Go reports 0666); access there is governed by ACLs.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is accessible to group/others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	buf, err := io.ReadAll(io.LimitReader(f, 1024)) // a key is 44 chars; the limit just bounds junk
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	raw, err := DecodeKey(string(buf))
	clear(buf)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return raw, nil
}

// writeKeyFile creates path exclusively (an existing key is never overwritten), mode 0600, fsync'd.
func writeKeyFile(path string, raw []byte) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path) // a half-written key file would only fail the next start
			err = fmt.Errorf("write key file %s: %w", path, err)
		}
	}()
	if _, err := f.WriteString(EncodeKey(raw) + "\n"); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a create/rename durable. Best effort: not every OS/filesystem can fsync a
// directory, and the rename itself is atomic either way.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// BeginRotation writes a fresh key to dataDir/master.key.new (0600, fsync'd) and returns a keyring
// whose current key is the new one and which still opens values under old's keys.
//
// old must be the keyring Load built from the key files (not FERRY_MASTER_KEY, which would keep
// overriding the rotated file). If master.key.new already exists and old is current on it, an
// earlier rotation was interrupted: that one is resumed (old is returned as is) instead of
// replacing master.key.new, which may already protect re-encrypted values.
func BeginRotation(dataDir string, old *Keyring) (*Keyring, error) {
	if old == nil || len(old.keys) == 0 {
		return nil, errors.New("begin key rotation: empty keyring")
	}
	path := filepath.Join(dataDir, KeyFileName)
	cur, next, err := readKeyFiles(dataDir)
	if err != nil {
		return nil, fmt.Errorf("begin key rotation: %w", err)
	}
	if next != nil {
		if keyID(next) == old.ID() {
			return old, nil
		}
		return nil, fmt.Errorf("begin key rotation: %s.new exists and is not the keyring's current key (another rotation running?)", path)
	}
	if keyID(cur) != old.ID() {
		return nil, fmt.Errorf("begin key rotation: keyring's current key is not the one in %s (is FERRY_MASTER_KEY set?)", path)
	}
	raw := GenerateKey()
	if err := writeKeyFile(path+".new", raw); err != nil {
		return nil, fmt.Errorf("begin key rotation: %w", err)
	}
	return &Keyring{keys: append([]*key{{id: keyID(raw), raw: raw}}, old.keys...)}, nil
}

// CommitRotation renames master.key.new over master.key (and fsyncs the dir). Call it only after the
// re-encryption transaction committed; until then Load keeps both keys so every value still opens.
func CommitRotation(dataDir string) error {
	path := filepath.Join(dataDir, KeyFileName)
	if err := os.Rename(path+".new", path); err != nil {
		return fmt.Errorf("commit key rotation: %w", err)
	}
	syncDir(dataDir)
	return nil
}

// ID returns the current key's id.
func (k Keyring) ID() string {
	if len(k.keys) == 0 {
		return ""
	}
	return k.keys[0].id
}

// String, GoString and LogValue (value receivers, so Keyring and *Keyring both have them) show
// only the key id: a keyring that ends up in a log line or error must not leak key bytes.
func (k Keyring) String() string       { return "secret.Keyring(id=" + k.ID() + ")" }
func (k Keyring) GoString() string     { return k.String() }
func (k Keyring) LogValue() slog.Value { return slog.StringValue(k.String()) }

func gcm(raw []byte) cipher.AEAD {
	b, err := aes.NewCipher(raw)
	if err != nil {
		panic(err) // unreachable: every key is checked to be 32 bytes
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
}

// wrapAAD binds a wrapped data key to the master key id it was sealed under. (Unchanged since
// the first release of v1: changing it would make existing values unopenable.)
func wrapAAD(id string) []byte { return []byte("ferry-dek|" + id) }

// Seal encrypts plaintext with a fresh data key, wraps that key under the current master key, and
// binds the value to aad (its owner, e.g. "endpoint/ep_123/password") so a copy in another row fails.
// The result is printable ASCII: "v1.<key id>.<base64url(nonce|wrapped key|nonce|ciphertext)>".
func (k *Keyring) Seal(plaintext []byte, aad string) (string, error) {
	if k == nil || len(k.keys) == 0 {
		return "", errors.New("seal: empty keyring")
	}
	cur := k.keys[0]
	dek := GenerateKey()
	defer clear(dek)
	nonce1, nonce2 := make([]byte, nonceLen), make([]byte, nonceLen)
	rand.Read(nonce1)
	rand.Read(nonce2)
	wrapped := gcm(cur.raw).Seal(nil, nonce1, dek, wrapAAD(cur.id))
	ciphertext := gcm(dek).Seal(nil, nonce2, plaintext, []byte(aad))
	buf := slices.Concat(nonce1, wrapped, nonce2, ciphertext)
	return version + "." + cur.id + "." + base64.RawURLEncoding.EncodeToString(buf), nil
}

func split(sealed string) (id string, blob []byte, err error) {
	parts := strings.Split(sealed, ".")
	if len(parts) != 3 || parts[0] != version {
		return "", nil, fmt.Errorf("%w: not %s.<key id>.<data>", ErrMalformed, version)
	}
	if _, err := hex.DecodeString(parts[1]); err != nil || len(parts[1]) != idLen {
		return "", nil, fmt.Errorf("%w: bad key id", ErrMalformed)
	}
	blob, err = base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(blob) < nonceLen+wrappedLen+nonceLen+tagLen {
		return "", nil, fmt.Errorf("%w: too short", ErrMalformed)
	}
	return parts[1], blob, nil
}

// Open reverses Seal with whichever keyring key matches the value's key id.
func (k *Keyring) Open(sealed, aad string) ([]byte, error) {
	id, blob, err := split(sealed)
	if err != nil {
		return nil, fmt.Errorf("open sealed value: %w", err)
	}
	known := false
	var dek []byte
	if k != nil {
		for _, mk := range k.keys {
			if mk.id != id {
				continue
			}
			// Ids are 32 bits, so two keys could share one; try each that matches.
			known = true
			if dek, err = gcm(mk.raw).Open(nil, blob[:nonceLen], blob[nonceLen:nonceLen+wrappedLen], wrapAAD(id)); err == nil {
				break
			}
		}
	}
	if !known {
		return nil, fmt.Errorf("open sealed value: key %s: %w", id, ErrUnknownKey)
	}
	if dek == nil {
		return nil, fmt.Errorf("open sealed value (key %s): data key: %w", id, ErrAuth)
	}
	defer clear(dek)
	rest := blob[nonceLen+wrappedLen:]
	plain, err := gcm(dek).Open(nil, rest[:nonceLen], rest[nonceLen:], []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("open sealed value (key %s): %w", id, ErrAuth)
	}
	return plain, nil
}

// Current reports whether sealed is already under the current key (rotation skips those).
func (k *Keyring) Current(sealed string) bool {
	id, _, err := split(sealed)
	return err == nil && k != nil && len(k.keys) > 0 && id == k.keys[0].id
}

// Redacted is a string (a password held in a struct) that never shows itself in fmt, slog or JSON.
// JSON input still decodes into it normally; only output is masked.
type Redacted string

func (r Redacted) String() string       { return r.mask() }
func (r Redacted) GoString() string     { return r.mask() }
func (r Redacted) LogValue() slog.Value { return slog.StringValue(r.mask()) }

// MarshalJSON emits "***", or "" when empty so clients can still tell whether a value is set.
func (r Redacted) MarshalJSON() ([]byte, error) { return []byte(`"` + r.mask() + `"`), nil }

func (r Redacted) mask() string {
	if r == "" {
		return ""
	}
	return "***"
}
