// Package tundev opens queues of Linux TUN devices (/dev/net/tun): it
// creates a device or attaches to an existing one, keeps a device alive with
// a detached queue, and sets persistence. Every device it opens is a
// multi-queue layer-3 device without packet information headers
// (IFF_TUN|IFF_NO_PI|IFF_MULTI_QUEUE), so that an adapter handle and a
// session can each hold a queue of the same device.
package tundev

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Path is the TUN clone device.
const Path = "/dev/net/tun"

const flags = unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_MULTI_QUEUE

// Errors a caller maps to its own.
var (
	// ErrExists means Create found a network interface of that name.
	ErrExists = errors.New("tundev: interface exists")
	// ErrNotTUN means Attach found an interface of that name that is not a
	// multi-queue TUN device.
	ErrNotTUN = errors.New("tundev: not a multi-queue TUN interface")
)

// Queue is one open queue of a TUN device. Read and Write move one IP
// packet each and block in the Go runtime's poller; Close unblocks them.
type Queue struct {
	f    *os.File
	name string
}

// Create creates a new TUN device named name and returns its first queue.
// It fails with ErrExists when any interface of that name exists, and with
// an error wrapping os.ErrPermission without CAP_NET_ADMIN.
func Create(name string) (*Queue, error) {
	q, err := open(name, flags|unix.IFF_TUN_EXCL)
	if errors.Is(err, unix.EBUSY) {
		return nil, fmt.Errorf("%w: %s", ErrExists, name)
	}
	return q, err
}

// Attach opens a new queue of the existing TUN device name. Attach to a
// name that does not exist creates a device, as TUNSETIFF does: callers
// look the device up first and check its index after.
func Attach(name string) (*Queue, error) {
	q, err := open(name, flags)
	if errors.Is(err, unix.EINVAL) {
		return nil, fmt.Errorf("%w: %s", ErrNotTUN, name)
	}
	return q, err
}

func open(name string, fl uint16) (*Queue, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, fmt.Errorf("tundev: interface name %q: %w", name, err)
	}
	fd, err := unix.Open(Path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("tundev: open %s: %w", Path, err)
	}
	ifr.SetUint16(fl)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tundev: TUNSETIFF %s: %w", name, err)
	}
	return &Queue{f: os.NewFile(uintptr(fd), Path), name: ifr.Name()}, nil
}

// Name returns the device name the kernel reported.
func (q *Queue) Name() string { return q.name }

// control runs fn with the queue's file descriptor.
func (q *Queue) control(fn func(fd int) error) error {
	rc, err := q.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// Detach takes the queue out of the device's packet distribution while it
// stays open: the device lives on, but no packet is queued to it.
func (q *Queue) Detach() error {
	return q.setQueue(unix.IFF_DETACH_QUEUE)
}

// Reattach undoes Detach.
func (q *Queue) Reattach() error {
	return q.setQueue(unix.IFF_ATTACH_QUEUE)
}

func (q *Queue) setQueue(fl uint16) error {
	return q.control(func(fd int) error {
		ifr, err := unix.NewIfreq(q.name)
		if err != nil {
			return err
		}
		ifr.SetUint16(fl)
		if err := unix.IoctlIfreq(fd, unix.TUNSETQUEUE, ifr); err != nil {
			return fmt.Errorf("tundev: TUNSETQUEUE %s: %w", q.name, err)
		}
		return nil
	})
}

// SetPersist makes the device outlive (true) or die with (false) its last
// open queue.
func (q *Queue) SetPersist(persist bool) error {
	v := 0
	if persist {
		v = 1
	}
	return q.control(func(fd int) error {
		if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, v); err != nil {
			return fmt.Errorf("tundev: TUNSETPERSIST %s: %w", q.name, err)
		}
		return nil
	})
}

// Read reads one packet into b. Once the device is deleted it returns an
// error wrapping os.ErrClosed.
func (q *Queue) Read(b []byte) (int, error) {
	n, err := q.f.Read(b)
	return n, q.gone(err)
}

// Write writes one packet. Once the device is deleted it returns an error
// wrapping os.ErrClosed; other errors reject only that packet.
func (q *Queue) Write(b []byte) (int, error) {
	n, err := q.f.Write(b)
	return n, q.gone(err)
}

// gone turns the kernel's "file descriptor in bad state", which a queue
// returns once its device is deleted, into os.ErrClosed.
func (q *Queue) gone(err error) error {
	if err != nil && errors.Is(err, unix.EBADFD) {
		return fmt.Errorf("tundev: %s was deleted: %w", q.name, os.ErrClosed)
	}
	return err
}

// Close closes the queue, unblocking Read and Write. A non-persistent
// device is deleted by the kernel when its last queue closes.
func (q *Queue) Close() error { return q.f.Close() }
