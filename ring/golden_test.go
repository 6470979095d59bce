package ring

// Golden-layout tests: ring memory is built and checked byte by byte in
// Wintun's layout, independently of the package's own encoding code:
//
//	offset 0   Head      uint32 (native endian)
//	offset 4   Tail      uint32
//	offset 8   Alertable int32
//	offset 12  Data: records of uint32 Size, payload, padding to 4 bytes
//
// An allocated record carries 0x80000000 in Size until it is sent
// (committed); a received record gets 0x80000000 when it is released.
//
// Helpers and tests here are prefixed gold / TestGolden.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

const (
	goldCap  = uint32(CapacityMin)
	goldMask = goldCap - 1
	goldBit  = uint32(0x80000000) // TUN_PACKET_RELEASE
	goldData = 12                 // offsetof(TUN_RING, Data)
)

func goldAlign(n uint32) uint32 { return (n + 3) &^ 3 }

func goldGet32(b []byte, at uint32) uint32     { return binary.NativeEndian.Uint32(b[at:]) }
func goldPut32(b []byte, at uint32, v uint32)  { binary.NativeEndian.PutUint32(b[at:], v) }
func goldHeader(b []byte, head, tail uint32)   { goldPut32(b, 0, head); goldPut32(b, 4, tail) }
func goldSize(b []byte, off uint32, v uint32)  { goldPut32(b, goldData+off, v) }
func goldBytes(b []byte, off uint32, p []byte) { copy(b[goldData+off:], p) }

// goldAddr reports whether pkt starts at byte at of mem.
func goldAddr(mem []byte, at uint32, pkt []byte) bool {
	return sameStart(pkt, mem[at:])
}

func goldPayload(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*0x31 + j*7 + 1)
	}
	return b
}

func goldCompare(t *testing.T, got, want []byte, when string) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	if d := rtDiff(got, want); d != "" {
		t.Fatalf("%s: ring memory differs from the expected layout: %s", when, d)
	}
}

type goldRec struct {
	off     uint32
	payload []byte
}

// TestGoldenConsumerReadsWintunLayout hand-builds a ring as Wintun's
// producer leaves it and checks what the consumer reads, then checks that
// each release sets 0x80000000 in the record's Size in place and moves Head
// exactly as WintunReleaseReceivePacket does.
func TestGoldenConsumerReadsWintunLayout(t *testing.T) {
	mem := make([]byte, RingSize(goldCap))
	// A record a previous reader already released, before Head.
	goldSize(mem, 0, 7|goldBit)
	goldBytes(mem, 4, []byte("oldpkt!"))
	recs := []goldRec{
		{12, []byte("hello")},                // 4+5 -> 12 bytes
		{24, []byte{}},                       // zero-length: 4 bytes
		{28, []byte{0x45, 0x00, 0x00, 0x54}}, // 8 bytes, no padding
		{36, []byte("Z")},                    // 8 bytes
		{44, []byte("abc")},                  // 8 bytes
		{52, goldPayload(5, 1500)},           // 1504 bytes
	}
	const tail = 1556
	for _, r := range recs {
		goldSize(mem, r.off, uint32(len(r.payload)))
		goldBytes(mem, r.off+4, r.payload)
	}
	// Padding bytes with non-zero garbage, and an unpublished record past
	// Tail: neither may be read as data or written.
	mem[goldData+12+4+5] = 0xEE
	mem[goldData+36+4+1] = 0xEE
	goldSize(mem, tail, 0xDEADBEEF)
	goldHeader(mem, 12, tail)
	want := bytes.Clone(mem)

	r, err := New(mem, goldCap)
	if err != nil {
		t.Fatal(err)
	}
	c := NewConsumer(r, nil)
	var pkts [][]byte
	for i, rec := range recs {
		pkt, err := c.Receive()
		if err != nil {
			t.Fatalf("Receive #%d: %v", i, err)
		}
		if len(pkt) != len(rec.payload) || cap(pkt) != len(rec.payload) || !bytes.Equal(pkt, rec.payload) {
			t.Fatalf("record #%d: got %d bytes %q, want %q", i, len(pkt), pkt, rec.payload)
		}
		if pkt == nil || !goldAddr(mem, goldData+rec.off+4, pkt) {
			t.Fatalf("record #%d does not alias the ring at data offset %#x", i, rec.off+4)
		}
		pkts = append(pkts, pkt)
	}
	if _, err := c.Receive(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Receive past Tail = %v, want ErrEmpty", err)
	}
	goldCompare(t, mem, want, "after receiving (Receive must not write)")

	// Out-of-order releases; Head advances only over contiguous released
	// records.
	for _, step := range []struct {
		rec  int
		head uint32
	}{{3, 12}, {0, 24}, {2, 24}, {1, 44}, {5, 44}, {4, tail}} {
		if err := c.Release(pkts[step.rec]); err != nil {
			t.Fatalf("Release #%d: %v", step.rec, err)
		}
		off := recs[step.rec].off
		goldSize(want, off, uint32(len(recs[step.rec].payload))|goldBit)
		goldPut32(want, 0, step.head)
		goldCompare(t, mem, want, fmt.Sprintf("after releasing #%d", step.rec))
	}
}

// TestGoldenConsumerWrappedRecord: a record starting 8 bytes before the end
// of the data area continues into the trailing bytes; the next record is at
// the wrapped offset 8, and the first 8 data bytes are not part of either.
func TestGoldenConsumerWrappedRecord(t *testing.T) {
	mem := make([]byte, RingSize(goldCap))
	for i := uint32(0); i < 8; i++ {
		mem[goldData+i] = 0xEE
	}
	goldSize(mem, goldCap-8, 9)
	goldBytes(mem, goldCap-4, []byte("123456789")) // runs to goldCap+5
	goldSize(mem, 8, 2)
	goldBytes(mem, 12, []byte("hi"))
	goldHeader(mem, goldCap-8, 16)
	want := bytes.Clone(mem)

	r, err := New(mem, goldCap)
	if err != nil {
		t.Fatal(err)
	}
	c := NewConsumer(r, nil)
	a, err := c.Receive()
	if err != nil || string(a) != "123456789" || !goldAddr(mem, goldData+goldCap-4, a) {
		t.Fatalf("first record %q, %v", a, err)
	}
	b, err := c.Receive()
	if err != nil || string(b) != "hi" || !goldAddr(mem, goldData+12, b) {
		t.Fatalf("second record %q, %v", b, err)
	}
	if _, err := c.Receive(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Receive = %v, want ErrEmpty", err)
	}
	if err := c.Release(b); err != nil {
		t.Fatal(err)
	}
	goldSize(want, 8, 2|goldBit)
	goldCompare(t, mem, want, "after releasing the second record")
	if err := c.Release(a); err != nil {
		t.Fatal(err)
	}
	goldSize(want, goldCap-8, 9|goldBit)
	goldPut32(want, 0, 16)
	goldCompare(t, mem, want, "after releasing both")
}

// TestGoldenProducerLayout has the producer write records of 0, 1, 3, 4, 5
// and 1500 bytes, commits some of them, and compares the whole ring with a
// hand-built image after every step.
func TestGoldenProducerLayout(t *testing.T) {
	for _, fill := range []byte{0x00, 0xA5} {
		t.Run(fmt.Sprintf("fill=%#02x", fill), func(t *testing.T) {
			mem := make([]byte, RingSize(goldCap))
			for i := goldData; i < len(mem); i++ {
				mem[i] = fill // padding and unused bytes must keep this
			}
			want := bytes.Clone(mem)
			r, err := New(mem, goldCap)
			if err != nil {
				t.Fatal(err)
			}
			p := NewProducer(r, nil)

			sizes := []int{0, 1, 3, 4, 5, 1500}
			offs := []uint32{0, 4, 12, 20, 28, 40} // each align4(4+size) after the last
			const end = 1544
			var pkts [][]byte
			for i, size := range sizes {
				pkt, err := p.Allocate(size)
				if err != nil {
					t.Fatalf("Allocate(%d): %v", size, err)
				}
				if len(pkt) != size || pkt == nil || !goldAddr(mem, goldData+offs[i]+4, pkt) {
					t.Fatalf("record #%d: %d bytes, not at data offset %#x", i, len(pkt), offs[i]+4)
				}
				pkts = append(pkts, pkt)
				// Allocate writes the Size word with the pending bit, and
				// nothing else.
				goldSize(want, offs[i], uint32(size)|goldBit)
			}
			goldCompare(t, mem, want, "after Allocate")

			for i, pkt := range pkts {
				copy(pkt, goldPayload(i, len(pkt)))
				goldBytes(want, offs[i]+4, goldPayload(i, len(pkt)))
			}
			goldCompare(t, mem, want, "after filling the payloads")

			for _, step := range []struct {
				rec  int
				tail uint32
			}{
				{0, 4},
				{2, 4},   // #1 still pending
				{1, 20},  // over #1 and #2; #3 pending
				{4, 20},  // #3 still pending
				{5, 20},  // #3 still pending
				{3, end}, // over #3, #4 and #5
			} {
				if err := p.Commit(pkts[step.rec]); err != nil {
					t.Fatalf("Commit #%d: %v", step.rec, err)
				}
				goldSize(want, offs[step.rec], uint32(sizes[step.rec]))
				goldPut32(want, 4, step.tail)
				goldCompare(t, mem, want, fmt.Sprintf("after committing #%d", step.rec))
			}
			if got := mem[goldData+end]; got != fill {
				t.Fatalf("byte after the last record is %#x", got)
			}

			// Now a consumer reads and releases them, compared with a
			// transcription of WintunReceivePacket and
			// WintunReleaseReceivePacket working on a copy.
			model := goldWintun{mem: bytes.Clone(mem), capacity: goldCap}
			c := NewConsumer(r, nil)
			var got [][]byte
			for i := range sizes {
				pkt, err := c.Receive()
				at, n, merr := model.receive()
				if err != nil || merr != nil {
					t.Fatalf("Receive #%d: %v; model %v", i, err, merr)
				}
				if !goldAddr(mem, goldData+at, pkt) || uint32(len(pkt)) != n || !bytes.Equal(pkt, goldPayload(i, sizes[i])) {
					t.Fatalf("Receive #%d: %d bytes; model has %d bytes at data offset %#x", i, len(pkt), n, at)
				}
				got = append(got, pkt)
			}
			for _, i := range []int{4, 1, 0, 5, 2, 3} {
				if err := c.Release(got[i]); err != nil {
					t.Fatalf("Release #%d: %v", i, err)
				}
				model.release(offs[i] + 4)
				goldCompare(t, mem, model.mem, fmt.Sprintf("after releasing #%d", i))
			}
			if h := goldGet32(mem, 0); h != end {
				t.Fatalf("Head = %d, want %d", h, end)
			}
		})
	}
}

// TestGoldenProducerWrappedRecord: the producer starts 8 bytes before the
// end of the data area; its record runs into the trailing bytes and the next
// one starts at offset 8.
func TestGoldenProducerWrappedRecord(t *testing.T) {
	mem := make([]byte, RingSize(goldCap))
	goldHeader(mem, goldCap-8, goldCap-8)
	want := bytes.Clone(mem)
	r, err := New(mem, goldCap)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProducer(r, nil)
	a, err := p.Allocate(9)
	if err != nil || !goldAddr(mem, goldData+goldCap-4, a) {
		t.Fatalf("Allocate(9): %v", err)
	}
	b, err := p.Allocate(2)
	if err != nil || !goldAddr(mem, goldData+12, b) {
		t.Fatalf("Allocate(2): %v", err)
	}
	copy(a, "123456789")
	copy(b, "hi")
	if err := p.CommitBatch([][]byte{b, a}); err != nil {
		t.Fatal(err)
	}
	goldSize(want, goldCap-8, 9)
	goldBytes(want, goldCap-4, []byte("123456789"))
	goldSize(want, 8, 2)
	goldBytes(want, 12, []byte("hi"))
	goldPut32(want, 4, 16)
	goldCompare(t, mem, want, "after committing")
}

// goldWintun transcribes the ring code of Wintun's api/session.c for one
// ring: the producer half is WintunAllocateSendPacket and WintunSendPacket,
// the consumer half WintunReceivePacket and WintunReleaseReceivePacket.
// Offsets are data offsets; errors are Wintun's error codes by name.
type goldWintun struct {
	mem      []byte
	capacity uint32
	// TUN_SESSION.Receive: the producer's state.
	tail, tailRelease, pToRelease uint32
	// TUN_SESSION.Send: the consumer's state.
	head, headRelease, cToRelease uint32
}

var (
	goldEOF      = errors.New("ERROR_HANDLE_EOF")
	goldNoItems  = errors.New("ERROR_NO_MORE_ITEMS")
	goldBadData  = errors.New("ERROR_INVALID_DATA")
	goldOverflow = errors.New("ERROR_BUFFER_OVERFLOW")
)

func (w *goldWintun) wrap(v uint32) uint32   { return v & (w.capacity - 1) }
func (w *goldWintun) size(off uint32) uint32 { return goldGet32(w.mem, goldData+off) }
func (w *goldWintun) setSize(off, v uint32)  { goldPut32(w.mem, goldData+off, v) }
func (w *goldWintun) ringHead() uint32       { return goldGet32(w.mem, 0) }
func (w *goldWintun) ringTail() uint32       { return goldGet32(w.mem, 4) }
func (w *goldWintun) record(p uint32) uint32 { return p - 4 } // Packet - offsetof(TUN_PACKET, Data)

// allocate is WintunAllocateSendPacket; it returns the payload's offset.
func (w *goldWintun) allocate(size uint32) (uint32, error) {
	if w.tail >= w.capacity {
		return 0, goldEOF
	}
	aligned := goldAlign(4 + size)
	head := w.ringHead()
	if head >= w.capacity {
		return 0, goldEOF
	}
	if aligned > w.wrap(head-w.tail-4) {
		return 0, goldOverflow
	}
	w.setSize(w.tail, size|goldBit)
	p := w.tail + 4
	w.tail = w.wrap(w.tail + aligned)
	w.pToRelease++
	return p, nil
}

// send is WintunSendPacket.
func (w *goldWintun) send(p uint32) {
	off := w.record(p)
	w.setSize(off, w.size(off)&^goldBit)
	for ; w.pToRelease > 0; w.pToRelease-- {
		s := w.size(w.tailRelease)
		if s&goldBit != 0 {
			break
		}
		w.tailRelease = w.wrap(w.tailRelease + goldAlign(4+s))
	}
	if w.ringTail() != w.tailRelease {
		goldPut32(w.mem, 4, w.tailRelease)
	}
}

// receive is WintunReceivePacket; it returns the payload's offset and size.
func (w *goldWintun) receive() (uint32, uint32, error) {
	if w.head >= w.capacity {
		return 0, 0, goldEOF
	}
	tail := w.ringTail()
	if tail >= w.capacity {
		return 0, 0, goldEOF
	}
	if w.head == tail {
		return 0, 0, goldNoItems
	}
	content := w.wrap(tail - w.head)
	if content < 4 {
		return 0, 0, goldBadData
	}
	s := w.size(w.head)
	if s > PacketSizeMax {
		return 0, 0, goldBadData
	}
	aligned := goldAlign(4 + s)
	if aligned > content {
		return 0, 0, goldBadData
	}
	p := w.head + 4
	w.head = w.wrap(w.head + aligned)
	w.cToRelease++
	return p, s, nil
}

// release is WintunReleaseReceivePacket.
func (w *goldWintun) release(p uint32) {
	off := w.record(p)
	w.setSize(off, w.size(off)|goldBit)
	for ; w.cToRelease > 0; w.cToRelease-- {
		s := w.size(w.headRelease)
		if s&goldBit == 0 {
			break
		}
		w.headRelease = w.wrap(w.headRelease + goldAlign(4+(s&^goldBit)))
	}
	goldPut32(w.mem, 0, w.headRelease)
}

// TestGoldenMatchesWintun drives this package and the transcription of
// Wintun's session.c with the same random operations on two copies of the
// same memory and requires byte-identical memory after every operation,
// over several laps of the ring.
func TestGoldenMatchesWintun(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	memA := make([]byte, RingSize(goldCap))
	for i := goldData; i < len(memA); i++ {
		memA[i] = byte(rng.Uint32()) // garbage that must stay where untouched
	}
	model := &goldWintun{mem: bytes.Clone(memA), capacity: goldCap}
	r, err := New(memA, goldCap)
	if err != nil {
		t.Fatal(err)
	}
	p, c := NewProducer(r, nil), NewConsumer(r, nil)

	type rec struct {
		pkt []byte
		at  uint32 // payload data offset
	}
	// same compares the header and the record an operation touched every
	// step, and the whole memory every 64 steps and at the end.
	same := func(step int, what string, at uint32, size int) {
		t.Helper()
		lo, hi := goldData+at-4, goldData+at+goldAlign(uint32(size))
		if step%64 == 0 {
			lo, hi = goldData, uint32(len(memA))
		}
		if !bytes.Equal(memA[:goldData], model.mem[:goldData]) || !bytes.Equal(memA[lo:hi], model.mem[lo:hi]) {
			t.Fatalf("step %d: after %s the ring differs from Wintun's: %s", step, what, rtDiff(memA, model.mem))
		}
	}
	var allocated, received []rec
	var moved uint64
	var fulls, empties, straddling, steps int
	randomSize := func() int {
		switch n := rng.IntN(20); {
		case n == 0:
			return 0
		case n == 1:
			return PacketSizeMax - rng.IntN(4)
		case n < 6:
			return rng.IntN(8)
		default:
			return rng.IntN(3000)
		}
	}
	for step := 0; moved < 20*uint64(goldCap); step++ {
		what, at, size := "", uint32(4), 0
		switch op := rng.IntN(10); {
		case op < 3: // allocate
			size = randomSize()
			what = fmt.Sprintf("Allocate(%d)", size)
			pkt, err := p.Allocate(size)
			var merr error
			at, merr = model.allocate(uint32(size))
			switch {
			case err == nil && merr == nil:
				if !goldAddr(memA, goldData+at, pkt) || len(pkt) != size {
					t.Fatalf("step %d: %s not at the model's data offset %#x", step, what, at)
				}
				content := make([]byte, size)
				for i := range content {
					content[i] = byte(rng.Uint32())
				}
				copy(pkt, content)
				copy(model.mem[goldData+at:], content)
				allocated = append(allocated, rec{pkt, at})
				moved += uint64(goldAlign(4 + uint32(size)))
				if at+uint32(size) > goldCap {
					straddling++
				}
			case errors.Is(err, ErrFull) && merr == goldOverflow:
				fulls++
			default:
				t.Fatalf("step %d: %s = %v, model %v", step, what, err, merr)
			}
		case op < 5 && len(allocated) > 0: // commit any allocated record
			i := rng.IntN(len(allocated))
			x := allocated[i]
			allocated = append(allocated[:i], allocated[i+1:]...)
			what, at, size = fmt.Sprintf("Commit(%#x)", x.at), x.at, len(x.pkt)
			if err := p.Commit(x.pkt); err != nil {
				t.Fatalf("step %d: %s: %v", step, what, err)
			}
			model.send(x.at)
		case op < 8: // receive
			what = "Receive"
			pkt, err := c.Receive()
			mat, n, merr := model.receive()
			at, size = max(mat, 4), int(n)
			switch {
			case err == nil && merr == nil:
				if !goldAddr(memA, goldData+mat, pkt) || uint32(len(pkt)) != n {
					t.Fatalf("step %d: Receive: %d bytes, model %d bytes at %#x", step, len(pkt), n, mat)
				}
				received = append(received, rec{pkt, at})
			case errors.Is(err, ErrEmpty) && merr == goldNoItems:
				empties++
			default:
				t.Fatalf("step %d: Receive = %v, model %v", step, err, merr)
			}
		case len(received) > 0: // release any received record
			i := rng.IntN(len(received))
			x := received[i]
			received = append(received[:i], received[i+1:]...)
			what, at, size = fmt.Sprintf("Release(%#x)", x.at), x.at, len(x.pkt)
			if err := c.Release(x.pkt); err != nil {
				t.Fatalf("step %d: %s: %v", step, what, err)
			}
			model.release(x.at)
		default:
			continue
		}
		same(step, what, at, size)
		if step > 1_000_000 {
			t.Fatal("no progress")
		}
		steps = step
	}
	same(0, "the last step", 4, 0)
	if fulls == 0 || empties == 0 || straddling == 0 {
		t.Fatalf("not exercised: %d ErrFull, %d ErrEmpty, %d records into the trailing area", fulls, empties, straddling)
	}
	t.Logf("%d steps, %d bytes, %d ErrFull, %d ErrEmpty, %d records into the trailing area", steps, moved, fulls, empties, straddling)
}
