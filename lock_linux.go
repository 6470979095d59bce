package ringtun

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// sessionLock is the one-session-per-adapter lock: a Unix socket bound to
// an abstract name made from the adapter's GUID. The kernel frees the name
// when the socket closes, also when its process dies, and abstract names
// belong to the network namespace, like the adapter.
type sessionLock struct {
	fd int
}

func sessionLockName(g GUID) string { return "@ringtun/session/" + g.String() }

// lockSession takes the lock, or fails with ErrAlreadyInitialized.
func lockSession(g GUID) (*sessionLock, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ringtun: session lock: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sessionLockName(g)}); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, ErrAlreadyInitialized
		}
		return nil, fmt.Errorf("ringtun: session lock: %w", err)
	}
	return &sessionLock{fd: fd}, nil
}

func (l *sessionLock) release() { unix.Close(l.fd) }

// sessionRunning reports whether some process holds the adapter's session
// lock.
func sessionRunning(g GUID) bool {
	l, err := lockSession(g)
	if err != nil {
		return errors.Is(err, ErrAlreadyInitialized)
	}
	l.release()
	return false
}
