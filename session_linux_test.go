package ringtun

// Sessions: the one-session rule, offload negotiation, ending (by End,
// Close or the adapter's deletion) and what it wakes, Wait, ReadWaitEvent.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/driver"
	"github.com/ringtun/ringtun/internal/packettest"
	"github.com/ringtun/ringtun/internal/tundev"
	"golang.org/x/sys/unix"
)

// TestBatchAPI sends echo requests with AllocateSendPackets and SendPackets
// and takes the replies with ReceivePackets and ReleaseReceivePackets:
// every reply arrives once, in order, byte for byte; the batch calls
// report an empty ring, a full ring and an ended session as the single
// calls do.
func TestBatchAPI(t *testing.T) {
	_, _, s := dpSession(t, RingCapacityMin, driver.Wait)
	var none [4][]byte
	if n, err := s.ReceivePackets(none[:]); n != 0 || !errors.Is(err, ErrNoMoreItems) {
		t.Fatalf("ReceivePackets on an empty ring = %d, %v; want ErrNoMoreItems", n, err)
	}
	if n, err := s.ReceivePackets(nil); n != 0 || err != nil {
		t.Fatalf("ReceivePackets(nil) = %d, %v", n, err)
	}

	const size = 28 + 1000
	fit := (RingCapacityMin - 4) / recordSize(size)
	sizes := make([]int, fit+10)
	for i := range sizes {
		sizes[i] = size
	}
	pkts := make([][]byte, len(sizes))
	// More than fit: the batch stops at the first that does not fit.
	n, err := s.AllocateSendPackets(sizes, pkts)
	if err != nil || n != fit {
		t.Fatalf("AllocateSendPackets(%d packets) = %d, %v; want %d", len(sizes), n, err, fit)
	}
	if n, err := s.AllocateSendPackets(sizes[:1], pkts[fit:]); n != 0 || !errors.Is(err, ErrBufferOverflow) {
		t.Fatalf("AllocateSendPackets on a full ring = %d, %v; want ErrBufferOverflow", n, err)
	}
	if n, err := s.AllocateSendPackets(sizes, pkts[:0]); n != 0 || err != nil {
		t.Fatalf("AllocateSendPackets into no room = %d, %v; want 0, nil", n, err)
	}
	for i, p := range pkts[:fit] {
		fillEcho(p, uint16(i))
	}
	s.SendPackets(pkts[:fit])

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make([][]byte, 7) // an odd batch size, so that batches straddle
	for next := 0; next < fit; {
		n, err := s.ReceivePackets(got)
		if errors.Is(err, ErrNoMoreItems) {
			if err := s.Wait(ctx); err != nil {
				t.Fatalf("after %d replies: %v", next, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range got[:n] {
			seq, err := checkReply(p)
			if err != nil {
				t.Fatal(err)
			}
			if int(seq) != next {
				t.Fatalf("reply %d, want %d", seq, next)
			}
			next++
		}
		s.ReleaseReceivePackets(got[:n])
	}
	expectEmpty(t, s)
	s.End()
	if _, err := s.ReceivePackets(got); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("ReceivePackets after End: %v, want ErrSessionEnded", err)
	}
	if _, err := s.AllocateSendPackets(sizes[:1], pkts); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("AllocateSendPackets after End: %v, want ErrSessionEnded", err)
	}
}

// TestSessionOffloads: a session asks the kernel for every offload it
// knows, and finds out whether merged writes are accepted, also on an
// adapter that is down; what useOffloads allows bounds what it asks for.
func TestSessionOffloads(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		a := mustCreate(t, "off0", "Test", AdapterOptions{})
		defer mustClose(t, a)
		s := mustStart(t, a)
		got := s.off
		s.End()
		// TSO (and merged TCP writes) has been in every kernel for years;
		// the rest depends on the kernel, so it is only logged.
		if want := tundev.CSUM | tundev.TSO4 | tundev.TSO6; got.kernel&want != want || !got.tcp {
			t.Fatalf("session offloads %+v, want at least %s and merged TCP writes", got, want)
		}
		t.Logf("offloads %s, merged writes TCP %v UDP %v", got.kernel, got.tcp, got.udp)

		old := useOffloads
		useOffloads = tundev.CSUM
		defer func() { useOffloads = old }()
		s = mustStart(t, a)
		got = s.off
		s.End()
		if got != (offloads{kernel: tundev.CSUM}) {
			t.Fatalf("with only CSUM allowed: %+v", got)
		}
		return nil
	})
}

// TestStatsWakeups: RxWakeups counts the application's sleeps in Wait,
// each ended by one wake-up: none before the application waits, one when a
// reply wakes a Wait that had to sleep.
func TestStatsWakeups(t *testing.T) {
	_, _, s := dpSession(t, RingCapacityMin, driver.Wait)
	if st := s.Stats(); st.RxWakeups != 0 {
		t.Fatalf("RxWakeups %d before any Wait", st.RxWakeups)
	}
	// Once the Wait below has gone to sleep, send an echo request.
	sent := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for s.rx.Sleeps() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		p, err := s.AllocateSendPacket(128)
		if err == nil {
			fillEcho(p, 77)
			s.SendPacket(p)
		}
		sent <- err
	}()
	if seq := receiveReply(t, s); seq != 77 {
		t.Fatalf("reply %d, want 77", seq)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.RxWakeups != 1 || st.RxPackets != 1 {
		t.Fatalf("after one sleeping Wait and one reply: %+v", st)
	}
}

func TestStartSessionInvalidCapacity(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		a := mustCreate(t, "cap0", "Test", AdapterOptions{})
		defer mustClose(t, a)
		for _, c := range []uint32{0, 1, RingCapacityMin / 2, RingCapacityMin - 1, RingCapacityMin + 4,
			3 * RingCapacityMin, RingCapacityMax - RingCapacityMin, RingCapacityMax + 1, RingCapacityMax * 2, 1 << 31, 0xFFFFFFFF} {
			s, err := a.StartSession(c)
			wantErr(t, fmt.Sprintf("StartSession(%#x)", c), err, ErrInvalidCapacity)
			if s != nil {
				t.Fatalf("StartSession(%#x) returned a session with its error", c)
			}
		}
		// The refused calls held nothing: the adapter is not in use and a
		// valid capacity works, at both ends of the range.
		wantAdapters(t, adapters(t), infoOf(a, false, false))
		for _, c := range []uint32{RingCapacityMin, RingCapacityMax} {
			s, err := a.StartSession(c)
			if err != nil {
				t.Fatalf("StartSession(%#x): %v", c, err)
			}
			s.End()
		}
		return nil
	})
}

func TestOneSessionPerAdapter(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("198.18.3.1"), netip.MustParseAddr("198.18.3.2")
	var a, b *Adapter
	var s *Session
	in(t, ns, func() error {
		a = mustCreate(t, "one0", "Test", AdapterOptions{Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}}})
		s = mustStart(t, a)
		s2, err := a.StartSession(RingCapacityMin)
		wantErr(t, "second StartSession on the same handle", err, ErrAlreadyInitialized)
		if s2 != nil {
			t.Fatal("StartSession returned a session with its error")
		}
		if b, err = OpenAdapter("one0"); err != nil {
			t.Fatal(err)
		}
		_, err = b.StartSession(RingCapacityMin)
		wantErr(t, "StartSession on another handle", err, ErrAlreadyInitialized)
		return nil
	})
	defer in(t, ns, func() error {
		mustClose(t, b)
		mustClose(t, a)
		return nil
	})
	c := startRoleChild(t, ns, "open", "RT_NAME=one0", "RT_SESSION=1")
	var session errReport
	c.expect("meta", nil)
	c.expect("session", &session)
	c.wait()
	if !session.is("ErrAlreadyInitialized") {
		t.Errorf("StartSession in another process: %v, want ErrAlreadyInitialized", session)
	}
	in(t, ns, func() error {
		// The refused attempts did not disturb the session.
		if err := exchangeEcho4(s, local, peer, 3, 1, lifeWait); err != nil {
			t.Fatal(err)
		}
		s.End()
		return nil
	})
	c = startRoleChild(t, ns, "open", "RT_NAME=one0", "RT_SESSION=1", "RT_HOLD=1", "RT_ECHO="+local.String()+","+peer.String())
	c.expect("meta", nil)
	c.expect("session", &session)
	if session.Msg != "" {
		t.Fatalf("StartSession in another process after End: %v", session)
	}
	var echo errReport
	c.expect("echo", &echo)
	if echo.Msg != "" {
		t.Errorf("echo in a child: %v", echo)
	}
	in(t, ns, func() error {
		_, err := a.StartSession(RingCapacityMin)
		wantErr(t, "StartSession while another process has the session", err, ErrAlreadyInitialized)
		return nil
	})
	c.goOn()
	c.wait()
	in(t, ns, func() error {
		s = mustStart(t, b)
		defer s.End()
		return exchangeEcho4(s, local, peer, 3, 2, lifeWait)
	})
}

func TestSessionAdapterDeleted(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		noIPv6(t)
		fds, goroutines := openFDs(), runtime.NumGoroutine()
		func() {
			a := mustCreate(t, "del0", "Test", AdapterOptions{})
			defer a.Close()
			s := mustStart(t, a)
			defer s.End()
			waiting := make(chan error, 1)
			go func() { waiting <- s.Wait(context.Background()) }()
			waitersBlocked(t, 1)
			if _, err := ipCmd("link", "del", "del0"); err != nil {
				t.Fatal(err)
			}
			wantErr(t, "Wait when the adapter is deleted", receiveErr(t, "Wait", waiting), ErrSessionEnded, os.ErrClosed)
			_, err := s.ReceivePacket()
			wantErr(t, "ReceivePacket", err, ErrSessionEnded, os.ErrClosed)
			_, err = s.AllocateSendPacket(40)
			wantErr(t, "AllocateSendPacket", err, ErrSessionEnded, os.ErrClosed)
			wantErr(t, "Wait after", s.Wait(context.Background()), ErrSessionEnded)
			bounded(t, "End", s.End)
			bounded(t, "Close", func() { mustClose(t, a) })
			wantLinks(t, "lo")
			wantAdapters(t, adapters(t))

			// A handle whose adapter was deleted starts no session, and
			// leaves no interface behind (attaching to a TUN name that
			// is gone makes a new interface).
			a = mustCreate(t, "del1", "Test", AdapterOptions{})
			defer a.Close()
			if _, err := ipCmd("link", "del", "del1"); err != nil {
				t.Fatal(err)
			}
			_, err = a.StartSession(RingCapacityMin)
			wantErr(t, "StartSession on a deleted adapter", err, ErrAdapterNotFound)
			wantLinks(t, "lo")
			mustClose(t, a)
		}()
		checkNoLeak(t, fds, goroutines)
		return nil
	})
}

func TestSessionEndWakesWaiters(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		noIPv6(t)
		a := mustCreate(t, "end0", "Test", AdapterOptions{})
		defer mustClose(t, a)
		s := mustStart(t, a)
		const n = 4
		waiting := make(chan error, n)
		for i := 0; i < n; i++ {
			go func() { waiting <- s.Wait(context.Background()) }()
		}
		waitersBlocked(t, n)
		s.End()
		for i := 0; i < n; i++ {
			wantErr(t, fmt.Sprintf("waiter %d", i), receiveErr(t, "Wait", waiting), ErrSessionEnded, os.ErrClosed)
		}
		wantErr(t, "Wait after End", s.Wait(context.Background()), ErrSessionEnded)
		_, err := s.ReceivePacket()
		wantErr(t, "ReceivePacket after End", err, ErrSessionEnded)
		_, err = s.AllocateSendPacket(40)
		wantErr(t, "AllocateSendPacket after End", err, ErrSessionEnded)
		s.End()
		wantAdapters(t, adapters(t), infoOf(a, false, false))
		// The adapter takes a new session.
		s = mustStart(t, a)
		wantAdapters(t, adapters(t), infoOf(a, false, true))
		s.End()
		return nil
	})
}

func TestSessionWaitContext(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("198.18.4.1"), netip.MustParseAddr("198.18.4.2")
	in(t, ns, func() error {
		noIPv6(t)
		a := mustCreate(t, "wait0", "Test", AdapterOptions{Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}}})
		defer mustClose(t, a)
		s := mustStart(t, a)
		defer s.End()

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Wait(ctx); err != context.Canceled {
			t.Errorf("Wait with a cancelled context: %v", err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		bounded(t, "Wait with a deadline", func() {
			if err := s.Wait(ctx); err != context.DeadlineExceeded {
				t.Errorf("Wait with a deadline: %v", err)
			}
		})

		// Two waiters; cancelling the first leaves the second asleep.
		ctx1, cancel1 := context.WithCancel(context.Background())
		ctx2, cancel2 := context.WithCancel(context.Background())
		defer cancel2()
		w1, w2 := make(chan error, 1), make(chan error, 1)
		go func() { w1 <- s.Wait(ctx1) }()
		waitersBlocked(t, 1)
		go func() { w2 <- s.Wait(ctx2) }()
		waitersBlocked(t, 2)
		cancel1()
		if err := receiveErr(t, "first waiter", w1); err != context.Canceled {
			t.Errorf("first waiter: %v, want context.Canceled", err)
		}
		waitersBlocked(t, 1)
		select {
		case err := <-w2:
			t.Fatalf("second waiter woke with %v when the first was cancelled", err)
		default:
		}
		// A packet wakes it.
		p, err := s.AllocateSendPacket(28)
		if err != nil {
			t.Fatal(err)
		}
		packettest.EchoRequest4(p, peer, local, 4, 1, nil)
		s.SendPacket(p)
		if err := receiveErr(t, "second waiter", w2); err != nil {
			t.Errorf("second waiter: %v, want nil on a packet", err)
		}
		// The session works after all that.
		if err := exchangeEcho4(s, local, peer, 4, 2, lifeWait); err != nil {
			t.Error(err)
		}
		return nil
	})
}

func TestReadWaitEvent(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("198.18.5.1"), netip.MustParseAddr("198.18.5.2")
	in(t, ns, func() error {
		noIPv6(t)
		a := mustCreate(t, "event0", "Test", AdapterOptions{Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}}})
		defer mustClose(t, a)
		fd := func() int {
			s := mustStart(t, a)
			fd := int(s.ReadWaitEvent())
			if again := int(s.ReadWaitEvent()); again != fd {
				t.Errorf("ReadWaitEvent returned %d, then %d", fd, again)
			}
			if target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); err != nil || target != "anon_inode:[eventfd]" {
				t.Fatalf("ReadWaitEvent() = %d: %q, %v; want an eventfd", fd, target, err)
			}
			pollFD := func(timeout int) bool {
				t.Helper()
				fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
				for {
					n, err := unix.Poll(fds, timeout)
					if err == unix.EINTR {
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					return n == 1 && fds[0].Revents&unix.POLLIN != 0
				}
			}
			readCounter := func() uint64 {
				t.Helper()
				var b [8]byte
				if n, err := unix.Read(fd, b[:]); err != nil || n != 8 {
					t.Fatalf("reading the eventfd: %d, %v", n, err)
				}
				return binary.NativeEndian.Uint64(b[:])
			}
			if _, err := s.ReceivePacket(); !errors.Is(err, ErrNoMoreItems) {
				t.Fatalf("ReceivePacket on a fresh session: %v", err)
			}
			if pollFD(0) {
				readCounter() // a wake-up left from setting up
			}
			if pollFD(0) {
				t.Fatal("the wait event is readable with nothing in the ring")
			}
			for seq := uint16(1); seq <= 3; seq++ {
				p, err := s.AllocateSendPacket(28)
				if err != nil {
					t.Fatal(err)
				}
				packettest.EchoRequest4(p, peer, local, 5, seq, nil)
				s.SendPacket(p)
				if !pollFD(int(lifeWait / time.Millisecond)) {
					t.Fatalf("echo %d: the wait event is not readable after %v", seq, lifeWait)
				}
				if n := readCounter(); n == 0 {
					t.Fatalf("echo %d: counter 0", seq)
				}
				r, err := s.ReceivePacket()
				if err != nil {
					t.Fatalf("echo %d: ReceivePacket after the event: %v", seq, err)
				}
				if len(r) != 28 || r[20] != 0 || r[27] != byte(seq) {
					t.Errorf("echo %d: received % x, want the echo reply", seq, r)
				}
				s.ReleaseReceivePacket(r)
				if _, err := s.ReceivePacket(); !errors.Is(err, ErrNoMoreItems) {
					t.Fatalf("echo %d: second ReceivePacket: %v", seq, err)
				}
			}
			// End wakes a poller, and the fd stays valid while the
			// Session is reachable.
			s.End()
			if !pollFD(int(lifeWait / time.Millisecond)) {
				t.Error("the wait event is not readable after End")
			}
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
				t.Errorf("the wait event after End: %v", err)
			}
			runtime.GC()
			if target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); err != nil || target != "anon_inode:[eventfd]" {
				t.Errorf("the wait event after End and a GC with the Session live: %q, %v", target, err)
			}
			runtime.KeepAlive(s)
			return fd
		}()
		// Once the Session is garbage, the fd goes.
		mustClose(t, a)
		deadline := time.Now().Add(lifeWait)
		for {
			runtime.GC()
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == unix.EBADF {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the wait event %d is still open %v after its Session became garbage", fd, lifeWait)
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	})
}

type logEntry struct {
	level LogLevel
	t     time.Time
	msg   string
}
