package ringtun

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/ringtun/ringtun/internal/control"
	"github.com/ringtun/ringtun/internal/driver"
	"github.com/ringtun/ringtun/internal/tundev"
	"github.com/ringtun/ringtun/ring"
)

// fullPolicy is what the driver does with a packet from the host when the
// receive ring is full. Waiting (back-pressure) is the default; tests
// compare it with dropping.
var fullPolicy = driver.Wait

// useOffloads bounds the kernel offloads a session asks for, and so whether
// its driver splits and merges GSO super-packets. All of them is the
// default; tests turn them off to check the plain path and compare.
var useOffloads = tundev.CSUM | tundev.TSO4 | tundev.TSO6 | tundev.TSOECN | tundev.USO4 | tundev.USO6

// region is a session's shared memory: one memfd with the receive ring
// first, the send ring second and then a control block of
// regionControlSize bytes, and the eventfd that is the read-wait event. A
// process that is given the memfd and the eventfd (a C program through
// libringtun, or a peer on the other side of a socket) sees the same
// rings. The control block's first word is SharedSession's space gate
// (ring.Gate); the rest is reserved and zero.
type region struct {
	mem      *ring.Shared
	rx, tx   *ring.Ring
	readWait *ring.EventFD
}

// regionControlSize is the size of the control block after the two rings.
const regionControlSize = 64

// regionSize is the size of a region for two rings of capacity bytes.
func regionSize(capacity uint32) int { return 2*ring.RingSize(capacity) + regionControlSize }

// control returns the control block.
func (r *region) control() []byte {
	return r.mem.Bytes()[regionSize(r.rx.Capacity())-regionControlSize:]
}

// newRegion makes a region for two rings of capacity bytes each.
func newRegion(name string, capacity uint32) (_ *region, err error) {
	size := ring.RingSize(capacity)
	r := &region{}
	if r.mem, err = ring.CreateShared("ringtun-"+name, regionSize(capacity)); err != nil {
		return nil, err
	}
	if r.readWait, err = ring.NewEventFD(); err != nil {
		r.mem.Close()
		return nil, err
	}
	r.rx, err = ring.New(r.mem.Bytes()[:size], capacity)
	if err == nil {
		r.tx, err = ring.New(r.mem.Bytes()[size:2*size], capacity)
	}
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *region) close() {
	r.mem.Close()
	r.readWait.Close()
}

// Offload-aware sessions and in-flight limits (SessionOptions) are
// Linux's.
const offloadSessions, inFlightLimits = true, true

// prepareSession readies what every session needs on att, the adapter's
// attached queue, which it owns from here on: the offloads and the
// region. On failure the queue is closed and the control plane told.
func prepareSession(att *control.Attached, capacity uint32, opts SessionOptions) (offloads, *region, error) {
	q, name := att.Queue, att.Name
	off, err := negotiateOffloads(q)
	if err == nil && opts.Offload {
		err = off.recordsSupported()
	}
	var reg *region
	if err == nil {
		reg, err = newRegion(name, capacity)
	}
	if err != nil {
		q.Close()
		if att.Release != nil {
			att.Release()
		}
		return offloads{}, nil, fmt.Errorf("ringtun: start session on %s: %w", name, err)
	}
	return off, reg, nil
}

// assembleSession builds a session on att, the adapter's attached queue,
// which it owns from here on: the region, the application's half over it,
// then the driver's half over the queue.
func assembleSession(att *control.Attached, capacity uint32, opts SessionOptions) (*Session, error) {
	capacity = opts.ringCapacity(capacity)
	off, reg, err := prepareSession(att, capacity, opts)
	if err != nil {
		return nil, err
	}
	name := att.Name
	s := newSession(name, reg.rx, reg.tx, reg.readWait, uintptr(reg.readWait.Fd()), func() { reg.mem.Close() })
	// The eventfd may be in a poll set of the application's until it
	// drops the Session; the ring memory goes when the session ends (End).
	runtime.AddCleanup(s, func(e *ring.EventFD) { e.Close() }, reg.readWait)
	s.off, s.release, s.records = off, att.Release, opts.Offload
	s.tx.SetLimit(opts.inFlightLimit())
	startDriver(name, att.Queue, reg, att.MTU, off, opts, driverWakers{
		receive: s.rxWaker, send: s.txWaker, space: s.space, direct: true,
	}, func(l *driver.Loop) {
		s.loop = l
		s.txWaker.loop.Store(l)
		s.rxWaker.loop.Store(l)
	}, func(error) { s.End() })
	if opts.Offload {
		logf(LogInfo, "%s: offload-aware session started, rings of %d KiB; offloads %s",
			name, capacity/1024, off.kernel)
	} else {
		logf(LogInfo, "%s: session started, rings of %d KiB; offloads %s, merged writes: TCP %v, UDP %v",
			name, capacity/1024, off.kernel, off.tcp, off.udp)
	}
	return s, nil
}

// driverWakers are the wake-ups between a session's two halves: receive
// is signalled by the driver when it commits received packets while the
// application is asleep, send is what the driver's writer sleeps on until
// the application commits packets to send, space is what the driver's
// reader sleeps on while the receive ring is full. direct says that the
// application's half is Go in this process, whose sleeping goroutine may
// read the device itself (driver.Loop.WaitDirect).
type driverWakers struct {
	receive, send, space ring.Waker
	direct               bool
}

// startDriver starts the driver's half of a session over queue q: the
// producer of the receive ring and the consumer of the send ring. own
// receives the loop before anything else can use it; onStop runs if the
// loop stops by itself (the adapter deleted, the device failing), never
// before own has returned.
func startDriver(name string, q *tundev.Queue, reg *region, mtu int, off offloads, opts SessionOptions, w driverWakers, own func(*driver.Loop), onStop func(error)) {
	// The loop can stop by itself before Start returns (the adapter
	// deleted at once): OnStop waits until the owner has the loop.
	started := make(chan struct{})
	rx := ring.NewProducer(reg.rx, w.receive)
	rx.SetLimit(opts.inFlightLimit())
	var direct driver.DirectReader
	if w.direct {
		if r, err := q.NewReader(); err != nil {
			logf(LogWarn, "%s: no second reader on the queue, the application's goroutine will not read it: %v", name, err)
		} else {
			direct = r
		}
	}
	own(driver.Start(driver.Config{
		Device:      q,
		Direct:      direct,
		Records:     opts.Offload,
		Receive:     rx,
		Send:        ring.NewConsumer(reg.tx, w.send),
		Space:       w.space,
		Full:        fullPolicy,
		MTU:         mtu,
		CoalesceTCP: off.tcp,
		CoalesceUDP: off.udp,
		Log: func(warn bool, msg string) {
			level := LogInfo
			if warn {
				level = LogWarn
			}
			logf(level, "%s: %s", name, msg)
		},
		OnStop: func(err error) {
			<-started
			logf(LogWarn, "%s: session ended: %v", name, err)
			onStop(err)
		},
	}))
	close(started)
}

// offloads is what a session's driver may use: the offloads the kernel
// agreed to (what it may hand the reader) and whether it accepts merged
// TCP and UDP writes.
type offloads struct {
	kernel   tundev.Offloads
	tcp, udp bool
}

// recordsSupported reports, as an error wrapping ErrNotSupported, whether
// the offloads allow an offload-aware session: the kernel must hand out
// and take TCP super-packets of both IP versions with partial checksums.
func (o offloads) recordsSupported() error {
	const need = tundev.CSUM | tundev.TSO4 | tundev.TSO6
	if o.kernel&need != need || !o.tcp {
		return fmt.Errorf("offload-aware session: the kernel's TUN offloads are %s (merged TCP writes %v), it needs %s and merged TCP writes: %w",
			o.kernel, o.tcp, need, ErrNotSupported)
	}
	return nil
}

// negotiateOffloads sets the device's offloads to the best the kernel
// accepts and probes whether it takes merged writes. The offloads in
// useOffloads bound what is asked for.
func negotiateOffloads(q *tundev.Queue) (offloads, error) {
	k, err := q.NegotiateFrom(useOffloads)
	if err != nil {
		return offloads{}, err
	}
	o := offloads{kernel: k}
	if useOffloads&(tundev.TSO4|tundev.USO4) == 0 {
		return o, nil
	}
	tcp, udp, err := q.ProbeGSO()
	if errors.Is(err, tundev.ErrDown) {
		// The kernel refuses every write to a device that is down, so
		// the probe cannot tell. Expect merged writes where the kernel
		// agreed to the matching offload: the writer stops merging if a
		// merged write is refused after all.
		tcp, udp, err = k&tundev.TSO4 != 0, k&tundev.USO4 != 0, nil
		logf(LogInfo, "%s: the adapter is down: merged writes not probed", q.Name())
	}
	if err != nil {
		return offloads{}, err
	}
	o.tcp = tcp && useOffloads&tundev.TSO4 != 0
	o.udp = udp && useOffloads&tundev.USO4 != 0
	if !tcp || !udp {
		logf(LogWarn, "%s: the kernel refuses merged writes (TCP %v, UDP %v): writing those packets one by one", q.Name(), tcp, udp)
	}
	return o, nil
}
