package driver

import (
	"context"
	"time"

	"github.com/ringtun/ringtun/offload"
)

// Who reads the device. The reader goroutine does, one read at a time,
// each under the read token (rsem), which orders reads with their commits.
// When the application waits on an empty receive ring, its own goroutine
// may take the reading over (WaitDirect): it sets owner, interrupts the
// reader goroutine's read (Device's Interruptible), takes the token, and
// reads through Config.Direct, a second handle on the queue with a poller
// registration of its own, so the packet that ends its wait reaches it
// without a hand-off between goroutines. Meanwhile the reader goroutine
// waits for resume. When the application's goroutine leaves with the
// queue empty, it keeps the reading on lease, so that a request-response
// loop or a forwarder, back in Wait at once, costs the reader goroutine no
// wake-up; when it leaves with more queued (a busy device), or looks at an
// empty ring after the lease (Nudge), or waits on the read-wait event
// (EndLease), the reading goes back to the reader goroutine, which fills
// the ring while the application is busy.
//
// The hand-over is race-free because the reader goroutine, after an
// interrupted read, first takes the interruption back (Resume) and only
// then looks at owner: an interruption that comes after the Resume
// interrupts its next read, and one that came before it was preceded by
// the store to owner that it then sees.

// readFunc reads one virtio_net_hdr and packet into vec.
type readFunc func(vec [][]byte) (int, error)

// step is the outcome of one read.
type step int

const (
	stepRead        step = iota // a read was handled: delivered, dropped or counted
	stepEmpty                   // nothing was queued (a read that does not wait)
	stepInterrupted             // the read was interrupted (Interrupt)
	stepStop                    // the loop must stop
)

// Interruptible is a Device whose reads another goroutine can interrupt:
// Interrupt makes a ReadVec in progress, and every later one until Resume,
// return an error wrapping os.ErrDeadlineExceeded.
type Interruptible interface {
	Interrupt()
	Resume()
}

// DirectReader is a second handle on the Device's queue (Config.Direct),
// for the application's goroutine in WaitDirect: ReadVec as Device's,
// interruptible; TryReadVec never waits (an error wrapping
// syscall.EAGAIN when nothing is queued); ReadWaited says whether the last
// ReadVec waited. The Loop closes it when it stops.
type DirectReader interface {
	ReadVec(vec [][]byte) (int, error)
	TryReadVec(vec [][]byte) (int, error)
	ReadWaited() bool // the last ReadVec waited: nothing was queued when it was called
	Interruptible
	Close() error
}

// directBatch bounds the reads of one WaitDirect: when the read that ended
// the wait found the queue not empty (a busy device), it takes what else
// is queued, up to this many, so that a burst is not left to the reader
// goroutine's hand-off.
const directBatch = 64

// directRoom is the room the receive ring must have for WaitDirect to
// read: the longest read split into packets (a 64 KiB super-packet of
// 45 segments, with their record headers), so that the application's
// goroutine never has to wait for room it alone can make.
const directRoom = 96 << 10

// readerState is the reader's state, used by whoever holds the read
// token.
type readerState struct {
	hdr      [offload.HdrLen]byte
	scratch  []byte
	readSize int // what the plain path reserves before a read
	sinceBig int // reads since one over the MTU
	split    offload.Splitter
	timer    *time.Timer
	failures int // read errors in a row
}

// Who reads (Loop.owner).
const (
	ownerReader int32 = iota // the reader goroutine
	ownerApp                 // the application's goroutine, in WaitDirect
	ownerLease               // nobody: the application left WaitDirect with the queue empty and is expected back
)

// directLease is how long the reading stays with the application after
// it left WaitDirect with the device's queue empty, if it does not come
// back: coming back to Wait within it (a request-response loop, a
// forwarder between packets) costs no hand-over. Past it, the
// application's next look at an empty ring (Nudge) gives the reading back
// to the reader goroutine. No timer enforces it: a timer armed per packet
// costs the poller a wake-up per packet, which is what the lease saves.
const directLease = 200 * time.Microsecond

// reader is the reader goroutine: it reads the device, one read under the
// read token at a time, except while the reading is the application's
// (WaitDirect and its lease).
func (l *Loop) reader() {
	defer l.stopped.Done()
	dev, _ := l.cfg.Device.(Interruptible)
	for {
		if l.owner.Load() != ownerReader {
			select {
			case <-l.resume:
			case <-l.stop:
				return
			}
			continue
		}
		select {
		case l.rsem <- struct{}{}:
		case <-l.stop:
			return
		}
		if l.owner.Load() != ownerReader {
			<-l.rsem
			continue
		}
		st := l.read(l.devRead, false)
		<-l.rsem
		switch st {
		case stepStop:
			return
		case stepInterrupted, stepEmpty:
			if dev != nil {
				dev.Resume() // then look at the owner again
			}
		}
	}
}

// giveBack returns the reading to the reader goroutine.
func (l *Loop) giveBack() {
	select {
	case l.resume <- struct{}{}:
	default:
	}
}

// Nudge is called by the application when it finds the receive ring
// empty outside Wait: if the reading has been on lease for longer than
// directLease (the application went away to do other work), it goes back
// to the reader goroutine, which brings what is queued into the ring. So
// no packet waits in the device's queue for an application that looks at
// the ring without calling Wait.
func (l *Loop) Nudge() {
	if l.owner.Load() != ownerLease || l.now()-l.leftAt.Load() < int64(directLease) {
		return
	}
	l.EndLease()
}

// EndLease gives the reading back to the reader goroutine if it is on
// lease: for an application that waits on the read-wait event, which only
// the reader goroutine's commits signal.
func (l *Loop) EndLease() {
	if l.owner.CompareAndSwap(ownerLease, ownerReader) {
		l.giveBack()
	}
}

// now is the time since the loop started, in nanoseconds.
func (l *Loop) now() int64 { return time.Since(l.epoch).Nanoseconds() }

// WaitDirect waits for the receive ring to get a packet by reading the
// device on the calling goroutine, the application's, which its Wait has
// found the ring empty on: the packet that ends the wait then reaches it
// without a hand-off from the reader goroutine (counted in
// Stats.RxDirectReads). ready reports whether the receive ring has
// something for the application. WaitDirect returns false when it cannot
// be used (no Config.Direct, a device that cannot be interrupted, another
// goroutine in WaitDirect, a ring without room for a largest read): the
// caller then sleeps as usual. When it returns true, the caller looks at
// the ring again; the error is ctx's.
func (l *Loop) WaitDirect(ctx context.Context, ready func() bool) (bool, error) {
	d := l.cfg.Direct
	dev, ok := l.cfg.Device.(Interruptible)
	if d == nil || !ok || l.stopping() {
		return false, nil
	}
	if !l.roomForDirect() {
		// The caller will sleep until the reader goroutine signals: it
		// must not be left asleep on lease.
		l.EndLease()
		return false, nil
	}
	switch {
	case l.owner.CompareAndSwap(ownerLease, ownerApp):
		// Back on lease: the reader goroutine is asleep.
	case l.owner.CompareAndSwap(ownerReader, ownerApp):
		dev.Interrupt() // the reader goroutine lets go of the read token
	default:
		return false, nil // another goroutine is in WaitDirect
	}
	idle := false // the last read found the queue empty
	defer func() {
		if idle && !l.stopping() {
			l.leftAt.Store(l.now())
			l.owner.Store(ownerLease)
			return
		}
		l.owner.Store(ownerReader)
		l.giveBack()
	}()
	select {
	case l.rsem <- struct{}{}:
	case <-ctx.Done():
		return true, ctx.Err()
	case <-l.stop:
		return true, nil
	}
	defer func() { <-l.rsem }()
	if ready() {
		return true, nil // the reader goroutine delivered before it let go
	}
	stop := context.AfterFunc(ctx, d.Interrupt)
	st := l.read(l.directRead, true)
	if !stop() || st == stepInterrupted {
		d.Resume()
	}
	if st != stepRead {
		return true, ctx.Err()
	}
	l.c.rxDirectReads.Add(1)
	if d.ReadWaited() {
		// The packet came to a queue that was empty: more is unlikely to
		// be there already, and looking would cost a system call per
		// packet in a request-response exchange.
		idle = true
		return true, nil
	}
	for range directBatch - 1 {
		if !l.roomForDirect() {
			return true, nil
		}
		switch l.read(l.directTry, true) {
		case stepRead:
			l.c.rxDirectReads.Add(1)
			continue
		case stepEmpty:
			idle = true
		}
		return true, nil
	}
	return true, nil
}

// roomForDirect reports whether the receive ring has room for the longest
// read, under its limit.
func (l *Loop) roomForDirect() bool {
	return l.cfg.Receive.Room() >= directRoom
}
