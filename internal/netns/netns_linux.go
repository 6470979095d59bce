// Package netns runs code inside fresh Linux network namespaces, for
// ringtun's integration tests and benchmarks. A namespace made here has no
// name (nothing shows in `ip netns list`); it and every interface in it
// disappear once its handle is closed and nothing else holds it.
package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// NS is a handle to a network namespace.
type NS struct {
	f *os.File
}

// CanCreate reports why namespaces cannot be made here, or nil: it needs
// root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and /dev/net/tun.
func CanCreate() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root to create network namespaces and TUN devices")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("needs /dev/net/tun: %w", err)
	}
	return nil
}

// New creates a network namespace with its loopback interface up.
func New() (*NS, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread is never unlocked: it dies with this goroutine
		// instead of going back to the scheduler inside the namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("netns: unshare: %w", err)}
			return
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{err: fmt.Errorf("netns: %w", err)}
			return
		}
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			f.Close()
			ch <- result{err: fmt.Errorf("netns: ip link set lo up: %v: %s", err, out)}
			return
		}
		ch <- result{f: f}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	return &NS{f: r.f}, nil
}

// ErrGoexit is what Do returns when fn called runtime.Goexit, as
// testing.T.FailNow does.
var ErrGoexit = errors.New("netns: the function called runtime.Goexit")

// Do runs fn on a thread inside the namespace and returns its error. Calls
// fn makes on its own goroutine act in the namespace (sockets, netlink,
// TUN devices, child processes); goroutines it starts do not, unless they
// call Do or Go themselves.
func (n *NS) Do(fn func() error) error {
	ch := make(chan error, 1)
	n.Go(func() {
		returned := false
		defer func() {
			if !returned {
				ch <- ErrGoexit
			}
		}()
		err := fn()
		returned = true
		ch <- err
	}, func(err error) { ch <- err })
	return <-ch
}

// Go runs fn on a new goroutine, on a thread inside the namespace. If the
// thread cannot enter the namespace, fn is not run and fail gets the
// error.
func (n *NS) Go(fn func(), fail func(error)) {
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(int(n.f.Fd()), unix.CLONE_NEWNET); err != nil {
			fail(fmt.Errorf("netns: setns: %w", err))
			return
		}
		fn()
	}()
}

// Path returns a /proc path that names the namespace while the handle is
// open, for tools such as `nsenter --net=PATH`.
func (n *NS) Path() string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), n.f.Fd()) }

// Close releases the handle. The namespace goes away when nothing else
// (a process, a socket, a TUN queue) holds it.
func (n *NS) Close() error { return n.f.Close() }
