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
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// KeyFileName is the key file in the data dir; KeyFileName+".new" is a key being rotated in.
const KeyFileName = "master.key"

var (
	ErrUnknownKey = errors.New("sealed under a master key this keyring does not have")
	ErrMalformed  = errors.New("malformed sealed value")
	ErrAuth       = errors.New("sealed value failed authentication (tampered, or bound to another owner)")
)

type key struct {
	id  string
	raw []byte
}

// Keyring holds the current master key and any older keys still needed to open values.
type Keyring struct {
	keys []key // keys[0] is current
}

func keyID(raw []byte) string {
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:4])
}

// NewKeyring builds a keyring from raw 32-byte keys (first is current).
func NewKeyring(current []byte, old ...[]byte) (*Keyring, error) {
	k := &Keyring{}
	for i, raw := range append([][]byte{current}, old...) {
		if len(raw) != 32 {
			return nil, fmt.Errorf("master key %d is %d bytes, want 32", i+1, len(raw))
		}
		k.keys = append(k.keys, key{id: keyID(raw), raw: append([]byte(nil), raw...)})
	}
	return k, nil
}

// GenerateKey returns 32 random bytes.
func GenerateKey() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// EncodeKey returns the text form used in key files and FERRY_MASTER_KEY.
func EncodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// DecodeKey parses a key's text form (standard or URL base64, padded or not).
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("master key is %d bytes, want 32 (base64 of 32 random bytes)", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("master key is not base64")
}

// Load builds the keyring from FERRY_MASTER_KEY (envValue) or from the key file in dataDir,
// creating the file on first start. created reports whether a new key file was written.
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
	path := filepath.Join(dataDir, KeyFileName)
	cur, err := readKeyFile(path)
	if errors.Is(err, os.ErrNotExist) {
		cur = GenerateKey()
		if err := writeKeyFile(path, cur); err != nil {
			return nil, false, err
		}
		created = true
	} else if err != nil {
		return nil, false, err
	}
	// An interrupted rotation left master.key.new: it is current, the old key still opens.
	next, err := readKeyFile(path + ".new")
	if err == nil {
		k, err := NewKeyring(next, cur)
		return k, false, err
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	k, err = NewKeyring(cur)
	return k, created, err
}

func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := DecodeKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return raw, nil
}

func writeKeyFile(path string, raw []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.WriteString(EncodeKey(raw) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	d.Sync() // not every filesystem supports it; the rename is still atomic
	return nil
}

// BeginRotation writes a fresh key to master.key.new and returns a keyring whose current key is
// the new one and which still opens values sealed under old.
func BeginRotation(dataDir string, old *Keyring) (*Keyring, error) {
	path := filepath.Join(dataDir, KeyFileName+".new")
	os.Remove(path) // a leftover from a rotation that never re-encrypted anything
	raw := GenerateKey()
	if err := writeKeyFile(path, raw); err != nil {
		return nil, err
	}
	k := &Keyring{keys: []key{{id: keyID(raw), raw: raw}}}
	k.keys = append(k.keys, old.keys...)
	return k, nil
}

// CommitRotation makes the rotated-in key the only key file. Call it after re-encryption committed.
func CommitRotation(dataDir string) error {
	path := filepath.Join(dataDir, KeyFileName)
	if err := os.Rename(path+".new", path); err != nil {
		return fmt.Errorf("commit key rotation: %w", err)
	}
	return syncDir(dataDir)
}

// ID returns the current key's id.
func (k *Keyring) ID() string { return k.keys[0].id }

func (k *Keyring) String() string             { return "secret.Keyring(id=" + k.ID() + ")" }
func (k *Keyring) GoString() string           { return k.String() }
func (k *Keyring) LogValue() slog.Value       { return slog.StringValue(k.String()) }
func (k *Keyring) Format(f fmt.State, _ rune) { f.Write([]byte(k.String())) }

func gcm(raw []byte) cipher.AEAD {
	b, err := aes.NewCipher(raw)
	if err != nil {
		panic(err) // keys are always 32 bytes
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
}

// Seal encrypts plaintext, bound to aad (e.g. "endpoint/ep_123"), under the current key.
// The result is "v1.<key id>.<base64url(wrapped data key | sealed value)>".
func (k *Keyring) Seal(plaintext []byte, aad string) (string, error) {
	cur := k.keys[0]
	dek := GenerateKey()
	defer clear(dek)
	kek := gcm(cur.raw)
	nonce1 := make([]byte, kek.NonceSize())
	rand.Read(nonce1)
	wrapped := kek.Seal(nil, nonce1, dek, []byte("ferry-dek|"+cur.id))
	data := gcm(dek)
	nonce2 := make([]byte, data.NonceSize())
	rand.Read(nonce2)
	sealed := data.Seal(nil, nonce2, plaintext, []byte(aad))
	buf := make([]byte, 0, len(nonce1)+len(wrapped)+len(nonce2)+len(sealed))
	buf = append(append(append(append(buf, nonce1...), wrapped...), nonce2...), sealed...)
	return "v1." + cur.id + "." + base64.RawURLEncoding.EncodeToString(buf), nil
}

func split(sealed string) (id string, blob []byte, err error) {
	parts := strings.Split(sealed, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return "", nil, ErrMalformed
	}
	blob, err = base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return parts[1], blob, nil
}

// Open reverses Seal with whichever key the value names.
func (k *Keyring) Open(sealed, aad string) ([]byte, error) {
	id, blob, err := split(sealed)
	if err != nil {
		return nil, err
	}
	var mk *key
	for i := range k.keys {
		if k.keys[i].id == id {
			mk = &k.keys[i]
		}
	}
	if mk == nil {
		return nil, fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
	}
	kek := gcm(mk.raw)
	ns, wl := kek.NonceSize(), 32+kek.Overhead()
	if len(blob) < ns+wl+12+16 {
		return nil, ErrMalformed
	}
	dek, err := kek.Open(nil, blob[:ns], blob[ns:ns+wl], []byte("ferry-dek|"+id))
	if err != nil {
		return nil, ErrAuth
	}
	defer clear(dek)
	rest := blob[ns+wl:]
	data := gcm(dek)
	plain, err := data.Open(nil, rest[:data.NonceSize()], rest[data.NonceSize():], []byte(aad))
	if err != nil {
		return nil, ErrAuth
	}
	return plain, nil
}

// Current reports whether sealed is under the current key (rotation skips those).
func (k *Keyring) Current(sealed string) bool {
	id, _, err := split(sealed)
	return err == nil && id == k.keys[0].id
}

// Redacted is a string that never shows itself in logs, fmt or JSON.
type Redacted string

func (r Redacted) String() string       { return mask(r) }
func (r Redacted) GoString() string     { return mask(r) }
func (r Redacted) LogValue() slog.Value { return slog.StringValue(mask(r)) }
func (r Redacted) MarshalJSON() ([]byte, error) {
	return []byte(`"` + mask(r) + `"`), nil
}

func mask(r Redacted) string {
	if r == "" {
		return ""
	}
	return "***"
}
