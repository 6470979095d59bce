package ringtun

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringtun/ringtun/internal/driver"
	"github.com/ringtun/ringtun/internal/tundev"
	"github.com/ringtun/ringtun/netcfg"
	"github.com/ringtun/ringtun/ring"
)

// Session is the one session of an adapter: two rings in one shared memory
// region, and a driver loop that moves packets between them and the
// adapter. Its packet methods are safe for concurrent use.
type Session struct {
	name    string         // the adapter's, for log messages
	mem     *ring.Shared   // the rings; freed by calls when the session has ended
	wake    *ring.EventFD  // ReadWaitEvent's; closed when the Session is garbage
	rx      *ring.Consumer // the app's side of the receive ring
	tx      *ring.Producer // the app's side of the send ring
	loop    *driver.Loop
	space   chan struct{} // tells a waiting driver reader that records were released
	off     offloads      // what the driver was allowed to use
	rxWaker *receiveWaker
	calls   callGuard

	endOnce sync.Once
	done    atomic.Bool // End has run or is running
}

// receiveWaker wakes the application when the driver commits received
// packets. In-process, Session.Wait sleeps on a channel, so a wake-up
// costs no system call; once the application asked for ReadWaitEvent, the
// eventfd is signalled as well.
type receiveWaker struct {
	ch    *ring.ChanWaker
	fd    *ring.EventFD
	useFD atomic.Bool
}

func (w *receiveWaker) Signal() {
	w.ch.Signal()
	if w.useFD.Load() {
		w.fd.Signal()
	}
}

func (w *receiveWaker) Wait(ctx context.Context) error { return w.ch.Wait(ctx) }

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

// Stats are a session's packet counters, from the driver's side:
// "received" is host to application, "sent" is application to host.
type Stats = driver.Stats

// testHookWaitReturned, if set, runs in Wait after the ring's Wait
// returns, while the call still counts as in progress.
var testHookWaitReturned func()

// fullPolicy is what the driver does with a packet from the host when the
// receive ring is full. Waiting (back-pressure) is the default; tests
// compare it with dropping.
var fullPolicy = driver.Wait

// useOffloads bounds the kernel offloads a session asks for, and so whether
// its driver splits and merges GSO super-packets. All of them is the
// default; tests turn them off to check the plain path and compare.
var useOffloads = tundev.CSUM | tundev.TSO4 | tundev.TSO6 | tundev.TSOECN | tundev.USO4 | tundev.USO6

// StartSession starts the adapter's session with two rings of capacity
// bytes each (a power of two from RingCapacityMin to RingCapacityMax). It
// fails with ErrAlreadyInitialized if the adapter has a session in any
// process, wherever its interface is, and with ErrAdapterNotFound if the
// adapter is no longer in the handle's namespace. An adapter that is down
// takes a session too; StartSession does not bring it up.
func (a *Adapter) StartSession(capacity uint32) (*Session, error) {
	if err := ring.CheckCapacity(capacity); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCapacity, err)
	}
	var s *Session
	err := a.use("start session on", func(nc *netcfg.Conn, l netcfg.Link) error {
		if a.session != nil && !a.session.ended() {
			return ErrAlreadyInitialized
		}
		q, l, err := attachSession(nc, l, a.guid)
		if err != nil {
			return err
		}
		waitRunning(nc, l)
		if s, err = startSession(q, l, capacity); err != nil {
			return err
		}
		a.session = s
		return nil
	})
	return s, err
}

// runningWait bounds how long StartSession waits for an adapter to become
// operational.
const runningWait = 2 * time.Second

// waitRunning waits until the interface, if it is administratively up, is
// operational. A persistent adapter that no process holds has its carrier
// off and its transmit queues deactivated. The first queue that attaches
// turns the carrier on, but the kernel reactivates the queues from its
// link-watch work, a moment later, and until then drops what the host
// sends through the adapter, such as the reply to the first packet of a
// new session. Getting the link makes the kernel run that work at once;
// kernels that do not are polled until the link is running, and a no-op
// change of the link, which waits for the RTNL lock that link-watch holds
// while it reactivates the queues, orders the return after it.
func waitRunning(nc *netcfg.Conn, l netcfg.Link) {
	deadline := time.Now().Add(runningWait)
	for polled := false; ; polled = true {
		now, err := nc.LinkByIndex(l.Index)
		if err != nil || !now.Up {
			return
		}
		if now.Running {
			if polled {
				nc.SetUp(l.Index)
			}
			return
		}
		if time.Now().After(deadline) {
			logf(LogWarn, "%s: not operational %v after its session started", l.Name, runningWait)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// startSession builds a session on q, the adapter's attached queue, which
// it owns from here on.
func startSession(q *tundev.Queue, link netcfg.Link, capacity uint32) (_ *Session, err error) {
	name := link.Name
	undo := []func(){func() { q.Close() }}
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	off, err := negotiateOffloads(q)
	if err != nil {
		return nil, fmt.Errorf("ringtun: start session on %s: %w", name, err)
	}

	size := ring.RingSize(capacity)
	mem, err := ring.CreateShared("ringtun-"+name, 2*size)
	if err != nil {
		return nil, fmt.Errorf("ringtun: start session on %s: %w", name, err)
	}
	undo = append(undo, func() { mem.Close() })
	rxWake, err := ring.NewEventFD()
	if err != nil {
		return nil, fmt.Errorf("ringtun: start session on %s: %w", name, err)
	}
	undo = append(undo, func() { rxWake.Close() })

	// The receive ring comes first in the region, the send ring second.
	rxRing, err := ring.New(mem.Bytes()[:size], capacity)
	if err != nil {
		return nil, err
	}
	txRing, err := ring.New(mem.Bytes()[size:], capacity)
	if err != nil {
		return nil, err
	}
	txWake := &sendWaker{ch: ring.NewChanWaker()}
	rxWaker := &receiveWaker{ch: ring.NewChanWaker(), fd: rxWake}
	s := &Session{
		name:    name,
		mem:     mem,
		wake:    rxWake,
		rxWaker: rxWaker,
		rx:      ring.NewConsumer(rxRing, rxWaker),
		tx:      ring.NewProducer(txRing, txWake),
		space:   make(chan struct{}, 1),
		off:     off,
	}
	s.calls.free = func() { mem.Close() }
	// The loop can stop by itself before Start returns (the adapter
	// deleted at once): its OnStop waits until s.loop is set.
	started := make(chan struct{})
	s.loop = driver.Start(driver.Config{
		Device:      q,
		Receive:     ring.NewProducer(rxRing, rxWaker),
		Send:        ring.NewConsumer(txRing, txWake),
		Space:       s.space,
		Full:        fullPolicy,
		MTU:         link.MTU,
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
	txWake.loop.Store(s.loop)
	close(started)
	// The eventfd may be in a poll set of the application's until it
	// drops the Session; the ring memory goes when the session ends (End).
	runtime.AddCleanup(s, func(w *ring.EventFD) { w.Close() }, rxWake)
	logf(LogInfo, "%s: session started, rings of %d KiB; offloads %s, merged writes: TCP %v, UDP %v",
		name, capacity/1024, off.kernel, off.tcp, off.udp)
	return s, nil
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

// ReceivePacket returns the next packet the host sent through the adapter.
// The slice aliases ring memory: use it, then pass it to
// ReleaseReceivePacket. It returns ErrNoMoreItems when there is none (wait
// with Wait or ReadWaitEvent), ErrSessionEnded once the session is over.
func (s *Session) ReceivePacket() ([]byte, error) {
	if !s.calls.enter(&s.calls.rx) {
		return nil, ErrSessionEnded
	}
	defer s.calls.exit(&s.calls.rx)
	p, err := s.rx.Receive()
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
		select {
		case s.space <- struct{}{}:
		default:
		}
	}
}

// AllocateSendPacket reserves room for a packet of size bytes in the send
// ring. Fill the slice with one IPv4 or IPv6 packet and pass it to
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
	select {
	case s.space <- struct{}{}:
	default:
	}
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

// ReadWaitEvent returns an eventfd that becomes readable when packets
// arrive in the receive ring, for programs that poll(2) several sources.
// After poll reports it readable, read its 8-byte counter before polling
// again, then call ReceivePacket until ErrNoMoreItems. The session owns the
// fd: do not close it.
func (s *Session) ReadWaitEvent() uintptr {
	s.rxWaker.useFD.Store(true)
	if s.calls.enter(&s.calls.rx) {
		s.rx.KeepAlertable()
		s.calls.exit(&s.calls.rx)
	}
	return uintptr(s.wake.Fd())
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
	st := s.loop.Stats()
	// Each time the application slept in Wait, one wake-up ended it; the
	// driver's side can only count the commits that found it asleep,
	// several of which may fall in one sleep.
	st.RxWakeups = s.rx.Sleeps()
	return st
}
