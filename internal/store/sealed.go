package store

import (
	"encoding/json"
	"fmt"
)

// seal encrypts v as JSON, bound to its row (aad like "endpoint/ep_1"); a nil v seals to "".
func (s *Store) seal(aad string, v any, empty bool) (string, error) {
	if empty {
		return "", nil
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sealed, err := s.keys.Seal(plain, aad)
	clear(plain)
	if err != nil {
		return "", fmt.Errorf("seal %s credentials: %w", aad, err)
	}
	return sealed, nil
}

// unseal opens a sealed column into v.
func (s *Store) unseal(aad, sealed string, v any) error {
	plain, err := s.keys.Open(sealed, aad)
	if err != nil {
		return fmt.Errorf("open %s credentials: %w", aad, err)
	}
	defer clear(plain)
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("%s credentials: %w", aad, err)
	}
	return nil
}
