package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const aad = "endpoint/ep_123/password"

func newKeyring(t *testing.T, raws ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(raws[0], raws[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func seal(t *testing.T, k *Keyring, plain, aad string) string {
	t.Helper()
	s, err := k.Seal([]byte(plain), aad)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustOpen(t *testing.T, k *Keyring, sealed, aad, want string) {
	t.Helper()
	got, err := k.Open(sealed, aad)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if string(got) != want {
		t.Fatalf("Open = %q, want %q", got, want)
	}
}

func openErr(t *testing.T, k *Keyring, sealed, aad string, want error) error {
	t.Helper()
	got, err := k.Open(sealed, aad)
	if !errors.Is(err, want) {
		t.Fatalf("Open error = %v, want %v", err, want)
	}
	if got != nil {
		t.Fatalf("Open returned %q along with an error", got)
	}
	return err
}

func TestSealOpen(t *testing.T) {
	k := newKeyring(t, GenerateKey())
	const plain = "hunter2-correct-horse-battery-staple"
	sealed := seal(t, k, plain, aad)

	mustOpen(t, k, sealed, aad, plain)
	if !strings.HasPrefix(sealed, "v1."+k.ID()+".") {
		t.Errorf("sealed = %q, want prefix v1.%s.", sealed, k.ID())
	}
	for _, c := range sealed {
		if c < 0x21 || c > 0x7e {
			t.Fatalf("sealed value has non-printable char %q", c)
		}
	}
	blob, err := base64.RawURLEncoding.DecodeString(strings.SplitN(sealed, ".", 3)[2])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, plain) || bytes.Contains(blob, []byte(plain)) || bytes.Contains(blob, []byte("hunter2")) {
		t.Error("sealed value contains the plaintext")
	}
	if again := seal(t, k, plain, aad); again == sealed {
		t.Error("two Seals of the same value are identical")
	}

	empty := seal(t, k, "", aad)
	mustOpen(t, k, empty, aad, "")
}

func TestOpenRejects(t *testing.T) {
	k := newKeyring(t, GenerateKey())
	const plain = "s3cret-password"
	sealed := seal(t, k, plain, aad)

	err := openErr(t, k, sealed, "endpoint/ep_999/password", ErrAuth)
	if strings.Contains(err.Error(), plain) {
		t.Errorf("error %q contains the plaintext", err)
	}

	// Flip every byte of the payload in turn: nonces, wrapped key, ciphertext and tags are all covered.
	prefix, payload := sealed[:strings.LastIndex(sealed, ".")+1], sealed[strings.LastIndex(sealed, ".")+1:]
	blob, _ := base64.RawURLEncoding.DecodeString(payload)
	for i := range blob {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x01
		openErr(t, k, prefix+base64.RawURLEncoding.EncodeToString(bad), aad, ErrAuth)
	}

	other := newKeyring(t, GenerateKey())
	openErr(t, other, sealed, aad, ErrUnknownKey)

	for _, s := range []string{
		"",
		"hunter2",
		"v2" + sealed[2:],
		"v1." + k.ID(),
		"v1.zzzzzzzz." + payload,
		"v1." + k.ID() + "." + payload + "!",
		"v1." + k.ID() + "." + payload[:20],
		sealed + ".x",
	} {
		openErr(t, k, s, aad, ErrMalformed)
		if k.Current(s) {
			t.Errorf("Current(%q) = true for a malformed value", s)
		}
	}
}

func TestNewKeyringAndDecodeKey(t *testing.T) {
	if _, err := NewKeyring(make([]byte, 16)); err == nil {
		t.Error("NewKeyring accepted a 16-byte key")
	}
	if _, err := NewKeyring(GenerateKey(), make([]byte, 31)); err == nil {
		t.Error("NewKeyring accepted a 31-byte old key")
	}
	if a, b := GenerateKey(), GenerateKey(); len(a) != 32 || bytes.Equal(a, b) {
		t.Errorf("GenerateKey gave %d bytes / repeated itself", len(a))
	}

	raw := GenerateKey()
	for _, s := range []string{
		EncodeKey(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		" " + EncodeKey(raw) + "\n",
	} {
		got, err := DecodeKey(s)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("DecodeKey(%q) = %x, %v", s, got, err)
		}
	}
	short := base64.StdEncoding.EncodeToString(raw[:16])
	for _, s := range []string{short, "not base64 at all!", ""} {
		_, err := DecodeKey(s)
		if err == nil {
			t.Errorf("DecodeKey(%q) succeeded", s)
		} else if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("DecodeKey error %q echoes its input", err)
		}
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k, created, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("first Load: created = false")
	}
	path := filepath.Join(dir, KeyFileName)
	if runtime.GOOS != "windows" {
		for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s mode = %v, want %v", p, fi.Mode().Perm(), want)
			}
		}
	}
	sealed := seal(t, k, "pw", aad)

	k2, created, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("second Load: created = true")
	}
	if k2.ID() != k.ID() {
		t.Errorf("second Load ID = %s, want %s", k2.ID(), k.ID())
	}
	mustOpen(t, k2, sealed, aad, "pw")
}

func TestLoadBadKeyFile(t *testing.T) {
	cases := map[string]struct {
		content string
		mode    os.FileMode
	}{
		"short":      {base64.StdEncoding.EncodeToString(make([]byte, 16)), 0o600},
		"long":       {base64.StdEncoding.EncodeToString(make([]byte, 64)), 0o600},
		"not base64": {"this is not a key", 0o600},
		"empty":      {"", 0o600},
		"mode 0644":  {EncodeKey(GenerateKey()), 0o644},
		"mode 0640":  {EncodeKey(GenerateKey()), 0o640},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if c.mode != 0o600 && runtime.GOOS == "windows" {
				t.Skip("no Unix modes")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFileName)
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, c.mode); err != nil {
				t.Fatal(err)
			}
			k, _, err := Load(dir, "")
			if err == nil {
				t.Fatalf("Load succeeded with keyring %v", k)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if c.content != "" && strings.Contains(err.Error(), c.content) {
				t.Errorf("error %q contains the file content", err)
			}
			if got, _ := os.ReadFile(path); string(got) != c.content {
				t.Error("Load changed the bad key file")
			}
		})
	}
}

func TestLoadEnv(t *testing.T) {
	a, b := GenerateKey(), GenerateKey()
	onlyA, onlyB := newKeyring(t, a), newKeyring(t, b)
	fromA, fromB := seal(t, onlyA, "pa", aad), seal(t, onlyB, "pb", aad)

	dir := t.TempDir()
	k, created, err := Load(dir, EncodeKey(a)+", "+base64.RawURLEncoding.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("created = true with FERRY_MASTER_KEY set")
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file written although FERRY_MASTER_KEY is set (stat: %v)", err)
	}
	mustOpen(t, k, fromA, aad, "pa")
	mustOpen(t, k, fromB, aad, "pb")
	if k.ID() != onlyA.ID() {
		t.Errorf("ID = %s, want first key's %s", k.ID(), onlyA.ID())
	}
	sealed := seal(t, k, "new", aad)
	mustOpen(t, onlyA, sealed, aad, "new")
	openErr(t, onlyB, sealed, aad, ErrUnknownKey)
	if !k.Current(sealed) || !k.Current(fromA) || k.Current(fromB) {
		t.Error("Current: want true for values under the first key only")
	}

	for _, env := range []string{"nope", EncodeKey(a) + ",", EncodeKey(a[:16])} {
		if _, _, err := Load(dir, env); err == nil || !strings.Contains(err.Error(), "FERRY_MASTER_KEY") {
			t.Errorf("Load(env=%q) error = %v, want one naming FERRY_MASTER_KEY", env, err)
		} else if strings.Contains(err.Error(), EncodeKey(a)) {
			t.Errorf("error %q contains key material", err)
		}
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	old, _, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	oldValue := seal(t, old, "old-pw", aad)

	next, err := BeginRotation(dir, old)
	if err != nil {
		t.Fatal(err)
	}
	if next.ID() == old.ID() {
		t.Fatal("BeginRotation kept the old key current")
	}
	newPath := filepath.Join(dir, KeyFileName+".new")
	if fi, err := os.Stat(newPath); err != nil {
		t.Fatal(err)
	} else if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode = %v, want 0600", newPath, fi.Mode().Perm())
	}
	mustOpen(t, next, oldValue, aad, "old-pw")
	if next.Current(oldValue) {
		t.Error("Current(old value) = true under the new keyring")
	}
	resealed := seal(t, next, "old-pw", aad)
	if !next.Current(resealed) {
		t.Error("Current(re-sealed value) = false")
	}
	if !strings.HasPrefix(resealed, "v1."+next.ID()+".") {
		t.Errorf("re-sealed value %q is not under the new key %s", resealed, next.ID())
	}

	// Crash before CommitRotation: the next start must open values under either key.
	crashed, created, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if created || crashed.ID() != next.ID() {
		t.Fatalf("after crash: ID = %s created = %v, want %s false", crashed.ID(), created, next.ID())
	}
	mustOpen(t, crashed, oldValue, aad, "old-pw")
	mustOpen(t, crashed, resealed, aad, "old-pw")

	// Running rotate-key again resumes the interrupted rotation rather than orphaning its key.
	resumed, err := BeginRotation(dir, crashed)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.ID() != next.ID() {
		t.Errorf("resumed rotation ID = %s, want pending %s", resumed.ID(), next.ID())
	}
	mustOpen(t, resumed, oldValue, aad, "old-pw")
	// A stale keyring (current = master.key) must not start a second rotation over the pending one.
	if _, err := BeginRotation(dir, old); err == nil {
		t.Error("BeginRotation with a stale keyring succeeded while master.key.new exists")
	}

	if err := CommitRotation(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(newPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after commit", newPath)
	}
	after, _, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if after.ID() != next.ID() {
		t.Errorf("after commit ID = %s, want %s", after.ID(), next.ID())
	}
	mustOpen(t, after, resealed, aad, "old-pw")
	openErr(t, after, oldValue, aad, ErrUnknownKey)

	if err := CommitRotation(dir); err == nil {
		t.Error("second CommitRotation without a pending key succeeded")
	}
}

func TestRotationRefusals(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := Load(dir, ""); err != nil {
		t.Fatal(err)
	}
	envRing := newKeyring(t, GenerateKey())
	if _, err := BeginRotation(dir, envRing); err == nil {
		t.Error("BeginRotation accepted a keyring that is not the key file's")
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFileName+".new")); !errors.Is(err, os.ErrNotExist) {
		t.Error("refused BeginRotation still wrote master.key.new")
	}

	// master.key gone but master.key.new present: do not paper over it with a fresh key.
	k, _, _ := Load(dir, "")
	if _, err := BeginRotation(dir, k); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, KeyFileName)
	os.Remove(path)
	if _, _, err := Load(dir, ""); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load with only master.key.new: error = %v, want one naming %s", err, path)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Error("Load created a fresh master.key next to a pending master.key.new")
	}
}

func TestKeyringNeverPrintsKeys(t *testing.T) {
	raw := GenerateKey()
	k := newKeyring(t, raw, GenerateKey())
	want := "secret.Keyring(id=" + k.ID() + ")"
	if len(k.ID()) != 8 {
		t.Errorf("ID %q is not 8 hex chars", k.ID())
	}
	leaks := []string{EncodeKey(raw), hex.EncodeToString(raw), strings.Trim(fmt.Sprint(raw), "[]"), fmt.Sprintf("%q", raw)}

	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("start", "keys", k, "ring", *k)
	outputs := []string{
		//lint:ignore S1025 the test checks what each fmt verb prints
		fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), fmt.Sprintf("%s", *k), fmt.Sprintf("%#v", *k),
		fmt.Sprintf("%+v", struct{ K *Keyring }{k}), fmt.Sprintf("%+v", struct{ K Keyring }{*k}),
		fmt.Sprintf("%+v", struct{ k Keyring }{*k}), fmt.Sprintf("%#v", struct{ k Keyring }{*k}),
		logBuf.String(),
	}
	for _, out := range outputs[:5] {
		if out != want {
			t.Errorf("printed keyring = %q, want %q", out, want)
		}
	}
	if !strings.Contains(logBuf.String(), want) {
		t.Errorf("slog output %q lacks %q", logBuf.String(), want)
	}
	for _, out := range outputs {
		for _, leak := range leaks {
			if strings.Contains(out, leak) {
				t.Errorf("output %q contains key material", out)
			}
		}
	}
}

func TestRedacted(t *testing.T) {
	type creds struct {
		User     string
		Password Redacted
	}
	c := creds{"admin", "hunter2"}
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("login", "password", c.Password, "creds", c)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprint(c.Password), fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c.Password, c.Password), string(js), logBuf.String(),
	} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("output %q shows the password", out)
		}
	}
	if string(js) != `{"User":"admin","Password":"***"}` {
		t.Errorf("JSON = %s", js)
	}
	if got, _ := json.Marshal(Redacted("")); string(got) != `""` {
		t.Errorf("JSON of empty Redacted = %s, want \"\"", got)
	}
	if c.Password.String() != "***" || c.Password.GoString() != "***" || c.Password.LogValue().String() != "***" {
		t.Error("Redacted methods do not mask")
	}
	var in creds
	if err := json.Unmarshal([]byte(`{"Password":"from-client"}`), &in); err != nil || string(in.Password) != "from-client" {
		t.Errorf("decoding into Redacted = %q, %v", in.Password, err)
	}
}

// TestFormatStable opens a value sealed by an earlier build: the v1 format is stored in databases,
// so any change that breaks this test makes existing credentials unopenable.
func TestFormatStable(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	k := newKeyring(t, raw)
	const sealed = "v1.630dcd29.DGSJC0fQKWCR6nqQRet3cjD2V71ONI6t3aCcypM4wDAmL-cJFZIqjhy7zzkyhtx3urCbBvKRaBfL2z2xOstg_ZPf8Eadyjjxh7UFboLxXYzSQPguRM8TEODYTfUOw5U"
	if k.ID() != "630dcd29" || !k.Current(sealed) {
		t.Fatalf("ID = %s, want 630dcd29", k.ID())
	}
	mustOpen(t, k, sealed, "endpoint/ep_1/password", "hunter2")
}
