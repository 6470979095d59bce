// Package tundev opens queues of Linux TUN devices (/dev/net/tun): it
// creates a device or attaches to an existing one, keeps a device alive with
// a detached queue, sets persistence, and negotiates the kernel's offloads.
//
// Every device it opens is a multi-queue layer-3 device without packet
// information headers, with a virtio_net_hdr before every packet
// (IFF_TUN|IFF_NO_PI|IFF_MULTI_QUEUE|IFF_VNET_HDR), so that an adapter
// handle and a session can each hold a queue of the same device. The flags
// belong to the device, not the queue, and the last TUNSETIFF sets them, so
// every queue of a device must be opened with the same ones: this package
// always uses these.
package tundev

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Path is the TUN clone device.
const Path = "/dev/net/tun"

const flags = unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_MULTI_QUEUE | unix.IFF_VNET_HDR

// VNetHdrLen is the length of the virtio_net_hdr before every packet read
// from or written to a queue.
const VNetHdrLen = 10

// maxVec is the most buffers one ReadVec or WriteVec takes.
const maxVec = 128

// Errors a caller maps to its own.
var (
	// ErrExists means Create found a network interface of that name.
	ErrExists = errors.New("tundev: interface exists")
	// ErrNotTUN means Attach found an interface of that name that is not a
	// multi-queue TUN device, or FromFD was given a descriptor that is not
	// a queue opened as this package opens them.
	ErrNotTUN = errors.New("tundev: not a multi-queue TUN interface")
	// ErrDown means the device is administratively down: the kernel
	// refuses every write to it with EIO.
	ErrDown = errors.New("tundev: the device is down")
)

// Queue is one open queue of a TUN device. Read and Write move one IP
// packet each and block in the Go runtime's poller; Close unblocks them.
type Queue struct {
	f    *os.File
	rc   syscall.RawConn
	name string
	// One vectored-I/O state for the reading goroutine and one for the
	// writing goroutine: ReadVec and WriteVec may run concurrently with each
	// other, but each must not run concurrently with itself.
	rd, wr vecIO
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

// Attach opens a new queue of the existing TUN device name, in the
// network namespace of the calling thread. The queue is attached: the
// kernel may steer packets to it at once. Attach to a name that does not
// exist creates a device, as TUNSETIFF does (there is no flag for "attach
// only"): callers look the device up first and check its index after.
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
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, VNetHdrLen); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tundev: TUNSETVNETHDRSZ %s: %w", name, err)
	}
	return wrap(fd, ifr.Name())
}

// wrap makes a Queue of fd, a TUN queue of device name, which it owns
// from here on.
func wrap(fd int, name string) (*Queue, error) {
	f := os.NewFile(uintptr(fd), Path)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tundev: %s: %w", name, err)
	}
	q := &Queue{f: f, rc: rc, name: name}
	q.rd.init(unix.SYS_READV, "readv")
	q.wr.init(unix.SYS_WRITEV, "writev")
	return q, nil
}

// FromFD makes a Queue of fd, a queue of a TUN device that another process
// opened (and passed over a Unix socket, say), and owns fd from here on,
// even when it fails. The queue must have this package's flags and
// virtio_net_hdr length, or FromFD fails with ErrNotTUN. It puts fd in
// non-blocking mode, which the file description shares with the sender.
func FromFD(fd int) (*Queue, error) {
	name, err := checkQueue(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tundev: %s: %w", name, err)
	}
	unix.CloseOnExec(fd)
	return wrap(fd, name)
}

// checkQueue returns the device name of TUN queue fd, and fails with
// ErrNotTUN if fd is not a queue opened as this package opens them.
func checkQueue(fd int) (string, error) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return "", err
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return "", fmt.Errorf("%w: descriptor %d is not a TUN queue (TUNGETIFF: %v)", ErrNotTUN, fd, err)
	}
	const mask = unix.IFF_TUN | unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_MULTI_QUEUE | unix.IFF_VNET_HDR
	if got := ifr.Uint16() & mask; got != flags {
		return "", fmt.Errorf("%w: %s has flags %#x, want %#x", ErrNotTUN, ifr.Name(), got, flags)
	}
	size, err := unix.IoctlGetInt(fd, unix.TUNGETVNETHDRSZ)
	if err != nil || size != VNetHdrLen {
		return "", fmt.Errorf("%w: %s has a virtio_net_hdr of %d bytes (%v), want %d", ErrNotTUN, ifr.Name(), size, err, VNetHdrLen)
	}
	return ifr.Name(), nil
}

// Name returns the device name the kernel reported.
func (q *Queue) Name() string { return q.name }

// control runs fn with the queue's file descriptor.
func (q *Queue) control(fn func(fd int) error) error {
	var ferr error
	if err := q.rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// Dup returns a new descriptor for the queue, close-on-exec, to pass to
// another process. It shares the queue: detaching either detaches both.
func (q *Queue) Dup() (int, error) {
	var nfd int
	err := q.control(func(fd int) (err error) {
		nfd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return err
	})
	return nfd, err
}

// DetachFD detaches the queue behind fd, a descriptor from Dup that was
// never made a Queue (so that no poller watches it).
func DetachFD(fd int) error {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_DETACH_QUEUE)
	if err := unix.IoctlIfreq(fd, unix.TUNSETQUEUE, ifr); err != nil {
		return fmt.Errorf("tundev: TUNSETQUEUE: %w", err)
	}
	return nil
}

// Detach takes the queue out of the device's packet distribution while it
// stays open: the device lives on, but no packet is queued to it.
func (q *Queue) Detach() error {
	return q.setQueue(unix.IFF_DETACH_QUEUE)
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

// DeviceName returns the device's name as it is now (TUNGETIFF): a queue
// stays with its device through renames.
func (q *Queue) DeviceName() (string, error) {
	var name string
	err := q.control(func(fd int) error {
		ifr, err := unix.NewIfreq("")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
			return fmt.Errorf("tundev: TUNGETIFF: %w", q.gone(err))
		}
		name = ifr.Name()
		return nil
	})
	return name, err
}

// DeviceNetNS returns a new file descriptor for the network namespace the
// device is in now (TUNGETDEVNETNS, Linux 5.2 and later): a queue stays
// with its device when the device moves to another namespace. The caller
// owns the descriptor. It needs CAP_NET_ADMIN over that namespace.
func (q *Queue) DeviceNetNS() (int, error) {
	var nsfd int
	err := q.control(func(fd int) error {
		n, err := unix.IoctlRetInt(fd, unix.TUNGETDEVNETNS)
		if err != nil {
			return fmt.Errorf("tundev: TUNGETDEVNETNS %s: %w", q.name, q.gone(err))
		}
		nsfd = n
		return nil
	})
	if err == nil {
		unix.CloseOnExec(nsfd)
	}
	return nsfd, err
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

// Read reads one virtio_net_hdr and packet into b. Once the device is
// deleted it returns an error wrapping os.ErrClosed.
func (q *Queue) Read(b []byte) (int, error) {
	n, err := q.f.Read(b)
	return n, q.gone(err)
}

// Write writes one virtio_net_hdr and packet. Once the device is deleted it
// returns an error wrapping os.ErrClosed; other errors reject only that
// packet.
func (q *Queue) Write(b []byte) (int, error) {
	n, err := q.f.Write(b)
	return n, q.gone(err)
}

// ReadVec reads one virtio_net_hdr and packet, scattered over the buffers
// in vec in order (readv), and returns the bytes read. It blocks in the Go
// runtime's poller; Close unblocks it. It must not be called from two
// goroutines at once; it does not allocate. Errors are as for Read.
func (q *Queue) ReadVec(vec [][]byte) (int, error) {
	return q.rd.do(q, vec)
}

// TryReadVec is ReadVec that never waits: when nothing is queued it
// returns an error wrapping syscall.EAGAIN at once. It must not run
// concurrently with ReadVec on the same Queue.
func (q *Queue) TryReadVec(vec [][]byte) (int, error) {
	if len(vec) > maxVec {
		return 0, fmt.Errorf("tundev: %d buffers, at most %d: %w", len(vec), maxVec, unix.EINVAL)
	}
	v := &q.rd
	v.iov = setIovecs(v.iov[:0], vec)
	err := q.rc.Read(v.once)
	clearIovecs(v.iov)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, fmt.Errorf("tundev: %s: %w (%v)", q.name, os.ErrClosed, err)
	}
	if err == nil && v.errno != 0 {
		err = os.NewSyscallError(v.name, v.errno)
	}
	if err != nil {
		return 0, q.gone(err)
	}
	return v.n, nil
}

// ReadWaited reports whether the last ReadVec had to wait for a packet:
// nothing was queued when it was called.
func (q *Queue) ReadWaited() bool { return q.rd.attempts > 1 }

// Interrupt makes a ReadVec in progress return, and every later ReadVec
// and TryReadVec until Resume, an error wrapping os.ErrDeadlineExceeded.
// It is how another goroutine takes the reading of a queue over without
// closing it.
func (q *Queue) Interrupt() { q.f.SetReadDeadline(time.Unix(1, 0)) }

// Resume undoes Interrupt.
func (q *Queue) Resume() { q.f.SetReadDeadline(time.Time{}) }

// NewReader returns a second Queue on the same queue (a duplicated
// descriptor with a poller registration of its own), for a second
// goroutine that reads while this Queue's reader is interrupted: each can
// wait for packets, and be interrupted, on its own. Closing it leaves the
// queue to q.
func (q *Queue) NewReader() (*Queue, error) {
	fd, err := q.Dup()
	if err != nil {
		return nil, fmt.Errorf("tundev: %s: %w", q.name, err)
	}
	return wrap(fd, q.name)
}

// WriteVec writes one virtio_net_hdr and packet gathered from the buffers
// in vec in order (writev). It must not be called from two goroutines at
// once; it does not allocate. Errors are as for Write.
func (q *Queue) WriteVec(vec [][]byte) (int, error) {
	return q.wr.do(q, vec)
}

// vecIO is the state of one vectored read or write: the iovec array and
// the closure the poller runs, both made once so that a call allocates
// nothing.
type vecIO struct {
	trap  uintptr
	name  string
	iov   []unix.Iovec
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
	once  func(fd uintptr) bool // attemptOnce, made once
	// attempts counts the system calls of the last do: more than one
	// means the poller waited for the queue.
	attempts int
}

func (v *vecIO) init(trap uintptr, name string) {
	v.trap, v.name = trap, name
	v.iov = make([]unix.Iovec, 0, maxVec)
	v.fn = v.attempt
	v.once = v.attemptOnce
}

func (v *vecIO) do(q *Queue, vec [][]byte) (int, error) {
	if len(vec) > maxVec {
		return 0, fmt.Errorf("tundev: %d buffers, at most %d: %w", len(vec), maxVec, unix.EINVAL)
	}
	v.attempts = 0
	v.iov = setIovecs(v.iov[:0], vec)
	var err error
	if v.trap == unix.SYS_READV {
		err = q.rc.Read(v.fn)
	} else {
		err = q.rc.Write(v.fn)
	}
	clearIovecs(v.iov)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		// The poller's only other error is that the file is closing,
		// which os.File reports as os.ErrClosed and RawConn does not.
		return 0, fmt.Errorf("tundev: %s: %w (%v)", q.name, os.ErrClosed, err)
	}
	if err == nil && v.errno != 0 {
		err = os.NewSyscallError(v.name, v.errno)
	}
	if err != nil {
		return 0, q.gone(err)
	}
	return v.n, nil
}

// attempt makes the system call once; it returns false to make the poller
// wait when the queue is not ready.
func (v *vecIO) attempt(fd uintptr) bool {
	v.attempts++
	for {
		v.n, v.errno = vectored(v.trap, fd, v.iov)
		if v.errno != unix.EINTR {
			return v.errno != unix.EAGAIN
		}
	}
}

// attemptOnce makes the system call once and never makes the poller
// wait: EAGAIN is returned to the caller.
func (v *vecIO) attemptOnce(fd uintptr) bool {
	for {
		v.n, v.errno = vectored(v.trap, fd, v.iov)
		if v.errno != unix.EINTR {
			return true
		}
	}
}

// Offloads is a set of TUN offload flags (TUN_F_*): what the kernel may
// hand the reader without finishing it first. With none, every packet read
// is complete; with CSUM it may carry a partial checksum; with TSO and USO
// it may be a GSO super-packet of up to 64 KiB.
type Offloads uint

// The offload flags.
const (
	CSUM   Offloads = unix.TUN_F_CSUM
	TSO4   Offloads = unix.TUN_F_TSO4
	TSO6   Offloads = unix.TUN_F_TSO6
	TSOECN Offloads = unix.TUN_F_TSO_ECN
	USO4   Offloads = unix.TUN_F_USO4
	USO6   Offloads = unix.TUN_F_USO6
)

// String lists the flags, for example "csum|tso4|tso6".
func (o Offloads) String() string {
	var parts []string
	for _, f := range []struct {
		o    Offloads
		name string
	}{{CSUM, "csum"}, {TSO4, "tso4"}, {TSO6, "tso6"}, {TSOECN, "tso_ecn"}, {USO4, "uso4"}, {USO6, "uso6"}} {
		if o&f.o != 0 {
			parts = append(parts, f.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// negotiationSteps are the sets Negotiate asks for, best first: a kernel
// that refuses one (older kernels know no USO, some configurations no TSO)
// gets the next.
var negotiationSteps = []Offloads{
	CSUM | TSO4 | TSO6 | TSOECN | USO4 | USO6,
	CSUM | TSO4 | TSO6 | TSOECN,
	CSUM | TSO4 | TSO6,
	CSUM,
	0,
}

// Negotiate sets the device's offloads to the best set the kernel accepts,
// stepping down through negotiationSteps, and returns it. The offloads
// belong to the device, so this affects every queue.
func (q *Queue) Negotiate() (Offloads, error) {
	return q.NegotiateFrom(negotiationSteps[0])
}

// NegotiateFrom is Negotiate starting from the steps within want.
func (q *Queue) NegotiateFrom(want Offloads) (Offloads, error) {
	var last error
	for _, step := range negotiationSteps {
		step &= want
		err := q.SetOffloads(step)
		if err == nil {
			return step, nil
		}
		last = err
	}
	return 0, last
}

// SetOffloads sets exactly the offloads o (TUNSETOFFLOAD).
func (q *Queue) SetOffloads(o Offloads) error {
	return q.control(func(fd int) error {
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, int(o)); err != nil {
			return fmt.Errorf("tundev: TUNSETOFFLOAD %s %s: %w", q.name, o, err)
		}
		return nil
	})
}

// ProbeGSO reports whether the device accepts GSO super-packet writes of
// TCP and of UDP (USO), by writing one tiny super-packet of each (two
// one-byte segments). Some kernels refuse them with EINVAL; a writer must
// then write packets one by one. The probe packets can never be delivered:
// their source and destination are 0.0.0.0 and their IPv4 header checksum
// is wrong, so the host stack drops them on arrival. The queue must be
// attached. On a device that is down every write fails, so the probe
// cannot tell: it returns ErrDown. Errors other than EINVAL are returned.
func (q *Queue) ProbeGSO() (tcp, udp bool, err error) {
	tcp, err = q.probe(6)
	if err != nil {
		return false, false, err
	}
	udp, err = q.probe(17)
	return tcp, udp, err
}

func (q *Queue) probe(proto byte) (bool, error) {
	pkt := probePacket(proto)
	_, err := q.Write(pkt)
	if errors.Is(err, unix.EINVAL) {
		return false, nil
	}
	if errors.Is(err, unix.EIO) {
		return false, fmt.Errorf("%w: GSO probe of %s: %w", ErrDown, q.name, err)
	}
	if err != nil {
		return false, fmt.Errorf("tundev: GSO probe of %s: %w", q.name, err)
	}
	return true, nil
}

// probePacket builds a virtio_net_hdr and IPv4 super-packet of two one-byte
// TCP (proto 6) or UDP (17) segments, made undeliverable on purpose.
func probePacket(proto byte) []byte {
	l4 := 20 // TCP header
	gso, csumOff := byte(1), byte(16)
	if proto == 17 {
		l4, gso, csumOff = 8, 5, 6
	}
	total := 20 + l4 + 2
	b := make([]byte, VNetHdrLen+total)
	// virtio_net_hdr, little-endian: NEEDS_CSUM, gso type, hdr_len,
	// gso_size 1, csum_start 20, csum_offset.
	b[0], b[1] = 1, gso
	b[2] = byte(20 + l4)
	b[4] = 1
	b[6] = 20
	b[8] = csumOff
	ip := b[VNetHdrLen:]
	ip[0] = 0x45
	ip[2], ip[3] = byte(total>>8), byte(total)
	ip[6] = 0x40 // DF
	ip[8] = 1    // TTL
	ip[9] = proto
	ip[10], ip[11] = 0xde, 0xad // not the checksum of this header: dropped on arrival
	l := ip[20:]
	l[1], l[3] = 9, 9 // ports 9 (discard)
	if proto == 6 {
		l[12] = 5 << 4
		l[13] = 0x10 // ACK
	} else {
		l[4], l[5] = byte((l4+2)>>8), byte(l4+2)
	}
	return b
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
