package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Shared is a memory region backed by a memfd and mapped shared, so that a
// ring in it can be used by two processes: one creates it and passes Fd to
// the other (over a Unix socket or as an inherited file), which maps it with
// MapShared.
//
// The memfd is sealed against shrinking and growing before it is mapped,
// and MapShared refuses one that is not: a peer that could truncate the
// file would make every access to the mapping fault.
type Shared struct {
	fd  int
	mem []byte
}

const sharedSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL

// CreateShared creates a sealed memfd of size bytes, zero-filled, and maps
// it. The name shows in /proc/PID/fd and /proc/PID/maps.
func CreateShared(name string, size int) (*Shared, error) {
	if size <= 0 {
		return nil, fmt.Errorf("%w: size %d", ErrInvalidMemory, size)
	}
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("ring: memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ring: ftruncate memfd: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, sharedSeals); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ring: seal memfd: %w", err)
	}
	return mapShared(fd, size)
}

// MapShared maps a memfd made by CreateShared in another process. It
// duplicates fd, so the caller still owns and closes its own. It fails
// unless the memfd is sealed against resizing and is exactly size bytes.
func MapShared(fd int, size int) (*Shared, error) {
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		return nil, fmt.Errorf("ring: not a sealable memfd: %w", err)
	}
	if seals&(unix.F_SEAL_SHRINK|unix.F_SEAL_GROW) != unix.F_SEAL_SHRINK|unix.F_SEAL_GROW {
		return nil, fmt.Errorf("%w: memfd is not sealed against resizing", ErrInvalidMemory)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("ring: fstat memfd: %w", err)
	}
	if st.Size != int64(size) {
		return nil, fmt.Errorf("%w: memfd is %d bytes, want %d", ErrInvalidMemory, st.Size, size)
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ring: dup memfd: %w", err)
	}
	return mapShared(dup, size)
}

// mapShared maps fd, which it owns from here on.
func mapShared(fd, size int) (*Shared, error) {
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ring: mmap memfd: %w", err)
	}
	return &Shared{fd: fd, mem: mem}, nil
}

// Bytes returns the mapped memory. It must not be used after Close.
func (s *Shared) Bytes() []byte { return s.mem }

// Fd returns the memfd, to pass to another process. Shared keeps owning it.
func (s *Shared) Fd() int { return s.fd }

// Close unmaps the memory and closes the memfd. Every slice into the
// memory, including records not yet released, becomes invalid: stop every
// user of the ring first.
func (s *Shared) Close() error {
	if s.mem == nil {
		return os.ErrClosed
	}
	err := unix.Munmap(s.mem)
	s.mem = nil
	return errors.Join(err, unix.Close(s.fd))
}

// EventFD is a Waker backed by a Linux eventfd, so that a producer in one
// process can wake a consumer in another. Wait sleeps in the Go runtime's
// poller, not in a blocked thread.
type EventFD struct {
	f   *os.File
	raw int
}

// NewEventFD creates an eventfd waker.
func NewEventFD() (*EventFD, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("ring: eventfd: %w", err)
	}
	return &EventFD{f: os.NewFile(uintptr(fd), "ring-eventfd"), raw: fd}, nil
}

// EventFDFrom returns a waker on a duplicate of an eventfd received from
// another process; the caller still owns and closes fd.
func EventFDFrom(fd int) (*EventFD, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ring: dup eventfd: %w", err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("ring: eventfd non-blocking: %w", err)
	}
	return &EventFD{f: os.NewFile(uintptr(dup), "ring-eventfd"), raw: dup}, nil
}

// Fd returns the eventfd, to pass to another process or to poll. EventFD
// keeps owning it.
func (e *EventFD) Fd() int { return e.raw }

// eventOne is an eventfd increment of 1: the counter is a native-endian uint64.
var eventOne = func() (b [8]byte) {
	binary.NativeEndian.PutUint64(b[:], 1)
	return b
}()

// Signal implements Waker.
func (e *EventFD) Signal() {
	// The counter cannot reach its limit (2^64-2) in practice; the only
	// failure left is a closed waker, where there is nobody to wake.
	_, _ = e.f.Write(eventOne[:])
}

// Wait implements Waker. A cancelled ctx wakes Wait by signalling the
// eventfd, which is safe because Consumer has at most one goroutine in Wait.
func (e *EventFD) Wait(ctx context.Context) error {
	stop := context.AfterFunc(ctx, e.Signal)
	defer stop()
	var buf [8]byte
	_, err := e.f.Read(buf[:])
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// Close closes the eventfd; a goroutine in Wait returns an error wrapping
// os.ErrClosed.
func (e *EventFD) Close() error { return e.f.Close() }
