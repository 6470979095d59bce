//go:build !windows

package ringtun

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ringtun/ringtun/internal/driver"
	"github.com/ringtun/ringtun/ring"
)

// Session is the one session of an adapter: two rings in one shared memory
// region, and a driver loop that moves packets between them and the
// adapter. Its packet methods are safe for concurrent use.
//
// A session is built in three parts (assembleSession): the shared region
// (one memory object with the receive ring first and the send ring
// second, and the read-wait event), the application's half (this type:
// the consumer of the receive ring and the producer of the send ring) and
// the driver's half (a driver.Loop over the adapter's queue, which sees
// the rings and the wake-ups only through ring.Producer, ring.Consumer and
// ring.Waker).
type Session struct {
	name     string         // the adapter's, for log messages
	rx       *ring.Consumer // the app's side of the receive ring
	tx       *ring.Producer // the app's side of the send ring
	space    ring.Waker     // tells a driver reader waiting for room that records were released
	rxWaker  *receiveWaker
	txWaker  *sendWaker
	readWait uintptr // ReadWaitEvent's handle
	loop     *driver.Loop
	off      offloads  // what the driver was allowed to use
	records  bool      // offload-aware: the rings carry records (SessionOptions.Offload)
	release  func()    // tells the control plane the session ended; may be nil
	calls    callGuard // frees the region when the session has ended and no call is in it

	endOnce sync.Once
	done    atomic.Bool // End has run or is running
}

// newSession makes the application's half over the two rings, and the
// wakers both halves share. readWait is the read-wait event, signalled
// once the application asks for ReadWaitEvent; free frees the region.
func newSession(name string, rxRing, txRing *ring.Ring, readWait ring.Waker, readWaitHandle uintptr, free func()) *Session {
	s := &Session{
		name:     name,
		rxWaker:  &receiveWaker{ch: ring.NewChanWaker(), event: readWait},
		txWaker:  &sendWaker{ch: ring.NewChanWaker()},
		space:    ring.NewChanWaker(),
		readWait: readWaitHandle,
	}
	s.rx = ring.NewConsumer(rxRing, s.rxWaker)
	s.rxWaker.ready = s.rx.Ready
	s.tx = ring.NewProducer(txRing, s.txWaker)
	s.calls.free = free
	return s
}

// receiveWaker wakes the application when the driver commits received
// packets. In-process, Session.Wait sleeps on a channel, so a wake-up
// costs no system call; once the application asked for ReadWaitEvent, the
// read-wait event is signalled as well.
type receiveWaker struct {
	ch       *ring.ChanWaker
	event    ring.Waker
	useEvent atomic.Bool
	// With the driver loop in this process, the sleeping application's
	// goroutine reads the device itself (driver.Loop.WaitDirect) rather
	// than wait for the reader goroutine to hand it a packet; ready says
	// whether the receive ring has something for it.
	loop  atomic.Pointer[driver.Loop]
	ready func() bool
}

func (w *receiveWaker) Signal() {
	w.ch.Signal()
	if w.useEvent.Load() {
		w.event.Signal()
	}
}

func (w *receiveWaker) Wait(ctx context.Context) error {
	if l := w.loop.Load(); l != nil && !w.useEvent.Load() {
		if ok, err := l.WaitDirect(ctx, w.ready); ok {
			return err
		}
	}
	return w.ch.Wait(ctx)
}

// sendWaker wakes the driver's writer when the application commits packets
// to the send ring while the writer sleeps. It first offers the work to the
// calling goroutine (driver.Loop.Kick, one batch at most): an idle device's
// packets then go out at once, without a goroutine switch; a busy writer,
// which never sleeps, never costs the application anything. Unlike the
// ring.Waker contract's "never blocks", Signal may so make one write
// system call.
type sendWaker struct {
	ch   *ring.ChanWaker
	loop atomic.Pointer[driver.Loop]
}

func (w *sendWaker) Signal() {
	if l := w.loop.Load(); l != nil && l.Kick() {
		return
	}
	w.ch.Signal()
}

func (w *sendWaker) Wait(ctx context.Context) error { return w.ch.Wait(ctx) }

// testHookWaitReturned, if set, runs in Wait after the ring's Wait
// returns, while the call still counts as in progress.
var testHookWaitReturned func()

// End ends the session: the driver loop stops, the rings are terminated,
// every goroutine in Wait wakes, and later calls return ErrSessionEnded.
// The ring memory is freed once the calls in progress have returned:
// packets received or allocated and not yet released or sent must not be
// used after End. End is safe to call more than once and from any
// goroutine.
func (s *Session) End() {
	s.done.Store(true)
	s.endOnce.Do(func() {
		s.loop.Stop()
		if s.release != nil {
			s.release()
		}
		s.rx.Terminate()
		s.tx.Terminate()
		s.calls.end()
		logf(LogInfo, "%s: session ended", s.name)
	})
}

func (s *Session) ended() bool { return s.done.Load() }

// mapRingError turns package ring's errors into this package's.
func mapRingError(err error) error {
	switch {
	case err == nil:
		return nil
	case err == ring.ErrEmpty:
		return ErrNoMoreItems
	case err == ring.ErrFull:
		return ErrBufferOverflow
	case err == ring.ErrTerminated:
		return ErrSessionEnded
	case errors.Is(err, ring.ErrCorrupt):
		return fmt.Errorf("%w: %v", ErrInvalidData, err)
	case err == ring.ErrPacketSize:
		return ErrInvalidPacketSize
	}
	return err
}

// ReceivePacket returns the next packet the host sent through the adapter
// (in an offload-aware session, the next record: see
// SessionOptions.Offload).
// The slice aliases ring memory: use it, then pass it to
// ReleaseReceivePacket. It returns ErrNoMoreItems when there is none (wait
// with Wait or ReadWaitEvent), ErrSessionEnded once the session is over.
func (s *Session) ReceivePacket() ([]byte, error) {
	if !s.calls.enter(&s.calls.rx) {
		return nil, ErrSessionEnded
	}
	defer s.calls.exit(&s.calls.rx)
	p, err := s.rx.Receive()
	if err == ring.ErrEmpty {
		s.loop.Nudge()
	}
	return p, mapRingError(err)
}

// ReleaseReceivePacket returns a packet from ReceivePacket to the ring.
// Packets may be released in any order.
func (s *Session) ReleaseReceivePacket(packet []byte) {
	if !s.calls.enter(&s.calls.rx) {
		return
	}
	defer s.calls.exit(&s.calls.rx)
	if s.rx.Release(packet) == nil {
		s.space.Signal()
	}
}

// AllocateSendPacket reserves room for a packet of size bytes in the send
// ring. Fill the slice with one IPv4 or IPv6 packet (in an offload-aware
// session, one record: see SessionOptions.Offload) and pass it to
// SendPacket. It returns ErrBufferOverflow when the ring is full (drop the
// packet), ErrInvalidPacketSize for a size over PacketSizeMax, and
// ErrSessionEnded once the session is over.
func (s *Session) AllocateSendPacket(size int) ([]byte, error) {
	if !s.calls.enter(&s.calls.tx) {
		return nil, ErrSessionEnded
	}
	defer s.calls.exit(&s.calls.tx)
	p, err := s.tx.Allocate(size)
	return p, mapRingError(err)
}

// SendPacket hands a packet from AllocateSendPacket to the host. Packets may
// be sent in any order; the host gets them in allocation order. Packets
// that are not IPv4 or IPv6 are dropped and counted in Stats. When the
// adapter has been idle, SendPacket writes the packet to the device itself
// (one system call) rather than waking the driver, which saves latency.
func (s *Session) SendPacket(packet []byte) {
	if !s.calls.enter(&s.calls.tx) {
		return
	}
	defer s.calls.exit(&s.calls.tx)
	s.tx.Commit(packet)
}

// ReceivePackets is ReceivePacket for many packets at once: it fills pkts
// with up to len(pkts) received packets, in order, and returns how many.
// It returns 0 and ErrNoMoreItems when there is none, and ErrSessionEnded
// once the session is over. A batch costs about what one packet does, so a
// busy program should prefer it.
func (s *Session) ReceivePackets(pkts [][]byte) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	if !s.calls.enter(&s.calls.rx) {
		return 0, ErrSessionEnded
	}
	defer s.calls.exit(&s.calls.rx)
	n, err := s.rx.ReceiveBatch(pkts)
	if err == ring.ErrEmpty {
		s.loop.Nudge()
	}
	return n, mapRingError(err)
}

// ReleaseReceivePackets returns packets from ReceivePacket or
// ReceivePackets to the ring, as ReleaseReceivePacket does one by one.
func (s *Session) ReleaseReceivePackets(pkts [][]byte) {
	if len(pkts) == 0 || !s.calls.enter(&s.calls.rx) {
		return
	}
	defer s.calls.exit(&s.calls.rx)
	s.rx.ReleaseBatch(pkts) // slices it does not know are skipped
	s.space.Signal()
}

// AllocateSendPackets is AllocateSendPacket for many packets at once: it
// reserves one packet for each of sizes, in order, into pkts (at most
// len(pkts) of them), and returns how many it reserved; it stops at the
// first that does not fit. When not even the first fits it returns 0 and
// the error AllocateSendPacket would have.
func (s *Session) AllocateSendPackets(sizes []int, pkts [][]byte) (int, error) {
	sizes = sizes[:min(len(sizes), len(pkts))]
	if !s.calls.enter(&s.calls.tx) {
		return 0, ErrSessionEnded
	}
	defer s.calls.exit(&s.calls.tx)
	n, err := s.tx.AllocateBatch(sizes, pkts)
	return n, mapRingError(err)
}

// SendPackets hands packets from AllocateSendPacket or AllocateSendPackets
// to the host, as SendPacket does one by one, waking the driver at most
// once.
func (s *Session) SendPackets(pkts [][]byte) {
	if len(pkts) == 0 || !s.calls.enter(&s.calls.tx) {
		return
	}
	defer s.calls.exit(&s.calls.tx)
	s.tx.CommitBatch(pkts)
}

// ReadWaitEvent returns an event that is signalled when packets arrive in
// the receive ring, for programs that wait on several sources. On Linux it
// is an eventfd that becomes readable: after poll(2) reports it readable,
// read its 8-byte counter before polling again, then call ReceivePacket
// until ErrNoMoreItems. The session owns it: do not close it.
func (s *Session) ReadWaitEvent() uintptr {
	s.rxWaker.useEvent.Store(true)
	s.loop.EndLease() // the event is signalled by the driver's reader only
	if s.calls.enter(&s.calls.rx) {
		s.rx.KeepAlertable()
		s.calls.exit(&s.calls.rx)
	}
	return s.readWait
}

// Wait blocks until ReceivePacket may return a packet, or the session ends
// (ErrSessionEnded), or ctx is done (ctx.Err()).
func (s *Session) Wait(ctx context.Context) error {
	if !s.calls.enter(&s.calls.rx) {
		return ErrSessionEnded
	}
	defer s.calls.exit(&s.calls.rx)
	err := s.rx.Wait(ctx)
	if testHookWaitReturned != nil {
		testHookWaitReturned()
	}
	return mapRingError(err)
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	st := statsFrom(s.loop.Stats())
	// Each time the application slept in Wait, one wake-up ended it; the
	// driver's side can only count the commits that found it asleep,
	// several of which may fall in one sleep.
	st.RxWakeups = s.rx.Sleeps()
	return st
}
