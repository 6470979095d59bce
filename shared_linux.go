package ringtun

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/ringtun/ringtun/internal/control"
	"github.com/ringtun/ringtun/internal/driver"
	"github.com/ringtun/ringtun/ring"
)

// SharedSession is an adapter's session whose application half (the
// consumer of the receive ring and the producer of the send ring) is run by
// code outside Go: the C library libringtun in this process, or another
// process given the file descriptors. Go runs only the driver half. It is
// Linux only; a Go program wants StartSession.
//
// The memory is one memfd, mapped by both sides:
//
//	offset 0                       the receive ring (driver → application)
//	offset ring.RingSize(capacity) the send ring (application → driver)
//	offset 2*ring.RingSize(capacity)   the control block, 64 bytes:
//	    word 0 (uint32)  SpaceWanted, the driver's space gate (ring.Gate)
//	    word 1 (uint32)  WriterNotified: the sleeping writer was notified
//
// Both rings follow package ring's protocol (Wintun's). The application
// half must:
//   - keep the receive ring's Alertable at 1: the driver then signals
//     ReadWaitFd every time it moves that ring's Tail;
//   - after it moves the send ring's Tail, if that ring's Alertable is 1
//     (the driver's writer is asleep), exchange WriterNotified with 1 and,
//     if it was 0, signal SendFd (or call Notify). The driver clears
//     WriterNotified when the writer wakes, so a sleep costs one
//     notification however many packets are sent before the writer runs;
//   - after it moves the receive ring's Head, exchange SpaceWanted with 0
//     and signal SpaceFd if it was 1 (the driver's reader waits for room).
//
// Every access to the shared words is sequentially consistent (C11
// atomic_* with memory_order_seq_cst), as in package ring.
type SharedSession struct {
	name     string
	reg      *region
	send     *ring.EventFD
	space    *ring.EventFD
	txWaker  *sharedSendWaker // what the driver's writer sleeps on; SendFd and Notify signal it
	loop     *driver.Loop
	forward  sync.WaitGroup     // the goroutine that carries SendFd's signals to txWaker
	cancel   context.CancelFunc // stops it
	release  func()
	capacity uint32

	stopOnce sync.Once
	endOnce  sync.Once
	done     atomic.Bool
}

// StartSharedSession starts the adapter's session as StartSession does
// (same rules, same errors), for an application half run outside Go (see
// SharedSession).
func (a *Adapter) StartSharedSession(capacity uint32) (*SharedSession, error) {
	return startWith(a, capacity, SessionOptions{}, assembleShared)
}

func assembleShared(att *control.Attached, capacity uint32, opts SessionOptions) (_ *SharedSession, err error) {
	off, reg, err := prepareSession(att, capacity, opts)
	if err != nil {
		return nil, err
	}
	s := &SharedSession{name: att.Name, reg: reg, release: att.Release, capacity: capacity,
		txWaker: &sharedSendWaker{sendWaker: sendWaker{ch: ring.NewChanWaker()}}, cancel: func() {}}
	// Every field stop reads is set before the driver starts: the loop
	// can stop by itself (and call stop) at once.
	var gate *ring.Gate
	if s.send, err = ring.NewEventFD(); err == nil {
		if s.space, err = ring.NewEventFD(); err == nil {
			gate, err = ring.NewGate(reg.control(), s.space)
		}
	}
	if err == nil {
		s.txWaker.notified, err = ring.SharedWord(reg.control()[4:])
	}
	if err != nil {
		att.Queue.Close()
		s.stop()
		s.free()
		return nil, err
	}
	// SendFd's signals reach the writer through txWaker, as Notify's do.
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.forward.Add(1)
	go func() {
		defer s.forward.Done()
		for s.send.Wait(ctx) == nil {
			s.txWaker.Signal()
		}
	}()
	startDriver(att.Name, att.Queue, reg, att.MTU, off, opts, driverWakers{
		receive: reg.readWait, send: s.txWaker, space: gate,
	}, func(l *driver.Loop) {
		s.loop = l
		s.txWaker.loop.Store(l)
	}, func(error) { s.stop() })

	logf(LogInfo, "%s: shared session started, rings of %d KiB; offloads %s, merged writes: TCP %v, UDP %v",
		att.Name, capacity/1024, off.kernel, off.tcp, off.udp)
	return s, nil
}

// sharedSendWaker is the driver writer's waker for an application half
// outside Go: sendWaker with the WriterNotified word, which it clears
// whenever the writer wakes or a notification was served without waking
// it.
type sharedSendWaker struct {
	sendWaker
	notified *atomic.Uint32
}

func (w *sharedSendWaker) Wait(ctx context.Context) error {
	err := w.ch.Wait(ctx)
	w.notified.Store(0)
	return err
}

func (w *sharedSendWaker) Signal() {
	l := w.loop.Load()
	if l == nil || !l.Kick() {
		w.ch.Signal()
		return
	}
	// Kick wrote what was there and the writer sleeps on: the next
	// packet must notify again. One sent after Kick looked and before
	// this store did not notify: look once more.
	w.notified.Store(0)
	if l.SendReady() {
		w.ch.Signal()
	}
}

// Memory returns the shared memory, laid out as SharedSession describes.
// It is unmapped by End.
func (s *SharedSession) Memory() []byte { return s.reg.mem.Bytes() }

// Capacity returns the capacity of each ring.
func (s *SharedSession) Capacity() uint32 { return s.capacity }

// MemFd returns the memfd of Memory, to map it elsewhere (it is sealed
// against resizing). The session owns it.
func (s *SharedSession) MemFd() int { return s.reg.mem.Fd() }

// ReadWaitFd returns the eventfd the driver signals when it moves the
// receive ring's Tail, or terminates it. The session owns it.
func (s *SharedSession) ReadWaitFd() int { return s.reg.readWait.Fd() }

// SendFd returns the eventfd the application signals when the driver's
// writer must look at the send ring. The session owns it.
func (s *SharedSession) SendFd() int { return s.send.Fd() }

// Notify does what signalling SendFd does, for an application half in
// this process, without a system call: when the adapter has been idle it
// writes the send ring's packets from the calling thread, as
// Session.SendPacket does; otherwise it wakes the driver's writer.
// libringtun calls it from WintunSendPacket through cgo.
func (s *SharedSession) Notify() { s.txWaker.Signal() }

// SpaceFd returns the eventfd the application signals when the driver's
// reader waits for room in the receive ring. The session owns it.
func (s *SharedSession) SpaceFd() int { return s.space.Fd() }

// Stats returns the driver's counters.
func (s *SharedSession) Stats() Stats { return statsFrom(s.loop.Stats()) }

// stop ends the driver half: the loop stops, both rings are terminated
// from the driver's side (the application half then gets ErrTerminated,
// Wintun's ERROR_HANDLE_EOF), the read-wait event is signalled and the
// control plane told. The memory stays mapped for the application half.
func (s *SharedSession) stop() {
	s.done.Store(true)
	s.stopOnce.Do(func() {
		s.cancel()
		s.forward.Wait()
		if s.loop != nil {
			s.loop.Stop() // terminates both rings
		}
		s.reg.readWait.Signal()
		if s.release != nil {
			s.release()
		}
		logf(LogInfo, "%s: session ended", s.name)
	})
}

// End ends the session: the driver stops, the rings are terminated, the
// read-wait event is signalled, then the memory is unmapped and every file
// descriptor closed. The application half must have stopped using the
// memory and the descriptors before End. End is safe to call more than
// once.
func (s *SharedSession) End() {
	s.stop()
	s.endOnce.Do(s.free)
}

func (s *SharedSession) free() {
	errs := []error{s.reg.mem.Close(), s.reg.readWait.Close()}
	if s.send != nil {
		errs = append(errs, s.send.Close())
	}
	if s.space != nil {
		errs = append(errs, s.space.Close())
	}
	if err := errors.Join(errs...); err != nil {
		logf(LogWarn, "%s: freeing the session: %v", s.name, err)
	}
}

func (s *SharedSession) ended() bool { return s.done.Load() }
