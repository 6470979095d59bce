package ringtun

// Offload-aware sessions (SessionOptions.Offload): records, a
// virtio_net_hdr and a packet that may be a GSO super-packet, through two
// adapters and a forwarder that copies them unchanged; records the driver
// must refuse; a kernel without the offloads; the options' validation.

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/driver"
	"github.com/ringtun/ringtun/internal/tundev"
	"github.com/ringtun/ringtun/offload"
	"github.com/ringtun/ringtun/ring"
)

// TestOffloadSessionForward moves TCP and UDP super-packets both ways
// through two offload-aware sessions joined by the test's forwarder, which
// copies each record as it is. The TCP server checks every byte and the
// UDP server every datagram; the counters show that super-packets crossed
// whole: received whole by one driver, written whole by the other, none
// split, none merged, none refused.
func TestOffloadSessionForward(t *testing.T) {
	p := newFwdPairOpts(t, forwardCapacity, forwardCapacity, driver.Wait, false, SessionOptions{Offload: true})
	if !p.sa.records || !p.sb.records {
		t.Fatal("the sessions are not offload-aware")
	}
	size := transferSize(forwardBytes) / 2
	check := func(t *testing.T, from, to *Session, a0, b0 Stats, udp bool) {
		t.Helper()
		a, b := from.Stats(), to.Stats()
		t.Logf("%v; receiving session %+v; sending session %+v", p.fwd, a, b)
		if a.RxGSORecords == a0.RxGSORecords || b.TxGSORecords == b0.TxGSORecords {
			t.Errorf("super-packets received whole %d, written whole %d: want some of each",
				a.RxGSORecords-a0.RxGSORecords, b.TxGSORecords-b0.TxGSORecords)
		}
		if a.RxSuperPackets != a0.RxSuperPackets || b.TxCoalescedWrites != b0.TxCoalescedWrites {
			t.Errorf("%d super-packets split, %d writes merged: records must pass as they are",
				a.RxSuperPackets-a0.RxSuperPackets, b.TxCoalescedWrites-b0.TxCoalescedWrites)
		}
		if b.TxDropsInvalid != 0 || b.TxErrors != 0 || a.RxDropsInvalid != 0 {
			t.Errorf("records refused: by the driver %d, by the kernel %d; reads dropped %d", b.TxDropsInvalid, b.TxErrors, a.RxDropsInvalid)
		}
	}
	t.Run("TCP A→B", func(t *testing.T) {
		a0, b0 := p.sa.Stats(), p.sb.Stats()
		x := tcpTransfer(t, p.nsB, p.nsA, fwdAddrB, size, transferLimit)
		t.Logf("TCP A→B through records: %v", x)
		check(t, p.sa, p.sb, a0, b0, false)
	})
	t.Run("TCP B→A", func(t *testing.T) {
		b0, a0 := p.sb.Stats(), p.sa.Stats()
		x := tcpTransfer(t, p.nsA, p.nsB, fwdAddrA, size, transferLimit)
		t.Logf("TCP B→A through records: %v", x)
		check(t, p.sb, p.sa, b0, a0, false)
	})
	if p.sa.off.kernel&tundev.USO4 == 0 || !p.sb.off.udp {
		t.Log("the kernel has no USO: UDP super-packets not tested")
		return
	}
	t.Run("UDP A→B", func(t *testing.T) {
		a0, b0 := p.sa.Stats(), p.sb.Stats()
		udpGSOTransfer(t, p.nsB, p.nsA, fwdAddrB, 200)
		check(t, p.sa, p.sb, a0, b0, true)
	})
	t.Run("UDP B→A", func(t *testing.T) {
		b0, a0 := p.sb.Stats(), p.sa.Stats()
		udpGSOTransfer(t, p.nsA, p.nsB, fwdAddrA, 200)
		check(t, p.sb, p.sa, b0, a0, true)
	})
}

// plainRecord writes a zero header and echo request seq into rec.
func plainRecord(rec []byte, seq uint16) {
	clear(rec[:offload.HdrLen])
	fillEcho(rec[offload.HdrLen:], seq)
}

// TestOffloadSessionRecords sends records the driver must refuse, each a
// good echo request with one thing wrong, between good ones: the bad ones
// are counted and never reach the host (the interface's receive counter
// grows by the good ones only), the good ones are answered, in order,
// each reply a record with a header of its own.
func TestOffloadSessionRecords(t *testing.T) {
	needIP(t)
	ns := newNS(t)
	_, s := adapterInWith(t, ns, "dp0", dpLocal, RingCapacityMin, SessionOptions{Offload: true})
	const size = 28 + 100
	bad := map[string]func(rec []byte){
		"IP length short": func(rec []byte) { rec[offload.HdrLen+3]-- },
		"unknown flag":    func(rec []byte) { rec[0] = 0x40 },
		"GSO type on an ICMP packet": func(rec []byte) {
			(offload.Hdr{Flags: offload.FlagNeedsCsum, GSOType: offload.GSOTCPv4, GSOSize: 50, CsumStart: 20, CsumOffset: 16}).Encode(rec)
		},
		"checksum outside": func(rec []byte) {
			(offload.Hdr{Flags: offload.FlagNeedsCsum, CsumStart: 20, CsumOffset: 200}).Encode(rec)
		},
		"not IP":      func(rec []byte) { rec[offload.HdrLen] = 0x25 },
		"header only": nil,
	}
	rx0 := netDevCounter(ns, "dp0", 1)
	seq := uint16(0)
	for name, spoil := range bad {
		if spoil == nil {
			s.SendPacket(allocate(t, s, offload.HdrLen))
		} else {
			rec := allocate(t, s, offload.HdrLen+size)
			plainRecord(rec, 1000)
			spoil(rec)
			if offload.CheckRecord(rec) == nil {
				t.Fatalf("%s: the spoilt record passes CheckRecord", name)
			}
			s.SendPacket(rec)
		}
		rec := allocate(t, s, offload.HdrLen+size)
		plainRecord(rec, seq)
		s.SendPacket(rec)
		seq++
	}
	for i := range seq {
		r := receiveNext(t, s)
		h, err := offload.DecodeHdr(r)
		if err != nil || h.GSOType != offload.GSONone {
			t.Fatalf("reply record %d: header %+v, %v", i, h, err)
		}
		pkt := r[offload.HdrLen:]
		if h.Flags&offload.FlagNeedsCsum != 0 {
			if err := offload.FinishChecksum(h, pkt); err != nil {
				t.Fatal(err)
			}
		}
		got, err := checkReply(pkt)
		s.ReleaseReceivePacket(r)
		if err != nil || got != i {
			t.Fatalf("reply %d: seq %d, %v", i, got, err)
		}
	}
	st := settled(s, func(st Stats) bool { return st.TxDropsInvalid == uint64(len(bad)) })
	if st.TxDropsInvalid != uint64(len(bad)) || st.TxPackets != uint64(seq) || st.TxErrors != 0 {
		t.Errorf("stats %+v: want %d records refused, %d written, none refused by the kernel", st, len(bad), seq)
	}
	if rx := netDevCounter(ns, "dp0", 1); rx0 < 0 || rx-rx0 != int64(seq) {
		t.Errorf("the host received %d packets, want the %d good ones", rx-rx0, seq)
	}
}

// TestOffloadSessionUnsupported asks for an offload-aware session where
// the kernel's offloads are not there (the session's offloads are limited
// to checksums, as on a kernel without TSO): a clear error, and the
// adapter takes an ordinary session after it, so nothing was left behind.
func TestOffloadSessionUnsupported(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		a := mustCreate(t, "off0", "Test", AdapterOptions{})
		defer mustClose(t, a)
		old := useOffloads
		useOffloads = tundev.CSUM
		_, err := a.StartSessionWithOptions(RingCapacityMin, SessionOptions{Offload: true})
		useOffloads = old
		wantErr(t, "offload-aware session without TSO", err, ErrNotSupported)
		s, err := a.StartSession(RingCapacityMin)
		if err != nil {
			return err
		}
		s.End()
		return nil
	})
}

// TestSessionOptionsInvalid: options out of range fail before anything is
// attached.
func TestSessionOptionsInvalid(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		a := mustCreate(t, "opt0", "Test", AdapterOptions{})
		defer mustClose(t, a)
		_, err := a.StartSessionWithOptions(RingCapacityMin, SessionOptions{InFlightLimit: -2})
		wantErr(t, "in-flight limit -2", err, ErrInvalidCapacity)
		s, err := a.StartSessionWithOptions(RingCapacityMin, SessionOptions{InFlightLimit: -1})
		if err != nil {
			return err
		}
		s.End()
		return nil
	})
}

// TestInFlightLimit floods a session whose application does not read,
// with 64 MiB rings: the driver fills the receive ring up to the default
// in-flight limit and no further, however much the host sends; without a
// limit (-1) the same flood fills it well past that bound, so the check
// can tell. Then every packet in the ring is delivered, in order.
func TestInFlightLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
	}{{"default", 0}, {"none", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			needIP(t)
			ns := newNS(t)
			_, s := adapterInWith(t, ns, "lim0", dpLocal, RingCapacityMax, SessionOptions{InFlightLimit: tc.limit})
			const n, size = 2400, 1400 // 3.4 MB of datagrams, more than the limit
			var c *net.UDPConn
			in(t, ns, func() (err error) {
				c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dpPeer, 9)))
				return err
			})
			defer c.Close()
			r := s.rx.Ring()
			most := uint32(0)
			payload := make([]byte, size)
			for i := range n {
				binary.BigEndian.PutUint32(payload, uint32(i))
				if _, err := c.Write(payload); err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				most = max(most, r.InFlight())
				if i%200 == 199 {
					// Let the driver catch up (or stop at the limit), so
					// that the host's queue of 500 does not overflow
					// first, however slow the build.
					settled(s, func(st Stats) bool { return st.RxPackets > uint64(i) || st.RxFullWaits > 0 })
				}
			}
			// The reader is done when it waits at the limit, or when it has
			// put nothing more in the ring for a while.
			var st Stats
			for prev := ^uint64(0); ; time.Sleep(20 * time.Millisecond) {
				st = s.Stats()
				most = max(most, r.InFlight())
				if st.RxFullWaits > 0 || st.RxPackets == prev {
					break
				}
				prev = st.RxPackets
			}
			bound := uint32(DefaultInFlightLimit + recordSize(ring.PacketSizeMax))
			t.Logf("at most %d bytes in flight in a ring of %d (bound %d); %d packets in it, %d full waits",
				most, r.Capacity(), bound, st.RxPackets, st.RxFullWaits)
			// The memory the rings sweep is bounded too: with the default
			// limit they run at 1 MiB, without a limit at the capacity.
			if want := map[bool]uint32{true: DefaultInFlightLimit, false: RingCapacityMax}[tc.limit == 0]; r.Capacity() != want || s.tx.Ring().Capacity() != want {
				t.Errorf("rings of %d and %d bytes, want %d", r.Capacity(), s.tx.Ring().Capacity(), want)
			}
			switch {
			case tc.limit == 0 && most > bound:
				t.Errorf("%d bytes in flight, over the bound %d", most, bound)
			case tc.limit == 0 && st.RxFullWaits == 0:
				t.Errorf("the driver never waited at the limit: %+v", st)
			case tc.limit < 0 && most <= bound:
				t.Errorf("without a limit only %d bytes in flight: the flood did not pass the bound, the test cannot tell", most)
			}
			// What is in the ring comes out in order (the host may have
			// dropped some on its full queue before the driver read them).
			got, next := uint64(0), uint32(0)
			for ; ; got++ {
				p, err := s.ReceivePacket()
				if errors.Is(err, ErrNoMoreItems) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				seq := binary.BigEndian.Uint32(p[28:])
				s.ReleaseReceivePacket(p)
				if seq < next || seq >= n {
					t.Fatalf("datagram %d after %d", seq, next)
				}
				next = seq + 1
			}
			if got < st.RxPackets {
				t.Errorf("%d packets came out of the ring, %d were put in", got, st.RxPackets)
			}
		})
	}
}

// TestWaitDirect: an application waiting on an empty ring reads the
// device itself, so the packet that ends its wait reaches it with no
// hand-off from the driver's reader goroutine. The host sends datagrams
// one at a time while the application waits for each; the counters say
// who read them (Stats.RxDirectReads: the application's goroutine).
func TestWaitDirect(t *testing.T) {
	ns, _, s := dpSession(t, RingCapacityMin, driver.Wait)
	var c *net.UDPConn
	in(t, ns, func() (err error) {
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dpPeer, 9)))
		return err
	})
	defer c.Close()
	const n = 40
	before := s.Stats()
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			time.Sleep(3 * time.Millisecond) // the application is asleep by then
			if _, err := c.Write([]byte{byte(i)}); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range n {
		p := receiveNext(t, s)
		if len(p) != 29 || p[28] != byte(i) {
			t.Fatalf("datagram %d: % x", i, p)
		}
		s.ReleaseReceivePacket(p)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	direct, all := st.RxDirectReads-before.RxDirectReads, st.RxPackets-before.RxPackets
	t.Logf("%d of %d packets read by the application's goroutine; stats %+v", direct, all, st)
	if all != n || direct < n*9/10 {
		t.Errorf("%d of %d packets read by the waiting application itself, want at least %d", direct, all, n*9/10)
	}

	// An application that went away to do other work and comes back
	// looking at the ring without Wait gets what arrived meanwhile: its
	// look at the empty ring gives the reading back to the driver's
	// reader, which brings the queued packets into the ring.
	for i := range 5 {
		if _, err := c.Write([]byte{byte(100 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	got := 0
	deadline := time.Now().Add(10 * time.Second)
	for got < 5 && time.Now().Before(deadline) {
		p, err := s.ReceivePacket()
		if errors.Is(err, ErrNoMoreItems) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil || len(p) != 29 || p[28] != byte(100+got) {
			t.Fatalf("packet %d: % x, %v", got, p, err)
		}
		s.ReleaseReceivePacket(p)
		got++
	}
	if st = s.Stats(); got != 5 || st.RxDirectReads != before.RxDirectReads+direct {
		t.Fatalf("an application polling without Wait got %d of 5 packets (%d read directly since)", got, st.RxDirectReads-before.RxDirectReads-direct)
	}
}
