package driver

// Unit tests of the driver loop against a fake TUN queue: where packets
// land (straight in ring memory or split from a super-packet), what the
// writer hands the device (merged or one by one), what it does when the
// device refuses a merged write, and what it counts.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/packettest"
	"github.com/ringtun/ringtun/offload"
	"github.com/ringtun/ringtun/ring"
)

const (
	capacity = ring.CapacityMin
	bound    = 10 * time.Second // bounds every wait; never makes anything happen
)

// fakeDevice is a TUN queue with a virtio_net_hdr. Reads come from the
// reads channel; writes are gathered and recorded.
type fakeDevice struct {
	reads    chan []byte // virtio_net_hdr + packet, one per ReadVec
	readErrs chan error  // an error for one ReadVec, as the kernel returns for one packet
	closed   chan struct{}
	once     sync.Once

	mu          sync.Mutex
	readVecs    [][]int  // lengths of the buffers each ReadVec got
	writes      [][]byte // every accepted write, gathered
	refuseMerge bool     // fail writes with a GSO type with EINVAL
	refused     int
	written     chan struct{}
}

func newFakeDevice() *fakeDevice {
	return &fakeDevice{reads: make(chan []byte), readErrs: make(chan error), closed: make(chan struct{}),
		written: make(chan struct{}, 1024)}
}

func (d *fakeDevice) ReadVec(vec [][]byte) (int, error) {
	var lens []int
	for _, b := range vec {
		lens = append(lens, len(b))
	}
	d.mu.Lock()
	d.readVecs = append(d.readVecs, lens)
	d.mu.Unlock()
	select {
	case p := <-d.reads:
		// Like a TUN read, it returns the packet's length even when the
		// buffers are too short and the rest is cut off.
		n := len(p)
		for _, b := range vec {
			p = p[copy(b, p):]
		}
		return n, nil
	case err := <-d.readErrs:
		return 0, err
	case <-d.closed:
		return 0, os.ErrClosed
	}
}

func (d *fakeDevice) WriteVec(vec [][]byte) (int, error) {
	var w []byte
	for _, b := range vec {
		w = append(w, b...)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refuseMerge && w[1] != offload.GSONone {
		d.refused++
		return 0, syscall.EINVAL
	}
	d.writes = append(d.writes, w)
	d.written <- struct{}{}
	return len(w), nil
}

func (d *fakeDevice) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

// fixture is a loop on a fake device with the application's side of its
// two rings.
type fixture struct {
	t    *testing.T
	dev  *fakeDevice
	loop *Loop
	rx   *ring.Consumer // app side of the receive ring
	tx   *ring.Producer // app side of the send ring
}

func start(t *testing.T, cfg Config, dev *fakeDevice) *fixture {
	t.Helper()
	mem := make([]byte, 2*ring.RingSize(capacity))
	rxr, err := ring.New(mem[:ring.RingSize(capacity)], capacity)
	if err != nil {
		t.Fatal(err)
	}
	txr, err := ring.New(mem[ring.RingSize(capacity):], capacity)
	if err != nil {
		t.Fatal(err)
	}
	rxw, txw := ring.NewChanWaker(), ring.NewChanWaker()
	cfg.Device, cfg.Receive, cfg.Send = dev, ring.NewProducer(rxr, rxw), ring.NewConsumer(txr, txw)
	f := &fixture{t: t, dev: dev, rx: ring.NewConsumer(rxr, rxw), tx: ring.NewProducer(txr, txw)}
	f.loop = Start(cfg)
	t.Cleanup(func() {
		if err := f.loop.Stop(); err != nil {
			t.Errorf("loop stopped by itself: %v", err)
		}
	})
	return f
}

// feed hands the reader one read: a virtio_net_hdr and a packet.
func (f *fixture) feed(h offload.Hdr, pkt []byte) {
	f.t.Helper()
	b := make([]byte, offload.HdrLen+len(pkt))
	h.Encode(b)
	copy(b[offload.HdrLen:], pkt)
	select {
	case f.dev.reads <- b:
	case <-time.After(bound):
		f.t.Fatal("the reader did not read")
	}
}

// receive returns the next n packets from the receive ring, copied.
func (f *fixture) receive(n int) [][]byte {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var out [][]byte
	for len(out) < n {
		p, err := f.rx.Receive()
		if errors.Is(err, ring.ErrEmpty) {
			if err := f.rx.Wait(ctx); err != nil {
				f.t.Fatalf("waiting for packet %d of %d: %v", len(out)+1, n, err)
			}
			continue
		}
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, bytes.Clone(p))
		f.rx.Release(p)
	}
	return out
}

// send commits packets to the send ring, all at once.
func (f *fixture) send(pkts ...[]byte) {
	f.t.Helper()
	var recs [][]byte
	for _, p := range pkts {
		r, err := f.tx.Allocate(len(p))
		if err != nil {
			f.t.Fatal(err)
		}
		copy(r, p)
		recs = append(recs, r)
	}
	if err := f.tx.CommitBatch(recs); err != nil {
		f.t.Fatal(err)
	}
}

// waitWrites waits until the device has accepted n writes in all.
func (f *fixture) waitWrites(n int) [][]byte {
	f.t.Helper()
	deadline := time.After(bound)
	for {
		f.dev.mu.Lock()
		got := len(f.dev.writes)
		f.dev.mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-f.dev.written:
		case <-deadline:
			f.t.Fatalf("device got %d writes, want %d", got, n)
		}
	}
	f.dev.mu.Lock()
	defer f.dev.mu.Unlock()
	return f.dev.writes
}

// Packet builders and checks, from package packettest: independent of
// package offload, whose checksums the driver uses.

// tcp4 builds an IPv4 TCP segment with ACK (and extra flags), sequence
// number seq and payload, with no options and correct checksums.
func tcp4(id uint16, seq uint32, flags byte, payload []byte) []byte {
	s := packettest.TCP4(payload)
	s.ID, s.Seq, s.Flags, s.TCPOpts = id, seq, packettest.TCPAck|flags, nil
	return s.Build()
}

// partialSum is what the kernel leaves in the checksum field of a TCP
// segment that needs its checksum finished: the pseudo-header's sum.
func partialSum(p []byte) uint16 {
	return packettest.Sum(packettest.PseudoHeader(p[12:16], p[16:20], packettest.ProtoTCP, len(p)-20))
}

func validTCP4(p []byte) bool {
	_, proto, err := packettest.CheckWellFormed(p)
	return err == nil && proto == packettest.ProtoTCP
}

func payloadOf(n int, seed byte) []byte { return packettest.Pattern(n, int(seed)) }

// TestReaderPlainInRing: a plain packet is read straight into the record
// reserved in the ring (the packet fits the buffer after the header), and
// arrives unchanged.
func TestReaderPlainInRing(t *testing.T) {
	f := start(t, Config{MTU: 1400}, newFakeDevice())
	pkt := tcp4(1, 1000, 0, payloadOf(500, 1))
	f.feed(offload.Hdr{}, pkt)
	got := f.receive(1)
	if !bytes.Equal(got[0], pkt) {
		t.Fatal("packet changed on the way")
	}
	f.dev.mu.Lock()
	first := f.dev.readVecs[0]
	f.dev.mu.Unlock()
	if len(first) < 2 || first[0] != offload.HdrLen || first[1] != 1400 {
		t.Fatalf("first read got buffers %v, want the header then a 1400-byte ring record", first)
	}
	if s := f.loop.Stats(); s.RxPackets != 1 || s.RxBytes != uint64(len(pkt)) || s.RxSuperPackets != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestReaderPartialChecksum: a plain packet with NEEDS_CSUM gets its
// checksum finished.
func TestReaderPartialChecksum(t *testing.T) {
	f := start(t, Config{}, newFakeDevice())
	pkt := tcp4(1, 1000, 0, payloadOf(301, 2))
	partial := bytes.Clone(pkt)
	binary.BigEndian.PutUint16(partial[36:], partialSum(partial))
	f.feed(offload.Hdr{Flags: offload.FlagNeedsCsum, CsumStart: 20, CsumOffset: 16}, partial)
	if got := f.receive(1)[0]; !bytes.Equal(got, pkt) || !validTCP4(got) {
		t.Fatalf("checksum %#04x, want %#04x", binary.BigEndian.Uint16(got[36:]), binary.BigEndian.Uint16(pkt[36:]))
	}
}

// TestReaderLargerThanMTU: a plain packet larger than the reservation
// arrives whole, and the next reservation is that large.
func TestReaderLargerThanMTU(t *testing.T) {
	f := start(t, Config{MTU: 576}, newFakeDevice())
	big := tcp4(1, 1, 0, payloadOf(3000, 3))
	f.feed(offload.Hdr{}, big)
	small := tcp4(2, 2, 0, payloadOf(10, 4))
	f.feed(offload.Hdr{}, small)
	got := f.receive(2)
	if !bytes.Equal(got[0], big) || !bytes.Equal(got[1], small) {
		t.Fatal("packets changed on the way")
	}
	f.dev.mu.Lock()
	second := f.dev.readVecs[1]
	f.dev.mu.Unlock()
	if second[1] != len(big) {
		t.Fatalf("read after a %d-byte packet reserved %d bytes", len(big), second[1])
	}
	// After bigOnes reads within the MTU, the reservation is the MTU again:
	// reads 2 to bigOnes+1 (counting the big one as 1) reserve the big
	// size, read bigOnes+2 the MTU.
	for range bigOnes {
		f.feed(offload.Hdr{}, small)
		f.receive(1)
	}
	f.dev.mu.Lock()
	vecs := f.dev.readVecs
	f.dev.mu.Unlock()
	for i := 1; i <= bigOnes+1; i++ { // vecs[i] is read i+1
		want := len(big)
		if i == bigOnes+1 {
			want = 576
		}
		if got := vecs[i][1]; got != want {
			t.Fatalf("read %d reserved %d bytes, want %d", i+1, got, want)
		}
	}
}

// TestReaderSplitsSuperPacket: a TCP super-packet becomes MSS-sized
// segments in the ring, in order, each valid, carrying the payload.
func TestReaderSplitsSuperPacket(t *testing.T) {
	f := start(t, Config{}, newFakeDevice())
	const mss, segs = 1000, 7
	payload := payloadOf(mss*(segs-1)+123, 5)
	super := tcp4(100, 5000, 0x08, payload) // PSH
	binary.BigEndian.PutUint16(super[36:], partialSum(super))
	f.feed(offload.Hdr{Flags: offload.FlagNeedsCsum, GSOType: offload.GSOTCPv4, GSOSize: mss, CsumStart: 20, CsumOffset: 16, HdrLen: 40}, super)
	got := f.receive(segs)
	var joined []byte
	for i, p := range got {
		if !validTCP4(p) {
			t.Fatalf("segment %d has bad checksums", i)
		}
		if seq := binary.BigEndian.Uint32(p[24:]); seq != 5000+uint32(i*mss) {
			t.Fatalf("segment %d seq %d", i, seq)
		}
		if psh := p[33]&0x08 != 0; psh != (i == segs-1) {
			t.Fatalf("segment %d PSH %v", i, psh)
		}
		joined = append(joined, p[40:]...)
	}
	if !bytes.Equal(joined, payload) {
		t.Fatal("payload differs after the split")
	}
	if s := f.loop.Stats(); s.RxSuperPackets != 1 || s.RxSegments != segs || s.RxPackets != segs {
		t.Fatalf("stats %+v", s)
	}
}

// TestReaderDropsInvalid: reads the driver cannot make sense of are
// counted and dropped, and the reader goes on.
func TestReaderDropsInvalid(t *testing.T) {
	f := start(t, Config{}, newFakeDevice())
	pkt := tcp4(1, 1, 0, payloadOf(100, 6))
	f.feed(offload.Hdr{GSOType: offload.GSOUDP, GSOSize: 10}, pkt)                                                                // UFO: never negotiated
	f.feed(offload.Hdr{Flags: offload.FlagNeedsCsum, CsumStart: 200, CsumOffset: 16}, pkt)                                        // offset past the end
	f.feed(offload.Hdr{Flags: offload.FlagNeedsCsum, GSOType: offload.GSOTCPv6, GSOSize: 10, CsumStart: 20, CsumOffset: 16}, pkt) // v6 type, v4 packet
	f.feed(offload.Hdr{}, pkt)
	if got := f.receive(1)[0]; !bytes.Equal(got, pkt) {
		t.Fatal("the valid packet changed")
	}
	if s := f.loop.Stats(); s.RxDropsInvalid != 3 || s.RxPackets != 1 {
		t.Fatalf("stats %+v, want 3 invalid and 1 delivered", s)
	}
}

// TestReaderOversized: reads the driver cannot take whole are dropped as
// invalid, and the reader goes on: one longer than all its buffers (cut
// short by the kernel), a super-packet whose IPv4 length cannot describe
// it, and a plain packet longer than a ring record can be.
func TestReaderOversized(t *testing.T) {
	f := start(t, Config{}, newFakeDevice())
	f.feed(offload.Hdr{}, tcp4(1, 1, 0, payloadOf(scratchSize+100, 7)))
	const mss = 60000
	super := make([]byte, 40+2*mss)
	copy(super, tcp4(1, 1, 0, nil))
	copy(super[40:], payloadOf(2*mss, 7))
	f.feed(offload.Hdr{Flags: offload.FlagNeedsCsum, GSOType: offload.GSOTCPv4, GSOSize: mss, CsumStart: 20, CsumOffset: 16}, super)
	f.feed(offload.Hdr{}, payloadOf(ring.PacketSizeMax+1, 0x45))
	pkt := tcp4(2, 2, 0, payloadOf(100, 8))
	f.feed(offload.Hdr{}, pkt)
	if got := f.receive(1); !bytes.Equal(got[0], pkt) {
		t.Fatal("packet after the oversized ones changed")
	}
	if s := f.loop.Stats(); s.RxDropsInvalid != 3 || s.RxPackets != 1 {
		t.Fatalf("stats %+v, want the 3 oversized reads dropped as invalid", s)
	}
}

// TestReaderDropPolicySuperPacket: with the Drop policy and a nearly full
// receive ring, the first segments of a super-packet that fit are
// delivered, in order, and the rest are dropped and counted.
func TestReaderDropPolicySuperPacket(t *testing.T) {
	f := start(t, Config{Full: Drop, MTU: 1400}, newFakeDevice())
	const fill, mss, segs = 90, 1000, 10
	for i := range fill {
		f.feed(offload.Hdr{}, tcp4(uint16(i), 0, 0, payloadOf(1360, byte(i))))
	}
	payload := payloadOf(mss*segs, 9)
	super := tcp4(1, 100, 0, payload)
	binary.BigEndian.PutUint16(super[36:], partialSum(super))
	f.feed(offload.Hdr{Flags: offload.FlagNeedsCsum, GSOType: offload.GSOTCPv4, GSOSize: mss, CsumStart: 20, CsumOffset: 16}, super)
	// One more read makes sure the reader is done with the super-packet.
	f.feed(offload.Hdr{}, tcp4(999, 0, 0, nil))
	s := f.loop.Stats()
	if s.RxDropsFull == 0 || s.RxDropsFull >= segs || s.RxSegments != segs {
		t.Fatalf("stats %+v: want some of the %d segments delivered and the rest dropped", s, segs)
	}
	got := f.receive(fill + segs - int(s.RxDropsFull))
	for i, p := range got[fill:] {
		if !validTCP4(p) || !bytes.Equal(p[40:], payload[i*mss:(i+1)*mss]) {
			t.Fatalf("delivered segment %d is not the super-packet's segment %d", i, i)
		}
	}
}

// TestWriterMerges: a run of one flow's segments goes out as one merged
// write; a non-IP packet is dropped and counted.
func TestWriterMerges(t *testing.T) {
	f := start(t, Config{CoalesceTCP: true}, newFakeDevice())
	const mss, n = 1000, 5
	var pkts [][]byte
	for i := range n {
		pkts = append(pkts, tcp4(uint16(10+i), 7000+uint32(i*mss), 0, payloadOf(mss, byte(i))))
	}
	f.send(append([][]byte{{0x00, 1, 2}}, pkts...)...)
	w := f.waitWrites(1)
	if len(w) != 1 {
		t.Fatalf("%d writes, want 1", len(w))
	}
	h, err := offload.DecodeHdr(w[0])
	if err != nil || h.GSOType != offload.GSOTCPv4 || h.GSOSize != mss {
		t.Fatalf("write header %+v, %v; want a TCPv4 super-packet of MSS %d", h, err, mss)
	}
	var sp offload.Splitter
	if err := sp.Reset(h, w[0][offload.HdrLen:]); err != nil {
		t.Fatal(err)
	}
	for i := 0; sp.Next() > 0; i++ {
		seg := make([]byte, sp.Next())
		sp.Put(seg)
		if !bytes.Equal(seg, pkts[i]) {
			t.Fatalf("segment %d of the merged write differs from the packet sent", i)
		}
	}
	s := f.loop.Stats()
	if s.TxPackets != n || s.TxWrites != 1 || s.TxCoalescedWrites != 1 || s.TxCoalescedPackets != n || s.TxDropsNotIP != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestWriterMergeRefused: when the device refuses a merged write, the
// writer writes the run one packet at a time and stops merging.
func TestWriterMergeRefused(t *testing.T) {
	dev := newFakeDevice()
	dev.refuseMerge = true
	f := start(t, Config{CoalesceTCP: true}, dev)
	var pkts [][]byte
	for i := range 4 {
		pkts = append(pkts, tcp4(uint16(i), uint32(i*100), 0, payloadOf(100, byte(i))))
	}
	f.send(pkts...)
	w := f.waitWrites(4)
	for i, p := range pkts {
		if !bytes.Equal(w[i][offload.HdrLen:], p) || w[i][1] != offload.GSONone {
			t.Fatalf("write %d is not packet %d on its own", i, i)
		}
	}
	f.send(pkts...)
	f.waitWrites(8)
	dev.mu.Lock()
	refused := dev.refused
	dev.mu.Unlock()
	if refused != 1 {
		t.Fatalf("device refused %d merged writes, want 1: the writer must stop merging", refused)
	}
	if s := f.loop.Stats(); s.TxErrors != 0 || s.TxPackets != 8 || s.TxCoalescedWrites != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestReaderErrorIsNotFatal: a read that fails for one packet (EINVAL, as
// the kernel returns for a packet whose GSO type it cannot express in a
// virtio_net_hdr) loses that packet only: the loop goes on, counts it and
// delivers the next one. Only the device going away ends the loop
// (TestStopUnblocks).
func TestReaderErrorIsNotFatal(t *testing.T) {
	f := start(t, Config{}, newFakeDevice())
	for i, err := range []error{syscall.EINVAL, syscall.ENOBUFS, syscall.EIO} {
		select {
		case f.dev.readErrs <- err:
		case <-time.After(bound):
			t.Fatal("the reader did not read")
		}
		pkt := tcp4(uint16(i), 1, 0, payloadOf(100, byte(i)))
		f.feed(offload.Hdr{}, pkt)
		if got := f.receive(1)[0]; !bytes.Equal(got, pkt) {
			t.Fatalf("after read error %v: got a different packet", err)
		}
	}
	if s := f.loop.Stats(); s.RxErrors != 3 || s.RxPackets != 3 {
		t.Fatalf("stats %+v, want 3 read errors and 3 packets", s)
	}
}

// TestReaderErrorsBackOff: a device whose reads keep failing does not
// make the reader spin: after readErrorBurst failures in a row it pauses
// between reads.
func TestReaderErrorsBackOff(t *testing.T) {
	f := start(t, Config{}, newFakeDevice())
	start := time.Now()
	for i := 0; i < readErrorBurst+3; i++ {
		select {
		case f.dev.readErrs <- syscall.ENOMEM:
		case <-time.After(bound):
			t.Fatal("the reader did not read")
		}
	}
	// The last three reads came after pauses.
	if elapsed := time.Since(start); elapsed < 2*readErrorPause {
		t.Fatalf("%d failed reads took %v, want pauses of %v after the first %d", readErrorBurst+3, elapsed, readErrorPause, readErrorBurst)
	}
	pkt := tcp4(1, 1, 0, payloadOf(100, 1))
	f.feed(offload.Hdr{}, pkt)
	f.receive(1)
}

// TestStopUnblocks: Stop ends a reader blocked in ReadVec and a writer
// asleep on an empty send ring, and a stopped device stops the loop by
// itself with a reason.
func TestStopUnblocks(t *testing.T) {
	dev := newFakeDevice()
	mem := make([]byte, 2*ring.RingSize(capacity))
	rxr, _ := ring.New(mem[:ring.RingSize(capacity)], capacity)
	txr, _ := ring.New(mem[ring.RingSize(capacity):], capacity)
	w := ring.NewChanWaker()
	stopped := make(chan error, 1)
	l := Start(Config{Device: dev, Receive: ring.NewProducer(rxr, w), Send: ring.NewConsumer(txr, ring.NewChanWaker()),
		OnStop: func(err error) { stopped <- err }})
	time.Sleep(10 * time.Millisecond)
	dev.Close() // the device goes away under the loop
	select {
	case err := <-stopped:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("OnStop(%v), want os.ErrClosed", err)
		}
	case <-time.After(bound):
		t.Fatal("the loop did not stop when its device went")
	}
	done := make(chan error, 1)
	go func() { done <- l.Stop() }()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Stop = %v, want the reason, os.ErrClosed", err)
		}
	case <-time.After(bound):
		t.Fatal("Stop did not return")
	}
}

// TestKick: on an idle device Kick writes the committed packets from the
// caller's goroutine before it returns; it leaves them to the writer when
// the writer is busy, and does nothing once the loop is stopped.
func TestKick(t *testing.T) {
	f := start(t, Config{}, newFakeDevice())
	pkt := tcp4(1, 1, 0, payloadOf(64, 1))
	// The application's producer gets no waker, so that a commit never
	// wakes the writer goroutine: only Kick writes.
	f.tx = ring.NewProducer(f.tx.Ring(), nil)

	r, err := f.tx.Allocate(len(pkt))
	if err != nil {
		t.Fatal(err)
	}
	copy(r, pkt)
	f.loop.wmu.Lock() // the writer is busy: Kick must not wait for it
	if f.loop.Kick() {
		t.Fatal("Kick wrote while the writer held the device")
	}
	f.loop.wmu.Unlock()
	time.Sleep(2 * kickIdle)
	if err := f.tx.Commit(r); err != nil {
		t.Fatal(err)
	}
	if !f.loop.Kick() {
		t.Fatal("Kick on an idle device did not write")
	}
	f.dev.mu.Lock()
	n := len(f.dev.writes)
	f.dev.mu.Unlock()
	if n != 1 {
		t.Fatalf("device has %d writes when Kick returned, want 1", n)
	}
	// Right after a write the device is not idle: Kick leaves the work.
	f.loop.lastWrite.Store(time.Since(f.loop.epoch).Nanoseconds() + int64(time.Hour))
	if f.loop.Kick() {
		t.Fatal("Kick wrote right after a write")
	}
	if err := f.loop.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * kickIdle)
	if f.loop.Kick() {
		t.Fatal("Kick wrote after Stop")
	}
}

// TestSpaceWakerWakesReader: with the receive ring full and the Wait
// policy, the reader waits on the Space waker (SpacePoll is an hour, so
// nothing else wakes it), goes on when the application releases room and
// signals, and Stop ends the wait.
func TestSpaceWakerWakesReader(t *testing.T) {
	space := ring.NewChanWaker()
	f := start(t, Config{Space: space, SpacePoll: time.Hour, MTU: 1400}, newFakeDevice())
	pkt := tcp4(1, 1000, 0, payloadOf(1000, 3))
	// Fill the ring: each 1040-byte packet takes a 1044-byte record.
	fits := int(capacity) / 1044
	for range fits {
		f.feed(offload.Hdr{}, pkt)
	}
	fed := make(chan struct{})
	go func() { // one more, which must wait for room
		defer close(fed)
		f.feed(offload.Hdr{}, pkt)
		f.feed(offload.Hdr{}, pkt)
	}()
	deadline := time.Now().Add(bound)
	for f.loop.Stats().RxFullWaits == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the reader never waited for room: %+v", f.loop.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if got := f.loop.Stats().RxPackets; got != uint64(fits) {
		t.Fatalf("%d packets in a ring with room for %d", got, fits)
	}
	// Release one record without signalling: the reader must stay asleep
	// (the hour-long poll), then one signal must let it go on.
	p, err := f.rx.Receive()
	if err != nil {
		t.Fatal(err)
	}
	f.rx.Release(p)
	time.Sleep(20 * time.Millisecond)
	if got := f.loop.Stats().RxPackets; got != uint64(fits) {
		t.Fatalf("the reader went on without a Space signal (%d packets)", got)
	}
	space.Signal()
	for f.loop.Stats().RxPackets != uint64(fits+1) {
		if time.Now().After(deadline) {
			t.Fatalf("the Space signal did not wake the reader: %+v", f.loop.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	// The second extra packet waits again; Stop must end that wait.
	<-fed
	done := make(chan error, 1)
	go func() { done <- f.loop.Stop() }()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatal("Stop did not end a reader waiting on Space")
	}
}
