package ringtun

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/ringtun/ringtun/internal/control"
	"github.com/ringtun/ringtun/internal/errs"
	"golang.org/x/sys/windows"
	"golang.zx2c4.com/wintun"
)

// Session is the one session of an adapter. On Windows its rings are the
// Wintun driver's, reached through wintun.dll; the methods are those of
// every platform, with the same errors. Its packet methods are safe for
// concurrent use.
//
// What differs from Linux: Stats is zero (the driver keeps no counters
// Wintun reports), and the batch methods are loops over the single-packet
// calls.
type Session struct {
	name     string
	w        wintun.Session
	endEvent windows.Handle // a manual-reset event set by End, which wakes Wait
	release  func()
	calls    callGuard // ends the Wintun session when no call is in it

	endOnce sync.Once
	done    atomic.Bool
}

// Wintun's rings carry plain packets, and wintun.sys bounds nothing but
// their capacity: neither offload-aware sessions nor in-flight limits
// (SessionOptions).
const offloadSessions, inFlightLimits = false, false

func assembleSession(att *control.Attached, capacity uint32, _ SessionOptions) (*Session, error) {
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		att.Session.End()
		return nil, err
	}
	s := &Session{name: att.Name, w: att.Session, endEvent: ev, release: att.Release}
	s.calls.free = func() {
		s.w.End()
		windows.CloseHandle(s.endEvent)
	}
	logf(LogInfo, "%s: session started, rings of %d KiB", att.Name, capacity/1024)
	return s, nil
}

// fromWintunPacket maps the Win32 errors of Wintun's packet calls to the
// package's, without allocating on the hot path.
func fromWintunPacket(err error) error {
	var code windows.Errno
	if !errors.As(err, &code) {
		return err
	}
	if e := errs.FromWin32(uint32(code)); e != nil {
		return e
	}
	return err
}

func (s *Session) ended() bool { return s.done.Load() }

// End ends the session; see the Linux documentation. Calls in progress
// finish first; a Wait in progress returns ErrSessionEnded.
func (s *Session) End() {
	s.done.Store(true)
	s.endOnce.Do(func() {
		windows.SetEvent(s.endEvent)
		if s.release != nil {
			s.release()
		}
		s.calls.end()
		logf(LogInfo, "%s: session ended", s.name)
	})
}

// ReceivePacket returns the next packet the host sent through the adapter,
// ErrNoMoreItems when there is none, ErrSessionEnded once the session is
// over.
func (s *Session) ReceivePacket() ([]byte, error) {
	if !s.calls.enter(&s.calls.rx) {
		return nil, ErrSessionEnded
	}
	defer s.calls.exit(&s.calls.rx)
	p, err := s.w.ReceivePacket()
	if err != nil {
		return nil, fromWintunPacket(err)
	}
	return p, nil
}

// ReleaseReceivePacket returns a packet from ReceivePacket to the ring.
func (s *Session) ReleaseReceivePacket(packet []byte) {
	if !s.calls.enter(&s.calls.rx) {
		return
	}
	defer s.calls.exit(&s.calls.rx)
	s.w.ReleaseReceivePacket(packet)
}

// AllocateSendPacket reserves room for a packet of size bytes in the send
// ring: ErrBufferOverflow when it is full, ErrInvalidPacketSize for a size
// over PacketSizeMax, ErrSessionEnded once the session is over.
func (s *Session) AllocateSendPacket(size int) ([]byte, error) {
	if size < 0 || size > PacketSizeMax {
		return nil, ErrInvalidPacketSize
	}
	if !s.calls.enter(&s.calls.tx) {
		return nil, ErrSessionEnded
	}
	defer s.calls.exit(&s.calls.tx)
	p, err := s.w.AllocateSendPacket(size)
	if err != nil {
		return nil, fromWintunPacket(err)
	}
	return p, nil
}

// SendPacket hands a packet from AllocateSendPacket to the host.
func (s *Session) SendPacket(packet []byte) {
	if !s.calls.enter(&s.calls.tx) {
		return
	}
	defer s.calls.exit(&s.calls.tx)
	s.w.SendPacket(packet)
}

// ReceivePackets fills pkts with up to len(pkts) packets and returns how
// many; 0 and the error ReceivePacket would return when there is none.
func (s *Session) ReceivePackets(pkts [][]byte) (int, error) {
	for i := range pkts {
		p, err := s.ReceivePacket()
		if err != nil {
			if i > 0 {
				err = nil
			}
			return i, err
		}
		pkts[i] = p
	}
	return len(pkts), nil
}

// ReleaseReceivePackets releases every packet in pkts.
func (s *Session) ReleaseReceivePackets(pkts [][]byte) {
	for _, p := range pkts {
		s.ReleaseReceivePacket(p)
	}
}

// AllocateSendPackets allocates one packet for each of sizes into pkts,
// stopping at the first that does not fit; 0 and AllocateSendPacket's
// error when not even the first fits.
func (s *Session) AllocateSendPackets(sizes []int, pkts [][]byte) (int, error) {
	sizes = sizes[:min(len(sizes), len(pkts))]
	for i, size := range sizes {
		p, err := s.AllocateSendPacket(size)
		if err != nil {
			if i > 0 {
				err = nil
			}
			return i, err
		}
		pkts[i] = p
	}
	return len(sizes), nil
}

// SendPackets sends every packet in pkts.
func (s *Session) SendPackets(pkts [][]byte) {
	for _, p := range pkts {
		s.SendPacket(p)
	}
}

// ReadWaitEvent returns Wintun's read-wait event handle: wait for it with
// WaitForSingleObject after ReceivePacket returned ErrNoMoreItems. The
// session owns it.
func (s *Session) ReadWaitEvent() uintptr {
	if !s.calls.enter(&s.calls.rx) {
		return 0
	}
	defer s.calls.exit(&s.calls.rx)
	return uintptr(s.w.ReadWaitEvent())
}

// Wait blocks until ReceivePacket may return a packet, or the session ends
// (ErrSessionEnded), or ctx is done (ctx.Err()).
func (s *Session) Wait(ctx context.Context) error {
	if !s.calls.enter(&s.calls.rx) {
		return ErrSessionEnded
	}
	defer s.calls.exit(&s.calls.rx)
	handles := []windows.Handle{s.w.ReadWaitEvent(), s.endEvent}
	if ctx.Done() != nil {
		cancel, err := windows.CreateEvent(nil, 1, 0, nil)
		if err != nil {
			return err
		}
		defer windows.CloseHandle(cancel)
		stop := context.AfterFunc(ctx, func() { windows.SetEvent(cancel) })
		defer stop()
		handles = append(handles, cancel)
	}
	r, err := windows.WaitForMultipleObjects(handles, false, windows.INFINITE)
	switch {
	case err != nil:
		return err
	case r == windows.WAIT_OBJECT_0:
		return nil
	case r == windows.WAIT_OBJECT_0+1:
		return ErrSessionEnded
	default:
		return ctx.Err()
	}
}

// Stats returns the session's counters; Wintun reports none, so on
// Windows they are zero.
func (s *Session) Stats() Stats { return Stats{} }
