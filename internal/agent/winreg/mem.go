package winreg

import (
	"slices"
	"strings"
	"sync"
)

// Mem is a registry in memory. Its zero value is empty and ready.
type Mem struct {
	mu   sync.Mutex
	root memKey
}

type memKey struct {
	name   string
	values map[string]namedValue // by lower-case name
	subs   map[string]*memKey    // by lower-case name
}

type namedValue struct {
	name string
	v    Value
}

// find walks to a key, creating the missing ones when create is set.
func (m *Mem) find(key string, create bool) (*memKey, error) {
	parts, err := split(key)
	if err != nil {
		return nil, err
	}
	k := &m.root
	for _, p := range parts {
		l := strings.ToLower(p)
		next := k.subs[l]
		if next == nil {
			if !create {
				return nil, ErrNotExist
			}
			if k.subs == nil {
				k.subs = map[string]*memKey{}
			}
			next = &memKey{name: p}
			k.subs[l] = next
		}
		k = next
	}
	return k, nil
}

func (m *Mem) SubKeys(key string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, err := m.find(key, false)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range k.subs {
		out = append(out, s.name)
	}
	slices.Sort(out)
	return out, nil
}

func (m *Mem) Values(key string) (map[string]Value, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, err := m.find(key, false)
	if err != nil {
		return nil, err
	}
	out := map[string]Value{}
	for _, nv := range k.values {
		out[nv.name] = nv.v
	}
	return out, nil
}

func (m *Mem) CreateKey(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.find(key, true)
	return err
}

func (m *Mem) SetValue(key, name string, v Value) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, err := m.find(key, true)
	if err != nil {
		return err
	}
	if k.values == nil {
		k.values = map[string]namedValue{}
	}
	k.values[strings.ToLower(name)] = namedValue{name, v}
	return nil
}

func (m *Mem) DeleteValue(key, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, err := m.find(key, false)
	if err == ErrNotExist {
		return nil
	} else if err != nil {
		return err
	}
	delete(k.values, strings.ToLower(name))
	return nil
}

func (m *Mem) DeleteKey(key string) error {
	parts, err := split(key)
	if err != nil {
		return err
	}
	if len(parts) < 2 {
		return errRootDelete(key)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	parent, err := m.find(strings.Join(parts[:len(parts)-1], `\`), false)
	if err == ErrNotExist {
		return nil
	} else if err != nil {
		return err
	}
	delete(parent.subs, strings.ToLower(parts[len(parts)-1]))
	return nil
}
