package ringtun

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/driver"
	"github.com/ringtun/ringtun/internal/tundev"
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
