//go:build !unix

package store

import "os"

// LockDir only creates the data dir where advisory locks are not available.
func LockDir(dir string) (func(), error) {
	return func() {}, os.MkdirAll(dir, 0o700)
}
