// Package netns handles Linux network namespaces: it names the one a
// thread is in, runs code on a thread inside a given one, and makes fresh
// ones for ringtun's integration tests and benchmarks.
//
// ringtun's rule is that an adapter handle acts in the namespace it was
// made in, whichever thread calls it; Run is how it gets there. Entering
// another namespace (setns) needs CAP_SYS_ADMIN, so Run enters only when
// it must: a program with CAP_NET_ADMIN alone, working in its own
// namespace, never needs more.
//
// A namespace made by New has no name (nothing shows in `ip netns list`);
// it and every interface in it disappear once its handle is closed and
// nothing else holds it.
package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// NS is a handle to a network namespace: an open file that names it and
// keeps it alive.
type NS struct {
	f  *os.File
	id id
}

// id identifies a namespace: the device and inode of its nsfs file.
type id struct{ dev, ino uint64 }

func idOf(fd int) (id, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return id{}, err
	}
	return id{uint64(st.Dev), st.Ino}, nil
}

func fromFile(f *os.File) (*NS, error) {
	i, err := idOf(int(f.Fd()))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("netns: %w", err)
	}
	return &NS{f: f, id: i}, nil
}

// Current returns a handle to the namespace of the calling goroutine's
// thread: the process's, unless the goroutine locked its thread and moved
// it with setns.
func Current() (*NS, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	return fromFile(f)
}

// Open returns a handle to the namespace at path, such as
// /var/run/netns/NAME or /proc/PID/ns/net.
func Open(path string) (*NS, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	n, err := fromFile(f)
	if err != nil {
		return nil, err
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(n.f.Fd()), &fs); err != nil || fs.Type != unix.NSFS_MAGIC {
		n.Close()
		return nil, fmt.Errorf("netns: %s is not a namespace file", path)
	}
	return n, nil
}

// FromFD returns a handle to the namespace that fd names, taking
// ownership of fd.
func FromFD(fd int) (*NS, error) {
	return fromFile(os.NewFile(uintptr(fd), "netns"))
}

// Same reports whether n and o are the same namespace.
func (n *NS) Same(o *NS) bool { return n.id == o.id }

// threadIn reports whether the calling thread is in n.
func (n *NS) threadIn() (bool, error) {
	f, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return false, err
	}
	defer f.Close()
	i, err := idOf(int(f.Fd()))
	return i == n.id, err
}

// Run runs fn on a thread in n and returns its error. Sockets, TUN queues
// and netlink connections fn opens belong to n, and stay usable from any
// goroutine after. If the calling goroutine's thread is in n already, fn
// runs right there; otherwise it runs on a new thread that enters n, which
// needs CAP_SYS_ADMIN, and that thread ends with it. fn must not start
// goroutines that expect to be in n.
func (n *NS) Run(fn func() error) error {
	runtime.LockOSThread()
	in, err := n.threadIn()
	if err == nil && in {
		defer runtime.UnlockOSThread()
		return fn()
	}
	runtime.UnlockOSThread()
	ch := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it dies with this goroutine
		// rather than go back to the scheduler inside n.
		runtime.LockOSThread()
		if err := unix.Setns(int(n.f.Fd()), unix.CLONE_NEWNET); err != nil {
			if errors.Is(err, unix.EPERM) {
				err = fmt.Errorf("netns: entering another network namespace needs CAP_SYS_ADMIN: %w", err)
			} else {
				err = fmt.Errorf("netns: setns: %w", err)
			}
			ch <- err
			return
		}
		ch <- fn()
	}()
	return <-ch
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
		n   *NS
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
		n, err := fromFile(f)
		if err != nil {
			ch <- result{err: err}
			return
		}
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			n.Close()
			ch <- result{err: fmt.Errorf("netns: ip link set lo up: %v: %s", err, out)}
			return
		}
		ch <- result{n: n}
	}()
	r := <-ch
	return r.n, r.err
}

// ErrGoexit is what Do returns when fn called runtime.Goexit, as
// testing.T.FailNow does.
var ErrGoexit = errors.New("netns: the function called runtime.Goexit")

// Do runs fn on a new thread inside the namespace and returns its error,
// for tests: unlike Run it always uses a new goroutine, and it reports a
// fn that called runtime.Goexit. Calls fn makes on its own goroutine act
// in the namespace (sockets, netlink, TUN devices, child processes);
// goroutines it starts do not, unless they call Do or Go themselves.
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

// Fd returns the namespace file's descriptor, for IFLA_NET_NS_FD and the
// like. The handle keeps owning it.
func (n *NS) Fd() int { return int(n.f.Fd()) }

// Path returns a /proc path that names the namespace while the handle is
// open, for tools such as `nsenter --net=PATH` and `ip link set netns`.
func (n *NS) Path() string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), n.f.Fd()) }

// Close releases the handle. The namespace goes away when nothing else
// (a process, a socket, a TUN queue) holds it.
func (n *NS) Close() error { return n.f.Close() }
