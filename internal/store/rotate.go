package store

import (
	"context"
	"fmt"

	"github.com/ferry-migrate/ferry/internal/secret"
)

// sealedColumns are every column that holds a sealed value, with the prefix of its binding.
var sealedColumns = []struct{ table, aadPrefix string }{
	{"endpoints", "endpoint/"},
	{"items", "item/"},
}

// Rekey re-seals every credential under next's current key in one transaction. next must still open
// values sealed under the old key. It returns how many values were re-sealed.
func (s *Store) Rekey(ctx context.Context, next *secret.Keyring) (int, error) {
	n := 0
	err := s.InTx(ctx, func(tx *Tx) error {
		for _, c := range sealedColumns {
			rows, err := tx.tx.QueryContext(ctx, `SELECT id, secret FROM `+c.table+` WHERE secret <> ''`)
			if err != nil {
				return err
			}
			type row struct{ id, sealed string }
			var all []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.id, &r.sealed); err != nil {
					rows.Close()
					return err
				}
				all = append(all, r)
			}
			rows.Close()
			for _, r := range all {
				if next.Current(r.sealed) {
					continue
				}
				plain, err := next.Open(r.sealed, c.aadPrefix+r.id)
				if err != nil {
					return fmt.Errorf("open %s %s: %w", c.table, r.id, err)
				}
				resealed, err := next.Seal(plain, c.aadPrefix+r.id)
				clear(plain)
				if err != nil {
					return err
				}
				if _, err := s.exec(ctx, tx.tx, `UPDATE `+c.table+` SET secret = ? WHERE id = ?`, resealed, r.id); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	if err == nil {
		s.keys = next
	}
	return n, err
}
