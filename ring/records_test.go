package ring

// Records: an empty and a full ring, wrap-around, many laps, commits and
// releases out of order, and every packet size.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestRingEmpty(t *testing.T) {
	f := rtNew(t, nil)
	want := bytes.Clone(f.mem)
	for i := 0; i < 3; i++ {
		f.expectEmpty()
	}
	if f.c.Err() != nil || f.r.Terminated() {
		t.Fatalf("ErrEmpty must not be sticky: Err %v, Terminated %v", f.c.Err(), f.r.Terminated())
	}
	rtSameMem(t, f.mem, want, "Receive on an empty ring")

	// Allocated but uncommitted records are not visible.
	a := f.alloc(10, 1)
	f.expectEmpty()
	f.commit(a)
	f.recvWant(0, 10, 1)
	f.expectEmpty() // received everything, nothing released: still empty
	f.release(a)
	f.expectEmpty()
	f.expectHeadTail(16, 16)
}

// TestRingFull fills the ring with a size pattern that uses exactly
// capacity-4 bytes: usable space is (Head - Tail - 4) & (capacity-1).
func TestRingFull(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		wantN    int // records of size that fit in an empty ring
		lastSize int // then one record of this size fills it exactly; -1 for none
	}{
		{"zero-length", 0, 32767, -1},     // 32767*4 = 0x1FFFC
		{"1020", 1020, 127, 1016},         // 127*1024 + 1020
		{"1021 padded", 1021, 127, 508},   // 127*1028 + 512
		{"1500", 1500, 87, 216},           // 87*1504 + 220
		{"max", PacketSizeMax, 1, 0xFFF4}, // 0x10004 + 0xFFF8
		{"2 bytes", 2, 16383, 0},          // 16383*8 + 4
		{"0x7FFC", 0x7FFC, 3, 0x7FF8},     // 3*0x8000 + 0x7FFC
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := rtNew(t, nil)
			aligned := align4(Alignment + uint32(tc.size))
			pkts := f.fillRing(tc.size)
			if len(pkts) != tc.wantN {
				t.Fatalf("%d records of %d bytes fit, want %d", len(pkts), tc.size, tc.wantN)
			}
			for i, pkt := range pkts {
				if got, want := f.recOff(pkt), uint32(i)*aligned; got != want {
					t.Fatalf("record %d at %#x, want %#x", i, got, want)
				}
			}
			f.expectHeadTail(0, 0) // nothing committed yet

			// ErrFull reserves nothing and is not sticky.
			snap, privTail := bytes.Clone(f.mem), f.p.tail
			for _, size := range []int{tc.size, PacketSizeMax} {
				if _, err := f.p.Allocate(size); !errors.Is(err, ErrFull) {
					t.Fatalf("Allocate(%d) on a full ring = %v, want ErrFull", size, err)
				}
			}
			rtSameMem(t, f.mem, snap, "Allocate returning ErrFull")
			if f.p.tail != privTail || f.p.Err() != nil {
				t.Fatalf("ErrFull moved the tail %#x -> %#x or set Err %v", privTail, f.p.tail, f.p.Err())
			}

			if tc.lastSize >= 0 {
				pkt, err := f.p.Allocate(tc.lastSize)
				if err != nil {
					t.Fatalf("Allocate(%d) into the %d bytes left: %v", tc.lastSize, rtCap-4-uint32(len(pkts))*aligned, err)
				}
				if got, want := f.recOff(pkt), uint32(len(pkts))*aligned; got != want {
					t.Fatalf("last record at %#x, want %#x", got, want)
				}
				pkts = append(pkts, pkt)
			}
			if _, err := f.p.Allocate(0); !errors.Is(err, ErrFull) {
				t.Fatalf("Allocate(0) on a ring with 0 bytes left = %v, want ErrFull", err)
			}
			for i, pkt := range pkts {
				rtFill(pkt, uint32(i))
			}
			if err := f.p.CommitBatch(pkts); err != nil {
				t.Fatalf("CommitBatch: %v", err)
			}
			// Bytes used: exactly capacity-4.
			f.expectHeadTail(0, rtCap-4)

			got := make([][]byte, len(pkts)+1)
			if n, err := f.c.ReceiveBatch(got); n != len(pkts) || err != nil {
				t.Fatalf("ReceiveBatch = %d, %v; want %d", n, err, len(pkts))
			}
			for i, pkt := range pkts {
				if !sameStart(got[i], pkt) || !bytes.Equal(got[i], rtPattern(len(pkt), uint32(i))) {
					t.Fatalf("record %d received wrong", i)
				}
			}
			f.expectEmpty()

			// Release the first record: Head moves by its size, and exactly
			// that much space is usable again: (Head - Tail - 4) & mask.
			f.release(pkts[0])
			f.expectHeadTail(aligned, rtCap-4)
			if more := int(aligned - Alignment + 1); more <= PacketSizeMax {
				if _, err := f.p.Allocate(more); !errors.Is(err, ErrFull) {
					t.Fatalf("Allocate one byte more than the space = %v, want ErrFull", err)
				}
			}
			pkt := f.send(tc.size, 99) // exactly the released space
			if got := f.recOff(pkt); got != rtCap-4 {
				t.Fatalf("record after release at %#x, want %#x", got, rtCap-4)
			}
			f.expectHeadTail(aligned, (rtCap-4+aligned)&rtMask)
			if _, err := f.p.Allocate(0); !errors.Is(err, ErrFull) {
				t.Fatalf("Allocate(0) = %v, want ErrFull", err)
			}
		})
	}
}

// TestRingWrapAround sends records that start near the end of the data area
// and run into the trailing 0x10000 bytes.
func TestRingWrapAround(t *testing.T) {
	for _, start := range []uint32{rtCap - 4, rtCap - 8, rtCap - 12, rtCap - 1024, rtCap - 0x10000} {
		for _, size := range []int{0, 1, 3, 4, 5, 1500, PacketSizeMax} {
			t.Run(fmt.Sprintf("start=%#x/size=%d", start, size), func(t *testing.T) {
				f := rtNew(t, nil)
				f.advanceTo(start)
				snap := bytes.Clone(f.mem)
				aligned := align4(Alignment + uint32(size))
				end := (start + aligned) & rtMask

				pkt := f.send(size, 7)
				if got := f.recOff(pkt); got != start {
					t.Fatalf("record at %#x, want %#x", got, start)
				}
				f.expectHeadTail(start, end)
				// The record is contiguous in memory from its start: the bytes
				// past capacity live in the trailing area...
				want := rtPattern(size, 7)
				if got := f.mem[HeaderSize+start+4 : HeaderSize+start+4+uint32(size)]; !bytes.Equal(got, want) {
					t.Fatalf("payload is not contiguous at data offset %#x", start+4)
				}
				if start+aligned > rtCap {
					// ...and the bytes at the start of the data area that
					// the wrapped offsets cover were not written.
					rtSameMem(t, f.mem[HeaderSize:HeaderSize+end], snap[HeaderSize:HeaderSize+end], "a record running into the trailing area")
				}
				if got := binary.NativeEndian.Uint32(f.mem[HeaderSize+start:]); got != uint32(size) {
					t.Fatalf("Size word %#x, want %#x", got, size)
				}

				f.release(f.recvWant(start, size, 7))
				f.expectHeadTail(end, end)

				// The next record starts at the wrapped offset.
				next := f.send(9, 8)
				if got := f.recOff(next); got != end {
					t.Fatalf("next record at %#x, want %#x", got, end)
				}
				f.release(f.recvWant(end, 9, 8))
				f.expectHeadTail((end+16)&rtMask, (end+16)&rtMask)
			})
		}
	}
}

// TestRingManyLaps runs a model of the protocol alongside the ring for many
// laps: random sizes, random commit order, random release order, content
// checks, and the exact Head and Tail after every step.
func TestRingManyLaps(t *testing.T) {
	f := rtNew(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	pattern := make([]byte, 2*PacketSizeMax)
	for i := range pattern {
		pattern[i] = byte(rng.Uint32())
	}
	type rec struct {
		off     uint32
		size    int
		seq     int
		pkt     []byte
		done    bool
		aligned uint32
	}
	content := func(r *rec) []byte { s := r.seq % 4096; return pattern[s : s+r.size] }
	randomSize := func() int {
		switch n := rng.IntN(100); {
		case n < 5:
			return 0
		case n < 8:
			return PacketSizeMax - rng.IntN(0x100)
		case n < 12:
			return rng.IntN(PacketSizeMax + 1)
		case n < 50:
			return rng.IntN(64)
		default:
			return rng.IntN(1600)
		}
	}
	var (
		allocated, published, received  []*rec
		tailAlloc, tail, headRecv, head uint32 // the model
		seq, laps, straddling, fulls    int
	)
	for laps < 25 {
		// Allocate a burst; the model says exactly when the ring is full.
		for k := rng.IntN(8) + 1; k > 0; k-- {
			size := randomSize()
			aligned := align4(Alignment + uint32(size))
			space := (head - tailAlloc - Alignment) & rtMask
			pkt, err := f.p.Allocate(size)
			if aligned > space {
				if !errors.Is(err, ErrFull) {
					t.Fatalf("Allocate(%d) with %d bytes free = %v, want ErrFull", size, space, err)
				}
				fulls++
				break
			}
			if err != nil {
				t.Fatalf("Allocate(%d) with %d bytes free: %v", size, space, err)
			}
			r := &rec{off: tailAlloc, size: size, seq: seq, pkt: pkt, aligned: aligned}
			seq++
			if got := f.recOff(pkt); got != r.off || len(pkt) != size {
				t.Fatalf("record %d at %#x len %d, want %#x len %d", r.seq, got, len(pkt), r.off, size)
			}
			copy(pkt, content(r))
			if r.off+aligned > rtCap {
				straddling++
			}
			if tailAlloc+aligned >= rtCap {
				laps++
			}
			tailAlloc = (tailAlloc + aligned) & rtMask
			allocated = append(allocated, r)
		}
		// Commit a random subset in random order.
		for _, i := range rng.Perm(len(allocated)) {
			if r := allocated[i]; !r.done && rng.IntN(4) != 0 {
				f.commit(r.pkt)
				r.done = true
			}
		}
		for len(allocated) > 0 && allocated[0].done {
			r := allocated[0]
			allocated = allocated[1:]
			r.done = false
			tail = (tail + r.aligned) & rtMask
			published = append(published, r)
		}
		f.expectHeadTail(head, tail)
		// Receive some of what was published, in allocation order.
		for n := rng.IntN(len(published) + 1); n > 0; n-- {
			r := published[0]
			published = published[1:]
			if pkt := f.recvAt(r.off, r.size); !bytes.Equal(pkt, content(r)) {
				t.Fatalf("record %d has wrong content", r.seq)
			}
			headRecv = (headRecv + r.aligned) & rtMask
			received = append(received, r)
		}
		if len(published) == 0 {
			f.expectEmpty()
		}
		// Release a random subset in random order.
		for _, i := range rng.Perm(len(received)) {
			if r := received[i]; !r.done && rng.IntN(3) != 0 {
				f.release(r.pkt)
				r.done = true
			}
		}
		for len(received) > 0 && received[0].done {
			head = (head + received[0].aligned) & rtMask
			received = received[1:]
		}
		f.expectHeadTail(head, tail)
	}
	if straddling == 0 || fulls == 0 {
		t.Fatalf("the run never exercised the trailing area (%d) or a full ring (%d)", straddling, fulls)
	}
	t.Logf("%d records, %d laps, %d straddling the end, %d ErrFull", seq, laps, straddling, fulls)
}

// Out-of-order commit and release: records A, B, C of 10, 20 and 30 bytes
// at offsets 0, 16 and 40, ending at 76.
var rtABC = []struct {
	size int
	off  uint32
}{{10, 0}, {20, 16}, {30, 40}}

const rtABCEnd = 76

func TestRingOutOfOrderCommit(t *testing.T) {
	tests := []struct {
		order string   // commit order
		tails []uint32 // shared Tail after each commit
		recv  []string // records the consumer gets after each commit
	}{
		{"ABC", []uint32{16, 40, 76}, []string{"A", "B", "C"}},
		{"ACB", []uint32{16, 16, 76}, []string{"A", "", "BC"}},
		{"BAC", []uint32{0, 40, 76}, []string{"", "AB", "C"}},
		{"BCA", []uint32{0, 0, 76}, []string{"", "", "ABC"}},
		{"CAB", []uint32{0, 16, 76}, []string{"", "A", "BC"}},
		{"CBA", []uint32{0, 0, 76}, []string{"", "", "ABC"}},
	}
	for _, tc := range tests {
		t.Run(tc.order, func(t *testing.T) {
			f := rtNew(t, nil)
			var pkts [][]byte
			for i, r := range rtABC {
				pkt := f.alloc(r.size, uint32(i))
				if got := f.recOff(pkt); got != r.off {
					t.Fatalf("%c allocated at %#x, want %#x", 'A'+i, got, r.off)
				}
				if got := f.sizeWord(r.off); got != uint32(r.size)|flagBit {
					t.Fatalf("%c Size word %#x, want pending %#x", 'A'+i, got, uint32(r.size)|flagBit)
				}
				pkts = append(pkts, pkt)
			}
			f.expectHeadTail(0, 0)
			f.expectEmpty()
			committed := map[int]bool{}
			for step, ch := range tc.order {
				i := int(ch - 'A')
				f.commit(pkts[i])
				committed[i] = true
				f.expectHeadTail(0, tc.tails[step])
				for j, r := range rtABC {
					want := uint32(r.size)
					if !committed[j] {
						want |= flagBit
					}
					if got := f.sizeWord(r.off); got != want {
						t.Fatalf("after committing %s: %c Size word %#x, want %#x", tc.order[:step+1], 'A'+j, got, want)
					}
				}
				for _, rc := range tc.recv[step] {
					j := int(rc - 'A')
					f.recvWant(rtABC[j].off, rtABC[j].size, uint32(j))
				}
				f.expectEmpty()
			}
		})
	}
}

func TestRingOutOfOrderRelease(t *testing.T) {
	tests := []struct {
		order string   // release order
		heads []uint32 // shared Head after each release
	}{
		{"ABC", []uint32{16, 40, 76}},
		{"ACB", []uint32{16, 16, 76}},
		{"BAC", []uint32{0, 40, 76}},
		{"BCA", []uint32{0, 0, 76}},
		{"CAB", []uint32{0, 16, 76}},
		{"CBA", []uint32{0, 0, 76}},
	}
	for _, tc := range tests {
		t.Run(tc.order, func(t *testing.T) {
			f := rtNew(t, nil)
			var pkts [][]byte
			for i, r := range rtABC {
				f.send(r.size, uint32(i))
			}
			for i, r := range rtABC {
				pkts = append(pkts, f.recvWant(r.off, r.size, uint32(i)))
			}
			f.expectHeadTail(0, rtABCEnd)
			released := map[int]bool{}
			for step, ch := range tc.order {
				i := int(ch - 'A')
				f.release(pkts[i])
				released[i] = true
				f.expectHeadTail(tc.heads[step], rtABCEnd)
				for j, r := range rtABC {
					want := uint32(r.size)
					if released[j] {
						want |= flagBit
					}
					if got := f.sizeWord(r.off); got != want {
						t.Fatalf("after releasing %s: %c Size word %#x, want %#x", tc.order[:step+1], 'A'+j, got, want)
					}
				}
			}
			// The next record follows C.
			f.send(3, 9)
			f.release(f.recvWant(rtABCEnd, 3, 9))
			f.expectHeadTail(rtABCEnd+8, rtABCEnd+8)
		})
	}
}

func TestRingPacketSizes(t *testing.T) {
	tests := []struct {
		size int
		ok   bool
	}{
		{-1, false},
		{math.MinInt, false},
		{PacketSizeMax + 1, false},
		{math.MaxInt, false},
		{1 << 30, false},
		{0, true},
		{1, true},
		{3, true},
		{4, true},
		{PacketSizeMax - 1, true},
		{PacketSizeMax, true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			f := rtNew(t, nil)
			f.send(5, 1) // so that Tail and the producer are not at zero
			f.release(f.recvWant(0, 5, 1))
			snap, privTail := bytes.Clone(f.mem), f.p.tail
			pkt, err := f.p.Allocate(tc.size)
			if !tc.ok {
				if pkt != nil || !errors.Is(err, ErrPacketSize) {
					t.Fatalf("Allocate(%d) = %d bytes, %v; want ErrPacketSize", tc.size, len(pkt), err)
				}
				n, err := f.p.AllocateBatch([]int{tc.size}, make([][]byte, 1))
				if n != 0 || !errors.Is(err, ErrPacketSize) {
					t.Fatalf("AllocateBatch(%d) = %d, %v; want 0, ErrPacketSize", tc.size, n, err)
				}
				rtSameMem(t, f.mem, snap, "Allocate of a bad size")
				if f.p.tail != privTail || f.p.Err() != nil {
					t.Fatalf("bad size moved the tail or set Err %v", f.p.Err())
				}
				f.send(7, 2) // still usable
				f.release(f.recvWant(12, 7, 2))
				return
			}
			if err != nil {
				t.Fatalf("Allocate(%d): %v", tc.size, err)
			}
			// A zero-length record still has an address in the ring, so
			// that it can be committed and released by its slice.
			if pkt == nil || len(pkt) != tc.size || cap(pkt) != tc.size || f.recOff(pkt) != 12 {
				t.Fatalf("Allocate(%d) = nil %v len %d cap %d at %#x", tc.size, pkt == nil, len(pkt), cap(pkt), f.recOff(pkt))
			}
			rtFill(pkt, 3)
			f.commit(pkt)
			end := (12 + align4(Alignment+uint32(tc.size))) & rtMask
			f.expectHeadTail(12, end)
			got := f.recvWant(12, tc.size, 3)
			if got == nil {
				t.Fatalf("Receive of a %d-byte record returned nil", tc.size)
			}
			f.release(got)
			f.expectHeadTail(end, end)
		})
	}
}
