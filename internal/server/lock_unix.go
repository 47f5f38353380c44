//go:build unix

package server

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive lock on dir for this process; the lock goes with the process,
// so a killed server leaves nothing to clean up.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, "hookrelay.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another hookrelay serve (lock %s): %w", dir, path, err)
	}
	return func() { f.Close() }, nil
}
