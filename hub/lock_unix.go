//go:build unix

package hub

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockFile takes an exclusive lock on path (made if needed), waiting at
// most wait; the lock goes with the process if it dies.
func lockFile(path string, wait time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	for deadline := time.Now().Add(wait); ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w (is another hub command running?)", path, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a lock held by another process
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
