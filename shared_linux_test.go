package ringtun

// SharedSession with an application half written here in Go over its own
// mapping of the memfd, following the protocol SharedSession documents, as
// libringtun's C half does (capi/test covers that one).

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/packettest"
	"github.com/ringtun/ringtun/ring"
)

// outsideHalf is an application half outside the session's own Go
// objects: its own mapping, its own consumer and producer.
type outsideHalf struct {
	mem      *ring.Shared
	rx       *ring.Consumer
	tx       *ring.Producer
	readWait *ring.EventFD
	space    *ring.Gate // the peer half of the driver's space gate
}

// notifier is the producer's waker: the WriterNotified protocol, then
// either SendFd or Notify.
type notifier struct {
	notified *atomic.Uint32
	signal   func()
}

func (n *notifier) Signal() {
	if n.notified.Swap(1) == 0 {
		n.signal()
	}
}

func (n *notifier) Wait(context.Context) error {
	return errors.New("the producer's waker is never waited on")
}

func newOutsideHalf(t *testing.T, s *SharedSession, useFd bool) *outsideHalf {
	t.Helper()
	size := ring.RingSize(s.Capacity())
	mem, err := ring.MapShared(s.MemFd(), len(s.Memory()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	b := mem.Bytes()
	rxRing, err1 := ring.New(b[:size], s.Capacity())
	txRing, err2 := ring.New(b[size:2*size], s.Capacity())
	readWait, err3 := ring.EventFDFrom(s.ReadWaitFd())
	spaceFd, err4 := ring.EventFDFrom(s.SpaceFd())
	sendFd, err5 := ring.EventFDFrom(s.SendFd())
	gate, err6 := ring.NewGate(b[2*size:], spaceFd)
	notified, err7 := ring.SharedWord(b[2*size+4:])
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { readWait.Close(); spaceFd.Close(); sendFd.Close() })
	n := &notifier{notified: notified, signal: s.Notify}
	if useFd {
		n.signal = sendFd.Signal
	}
	h := &outsideHalf{mem: mem, readWait: readWait, space: gate}
	h.rx = ring.NewConsumer(rxRing, readWait)
	h.rx.KeepAlertable()
	h.tx = ring.NewProducer(txRing, n)
	return h
}

// receive waits for the next packet and returns a copy, releasing it.
func (h *outsideHalf) receive(t *testing.T) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		p, err := h.rx.Receive()
		if err == ring.ErrEmpty {
			if err := h.rx.Wait(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		c := append([]byte(nil), p...)
		if err := h.rx.Release(p); err != nil {
			return nil, err
		}
		h.space.Signal()
		return c, nil
	}
}

func (h *outsideHalf) send(t *testing.T, pkt []byte) {
	t.Helper()
	p, err := h.tx.Allocate(len(pkt))
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	copy(p, pkt)
	if err := h.tx.Commit(p); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// TestSharedSessionEcho: echo requests through a shared session, woken
// through Notify and through SendFd, more replies than the receive ring
// holds (so the driver waits on the space gate), and the session's rules.
func TestSharedSessionEcho(t *testing.T) {
	for _, useFd := range []bool{false, true} {
		name := map[bool]string{false: "notify", true: "sendfd"}[useFd]
		t.Run(name, func(t *testing.T) {
			ns := newNS(t)
			local, peer := netip.MustParseAddr("198.18.7.7"), netip.MustParseAddr("198.18.7.8")
			in(t, ns, func() error {
				a := mustCreate(t, "shared0", "Test", AdapterOptions{
					Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}},
				})
				defer mustClose(t, a)
				s, err := a.StartSharedSession(RingCapacityMin)
				if err != nil {
					return err
				}
				if _, err := a.StartSession(RingCapacityMin); !errors.Is(err, ErrAlreadyInitialized) {
					t.Errorf("StartSession beside a shared session: %v, want ErrAlreadyInitialized", err)
				}
				h := newOutsideHalf(t, s, useFd)
				// 120 requests of 1400 bytes before reading any reply:
				// 120 replies do not fit in 128 KiB.
				const n = 120
				pkt := make([]byte, 1400)
				for i := range n {
					packettest.EchoRequest4(pkt, peer, local, 0x4242, uint16(i), make([]byte, 1400-28))
					h.send(t, pkt)
					if i%40 == 39 {
						time.Sleep(20 * time.Millisecond) // the device's queue holds 500
					}
				}
				got := 0
				for got < n {
					r, err := h.receive(t)
					if err != nil {
						t.Fatalf("after %d replies: %v", got, err)
					}
					if len(r) == 1400 && r[9] == 1 && r[20] == 0 {
						got++
					}
				}
				if st := s.Stats(); st.RxFullWaits == 0 {
					t.Errorf("the driver never waited for room (%+v): the space gate is untested", st)
				}
				s.End()
				if _, err := h.rx.Receive(); !errors.Is(err, ring.ErrTerminated) {
					t.Errorf("receive after End: %v, want ErrTerminated", err)
				}
				// The adapter takes a new session once this one ended.
				s2, err := a.StartSession(RingCapacityMin)
				if err != nil {
					t.Fatalf("a session after the shared one ended: %v", err)
				}
				s2.End()
				return nil
			})
		})
	}
}

// TestSharedSessionAdapterGone: deleting the adapter ends the driver half
// at once (the rings terminated, the read-wait event signalled), the
// memory stays mapped until End.
func TestSharedSessionAdapterGone(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		a := mustCreate(t, "shared1", "Test", AdapterOptions{})
		defer mustClose(t, a)
		s, err := a.StartSharedSession(RingCapacityMin)
		if err != nil {
			return err
		}
		defer s.End()
		h := newOutsideHalf(t, s, false)
		if _, err := ipCmd("link", "delete", "shared1"); err != nil {
			return err
		}
		if _, err := h.receive(t); !errors.Is(err, ring.ErrTerminated) {
			t.Errorf("receive after the adapter was deleted: %v, want ErrTerminated", err)
		}
		if len(s.Memory()) == 0 {
			t.Error("the memory went before End")
		}
		return nil
	})
}
