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
// lock. It only looks, by connecting to the name, which works when a socket
// is bound to it: taking the lock for a moment would make a StartSession
// that runs at the same time fail with ErrAlreadyInitialized.
func sessionRunning(g GUID) bool {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: sessionLockName(g)})
	return !errors.Is(err, unix.ECONNREFUSED)
}
