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
// first and the send ring second, and the eventfd that is the read-wait
// event. A process that is given the memfd and the eventfd (a C program
// through libringtun, or a peer on the other side of a socket) sees the
// same rings.
type region struct {
	mem      *ring.Shared
	rx, tx   *ring.Ring
	readWait *ring.EventFD
}

// newRegion makes a region for two rings of capacity bytes each.
func newRegion(name string, capacity uint32) (_ *region, err error) {
	size := ring.RingSize(capacity)
	r := &region{}
	if r.mem, err = ring.CreateShared("ringtun-"+name, 2*size); err != nil {
		return nil, err
	}
	if r.readWait, err = ring.NewEventFD(); err != nil {
		r.mem.Close()
		return nil, err
	}
	r.rx, err = ring.New(r.mem.Bytes()[:size], capacity)
	if err == nil {
		r.tx, err = ring.New(r.mem.Bytes()[size:], capacity)
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

// assembleSession builds a session on att, the adapter's attached queue,
// which it owns from here on: the region, the application's half over it,
// then the driver's half over the queue.
func assembleSession(att *control.Attached, capacity uint32) (*Session, error) {
	q, name := att.Queue, att.Name
	fail := func() {
		q.Close()
		if att.Release != nil {
			att.Release()
		}
	}
	off, err := negotiateOffloads(q)
	if err != nil {
		fail()
		return nil, fmt.Errorf("ringtun: start session on %s: %w", name, err)
	}
	reg, err := newRegion(name, capacity)
	if err != nil {
		fail()
		return nil, fmt.Errorf("ringtun: start session on %s: %w", name, err)
	}
	s := newSession(name, reg.rx, reg.tx, reg.readWait, uintptr(reg.readWait.Fd()), func() { reg.mem.Close() })
	// The eventfd may be in a poll set of the application's until it
	// drops the Session; the ring memory goes when the session ends (End).
	runtime.AddCleanup(s, func(e *ring.EventFD) { e.Close() }, reg.readWait)
	s.off, s.release = off, att.Release
	startDriver(s, q, reg, att.MTU, off)
	logf(LogInfo, "%s: session started, rings of %d KiB; offloads %s, merged writes: TCP %v, UDP %v",
		name, capacity/1024, off.kernel, off.tcp, off.udp)
	return s, nil
}

// startDriver starts the driver's half of s over queue q: the producer of
// the receive ring and the consumer of the send ring, with the wakers the
// application's half signals.
func startDriver(s *Session, q *tundev.Queue, reg *region, mtu int, off offloads) {
	name := s.name
	// The loop can stop by itself before Start returns (the adapter
	// deleted at once): its OnStop waits until s.loop is set.
	started := make(chan struct{})
	txWaker := s.txWaker
	s.loop = driver.Start(driver.Config{
		Device:      q,
		Receive:     ring.NewProducer(reg.rx, s.rxWaker),
		Send:        ring.NewConsumer(reg.tx, txWaker),
		Space:       s.space,
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
			s.End()
		},
	})
	txWaker.loop.Store(s.loop)
	close(started)
}

// offloads is what a session's driver may use: the offloads the kernel
// agreed to (what it may hand the reader) and whether it accepts merged
// TCP and UDP writes.
type offloads struct {
	kernel   tundev.Offloads
	tcp, udp bool
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
