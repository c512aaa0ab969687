// Package winreg is the Windows registry as the agent's tasks see it: keys named by full paths
// ("HKCU\Software\Microsoft\Office"), typed values, and whole subtrees that can be exported to a
// backup and imported again. Mem keeps a registry in memory, for the tests on Linux; on Windows,
// Open reaches the real one.
package winreg

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
)

// Type is a registry value type, numbered as Windows numbers them.
type Type uint32

const (
	SZ       Type = 1
	ExpandSZ Type = 2
	Binary   Type = 3
	DWord    Type = 4
	MultiSZ  Type = 7
	QWord    Type = 11
)

// Value is one registry value. Strings carry SZ and ExpandSZ in String, MultiSZ in Strings, DWord
// and QWord in Number, and every other type as raw bytes in Bytes.
type Value struct {
	Type    Type     `json:"type"`
	String  string   `json:"string,omitempty"`
	Strings []string `json:"strings,omitempty"`
	Number  uint64   `json:"number,omitempty"`
	Bytes   []byte   `json:"bytes,omitempty"`
}

// Str is a REG_SZ value; Num a REG_DWORD.
func Str(s string) Value           { return Value{Type: SZ, String: s} }
func Num(n uint32) Value           { return Value{Type: DWord, Number: uint64(n)} }
func Bin(b []byte) Value           { return Value{Type: Binary, Bytes: b} }
func (v Value) Equal(w Value) bool { return fmt.Sprint(v) == fmt.Sprint(w) }

// Text reads a value as text: strings as they are, and binary values as the UTF-16LE strings MAPI
// keeps in profiles (PR_PST_PATH_W, the signature names), up to their terminating NUL.
func (v Value) Text() string {
	switch v.Type {
	case SZ, ExpandSZ:
		return v.String
	case MultiSZ:
		return strings.Join(v.Strings, "\n")
	case DWord, QWord:
		return fmt.Sprint(v.Number)
	}
	u := make([]uint16, 0, len(v.Bytes)/2)
	for i := 0; i+1 < len(v.Bytes); i += 2 {
		c := uint16(v.Bytes[i]) | uint16(v.Bytes[i+1])<<8
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// UTF16 encodes s as MAPI stores text in binary profile values: UTF-16LE with a NUL.
func UTF16(s string) []byte {
	u := utf16.Encode([]rune(s + "\x00"))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return b
}

// ErrNotExist is returned for a key that is not there.
var ErrNotExist = errors.New("registry key not found")

// Registry is the part of the Windows registry API the tasks use. Paths start with a root: HKCU
// (the user whose workstation is switched over, which a service finds under HKU) or HKLM. Names
// compare without regard to case, as Windows compares them.
type Registry interface {
	// SubKeys lists a key's subkeys' names; Values its values. Both fail with ErrNotExist.
	SubKeys(key string) ([]string, error)
	Values(key string) (map[string]Value, error)
	// CreateKey makes a key and its missing parents; SetValue creates the key too.
	CreateKey(key string) error
	SetValue(key, name string, v Value) error
	// DeleteValue and DeleteKey (with everything below it) succeed when there is nothing to delete.
	DeleteValue(key, name string) error
	DeleteKey(key string) error
}

// Get reads one value; ok is false when the key or the value is not there.
func Get(r Registry, key, name string) (v Value, ok bool, err error) {
	vals, err := r.Values(key)
	if errors.Is(err, ErrNotExist) {
		return v, false, nil
	} else if err != nil {
		return v, false, err
	}
	for n, v := range vals {
		if strings.EqualFold(n, name) {
			return v, true, nil
		}
	}
	return v, false, nil
}

// Exists tells whether a key is there.
func Exists(r Registry, key string) (bool, error) {
	_, err := r.SubKeys(key)
	if errors.Is(err, ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Tree is a key with everything below it, as a backup keeps it.
type Tree struct {
	Values  map[string]Value `json:"values,omitempty"`
	SubKeys map[string]*Tree `json:"subkeys,omitempty"`
}

// Export reads a key and everything below it.
func Export(r Registry, key string) (*Tree, error) {
	vals, err := r.Values(key)
	if err != nil {
		return nil, err
	}
	subs, err := r.SubKeys(key)
	if err != nil {
		return nil, err
	}
	t := &Tree{Values: vals, SubKeys: map[string]*Tree{}}
	for _, s := range subs {
		if t.SubKeys[s], err = Export(r, key+`\`+s); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Import writes a tree under key, adding to what is there.
func Import(r Registry, key string, t *Tree) error {
	if err := r.CreateKey(key); err != nil {
		return err
	}
	for _, n := range sortedKeys(t.Values) {
		if err := r.SetValue(key, n, t.Values[n]); err != nil {
			return err
		}
	}
	for _, n := range sortedKeys(t.SubKeys) {
		if err := Import(r, key+`\`+n, t.SubKeys[n]); err != nil {
			return err
		}
	}
	return nil
}

// Walk calls fn for key and every key below it, parents first.
func Walk(r Registry, key string, fn func(key string, vals map[string]Value) error) error {
	vals, err := r.Values(key)
	if err != nil {
		return err
	}
	if err := fn(key, vals); err != nil {
		return err
	}
	subs, err := r.SubKeys(key)
	if err != nil {
		return err
	}
	for _, s := range subs {
		if err := Walk(r, key+`\`+s, fn); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// split checks a path's root and returns its parts.
func split(key string) ([]string, error) {
	parts := strings.Split(strings.Trim(key, `\`), `\`)
	switch strings.ToUpper(parts[0]) {
	case "HKCU", "HKLM":
	default:
		return nil, fmt.Errorf("registry path %q: want it to start with HKCU or HKLM", key)
	}
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("registry path %q has an empty part", key)
		}
	}
	return parts, nil
}

func errRootDelete(key string) error {
	return fmt.Errorf("registry path %q: a root cannot be deleted", key)
}
