package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/internal/secret"
	"github.com/ferry-migrate/ferry/internal/store"
)

func adminCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Server administration run on the server's machine"}
	var data, database string
	rotate := &cobra.Command{
		Use:   "rotate-key",
		Short: "Re-encrypt every stored credential under a new master key",
		Long: `Re-encrypt every stored credential under a new master key, in one transaction.
With a key file (--data/master.key) the new key replaces it; an interrupted rotation is safe, the
server opens values under either key. With FERRY_MASTER_KEY the new key is printed: set
FERRY_MASTER_KEY to it before the next start. Stop the server (SQLite) first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if database == "" {
				unlock, err := store.LockDir(data)
				if err != nil {
					return fmt.Errorf("%w (stop the server first)", err)
				}
				defer unlock()
			}
			env := os.Getenv("FERRY_MASTER_KEY")
			old, _, err := secret.Load(data, env)
			if err != nil {
				return err
			}
			var next *secret.Keyring
			var newKey []byte
			if env != "" {
				var olds [][]byte
				for _, part := range strings.Split(env, ",") {
					k, derr := secret.DecodeKey(strings.TrimSpace(part))
					if derr != nil {
						return fmt.Errorf("FERRY_MASTER_KEY: %w", derr)
					}
					olds = append(olds, k)
				}
				newKey = secret.GenerateKey()
				next, err = secret.NewKeyring(newKey, olds...)
			} else {
				next, err = secret.BeginRotation(data, old)
			}
			if err != nil {
				return err
			}
			st, err := store.Open(ctx, data, database, old)
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := st.Rekey(ctx, next)
			if err != nil {
				return fmt.Errorf("re-encrypt: %w (nothing changed)", err)
			}
			if env != "" {
				fmt.Fprintf(g.stdout, "Re-encrypted %d credentials. New master key (set FERRY_MASTER_KEY to it now; it is not stored):\n%s\n", n, secret.EncodeKey(newKey))
				return nil
			}
			if err := secret.CommitRotation(data); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Re-encrypted %d credentials under key %s.\n", n, next.ID())
			return nil
		},
	}
	rotate.Flags().StringVar(&data, "data", "./ferry-data", "data directory")
	rotate.Flags().StringVar(&database, "database", "", "postgres://… when the server uses PostgreSQL")
	cmd.AddCommand(rotate)
	return cmd
}
