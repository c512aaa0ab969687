//go:build windows

package winreg

import (
	"errors"
	"strings"
	"syscall"

	"golang.org/x/sys/windows/registry"
)

// Windows is the real registry. HKCU means the user's own hive: CURRENT_USER in user mode, or
// HKEY_USERS\<SID> of the signed-in user when the agent runs as a service.
type Windows struct {
	UserSID string
}

func (w Windows) open(key string, access uint32, create bool) (registry.Key, error) {
	parts, err := split(key)
	if err != nil {
		return 0, err
	}
	root, rest := registry.LOCAL_MACHINE, parts[1:]
	if strings.EqualFold(parts[0], "HKCU") {
		root = registry.CURRENT_USER
		if w.UserSID != "" {
			root, rest = registry.USERS, append([]string{w.UserSID}, rest...)
		}
	}
	path := strings.Join(rest, `\`)
	if create {
		k, _, err := registry.CreateKey(root, path, access)
		return k, err
	}
	k, err := registry.OpenKey(root, path, access)
	if errors.Is(err, syscall.ERROR_FILE_NOT_FOUND) {
		return 0, ErrNotExist
	}
	return k, err
}

func (w Windows) SubKeys(key string) ([]string, error) {
	k, err := w.open(key, registry.ENUMERATE_SUB_KEYS|registry.QUERY_VALUE, false)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	return k.ReadSubKeyNames(-1)
}

func (w Windows) Values(key string) (map[string]Value, error) {
	k, err := w.open(key, registry.QUERY_VALUE, false)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	names, err := k.ReadValueNames(-1)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Value, len(names))
	for _, n := range names {
		buf := make([]byte, 256)
		size, typ, err := k.GetValue(n, buf)
		if errors.Is(err, syscall.ERROR_MORE_DATA) || size > len(buf) {
			buf = make([]byte, size)
			size, typ, err = k.GetValue(n, buf)
		}
		if err != nil {
			return nil, err
		}
		v := Value{Type: Type(typ)}
		switch v.Type {
		case SZ, ExpandSZ:
			v.String, _, err = k.GetStringValue(n)
		case MultiSZ:
			v.Strings, _, err = k.GetStringsValue(n)
		case DWord, QWord:
			v.Number, _, err = k.GetIntegerValue(n)
		default:
			v.Bytes = buf[:size]
		}
		if err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, nil
}

func (w Windows) CreateKey(key string) error {
	k, err := w.open(key, registry.CREATE_SUB_KEY, true)
	if err == nil {
		k.Close()
	}
	return err
}

func (w Windows) SetValue(key, name string, v Value) error {
	k, err := w.open(key, registry.SET_VALUE, true)
	if err != nil {
		return err
	}
	defer k.Close()
	switch v.Type {
	case SZ:
		return k.SetStringValue(name, v.String)
	case ExpandSZ:
		return k.SetExpandStringValue(name, v.String)
	case MultiSZ:
		return k.SetStringsValue(name, v.Strings)
	case DWord:
		return k.SetDWordValue(name, uint32(v.Number))
	case QWord:
		return k.SetQWordValue(name, v.Number)
	}
	// Other types keep their bytes; x/sys writes them as REG_BINARY.
	return k.SetBinaryValue(name, v.Bytes)
}

func (w Windows) DeleteValue(key, name string) error {
	k, err := w.open(key, registry.SET_VALUE, false)
	if errors.Is(err, ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer k.Close()
	if err := k.DeleteValue(name); err != nil && !errors.Is(err, syscall.ERROR_FILE_NOT_FOUND) {
		return err
	}
	return nil
}

// DeleteKey deletes the subkeys first: RegDeleteKey refuses a key that has any.
func (w Windows) DeleteKey(key string) error {
	parts, err := split(key)
	if err != nil {
		return err
	}
	if len(parts) < 2 {
		return errRootDelete(key)
	}
	subs, err := w.SubKeys(key)
	if errors.Is(err, ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	for _, s := range subs {
		if err := w.DeleteKey(key + `\` + s); err != nil {
			return err
		}
	}
	parent, err := w.open(strings.Join(parts[:len(parts)-1], `\`), registry.ENUMERATE_SUB_KEYS|registry.SET_VALUE, false)
	if err != nil {
		return err
	}
	defer parent.Close()
	if err := registry.DeleteKey(parent, parts[len(parts)-1]); err != nil && !errors.Is(err, syscall.ERROR_FILE_NOT_FOUND) {
		return err
	}
	return nil
}
