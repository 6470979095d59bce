package ringtun

// The session's data path under real traffic, in one namespace: the app
// plays a host at 198.18.5.2 and sends ICMP echo requests to the adapter's
// address 198.18.5.1; the kernel answers each through the adapter, in
// order. Out-of-order commit and release, a full send ring, a full receive
// ring under both policies, an empty ring and Wait, and the packets the
// driver refuses or the kernel rejects.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/driver"
	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/internal/packettest"
)

var (
	dpLocal = netip.MustParseAddr("198.18.5.1") // the adapter's address: the kernel answers
	dpPeer  = netip.MustParseAddr("198.18.5.2") // the host the app plays
)

const dpID = 0x7e57 // ICMP echo identifier of every request

// dpSession makes a namespace with IPv6 off (so that only the test's
// packets travel) and one adapter at 198.18.5.1/24 with a session of the
// given capacity and receive-ring-full policy.
func dpSession(t *testing.T, capacity uint32, policy driver.FullPolicy) (*netns.NS, *Adapter, *Session) {
	t.Helper()
	needIP(t)
	ns := newNS(t)
	var a *Adapter
	var s *Session
	withFullPolicy(policy, func() { a, s = adapterIn(t, ns, "dp0", dpLocal, capacity) })
	return ns, a, s
}

// echoPayload is the payload of echo request seq: n bytes that depend on
// seq, so that a reply carrying another packet's bytes shows.
func echoPayload(b []byte, seq uint16) []byte {
	for i := range b {
		b[i] = byte(seq) ^ byte(seq>>8)*7 ^ byte(i*13)
	}
	return b
}

// fillEcho writes echo request seq from dpPeer to dpLocal into p.
func fillEcho(p []byte, seq uint16) {
	packettest.EchoRequest4(p, dpPeer, dpLocal, dpID, seq, echoPayload(make([]byte, len(p)-28), seq))
}

// allocate allocates a packet of size bytes, waiting (bounded) while the
// send ring is full.
func allocate(t *testing.T, s *Session, size int) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := s.AllocateSendPacket(size)
		if errors.Is(err, ErrBufferOverflow) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("allocate %d bytes: %v", size, err)
		}
		return p
	}
}

// sendEcho sends echo request seq of size bytes, waiting (bounded) while
// the send ring is full.
func sendEcho(t *testing.T, s *Session, seq uint16, size int) {
	t.Helper()
	p := allocate(t, s, size)
	fillEcho(p, seq)
	s.SendPacket(p)
}

// checkReply returns the sequence number of echo reply p, checked byte by
// byte: addresses, type, identifier, checksums and payload.
func checkReply(p []byte) (uint16, error) {
	if len(p) < 28 || p[0] != 0x45 || p[9] != 1 || p[20] != 0 {
		return 0, fmt.Errorf("not an ICMP echo reply: % x", p[:min(len(p), 28)])
	}
	if n := int(binary.BigEndian.Uint16(p[2:])); n != len(p) {
		return 0, fmt.Errorf("reply of %d bytes has total length %d", len(p), n)
	}
	if !bytes.Equal(p[12:16], dpLocal.AsSlice()) || !bytes.Equal(p[16:20], dpPeer.AsSlice()) {
		return 0, fmt.Errorf("reply from %v to %v", p[12:16], p[16:20])
	}
	if packettest.Sum(p[:20]) != 0xffff || packettest.Sum(p[20:]) != 0xffff {
		return 0, errors.New("bad IPv4 or ICMP checksum")
	}
	if id := binary.BigEndian.Uint16(p[24:]); id != dpID {
		return 0, fmt.Errorf("reply with identifier %#x", id)
	}
	seq := binary.BigEndian.Uint16(p[26:])
	if !bytes.Equal(p[28:], echoPayload(make([]byte, len(p)-28), seq)) {
		return seq, fmt.Errorf("reply %d carries another payload", seq)
	}
	return seq, nil
}

// receiveNext returns the next packet, waiting for it up to 10 s; the caller
// releases it.
func receiveNext(t *testing.T, s *Session) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		p, err := s.ReceivePacket()
		if errors.Is(err, ErrNoMoreItems) {
			if err := s.Wait(ctx); err != nil {
				t.Fatalf("no packet: %v; stats %+v", err, s.Stats())
			}
			continue
		}
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		return p
	}
}

// receiveReply receives, checks and releases the next echo reply and
// returns its sequence number.
func receiveReply(t *testing.T, s *Session) uint16 {
	t.Helper()
	p := receiveNext(t, s)
	seq, err := checkReply(p)
	s.ReleaseReceivePacket(p)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// expectEmpty checks that nothing is waiting in the receive ring.
func expectEmpty(t *testing.T, s *Session) {
	t.Helper()
	if p, err := s.ReceivePacket(); !errors.Is(err, ErrNoMoreItems) {
		if err == nil {
			s.ReleaseReceivePacket(p)
		}
		t.Fatalf("ReceivePacket on an empty ring: % x, %v; want ErrNoMoreItems", p[:min(len(p), 28)], err)
	}
}

// settled returns the session's counters once ok accepts them, or after
// 10 s: the driver counts a packet it sent just after the kernel took it,
// and the kernel may have answered it by then.
func settled(s *Session, ok func(Stats) bool) Stats {
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.Stats()
		if ok(st) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(time.Millisecond)
	}
}

// recordSize is what a packet of n bytes occupies in a ring.
func recordSize(n int) int { return (4 + n + 3) &^ 3 }

// TestOutOfOrderCommit sends packets in another order than they were
// allocated, also from several goroutines at once: nothing goes out while
// the first allocated is pending, and the kernel gets (and answers) them
// in allocation order.
func TestOutOfOrderCommit(t *testing.T) {
	_, _, s := dpSession(t, RingCapacityMin, driver.Wait)

	// Reverse order: held back until the first is sent.
	const n = 8
	pkts := make([][]byte, n)
	for i := range pkts {
		p, err := s.AllocateSendPacket(100 + 28)
		if err != nil {
			t.Fatal(err)
		}
		fillEcho(p, uint16(i))
		pkts[i] = p
	}
	for i := n - 1; i > 0; i-- {
		s.SendPacket(pkts[i])
	}
	time.Sleep(50 * time.Millisecond) // give a wrong driver time to send them
	if st := s.Stats(); st.TxPackets != 0 {
		t.Fatalf("%d packets went out while the first allocated was not sent", st.TxPackets)
	}
	expectEmpty(t, s)
	s.SendPacket(pkts[0])
	for i := range n {
		if seq := receiveReply(t, s); seq != uint16(i) {
			t.Fatalf("reply %d is to request %d; want allocation order", i, seq)
		}
	}

	// Random orders and sizes, committed by up to four goroutines, 300
	// rounds: the ring wraps many times.
	rng := rand.New(rand.NewPCG(1, 2))
	seq := uint16(n)
	for round := range 300 {
		k := 1 + rng.IntN(24)
		first := seq
		pkts = pkts[:0]
		for range k {
			p, err := s.AllocateSendPacket(28 + rng.IntN(1400))
			if err != nil {
				t.Fatalf("round %d: allocate: %v", round, err)
			}
			fillEcho(p, seq)
			seq++
			pkts = append(pkts, p)
		}
		rng.Shuffle(len(pkts), func(i, j int) { pkts[i], pkts[j] = pkts[j], pkts[i] })
		var wg sync.WaitGroup
		workers := 1 + rng.IntN(4)
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(pkts); i += workers {
					s.SendPacket(pkts[i])
				}
			})
		}
		wg.Wait()
		for i := range k {
			if got := receiveReply(t, s); got != first+uint16(i) {
				t.Fatalf("round %d: reply %d is to request %d, want %d", round, i, got, first+uint16(i))
			}
		}
	}
	st := settled(s, func(st Stats) bool { return st.TxPackets >= uint64(seq) && st.RxPackets >= uint64(seq) })
	if st.TxPackets != uint64(seq) || st.RxPackets != uint64(seq) || st.TxErrors != 0 || st.TxDropsNotIP != 0 || st.RxDropsFull != 0 {
		t.Errorf("sent %d: stats %+v", seq, st)
	}
}

// TestOutOfOrderRelease receives replies and releases them in random
// order from two goroutines, holding some across several rounds, while
// traffic flows on: a held packet's bytes stay intact until released,
// nothing is lost or repeated, and the ring, which wraps dozens of
// times, keeps working.
func TestOutOfOrderRelease(t *testing.T) {
	_, _, s := dpSession(t, RingCapacityMin, driver.Wait)
	type holding struct {
		p, copy []byte
		until   int // round in which to release it
	}
	var hold []holding
	rng := rand.New(rand.NewPCG(3, 4))
	var seq, next uint16 // next request to send, next reply expected
	const rounds, perRound, size = 300, 16, 28 + 1000
	for round := range rounds {
		for range perRound {
			sendEcho(t, s, seq, size)
			seq++
		}
		got := make([][]byte, 0, perRound)
		for range perRound {
			p := receiveNext(t, s)
			r, err := checkReply(p)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if r != next {
				t.Fatalf("round %d: reply to %d, want %d", round, r, next)
			}
			next++
			got = append(got, p)
		}
		// Keep one or two for up to three rounds; release the rest now,
		// shuffled, from two goroutines.
		for range rng.IntN(3) {
			i := rng.IntN(len(got))
			hold = append(hold, holding{got[i], bytes.Clone(got[i]), round + 1 + rng.IntN(3)})
			got = slices.Delete(got, i, i+1)
		}
		for i := 0; i < len(hold); {
			if h := hold[i]; h.until <= round {
				if !bytes.Equal(h.p, h.copy) {
					t.Fatalf("round %d: a packet held since round %d was overwritten", round, h.until)
				}
				got = append(got, h.p)
				hold = slices.Delete(hold, i, i+1)
				continue
			}
			i++
		}
		rng.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Go(func() {
				for i := w; i < len(got); i += 2 {
					s.ReleaseReceivePacket(got[i])
				}
			})
		}
		wg.Wait()
	}
	for _, h := range hold {
		if !bytes.Equal(h.p, h.copy) {
			t.Fatal("a held packet was overwritten")
		}
		s.ReleaseReceivePacket(h.p)
	}
	expectEmpty(t, s)
	st := settled(s, func(st Stats) bool { return st.RxPackets >= uint64(seq) })
	if st.RxPackets != uint64(seq) || st.RxDropsFull != 0 {
		t.Errorf("sent %d requests: stats %+v", seq, st)
	}
	if wraps := uint64(seq) * uint64(recordSize(size)) / RingCapacityMin; wraps < 10 {
		t.Errorf("the receive ring wrapped only %d times", wraps)
	}
	sendEcho(t, s, seq, 64)
	if got := receiveReply(t, s); got != seq {
		t.Errorf("reply to %d, want %d", got, seq)
	}
	seq++

	// One packet held while every later one is released holds the ring:
	// the driver puts exactly one ring's worth after it, then waits, and
	// releasing the later ones frees nothing. Releasing it lets the rest
	// through, in order.
	sendEcho(t, s, seq, size)
	held := receiveNext(t, s)
	if r, err := checkReply(held); err != nil || r != seq {
		t.Fatalf("reply to %d (%v), want %d", r, err, seq)
	}
	heldCopy := bytes.Clone(held)
	seq++
	fit := (RingCapacityMin - 4) / recordSize(size) // records the ring holds, the held one included
	more := fit + 20
	waits0 := s.Stats().RxFullWaits
	for i := range more {
		sendEcho(t, s, seq+uint16(i), size)
	}
	passed := 0
	deadline := time.Now().Add(10 * time.Second)
	for full := false; ; {
		p, err := s.ReceivePacket()
		if errors.Is(err, ErrNoMoreItems) {
			if full {
				break
			}
			// Once the reader has waited for room, the ring was full: one
			// more look takes what was in it.
			full = s.Stats().RxFullWaits > waits0
			if !full {
				if time.Now().After(deadline) {
					t.Fatalf("%d packets passed the held one and the ring is not full: stats %+v", passed, s.Stats())
				}
				time.Sleep(time.Millisecond)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		r, err := checkReply(p)
		s.ReleaseReceivePacket(p)
		if err != nil || r != seq+uint16(passed) {
			t.Fatalf("reply to %d (%v), want %d", r, err, seq+uint16(passed))
		}
		if passed++; passed > fit-1 {
			t.Fatalf("%d packets passed one held packet in a ring of %d such records", passed, fit)
		}
	}
	if passed != fit-1 {
		t.Errorf("%d packets passed one held packet in a ring of %d such records, want %d", passed, fit, fit-1)
	}
	if !bytes.Equal(held, heldCopy) {
		t.Error("the held packet was overwritten")
	}
	s.ReleaseReceivePacket(held)
	for i := passed; i < more; i++ {
		if got := receiveReply(t, s); got != seq+uint16(i) {
			t.Fatalf("after the held packet's release: reply to %d, want %d", got, seq+uint16(i))
		}
	}
	expectEmpty(t, s)
}

// TestSendRingOverflow fills the send ring with allocated packets that are
// not sent yet: AllocateSendPacket reports ErrBufferOverflow after exactly
// as many as fit. Once they are sent the ring drains, every one is
// answered, and a whole ring can be allocated again.
func TestSendRingOverflow(t *testing.T) {
	_, _, s := dpSession(t, RingCapacityMin, driver.Wait)
	const size = 28 + 1000
	// A ring holds records in capacity-4 bytes (Head == Tail means empty).
	fit := (RingCapacityMin - 4) / recordSize(size)
	var seq uint16
	for round := range 3 {
		var pkts [][]byte
		deadline := time.Now().Add(10 * time.Second)
		for {
			p, err := s.AllocateSendPacket(size)
			if err == nil {
				pkts = append(pkts, p)
				continue
			}
			if !errors.Is(err, ErrBufferOverflow) {
				t.Fatal(err)
			}
			// Full. After a round, the driver releases the records it
			// wrote a batch at a time, just after writing them: give it
			// time (bounded) until a whole ring is allocated.
			if len(pkts) >= fit || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if len(pkts) != fit {
			t.Fatalf("round %d: %d packets of %d bytes fit in the send ring, want %d", round, len(pkts), size, fit)
		}
		if _, err := s.AllocateSendPacket(size); !errors.Is(err, ErrBufferOverflow) {
			t.Fatalf("round %d: allocate in a full ring: %v, want ErrBufferOverflow", round, err)
		}
		if _, err := s.AllocateSendPacket(PacketSizeMax + 1); !errors.Is(err, ErrInvalidPacketSize) {
			t.Errorf("allocate %d bytes: %v, want ErrInvalidPacketSize", PacketSizeMax+1, err)
		}
		first := seq
		for _, p := range pkts {
			fillEcho(p, seq)
			seq++
		}
		for _, p := range pkts {
			s.SendPacket(p)
		}
		for i := range pkts {
			if got := receiveReply(t, s); got != first+uint16(i) {
				t.Fatalf("round %d: reply to %d, want %d", round, got, first+uint16(i))
			}
		}
	}
	if st := settled(s, func(st Stats) bool { return st.TxPackets >= uint64(seq) }); st.TxPackets != uint64(seq) || st.TxErrors != 0 {
		t.Errorf("sent %d: stats %+v", seq, st)
	}
}

// fillReceiveRing sends n echo requests and does not receive, so that the
// replies fill the receive ring; it waits (bounded) until the driver's
// counters account for all n replies, as RxPackets+RxDropsFull, or until
// the reader is waiting for room.
func fillReceiveRing(t *testing.T, s *Session, n int, size int) {
	t.Helper()
	for i := range n {
		sendEcho(t, s, uint16(i), size)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.Stats()
		if st.TxPackets == uint64(n) && (st.RxFullWaits > 0 || st.RxPackets+st.RxDropsFull == uint64(n)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent %d requests, stats %+v", n, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReceiveRingFull stops draining the receive ring while replies keep
// coming. With the Wait policy the driver's reader waits for room without
// spinning, the kernel's queue holds the rest, and once the app drains
// again every reply arrives, in order. With the Drop policy the reader
// drops what does not fit, counts it, and the app gets the rest in order.
func TestReceiveRingFull(t *testing.T) {
	const n, size = 300, 28 + 1000 // 300 replies: more than a ring, less than the ring and TUN queue (500)
	fit := (RingCapacityMin - 4) / recordSize(size)

	t.Run("Wait", func(t *testing.T) {
		_, _, s := dpSession(t, RingCapacityMin, driver.Wait)
		fillReceiveRing(t, s, n, size)
		// The reader is waiting for room. Idle for a while: a reader that
		// spun would count millions of waits; one that polls every
		// millisecond (and on each release) counts about one per
		// millisecond.
		before, start := s.Stats(), time.Now()
		time.Sleep(200 * time.Millisecond)
		after, elapsed := s.Stats(), time.Since(start)
		waits := after.RxFullWaits - before.RxFullWaits
		t.Logf("reader waited %d times in %v with the ring full (%d packets in it)", waits, elapsed.Round(time.Millisecond), after.RxPackets)
		if limit := uint64(10*elapsed.Milliseconds() + 100); waits > limit {
			t.Errorf("reader waited %d times in %v with the ring full: it spins (limit %d)", waits, elapsed, limit)
		}
		if after.RxPackets != before.RxPackets || after.RxPackets > uint64(fit) {
			t.Errorf("%d then %d packets put in a ring that holds %d", before.RxPackets, after.RxPackets, fit)
		}
		for i := range n {
			if got := receiveReply(t, s); got != uint16(i) {
				t.Fatalf("reply to %d, want %d", got, i)
			}
		}
		expectEmpty(t, s)
		if st := settled(s, func(st Stats) bool { return st.RxPackets >= n }); st.RxPackets != n || st.RxDropsFull != 0 {
			t.Errorf("stats %+v, want %d received and none dropped", st, n)
		}
	})

	t.Run("Drop", func(t *testing.T) {
		_, _, s := dpSession(t, RingCapacityMin, driver.Drop)
		fillReceiveRing(t, s, n, size)
		st := s.Stats()
		if st.RxPackets != uint64(fit) || st.RxDropsFull != n-uint64(fit) || st.RxFullWaits != 0 {
			t.Errorf("stats %+v, want %d received and %d dropped", st, fit, n-fit)
		}
		for i := range int(st.RxPackets) {
			if got := receiveReply(t, s); got != uint16(i) {
				t.Fatalf("reply to %d, want %d", got, i)
			}
		}
		expectEmpty(t, s)
		// The session goes on.
		sendEcho(t, s, n, 64)
		if got := receiveReply(t, s); got != n {
			t.Errorf("reply to %d, want %d", got, n)
		}
	})
}

// TestEmptyRingAndWait checks ErrNoMoreItems on an empty ring, Wait's
// deadline when nothing comes, and Wait's wake-up when a packet arrives
// (and not before).
func TestEmptyRingAndWait(t *testing.T) {
	_, _, s := dpSession(t, RingCapacityMin, driver.Wait)
	expectEmpty(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := s.Wait(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with nothing coming: %v, want context.DeadlineExceeded", err)
	}
	expectEmpty(t, s)

	for i := range 20 {
		woke := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		go func() { woke <- s.Wait(ctx) }()
		if i%2 == 0 {
			time.Sleep(20 * time.Millisecond) // mostly asleep by now; either way is right
		}
		select {
		case err := <-woke:
			cancel()
			t.Fatalf("Wait returned %v before any packet came", err)
		default:
		}
		sendEcho(t, s, uint16(i), 64)
		err := <-woke
		cancel()
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		p, err := s.ReceivePacket()
		if err != nil {
			t.Fatalf("ReceivePacket after Wait: %v", err)
		}
		seq, err := checkReply(p)
		s.ReleaseReceivePacket(p)
		if err != nil || seq != uint16(i) {
			t.Fatalf("reply to %d (%v), want %d", seq, err, i)
		}
		expectEmpty(t, s)
	}
}

// TestNonIPDropped sends packets that are not IPv4 or IPv6: the driver
// drops and counts them, and the session goes on.
func TestNonIPDropped(t *testing.T) {
	_, _, s := dpSession(t, RingCapacityMin, driver.Wait)
	garbage := map[string][]byte{
		"empty":            {},
		"version 5":        append([]byte{0x55}, make([]byte, 39)...),
		"version 0":        make([]byte, 60),
		"3-byte IPv4":      {0x45, 0, 3},
		"19-byte IPv4":     append([]byte{0x45}, make([]byte, 18)...),
		"30-byte IPv6":     append([]byte{0x60}, make([]byte, 29)...),
		"39-byte IPv6":     append([]byte{0x60}, make([]byte, 38)...),
		"version 15, 64KB": bytes.Repeat([]byte{0xff}, PacketSizeMax),
	}
	for round := range 3 {
		for _, g := range garbage {
			p := allocate(t, s, len(g))
			copy(p, g)
			s.SendPacket(p)
		}
		sendEcho(t, s, uint16(round), 64)
		if got := receiveReply(t, s); got != uint16(round) {
			t.Fatalf("reply to %d, want %d", got, round)
		}
		st := settled(s, func(st Stats) bool { return st.TxPackets > uint64(round) })
		if want := uint64(len(garbage) * (round + 1)); st.TxDropsNotIP != want || st.TxPackets != uint64(round+1) || st.TxErrors != 0 {
			t.Fatalf("round %d: stats %+v, want %d not-IP drops and %d packets sent", round, st, want, round+1)
		}
	}
}

// TestKernelRefusal sends packets while the adapter is down, which the
// kernel refuses: the driver counts them in TxErrors and the session goes
// on once the adapter is up again.
func TestKernelRefusal(t *testing.T) {
	ns, a, s := dpSession(t, RingCapacityMin, driver.Wait)
	in(t, ns, func() error { return runCmd("ip", "link", "set", "dev", a.Name(), "down") })
	const n = 3
	for i := range n {
		sendEcho(t, s, uint16(i), 64)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st := s.Stats(); st.TxErrors+st.TxPackets < n; st = s.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("sent %d packets to a down adapter: stats %+v", n, st)
		}
		time.Sleep(time.Millisecond)
	}
	if st := s.Stats(); st.TxPackets != 0 {
		t.Skipf("this kernel accepts writes to a down TUN device: stats %+v", st)
	}
	expectEmpty(t, s)
	in(t, ns, func() error { return a.Configure(Config{}) }) // brings it up
	sendEcho(t, s, n, 64)
	if got := receiveReply(t, s); got != n {
		t.Fatalf("reply to %d, want %d", got, n)
	}
	if st := settled(s, func(st Stats) bool { return st.TxPackets > 0 }); st.TxErrors != n || st.TxPackets != 1 {
		t.Errorf("stats %+v, want %d errors and 1 packet sent", st, n)
	}
}
