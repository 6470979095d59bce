package ring

// Deterministic unit tests of the ring state machine: New, Producer and
// Consumer transitions, wrap-around, out-of-order commit and release,
// termination, misuse, every corruption a hostile peer can cause, the batch
// calls and Wait.
//
// Helpers and tests in this file are prefixed rt / TestRing so that they do
// not collide with the other test files of the package.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

const (
	// rtTerminated is the value Wintun stores to end a ring, written out
	// rather than taken from the package.
	rtTerminated = uint32(0xFFFFFFFF)

	rtCap  = uint32(CapacityMin)
	rtMask = rtCap - 1
	// rtBound bounds every wait for another goroutine, so that a broken
	// wake-up fails the test instead of hanging it. It is never used to make
	// something happen.
	rtBound = 10 * time.Second
)

// rtFixture is one ring in a plain []byte with its producer and consumer.
type rtFixture struct {
	t   testing.TB
	mem []byte
	r   *Ring
	p   *Producer
	c   *Consumer
}

func rtNew(t testing.TB, w Waker) *rtFixture {
	t.Helper()
	mem := make([]byte, RingSize(rtCap))
	r, err := New(mem, rtCap)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &rtFixture{t: t, mem: mem, r: r, p: NewProducer(r, w), c: NewConsumer(r, w)}
}

// Shared words, read the way the peer reads them.
func (f *rtFixture) head() uint32     { return f.r.head.Load() }
func (f *rtFixture) tail() uint32     { return f.r.tail.Load() }
func (f *rtFixture) alertable() int32 { return f.r.alertable.Load() }

// Hostile writes: plain native-endian stores into the shared bytes, as a
// peer in another process would do them.
func (f *rtFixture) pokeHead(v uint32) { binary.NativeEndian.PutUint32(f.mem[0:], v) }
func (f *rtFixture) pokeTail(v uint32) { binary.NativeEndian.PutUint32(f.mem[4:], v) }
func (f *rtFixture) pokeSize(off, v uint32) {
	binary.NativeEndian.PutUint32(f.mem[HeaderSize+off:], v)
}

// sizeWord reads the Size word of the record at data offset off.
func (f *rtFixture) sizeWord(off uint32) uint32 {
	return binary.NativeEndian.Uint32(f.mem[HeaderSize+off:])
}

// recOff returns the data offset of the record whose payload is pkt,
// computed from addresses independently of the package's own helpers.
func (f *rtFixture) recOff(pkt []byte) uint32 {
	f.t.Helper()
	base := uintptr(unsafe.Pointer(&f.mem[HeaderSize]))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(pkt)))
	if pkt == nil || at < base+Alignment || at >= base+uintptr(len(f.mem)-HeaderSize) {
		f.t.Fatalf("slice at %#x is not a payload in this ring", at)
	}
	return uint32(at-base) - Alignment
}

func (f *rtFixture) alloc(size int, seed uint32) []byte {
	f.t.Helper()
	pkt, err := f.p.Allocate(size)
	if err != nil {
		f.t.Fatalf("Allocate(%d): %v", size, err)
	}
	if len(pkt) != size || cap(pkt) != size {
		f.t.Fatalf("Allocate(%d): len %d cap %d", size, len(pkt), cap(pkt))
	}
	rtFill(pkt, seed)
	return pkt
}

func (f *rtFixture) commit(pkt []byte) {
	f.t.Helper()
	if err := f.p.Commit(pkt); err != nil {
		f.t.Fatalf("Commit(record at %#x): %v", f.recOff(pkt), err)
	}
}

func (f *rtFixture) send(size int, seed uint32) []byte {
	f.t.Helper()
	pkt := f.alloc(size, seed)
	f.commit(pkt)
	return pkt
}

func (f *rtFixture) recv() []byte {
	f.t.Helper()
	pkt, err := f.c.Receive()
	if err != nil {
		f.t.Fatalf("Receive: %v", err)
	}
	return pkt
}

// recvAt receives the next record and checks its offset and size.
func (f *rtFixture) recvAt(off uint32, size int) []byte {
	f.t.Helper()
	pkt := f.recv()
	if got := f.recOff(pkt); got != off {
		f.t.Fatalf("Receive: record at %#x, want %#x", got, off)
	}
	if len(pkt) != size || cap(pkt) != size {
		f.t.Fatalf("Receive: record at %#x has len %d cap %d, want %d", off, len(pkt), cap(pkt), size)
	}
	return pkt
}

// recvWant receives the next record and checks its offset, size and content.
func (f *rtFixture) recvWant(off uint32, size int, seed uint32) []byte {
	f.t.Helper()
	pkt := f.recvAt(off, size)
	if !bytes.Equal(pkt, rtPattern(size, seed)) {
		f.t.Fatalf("Receive: record at %#x has wrong content", off)
	}
	return pkt
}

func (f *rtFixture) release(pkt []byte) {
	f.t.Helper()
	if err := f.c.Release(pkt); err != nil {
		f.t.Fatalf("Release(record at %#x): %v", f.recOff(pkt), err)
	}
}

func (f *rtFixture) expectEmpty() {
	f.t.Helper()
	if pkt, err := f.c.Receive(); !errors.Is(err, ErrEmpty) {
		f.t.Fatalf("Receive = %d bytes, %v; want ErrEmpty", len(pkt), err)
	}
}

func (f *rtFixture) expectHeadTail(head, tail uint32) {
	f.t.Helper()
	if h, tl := f.head(), f.tail(); h != head || tl != tail {
		f.t.Fatalf("shared Head, Tail = %#x, %#x; want %#x, %#x", h, tl, head, tail)
	}
}

// advanceTo moves an empty ring's Head and Tail to off by sending,
// receiving and releasing filler records.
func (f *rtFixture) advanceTo(off uint32) {
	f.t.Helper()
	if f.head() != f.tail() {
		f.t.Fatalf("advanceTo on a ring that is not empty")
	}
	for f.tail() != off {
		n := min(f.r.dist(f.tail(), off), 1024)
		f.release(f.recv2(f.send(int(n-Alignment), 0)))
	}
	f.expectHeadTail(off, off)
}

// recv2 receives the record sent as pkt.
func (f *rtFixture) recv2(sent []byte) []byte {
	f.t.Helper()
	got := f.recv()
	if unsafe.SliceData(got) != unsafe.SliceData(sent) || len(got) != len(sent) {
		f.t.Fatalf("Receive returned a record other than the one sent")
	}
	return got
}

// fillRing allocates records of size until ErrFull and returns them,
// uncommitted.
func (f *rtFixture) fillRing(size int) [][]byte {
	f.t.Helper()
	var pkts [][]byte
	for {
		pkt, err := f.p.Allocate(size)
		if errors.Is(err, ErrFull) {
			return pkts
		}
		if err != nil {
			f.t.Fatalf("Allocate(%d) #%d: %v", size, len(pkts), err)
		}
		pkts = append(pkts, pkt)
		if len(pkts) > int(rtCap/Alignment) {
			f.t.Fatalf("ring never gets full")
		}
	}
}

// rtPattern returns the content used for a record of size bytes and seed.
func rtPattern(size int, seed uint32) []byte {
	b := make([]byte, size)
	rtFill(b, seed)
	return b
}

func rtFill(b []byte, seed uint32) {
	x := seed*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
}

// rtDiff describes the first difference between two byte slices.
func rtDiff(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("byte %#x (data offset %#x) is %#02x, want %#02x", i, i-HeaderSize, got[i], want[i])
		}
	}
	return ""
}

func rtSameMem(t testing.TB, got, want []byte, what string) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	if d := rtDiff(got, want); d != "" {
		t.Fatalf("%s changed the ring memory: %s", what, d)
	}
}

// rtNoPanic runs fn and turns a panic into a test failure.
func rtNoPanic(t testing.TB, what string, fn func()) {
	t.Helper()
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("%s panicked: %v", what, v)
		}
	}()
	fn()
}

func TestRingCheckCapacity(t *testing.T) {
	tests := []struct {
		capacity uint32
		ok       bool
	}{
		{0, false},
		{1, false},
		{4, false},
		{CapacityMin / 2, false}, // power of two below the minimum
		{CapacityMin - 1, false},
		{CapacityMin + 4, false},
		{0x30000, false}, // in range, not a power of two
		{CapacityMax - 4, false},
		{CapacityMax + 1, false},
		{CapacityMax * 2, false}, // power of two above the maximum
		{0x80000000, false},
		{0xFFFFFFFF, false},
		{CapacityMin, true},
		{CapacityMin * 2, true},
		{0x100000, true},
		{CapacityMax, true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%#x", tc.capacity), func(t *testing.T) {
			err := CheckCapacity(tc.capacity)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckCapacity = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				if !errors.Is(err, ErrInvalidCapacity) {
					t.Fatalf("CheckCapacity = %v, want ErrInvalidCapacity", err)
				}
				// New must reject the capacity before looking at mem.
				for _, mem := range [][]byte{nil, make([]byte, 64), make([]byte, RingSize(CapacityMin))} {
					r, err := New(mem, tc.capacity)
					if r != nil || !errors.Is(err, ErrInvalidCapacity) || errors.Is(err, ErrInvalidMemory) {
						t.Fatalf("New(%d bytes) = %v, %v; want nil, ErrInvalidCapacity", len(mem), r, err)
					}
				}
				return
			}
			r, err := New(make([]byte, RingSize(tc.capacity)), tc.capacity)
			if err != nil || r.Capacity() != tc.capacity || r.Terminated() {
				t.Fatalf("New = %v, %v", r, err)
			}
		})
	}
}

func TestRingSize(t *testing.T) {
	// TUN_RING_SIZE(Capacity) = sizeof(TUN_RING) + Capacity +
	// TUN_ALIGN(sizeof(TUN_PACKET) + 0xFFFF) - TUN_ALIGNMENT.
	for _, tc := range []struct {
		capacity uint32
		want     int
	}{
		{CapacityMin, 0x3000C},
		{0x100000, 0x11000C},
		{CapacityMax, 0x401000C},
	} {
		if got := RingSize(tc.capacity); got != tc.want {
			t.Errorf("RingSize(%#x) = %#x, want %#x", tc.capacity, got, tc.want)
		}
	}
}

func TestRingNewInvalidMemory(t *testing.T) {
	n := RingSize(rtCap)
	big := make([]byte, n+8)
	if uintptr(unsafe.Pointer(&big[0]))%8 != 0 {
		t.Fatalf("test buffer is not 8-byte aligned")
	}
	tests := []struct {
		name string
		mem  []byte
		ok   bool
	}{
		{"nil", nil, false},
		{"empty", big[:0], false},
		{"header only", big[:HeaderSize], false},
		{"one byte short", big[:n-1], false},
		{"four bytes short", big[:n-4], false},
		{"one byte long", big[:n+1], false},
		{"four bytes long", big[:n+4], false},
		{"without trailing area", big[:HeaderSize+int(rtCap)], false},
		{"misaligned by 1", big[1 : 1+n], false},
		{"misaligned by 2", big[2 : 2+n], false},
		{"misaligned by 3", big[3 : 3+n], false},
		{"aligned at 4", big[4 : 4+n], true},
		{"aligned at 0", big[:n], true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.mem, rtCap)
			if tc.ok {
				if err != nil || r == nil {
					t.Fatalf("New = %v, %v; want a ring", r, err)
				}
				return
			}
			if r != nil || !errors.Is(err, ErrInvalidMemory) {
				t.Fatalf("New = %v, %v; want nil, ErrInvalidMemory", r, err)
			}
		})
	}
}

func TestRingNewTouchesNothing(t *testing.T) {
	mem := bytes.Repeat([]byte{0xA5}, RingSize(rtCap))
	binary.NativeEndian.PutUint32(mem[0:], 0x100)
	binary.NativeEndian.PutUint32(mem[4:], 0x100)
	binary.NativeEndian.PutUint32(mem[8:], 0)
	want := bytes.Clone(mem)
	r, err := New(mem, rtCap)
	if err != nil {
		t.Fatal(err)
	}
	p, c := NewProducer(r, nil), NewConsumer(r, nil)
	rtSameMem(t, mem, want, "New, NewProducer and NewConsumer")
	if p.Ring() != r || c.Ring() != r || p.Err() != nil || c.Err() != nil {
		t.Fatalf("sides: ring %p %p want %p, errors %v %v", p.Ring(), c.Ring(), r, p.Err(), c.Err())
	}
}

// TestRingSidesFromHeader checks that NewProducer and NewConsumer start from
// the Head and Tail already in memory and validate them.
func TestRingSidesFromHeader(t *testing.T) {
	tests := []struct {
		name       string
		head, tail uint32
		wantP      error // producer's sticky error and first Allocate error
		wantC      error // consumer's sticky error right after NewConsumer
		wantRecv   error // first Receive error
	}{
		{"zero", 0, 0, nil, nil, ErrEmpty},
		{"middle", 0x100, 0x100, nil, nil, ErrEmpty},
		{"last slot", rtCap - 4, rtCap - 4, nil, nil, ErrEmpty},
		{"head rtTerminated", rtTerminated, 0, ErrTerminated, ErrTerminated, ErrTerminated},
		{"head at capacity", rtCap, 0, ErrTerminated, ErrTerminated, ErrTerminated},
		{"tail rtTerminated", 0, rtTerminated, ErrTerminated, nil, ErrTerminated},
		{"head misaligned", 2, 0, ErrCorrupt, ErrCorrupt, ErrCorrupt},
		{"tail misaligned", 0, 6, ErrCorrupt, nil, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := make([]byte, RingSize(rtCap))
			binary.NativeEndian.PutUint32(mem[0:], tc.head)
			binary.NativeEndian.PutUint32(mem[4:], tc.tail)
			r, err := New(mem, rtCap)
			if err != nil {
				t.Fatal(err)
			}
			f := &rtFixture{t: t, mem: mem, r: r, p: NewProducer(r, nil), c: NewConsumer(r, nil)}
			if err := f.p.Err(); !rtIsOrNil(err, tc.wantP) {
				t.Fatalf("producer Err = %v, want %v", err, tc.wantP)
			}
			if err := f.c.Err(); !rtIsOrNil(err, tc.wantC) {
				t.Fatalf("consumer Err = %v, want %v", err, tc.wantC)
			}
			if _, err := f.c.Receive(); !errors.Is(err, tc.wantRecv) {
				t.Fatalf("Receive = %v, want %v", err, tc.wantRecv)
			}
			pkt, err := f.p.Allocate(100)
			if !rtIsOrNil(err, tc.wantP) {
				t.Fatalf("Allocate = %v, want %v", err, tc.wantP)
			}
			if err != nil {
				return
			}
			if got := f.recOff(pkt); got != tc.tail {
				t.Fatalf("first record at %#x, want the Tail in memory %#x", got, tc.tail)
			}
			rtFill(pkt, 1)
			f.commit(pkt)
			f.expectHeadTail(tc.head, (tc.tail+104)&rtMask)
			f.release(f.recvWant(tc.tail, 100, 1))
			f.expectHeadTail((tc.tail+104)&rtMask, (tc.tail+104)&rtMask)
		})
	}
}

func rtIsOrNil(err, target error) bool {
	if target == nil {
		return err == nil
	}
	return errors.Is(err, target)
}

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
				if unsafe.SliceData(got[i]) != unsafe.SliceData(pkt) || !bytes.Equal(got[i], rtPattern(len(pkt), uint32(i))) {
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

// TestRingTerminateByProducer: the consumer gets ErrTerminated on its next
// Receive, as with Wintun, even for records committed before the end.
func TestRingTerminateByProducer(t *testing.T) {
	t.Run("Receive", func(t *testing.T) {
		f := rtNew(t, NewChanWaker())
		for i, r := range rtABC {
			f.send(r.size, uint32(i))
		}
		a := f.recvWant(0, 10, 0) // has seen Tail = 76, covering B and C
		f.p.Terminate()
		f.expectHeadTail(0, rtTerminated)
		if !f.r.Terminated() {
			t.Fatal("Ring.Terminated = false")
		}
		// As WintunReceivePacket, which reads Tail on every call and
		// returns ERROR_HANDLE_EOF at once, Receive reports the end even
		// though B and C were committed and seen before the termination:
		// they are not delivered.
		for i := 0; i < 2; i++ {
			if _, err := f.c.Receive(); !errors.Is(err, ErrTerminated) {
				t.Fatalf("Receive #%d after Terminate = %v, want ErrTerminated", i, err)
			}
		}
		if err := f.c.Err(); !errors.Is(err, ErrTerminated) {
			t.Fatalf("consumer Err = %v, want ErrTerminated", err)
		}
		if err := f.c.Wait(context.Background()); !errors.Is(err, ErrTerminated) {
			t.Fatalf("Wait = %v, want ErrTerminated", err)
		}
		// Releasing after the peer ended is allowed; the consumer did not
		// terminate, so it still publishes Head, and never touches Tail.
		f.release(a)
		f.expectHeadTail(16, rtTerminated)
	})
	t.Run("Wait first", func(t *testing.T) {
		f := rtNew(t, NewChanWaker())
		f.send(10, 0)
		f.p.Terminate()
		if err := f.c.Wait(context.Background()); !errors.Is(err, ErrTerminated) {
			t.Fatalf("Wait = %v, want ErrTerminated", err)
		}
		// Observed: the committed record the consumer never looked at is
		// not delivered once the ring is terminated, as in Wintun.
		if _, err := f.c.Receive(); !errors.Is(err, ErrTerminated) {
			t.Fatalf("Receive = %v, want ErrTerminated", err)
		}
	})
	t.Run("producer after its own Terminate", func(t *testing.T) {
		f := rtNew(t, NewChanWaker())
		a := f.alloc(10, 0)
		b := f.send(20, 1)
		f.p.Terminate()
		f.p.Terminate() // idempotent
		if _, err := f.p.Allocate(1); !errors.Is(err, ErrTerminated) {
			t.Fatalf("Allocate after Terminate = %v, want ErrTerminated", err)
		}
		if n, err := f.p.AllocateBatch([]int{1}, make([][]byte, 1)); n != 0 || !errors.Is(err, ErrTerminated) {
			t.Fatalf("AllocateBatch after Terminate = %d, %v; want ErrTerminated", n, err)
		}
		if err := f.p.Err(); !errors.Is(err, ErrTerminated) {
			t.Fatalf("producer Err = %v, want ErrTerminated", err)
		}
		// Commit after the producer's own Terminate is allowed and must
		// never overwrite the terminated Tail.
		if err := f.p.Commit(a); err != nil {
			t.Fatalf("Commit after Terminate: %v", err)
		}
		if err := f.p.CommitBatch(nil); err != nil {
			t.Fatalf("CommitBatch after Terminate: %v", err)
		}
		f.expectHeadTail(0, rtTerminated)
		if got := f.sizeWord(0); got != 10 {
			t.Fatalf("A's Size word %#x after Commit, want %#x", got, 10)
		}
		if err := f.p.Commit(b); !errors.Is(err, ErrForeignPacket) {
			t.Fatalf("double Commit after Terminate = %v, want ErrForeignPacket", err)
		}
		f.expectHeadTail(0, rtTerminated)
	})
}

// TestRingTerminateByConsumer: the producer gets ErrTerminated on its next
// Allocate, as Consumer.Terminate documents and as WintunAllocateSendPacket
// does (it reads Head on every call).
func TestRingTerminateByConsumer(t *testing.T) {
	t.Run("empty ring", func(t *testing.T) {
		f := rtNew(t, nil)
		f.c.Terminate()
		f.expectHeadTail(rtTerminated, 0)
		if !f.r.Terminated() {
			t.Fatal("Ring.Terminated = false")
		}
		pkt, err := f.p.Allocate(10)
		if !errors.Is(err, ErrTerminated) {
			t.Errorf("Allocate after Consumer.Terminate = %d bytes, %v; want ErrTerminated", len(pkt), err)
		}
		if err := f.p.Err(); !errors.Is(err, ErrTerminated) {
			t.Errorf("producer Err = %v, want ErrTerminated", err)
		}
		f.expectHeadTail(rtTerminated, 0)
	})
	t.Run("full ring", func(t *testing.T) {
		f := rtNew(t, nil)
		pkts := f.fillRing(1020)
		f.c.Terminate()
		if _, err := f.p.Allocate(1020); !errors.Is(err, ErrTerminated) {
			t.Fatalf("Allocate after Consumer.Terminate = %v, want ErrTerminated", err)
		}
		if _, err := f.p.Allocate(0); !errors.Is(err, ErrTerminated) {
			t.Fatalf("second Allocate = %v, want sticky ErrTerminated", err)
		}
		// The producer may still commit what it allocated; it never
		// writes Head.
		if err := f.p.CommitBatch(pkts); err != nil {
			t.Fatalf("CommitBatch after the consumer ended: %v", err)
		}
		f.expectHeadTail(rtTerminated, 127*1024)
	})
	t.Run("consumer after its own Terminate", func(t *testing.T) {
		f := rtNew(t, NewChanWaker())
		for i, r := range rtABC {
			f.send(r.size, uint32(i))
		}
		a := f.recvWant(0, 10, 0)
		b := f.recvWant(16, 20, 1)
		f.c.Terminate()
		f.c.Terminate()
		f.expectHeadTail(rtTerminated, rtABCEnd)
		if _, err := f.c.Receive(); !errors.Is(err, ErrTerminated) {
			t.Fatalf("Receive after own Terminate = %v, want ErrTerminated", err)
		}
		if n, err := f.c.ReceiveBatch(make([][]byte, 2)); n != 0 || !errors.Is(err, ErrTerminated) {
			t.Fatalf("ReceiveBatch after own Terminate = %d, %v; want ErrTerminated", n, err)
		}
		if err := f.c.Wait(context.Background()); !errors.Is(err, ErrTerminated) {
			t.Fatalf("Wait after own Terminate = %v, want ErrTerminated", err)
		}
		// Release after the consumer's own Terminate must never overwrite
		// the terminated Head.
		if err := f.c.Release(a); err != nil {
			t.Fatalf("Release after own Terminate: %v", err)
		}
		if err := f.c.ReleaseBatch([][]byte{b}); err != nil {
			t.Fatalf("ReleaseBatch after own Terminate: %v", err)
		}
		f.expectHeadTail(rtTerminated, rtABCEnd)
	})
}

// TestRingTerminationValues: any Head or Tail of capacity or more is
// termination, not corruption, even when misaligned.
func TestRingTerminationValues(t *testing.T) {
	for _, v := range []uint32{rtCap, rtCap + 1, rtCap + 4, 0x80000000, 0xFFFFFFFC, rtTerminated} {
		t.Run(fmt.Sprintf("tail=%#x", v), func(t *testing.T) {
			f := rtNew(t, nil)
			f.send(10, 0)
			f.release(f.recv())
			f.pokeTail(v)
			for i := 0; i < 2; i++ {
				if _, err := f.c.Receive(); !errors.Is(err, ErrTerminated) || errors.Is(err, ErrCorrupt) {
					t.Fatalf("Receive #%d = %v, want ErrTerminated", i, err)
				}
			}
			if !f.r.Terminated() {
				t.Fatal("Ring.Terminated = false")
			}
		})
		t.Run(fmt.Sprintf("head=%#x", v), func(t *testing.T) {
			f := rtNew(t, nil)
			f.fillRing(1020) // so that the producer must look at Head again
			f.pokeHead(v)
			for i := 0; i < 2; i++ {
				if _, err := f.p.Allocate(1020); !errors.Is(err, ErrTerminated) || errors.Is(err, ErrCorrupt) {
					t.Fatalf("Allocate #%d = %v, want ErrTerminated", i, err)
				}
			}
			if !f.r.Terminated() {
				t.Fatal("Ring.Terminated = false")
			}
		})
	}
}

// TestRingMisuse passes slices that are not outstanding records to Release,
// ReleaseBatch, Commit and CommitBatch: each must give ErrForeignPacket and
// change nothing.
//
// Setup: A (16 zero bytes), B (16 bytes of 0xFF), C committed; A and B
// received, C not; then D (16 zero bytes) and E (16 bytes of 0xFF)
// allocated and not committed.
func TestRingMisuse(t *testing.T) {
	type state struct {
		f             *rtFixture
		a, b, c, d, e []byte
		other         []byte // record A of another ring
	}
	setup := func(t *testing.T) *state {
		s := &state{f: rtNew(t, nil)}
		f := s.f
		s.a = f.alloc(16, 0)
		clear(s.a)
		f.commit(s.a)
		s.b = f.alloc(16, 0)
		for i := range s.b {
			s.b[i] = 0xFF
		}
		f.commit(s.b)
		s.c = f.send(16, 3)
		s.a, s.b = f.recv(), f.recv()
		s.d = f.alloc(16, 0)
		clear(s.d)
		s.e = f.alloc(16, 0)
		for i := range s.e {
			s.e[i] = 0xFF
		}
		g := rtNew(t, nil)
		s.other = g.send(16, 0)
		g.recv()
		return s
	}
	type side int
	const (
		consumerSide side = iota
		producerSide
	)
	tests := []struct {
		name string
		side side
		pkt  func(s *state) []byte
	}{
		{"nil", consumerSide, func(s *state) []byte { return nil }},
		{"empty", consumerSide, func(s *state) []byte { return []byte{} }},
		{"heap slice", consumerSide, func(s *state) []byte { return make([]byte, 16) }},
		{"other ring", consumerSide, func(s *state) []byte { return s.other }},
		{"header", consumerSide, func(s *state) []byte { return s.f.mem[:HeaderSize] }},
		{"data start", consumerSide, func(s *state) []byte { return s.f.mem[HeaderSize:] }},
		{"trailing area", consumerSide, func(s *state) []byte { return s.f.mem[HeaderSize+rtCap+8:] }},
		{"A[1:]", consumerSide, func(s *state) []byte { return s.a[1:] }},
		{"A[4:] zero payload", consumerSide, func(s *state) []byte { return s.a[4:] }},
		{"A[8:] zero payload", consumerSide, func(s *state) []byte { return s.a[8:] }},
		{"B[4:] 0xFF payload", consumerSide, func(s *state) []byte { return s.b[4:] }},
		{"C not received", consumerSide, func(s *state) []byte { return s.c }},
		{"D not committed", consumerSide, func(s *state) []byte { return s.d }},

		{"nil", producerSide, func(s *state) []byte { return nil }},
		{"empty", producerSide, func(s *state) []byte { return []byte{} }},
		{"heap slice", producerSide, func(s *state) []byte { return make([]byte, 16) }},
		{"other ring", producerSide, func(s *state) []byte { return s.other }},
		{"header", producerSide, func(s *state) []byte { return s.f.mem[:HeaderSize] }},
		{"trailing area", producerSide, func(s *state) []byte { return s.f.mem[HeaderSize+rtCap+8:] }},
		{"D[1:]", producerSide, func(s *state) []byte { return s.d[1:] }},
		{"D[4:] zero payload", producerSide, func(s *state) []byte { return s.d[4:] }},
		{"E[4:] 0xFF payload", producerSide, func(s *state) []byte { return s.e[4:] }},
		{"E[8:] 0xFF payload", producerSide, func(s *state) []byte { return s.e[8:] }},
		{"A received", producerSide, func(s *state) []byte { return s.a }},
		{"C committed", producerSide, func(s *state) []byte { return s.c }},
	}
	for _, tc := range tests {
		for _, batch := range []bool{false, true} {
			name := map[side]string{consumerSide: "Release", producerSide: "Commit"}[tc.side]
			if batch {
				name += "Batch"
			}
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				s := setup(t)
				f := s.f
				pkt := tc.pkt(s)
				snap, ps, cs := bytes.Clone(f.mem), *rtProducerState(f.p), *rtConsumerState(f.c)
				var err error
				rtNoPanic(t, name, func() {
					switch {
					case tc.side == consumerSide && !batch:
						err = f.c.Release(pkt)
					case tc.side == consumerSide:
						err = f.c.ReleaseBatch([][]byte{pkt})
					case !batch:
						err = f.p.Commit(pkt)
					default:
						err = f.p.CommitBatch([][]byte{pkt})
					}
				})
				if !errors.Is(err, ErrForeignPacket) {
					t.Errorf("%s = %v, want ErrForeignPacket", name, err)
				}
				if !bytes.Equal(f.mem, snap) {
					t.Errorf("%s changed the ring memory: %s", name, rtDiff(f.mem, snap))
				}
				if *rtProducerState(f.p) != ps || *rtConsumerState(f.c) != cs {
					t.Errorf("%s changed a side's state: producer %+v -> %+v, consumer %+v -> %+v",
						name, ps, *rtProducerState(f.p), cs, *rtConsumerState(f.c))
				}
				if f.p.Err() != nil || f.c.Err() != nil {
					t.Errorf("misuse set a sticky error: %v, %v", f.p.Err(), f.c.Err())
				}
				if t.Failed() {
					return
				}
				// The genuine records still work.
				f.release(s.b)
				f.release(s.a)
				f.commit(s.e)
				f.commit(s.d)
				f.expectHeadTail(40, 100)
				f.recvWant(40, 16, 3)
			})
		}
	}
}

// rtSideState is the private state of a side that misuse must not change.
type rtSideState struct{ a, b, c uint32 }

func rtProducerState(p *Producer) *rtSideState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &rtSideState{p.tail, p.tailRelease, p.head}
}

func rtConsumerState(c *Consumer) *rtSideState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &rtSideState{c.head, c.headRelease, c.tail}
}

func TestRingDoubleReleaseCommit(t *testing.T) {
	f := rtNew(t, nil)
	f.send(10, 0)
	f.send(20, 1)
	a, b := f.recv(), f.recv()
	c := f.alloc(30, 2)
	d := f.alloc(8, 3)

	foreign := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrForeignPacket) {
			t.Fatalf("%s = %v, want ErrForeignPacket", what, err)
		}
	}
	// Second release while the first is still behind an unreleased record.
	f.release(b)
	snap := bytes.Clone(f.mem)
	foreign("second Release of B", f.c.Release(b))
	foreign("second ReleaseBatch of B", f.c.ReleaseBatch([][]byte{b}))
	rtSameMem(t, f.mem, snap, "double Release")
	f.expectHeadTail(0, 40)
	// Once Head has moved past them.
	f.release(a)
	f.expectHeadTail(40, 40)
	snap = bytes.Clone(f.mem)
	foreign("Release of A after Head passed it", f.c.Release(a))
	foreign("Release of B after Head passed it", f.c.Release(b))
	rtSameMem(t, f.mem, snap, "Release of records behind Head")
	f.expectHeadTail(40, 40)

	// The same for Commit.
	f.commit(d)
	snap = bytes.Clone(f.mem)
	foreign("second Commit of D", f.p.Commit(d))
	foreign("second CommitBatch of D", f.p.CommitBatch([][]byte{d}))
	rtSameMem(t, f.mem, snap, "double Commit")
	f.expectHeadTail(40, 40)
	f.commit(c)
	f.expectHeadTail(40, 88)
	snap = bytes.Clone(f.mem)
	foreign("Commit of C after Tail passed it", f.p.Commit(c))
	foreign("Commit of D after Tail passed it", f.p.Commit(d))
	rtSameMem(t, f.mem, snap, "Commit of records behind Tail")
	f.expectHeadTail(40, 88)
	if f.p.Err() != nil || f.c.Err() != nil {
		t.Fatalf("misuse set a sticky error: %v, %v", f.p.Err(), f.c.Err())
	}
}

// TestRingCorruption plays a hostile peer writing into the shared header
// and record headers. Each case must give an error wrapping ErrCorrupt that
// is sticky, and nothing may panic.
func TestRingCorruption(t *testing.T) {
	type side int
	const (
		consumerSide side = iota // the producer is hostile
		producerSide             // the consumer is hostile
	)
	// ops is the call that must fail and the next call that must return
	// the same sticky error. When the failing call is a Release or Commit,
	// its record counts as returned, so the next call returns another one.
	type ops struct{ first, next func() error }
	same := func(op func() error) ops { return ops{op, op} }
	tests := []struct {
		name string
		side side
		// setup builds the state and plays the hostile peer.
		setup func(f *rtFixture) ops
	}{
		// --- hostile producer, seen by the consumer ---
		{"tail misaligned", consumerSide, func(f *rtFixture) ops {
			f.pokeTail(6)
			return same(rtRecvOp(f))
		}},
		{"tail misaligned after records", consumerSide, func(f *rtFixture) ops {
			f.send(10, 0)
			f.release(f.recv())
			f.pokeTail(f.tail() + 2)
			return same(rtRecvOp(f))
		}},
		{"tail moved back behind a received record", consumerSide, func(f *rtFixture) ops {
			f.send(10, 0)
			f.send(20, 1)
			f.recv()
			f.recv()
			f.pokeTail(16) // B, at 16, was received
			return same(rtRecvOp(f))
		}},
		{"tail moved back to the unreleased head", consumerSide, func(f *rtFixture) ops {
			f.send(10, 0)
			f.send(20, 1)
			f.recv()
			f.recv()
			f.pokeTail(0)
			return same(rtRecvOp(f))
		}},
		{"tail moved back after a partial release", consumerSide, func(f *rtFixture) ops {
			for i, r := range rtABC {
				f.send(r.size, uint32(i))
			}
			a := f.recv()
			f.recv()
			f.recv()
			f.release(a)
			f.pokeTail(40) // C, at 40, was received
			return same(rtRecvOp(f))
		}},
		{"record size 0x10000", consumerSide, func(f *rtFixture) ops {
			f.pokeSize(0, PacketSizeMax+1)
			f.pokeTail(0x10008) // room for it, so only the size check can catch it
			return same(rtRecvOp(f))
		}},
		{"record size with the pending bit", consumerSide, func(f *rtFixture) ops {
			f.alloc(5, 0) // allocated, not committed: Size has 0x80000000
			f.pokeTail(12)
			return same(rtRecvOp(f))
		}},
		{"record size 0xFFFFFFFF", consumerSide, func(f *rtFixture) ops {
			f.pokeSize(0, 0xFFFFFFFF)
			f.pokeTail(rtCap - 4)
			return same(rtRecvOp(f))
		}},
		{"record runs past Tail", consumerSide, func(f *rtFixture) ops {
			f.pokeSize(0, 100)
			f.pokeTail(8)
			return same(rtRecvOp(f))
		}},
		{"1-byte record with Tail 4", consumerSide, func(f *rtFixture) ops {
			f.pokeSize(0, 1)
			f.pokeTail(4)
			return same(rtRecvOp(f))
		}},
		{"second record runs past Tail", consumerSide, func(f *rtFixture) ops {
			f.send(10, 0) // 0..16
			f.pokeSize(16, 9)
			f.pokeTail(16 + 12) // the record at 16 needs 16 bytes
			f.recvWant(0, 10, 0)
			return same(rtRecvOp(f))
		}},
		{"record at the end runs past Tail", consumerSide, func(f *rtFixture) ops {
			f.advanceTo(rtCap - 8)
			f.pokeSize(rtCap-8, PacketSizeMax)
			f.pokeTail(0x100) // wrapped, but the record needs 0x10004 bytes
			return same(rtRecvOp(f))
		}},
		{"received size rewritten too large", consumerSide, func(f *rtFixture) ops {
			f.send(100, 0)
			f.send(10, 1)
			a, b := f.recv(), f.recv()
			f.pokeSize(0, PacketSizeMax+1)
			return ops{func() error { return f.c.Release(a) }, func() error { return f.c.Release(b) }}
		}},
		{"received size rewritten past what was received", consumerSide, func(f *rtFixture) ops {
			f.send(10, 0)
			f.send(10, 1)
			a, b := f.recv(), f.recv()
			f.send(20, 2) // committed, not received
			f.pokeSize(0, 200)
			return ops{func() error { return f.c.Release(a) }, func() error { return f.c.Release(b) }}
		}},
		{"received size rewritten smaller", consumerSide, func(f *rtFixture) ops {
			a0 := f.alloc(100, 0)
			clear(a0) // zero payload: reads as zero-length records
			f.commit(a0)
			f.send(10, 1)
			a, b := f.recv(), f.recv()
			f.pokeSize(0, 8) // A now ends in the middle of its payload
			return ops{func() error { return f.c.Release(a) }, func() error { return f.c.Release(b) }}
		}},
		{"received size rewritten with the released bit", consumerSide, func(f *rtFixture) ops {
			f.send(100, 0)
			f.send(10, 1)
			a, b := f.recv(), f.recv()
			f.pokeSize(0, 100|flagBit) // the producer "releases" A itself
			return ops{func() error { return f.c.Release(a) }, func() error { return f.c.Release(b) }}
		}},
		{"received size rewritten, batch", consumerSide, func(f *rtFixture) ops {
			f.send(10, 0)
			f.send(10, 1)
			f.send(10, 2)
			a, b, c := f.recv(), f.recv(), f.recv()
			f.pokeSize(16, PacketSizeMax+1)
			return ops{
				func() error { return f.c.ReleaseBatch([][]byte{a, b}) },
				func() error { return f.c.ReleaseBatch([][]byte{c}) },
			}
		}},

		// --- hostile consumer, seen by the producer ---
		{"head misaligned", producerSide, func(f *rtFixture) ops {
			f.fillRing(1020) // the producer looks at Head again only when full
			f.pokeHead(2)
			return same(rtAllocOp(f))
		}},
		{"head beyond published records", producerSide, func(f *rtFixture) ops {
			pkts := f.fillRing(1020)
			f.commit(pkts[0])
			f.commit(pkts[1]) // Tail = 2048
			f.pokeHead(3 * 1024)
			return same(rtAllocOp(f))
		}},
		{"head at the allocation tail", producerSide, func(f *rtFixture) ops {
			pkts := f.fillRing(1020)
			f.commit(pkts[0]) // Tail = 1024
			f.pokeHead(127 * 1024)
			return same(rtAllocOp(f))
		}},
		{"head beyond Tail, all committed", producerSide, func(f *rtFixture) ops {
			for _, pkt := range f.fillRing(1020) {
				f.commit(pkt)
			}
			f.pokeHead(127*1024 + 512)
			return same(rtAllocOp(f))
		}},
		{"head moved backwards", producerSide, func(f *rtFixture) ops {
			for _, pkt := range f.fillRing(1020) {
				f.commit(pkt)
			}
			for i := 0; i < 4; i++ {
				f.release(f.recv())
			}
			f.send(1020, 0) // the producer sees Head = 4096; Tail = 0
			f.pokeHead(2048)
			return same(rtAllocOp(f))
		}},
		{"head moved back by one slot", producerSide, func(f *rtFixture) ops {
			for _, pkt := range f.fillRing(1020) {
				f.commit(pkt)
			}
			f.release(f.recv())
			f.send(1020, 0) // the producer sees Head = 1024; Tail = 0
			f.pokeHead(1020)
			return same(rtAllocOp(f))
		}},
		{"allocated size rewritten too large, pending bit kept", producerSide, func(f *rtFixture) ops {
			a, b := f.alloc(10, 0), f.alloc(10, 1)
			f.pokeSize(0, (PacketSizeMax+1)|flagBit)
			return ops{func() error { return f.p.Commit(a) }, func() error { return f.p.Commit(b) }}
		}},
		{"allocated size rewritten larger, pending bit kept", producerSide, func(f *rtFixture) ops {
			a, b := f.alloc(10, 0), f.alloc(10, 1)
			f.pokeSize(0, 200|flagBit)
			return ops{func() error { return f.p.Commit(a) }, func() error { return f.p.Commit(b) }}
		}},
		{"allocated size rewritten too large, pending bit cleared", producerSide, func(f *rtFixture) ops {
			a, b := f.alloc(10, 0), f.alloc(10, 1)
			f.pokeSize(0, PacketSizeMax+1)
			return ops{func() error { return f.p.Commit(a) }, func() error { return f.p.Commit(b) }}
		}},
		{"allocated record's pending bit cleared", producerSide, func(f *rtFixture) ops {
			a, b := f.alloc(10, 0), f.alloc(10, 1)
			f.pokeSize(0, 10) // the consumer "commits" A itself
			return ops{func() error { return f.p.Commit(a) }, func() error { return f.p.Commit(b) }}
		}},
		{"allocated size rewritten smaller", producerSide, func(f *rtFixture) ops {
			a, b := f.alloc(100, 0), f.alloc(10, 1)
			clear(a)                 // zero payload: reads as zero-length records
			f.pokeSize(0, 0|flagBit) // A now ends in the middle of its payload
			return ops{func() error { return f.p.Commit(a) }, func() error { return f.p.Commit(b) }}
		}},
		{"allocated size rewritten, batch", producerSide, func(f *rtFixture) ops {
			a, b, c := f.alloc(10, 0), f.alloc(10, 1), f.alloc(10, 2)
			f.pokeSize(16, (PacketSizeMax+1)|flagBit)
			return ops{
				func() error { return f.p.CommitBatch([][]byte{a, b}) },
				func() error { return f.p.CommitBatch([][]byte{c}) },
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := rtNew(t, nil)
			var op ops
			rtNoPanic(t, "setup", func() { op = tc.setup(f) })
			var err1, err2 error
			rtNoPanic(t, "first call", func() { err1 = op.first() })
			if !errors.Is(err1, ErrCorrupt) {
				t.Fatalf("first call = %v, want ErrCorrupt", err1)
			}
			rtNoPanic(t, "next call", func() { err2 = op.next() })
			if err2 != err1 {
				t.Errorf("next call = %v, want the same sticky error %v", err2, err1)
			}
			var sideErr, otherErr error
			rtNoPanic(t, "other calls", func() {
				if tc.side == consumerSide {
					sideErr = f.c.Err()
					_, otherErr = f.c.Receive()
				} else {
					sideErr = f.p.Err()
					_, otherErr = f.p.Allocate(0)
				}
			})
			if sideErr != err1 || otherErr != err1 {
				t.Errorf("Err() = %v and the next Receive/Allocate = %v, want the sticky %v", sideErr, otherErr, err1)
			}
			// The other side is not affected by this side's verdict.
			if tc.side == consumerSide && f.p.Err() != nil {
				t.Errorf("producer Err = %v", f.p.Err())
			}
			if tc.side == producerSide && f.c.Err() != nil {
				t.Errorf("consumer Err = %v", f.c.Err())
			}
		})
	}
}

func rtRecvOp(f *rtFixture) func() error {
	return func() error { _, err := f.c.Receive(); return err }
}

func rtAllocOp(f *rtFixture) func() error {
	return func() error { _, err := f.p.Allocate(PacketSizeMax); return err }
}

// TestRingCorruptionNoPanic throws hostile header and record values at both
// sides and only checks that nothing panics and that the errors are the
// documented ones.
func TestRingCorruptionNoPanic(t *testing.T) {
	values := []uint32{0, 1, 2, 3, 4, 8, 12, 0xFFFC, 0xFFFF, 0x10000, 0x10004, rtCap - 8, rtCap - 4, rtCap - 1,
		rtCap, 0x7FFFFFFF, 0x80000000, 0x80000004, 0x8000FFFF, 0xFFFFFFFC, 0xFFFFFFFF}
	allowed := func(err error) bool {
		return err == nil || errors.Is(err, ErrEmpty) || errors.Is(err, ErrFull) ||
			errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTerminated) || errors.Is(err, ErrForeignPacket)
	}
	mem := make([]byte, RingSize(rtCap))
	for _, start := range []uint32{0, rtCap - 8} {
		for _, tail := range values {
			for _, size := range values {
				clear(mem)
				binary.NativeEndian.PutUint32(mem[0:], start)
				binary.NativeEndian.PutUint32(mem[4:], start)
				r, err := New(mem, rtCap)
				if err != nil {
					t.Fatal(err)
				}
				f := &rtFixture{t: t, mem: mem, r: r, p: NewProducer(r, nil), c: NewConsumer(r, nil)}
				f.send(12, 0)
				a := f.recv()
				f.pokeSize(start, size)
				f.pokeTail(tail)
				f.pokeSize((start+16)&rtMask, size)
				rtNoPanic(t, fmt.Sprintf("start %#x tail %#x size %#x", start, tail, size), func() {
					for i := 0; i < 3; i++ {
						pkt, err := f.c.Receive()
						if !allowed(err) {
							t.Fatalf("Receive = %v", err)
						}
						if err == nil && len(pkt) > PacketSizeMax {
							t.Fatalf("Receive returned %d bytes", len(pkt))
						}
					}
					if err := f.c.Release(a); !allowed(err) {
						t.Fatalf("Release = %v", err)
					}
					f.pokeHead(size)
					for i := 0; i < 3; i++ {
						pkt, err := f.p.Allocate(int(tail & 0xFFFF))
						if !allowed(err) {
							t.Fatalf("Allocate = %v", err)
						}
						if err == nil {
							if err := f.p.Commit(pkt); !allowed(err) {
								t.Fatalf("Commit = %v", err)
							}
						}
					}
				})
			}
		}
	}
}

func TestRingReceiveBatch(t *testing.T) {
	t.Run("partial", func(t *testing.T) {
		f := rtNew(t, nil)
		for i, r := range rtABC {
			f.send(r.size, uint32(i))
		}
		pkts := make([][]byte, 5)
		n, err := f.c.ReceiveBatch(pkts)
		if n != 3 || err != nil {
			t.Fatalf("ReceiveBatch = %d, %v; want 3, nil", n, err)
		}
		for i, r := range rtABC {
			if f.recOff(pkts[i]) != r.off || !bytes.Equal(pkts[i], rtPattern(r.size, uint32(i))) {
				t.Fatalf("record %d wrong", i)
			}
		}
		if pkts[3] != nil || pkts[4] != nil {
			t.Fatalf("ReceiveBatch wrote past n")
		}
		if n, err := f.c.ReceiveBatch(pkts); n != 0 || !errors.Is(err, ErrEmpty) {
			t.Fatalf("ReceiveBatch on empty = %d, %v; want 0, ErrEmpty", n, err)
		}
		if n, err := f.c.ReceiveBatch(nil); n != 0 || err != nil {
			t.Fatalf("ReceiveBatch(nil) = %d, %v; want 0, nil", n, err)
		}
		f.expectHeadTail(0, rtABCEnd)
	})
	t.Run("exact and more than one batch", func(t *testing.T) {
		f := rtNew(t, nil)
		for i := 0; i < 7; i++ {
			f.send(i, uint32(i))
		}
		pkts := make([][]byte, 4)
		var got []int
		for {
			n, err := f.c.ReceiveBatch(pkts)
			if errors.Is(err, ErrEmpty) {
				break
			}
			if err != nil || n == 0 {
				t.Fatalf("ReceiveBatch = %d, %v", n, err)
			}
			for _, pkt := range pkts[:n] {
				got = append(got, len(pkt))
				f.release(pkt)
			}
		}
		if fmt.Sprint(got) != "[0 1 2 3 4 5 6]" {
			t.Fatalf("received sizes %v", got)
		}
	})
	t.Run("corruption after the first", func(t *testing.T) {
		f := rtNew(t, nil)
		f.send(10, 0)           // 0..16
		f.pokeSize(16, 0x10000) // a bad record after it
		f.pokeTail(0x10010)
		pkts := make([][]byte, 4)
		n, err := f.c.ReceiveBatch(pkts)
		if n != 1 || err != nil {
			t.Fatalf("ReceiveBatch = %d, %v; want 1, nil", n, err)
		}
		if f.recOff(pkts[0]) != 0 || len(pkts[0]) != 10 {
			t.Fatalf("first record wrong")
		}
		sticky := f.c.Err()
		if !errors.Is(sticky, ErrCorrupt) {
			t.Fatalf("Err = %v, want ErrCorrupt", sticky)
		}
		if n, err := f.c.ReceiveBatch(pkts); n != 0 || err != sticky {
			t.Fatalf("next ReceiveBatch = %d, %v; want 0, %v", n, err, sticky)
		}
	})
	t.Run("terminated with records committed", func(t *testing.T) {
		f := rtNew(t, nil)
		f.send(10, 0)
		f.send(10, 1)
		f.recv() // has seen Tail past B
		f.p.Terminate()
		// As WintunReceivePacket: termination wins over committed records.
		pkts := make([][]byte, 4)
		for i := 0; i < 2; i++ {
			if n, err := f.c.ReceiveBatch(pkts); n != 0 || !errors.Is(err, ErrTerminated) || pkts[0] != nil {
				t.Fatalf("ReceiveBatch #%d = %d, %v; want 0, ErrTerminated", i, n, err)
			}
		}
	})
}

func TestRingReleaseBatch(t *testing.T) {
	setup := func(t *testing.T) (*rtFixture, [][]byte) {
		f := rtNew(t, nil)
		var pkts [][]byte
		for i, r := range rtABC {
			f.send(r.size, uint32(i))
		}
		for range rtABC {
			pkts = append(pkts, f.recv())
		}
		return f, pkts
	}
	t.Run("out of order", func(t *testing.T) {
		f, p := setup(t)
		if err := f.c.ReleaseBatch([][]byte{p[2], p[0]}); err != nil {
			t.Fatal(err)
		}
		f.expectHeadTail(16, rtABCEnd)
		if err := f.c.ReleaseBatch([][]byte{p[1]}); err != nil {
			t.Fatal(err)
		}
		f.expectHeadTail(rtABCEnd, rtABCEnd)
		if err := f.c.ReleaseBatch(nil); err != nil {
			t.Fatal(err)
		}
		f.expectHeadTail(rtABCEnd, rtABCEnd)
	})
	t.Run("all at once", func(t *testing.T) {
		f, p := setup(t)
		if err := f.c.ReleaseBatch([][]byte{p[1], p[2], p[0]}); err != nil {
			t.Fatal(err)
		}
		f.expectHeadTail(rtABCEnd, rtABCEnd)
		for _, r := range rtABC {
			if got := f.sizeWord(r.off); got != uint32(r.size)|flagBit {
				t.Fatalf("Size word at %#x = %#x, want released", r.off, got)
			}
		}
	})
	t.Run("error in the middle", func(t *testing.T) {
		f, p := setup(t)
		err := f.c.ReleaseBatch([][]byte{p[0], make([]byte, 3), p[2], p[0]})
		if !errors.Is(err, ErrForeignPacket) {
			t.Fatalf("ReleaseBatch = %v, want ErrForeignPacket", err)
		}
		// The good ones were released anyway.
		f.expectHeadTail(16, rtABCEnd)
		if got := f.sizeWord(40); got != 30|flagBit {
			t.Fatalf("C not released: %#x", got)
		}
		if err := f.c.ReleaseBatch([][]byte{p[1], p[1]}); !errors.Is(err, ErrForeignPacket) {
			t.Fatalf("ReleaseBatch with a duplicate = %v, want ErrForeignPacket", err)
		}
		f.expectHeadTail(rtABCEnd, rtABCEnd)
		if f.c.Err() != nil {
			t.Fatalf("Err = %v", f.c.Err())
		}
	})
}

func TestRingAllocateBatch(t *testing.T) {
	t.Run("all fit", func(t *testing.T) {
		f := rtNew(t, nil)
		pkts := make([][]byte, 4)
		n, err := f.p.AllocateBatch([]int{10, 20, 30}, pkts)
		if n != 3 || err != nil {
			t.Fatalf("AllocateBatch = %d, %v", n, err)
		}
		for i, r := range rtABC {
			if f.recOff(pkts[i]) != r.off || len(pkts[i]) != r.size || f.sizeWord(r.off) != uint32(r.size)|flagBit {
				t.Fatalf("record %d wrong", i)
			}
		}
		if pkts[3] != nil {
			t.Fatal("AllocateBatch wrote past n")
		}
		if n, err := f.p.AllocateBatch(nil, nil); n != 0 || err != nil {
			t.Fatalf("AllocateBatch(nil) = %d, %v", n, err)
		}
		f.expectHeadTail(0, 0)
	})
	t.Run("partial when full", func(t *testing.T) {
		f := rtNew(t, nil)
		pkts := f.fillRing(1020) // 1020 bytes left
		privTail := f.p.tail
		out := make([][]byte, 3)
		n, err := f.p.AllocateBatch([]int{500, 500, 100}, out) // 504 + 504 fit, then 104 does not
		if n != 2 || err != nil {
			t.Fatalf("AllocateBatch = %d, %v; want 2, nil", n, err)
		}
		if f.recOff(out[0]) != privTail || f.recOff(out[1]) != privTail+504 || out[2] != nil {
			t.Fatal("records at the wrong place")
		}
		snap := bytes.Clone(f.mem)
		if n, err := f.p.AllocateBatch([]int{100, 0}, out); n != 0 || !errors.Is(err, ErrFull) {
			t.Fatalf("AllocateBatch = %d, %v; want 0, ErrFull", n, err)
		}
		rtSameMem(t, f.mem, snap, "AllocateBatch returning ErrFull")
		first, second := out[0], out[1]
		if n, err := f.p.AllocateBatch([]int{8}, out); n != 1 || err != nil {
			t.Fatalf("AllocateBatch into the last 12 bytes = %d, %v", n, err)
		}
		last := out[0]
		if err := f.p.CommitBatch(append(pkts, first, second, last, last[:0:0])); !errors.Is(err, ErrForeignPacket) {
			t.Fatalf("CommitBatch with a duplicate = %v, want ErrForeignPacket", err)
		}
		f.expectHeadTail(0, rtCap-4)
	})
	t.Run("bad size after the first", func(t *testing.T) {
		f := rtNew(t, nil)
		out := make([][]byte, 3)
		n, err := f.p.AllocateBatch([]int{10, -1, 20}, out)
		if n != 1 || err != nil || out[1] != nil {
			t.Fatalf("AllocateBatch = %d, %v; want 1, nil", n, err)
		}
		n, err = f.p.AllocateBatch([]int{-1, 20}, out)
		if n != 0 || !errors.Is(err, ErrPacketSize) {
			t.Fatalf("AllocateBatch = %d, %v; want 0, ErrPacketSize", n, err)
		}
		if f.p.tail != 16 {
			t.Fatalf("tail %#x, want 16", f.p.tail)
		}
	})
	t.Run("terminated", func(t *testing.T) {
		f := rtNew(t, nil)
		f.p.Terminate()
		if n, err := f.p.AllocateBatch([]int{1, 2}, make([][]byte, 2)); n != 0 || !errors.Is(err, ErrTerminated) {
			t.Fatalf("AllocateBatch = %d, %v; want 0, ErrTerminated", n, err)
		}
	})
}

// rtCountingWaker counts Signals; its Wait is never expected to be called.
type rtCountingWaker struct {
	signals atomic.Int32
	waits   atomic.Int32
}

func (w *rtCountingWaker) Signal() { w.signals.Add(1) }
func (w *rtCountingWaker) Wait(ctx context.Context) error {
	w.waits.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

func TestRingCommitBatch(t *testing.T) {
	w := &rtCountingWaker{}
	f := rtNew(t, w)
	f.r.alertable.Store(1) // as a sleeping consumer does
	out := make([][]byte, 3)
	if n, err := f.p.AllocateBatch([]int{10, 20, 30}, out); n != 3 || err != nil {
		t.Fatal(n, err)
	}
	// Tail does not move: no signal.
	if err := f.p.CommitBatch([][]byte{out[2]}); err != nil {
		t.Fatal(err)
	}
	f.expectHeadTail(0, 0)
	if n := w.signals.Load(); n != 0 {
		t.Fatalf("%d signals without a Tail move", n)
	}
	// C, then A and B: Tail published once, one signal.
	if err := f.p.CommitBatch([][]byte{out[1], out[0]}); err != nil {
		t.Fatal(err)
	}
	f.expectHeadTail(0, rtABCEnd)
	if n := w.signals.Load(); n != 1 {
		t.Fatalf("%d signals for one CommitBatch, want 1", n)
	}
	if err := f.p.CommitBatch(nil); err != nil || w.signals.Load() != 1 {
		t.Fatalf("CommitBatch(nil) = %v, %d signals", err, w.signals.Load())
	}

	// Error in the middle: the others are still committed.
	out2 := make([][]byte, 3)
	if n, err := f.p.AllocateBatch([]int{1, 2, 3}, out2); n != 3 || err != nil {
		t.Fatal(n, err)
	}
	err := f.p.CommitBatch([][]byte{out2[0], make([]byte, 2), out2[1], out2[2], out2[0]})
	if !errors.Is(err, ErrForeignPacket) {
		t.Fatalf("CommitBatch = %v, want ErrForeignPacket", err)
	}
	f.expectHeadTail(0, rtABCEnd+8+8+8)
	if n := w.signals.Load(); n != 2 {
		t.Fatalf("%d signals, want 2", n)
	}
	if f.p.Err() != nil {
		t.Fatalf("Err = %v", f.p.Err())
	}
	if w.waits.Load() != 0 {
		t.Fatal("the producer called Wait")
	}
}

// TestRingSignalOnlyWhenAlertable: the producer signals the waker when it
// moves Tail while Alertable is set, and Terminate always signals.
func TestRingSignalOnlyWhenAlertable(t *testing.T) {
	w := &rtCountingWaker{}
	f := rtNew(t, w)
	f.send(1, 0)
	if n := w.signals.Load(); n != 0 {
		t.Fatalf("%d signals with Alertable = 0", n)
	}
	f.r.alertable.Store(1)
	f.send(1, 0)
	if n := w.signals.Load(); n != 1 {
		t.Fatalf("%d signals with Alertable = 1, want 1", n)
	}
	c := f.alloc(1, 0)
	d := f.alloc(1, 0)
	f.commit(d) // Tail cannot move past C
	if n := w.signals.Load(); n != 1 {
		t.Fatalf("%d signals without a Tail move, want 1", n)
	}
	f.commit(c)
	if n := w.signals.Load(); n != 2 {
		t.Fatalf("%d signals, want 2", n)
	}
	f.r.alertable.Store(0)
	f.p.Terminate()
	if n := w.signals.Load(); n != 3 {
		t.Fatalf("%d signals after Terminate, want 3", n)
	}
	f.c.Terminate()
	if n := w.signals.Load(); n != 4 {
		t.Fatalf("%d signals after Consumer.Terminate, want 4", n)
	}
}

// rtSpyWaker is a ChanWaker that reports each call to Wait.
type rtSpyWaker struct {
	*ChanWaker
	entered chan struct{}
	waits   atomic.Int32
}

func rtNewSpy() *rtSpyWaker {
	return &rtSpyWaker{ChanWaker: NewChanWaker(), entered: make(chan struct{}, 100)}
}

func (w *rtSpyWaker) Wait(ctx context.Context) error {
	w.waits.Add(1)
	select {
	case w.entered <- struct{}{}:
	default:
	}
	return w.ChanWaker.Wait(ctx)
}

// rtParkedInWait counts goroutines blocked in a select or channel receive
// inside c.Wait, whether on the waker or on another waiter.
func rtParkedInWait(c *Consumer) int {
	frame := fmt.Sprintf("ring.(*Consumer).Wait(%p", c)
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		first, _, _ := strings.Cut(g, "\n")
		if strings.Contains(g, frame) &&
			(strings.Contains(first, "[select") || strings.Contains(first, "[chan receive")) {
			n++
		}
	}
	return n
}

// rtAwait polls cond until it holds; the bound only turns a hang into a
// failure.
func rtAwait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(rtBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// rtStartWaiters starts n goroutines in Wait and returns their results.
func rtStartWaiters(ctx context.Context, c *Consumer, n int) chan error {
	done := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { done <- c.Wait(ctx) }()
	}
	return done
}

func rtCollect(t *testing.T, done chan error, n int, want error) {
	t.Helper()
	timeout := time.After(rtBound)
	for i := 0; i < n; i++ {
		select {
		case err := <-done:
			if !rtIsOrNil(err, want) {
				t.Fatalf("Wait = %v, want %v", err, want)
			}
		case <-timeout:
			t.Fatalf("%d of %d waiters still blocked", n-i, n)
		}
	}
}

func TestRingWait(t *testing.T) {
	t.Run("no waker", func(t *testing.T) {
		f := rtNew(t, nil)
		if err := f.c.Wait(context.Background()); err == nil {
			t.Fatal("Wait without a waker = nil")
		}
	})
	t.Run("ready", func(t *testing.T) {
		w := rtNewSpy()
		f := rtNew(t, w)
		f.send(10, 0)
		// A cancelled context proves Wait did not need to block.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := f.c.Wait(ctx); err != nil {
			t.Fatalf("Wait with a record ready = %v, want nil", err)
		}
		if w.waits.Load() != 0 || f.alertable() != 0 {
			t.Fatalf("Wait slept (%d) or left Alertable = %d", w.waits.Load(), f.alertable())
		}
		f.recvWant(0, 10, 0)
		// A record received but not released is not a reason to wake.
		if err := f.c.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait with nothing new = %v, want context.Canceled", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		f := rtNew(t, rtNewSpy())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := f.c.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
		ctx, cancel = context.WithDeadline(context.Background(), time.Unix(1, 0))
		defer cancel()
		if err := f.c.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want context.DeadlineExceeded", err)
		}
		if f.alertable() != 0 {
			t.Fatalf("Alertable = %d after Wait", f.alertable())
		}
	})
	t.Run("cancelled while blocked", func(t *testing.T) {
		w := rtNewSpy()
		f := rtNew(t, w)
		ctx, cancel := context.WithCancel(context.Background())
		done := rtStartWaiters(ctx, f.c, 1)
		<-w.entered
		rtAwait(t, "the waiter to block", func() bool { return rtParkedInWait(f.c) == 1 })
		if f.alertable() != 1 {
			t.Fatalf("Alertable = %d while the consumer sleeps", f.alertable())
		}
		cancel()
		rtCollect(t, done, 1, context.Canceled)
		if f.alertable() != 0 {
			t.Fatalf("Alertable = %d after Wait", f.alertable())
		}
	})
	t.Run("woken by Commit", func(t *testing.T) {
		w := rtNewSpy()
		f := rtNew(t, w)
		ctx, cancel := context.WithTimeout(context.Background(), rtBound)
		defer cancel()
		done := rtStartWaiters(ctx, f.c, 1)
		<-w.entered
		rtAwait(t, "the waiter to block", func() bool { return rtParkedInWait(f.c) == 1 })
		f.send(10, 0)
		rtCollect(t, done, 1, nil)
		f.recvWant(0, 10, 0)
	})
	for _, side := range []string{"producer", "consumer"} {
		t.Run("woken by "+side+" Terminate", func(t *testing.T) {
			w := rtNewSpy()
			f := rtNew(t, w)
			ctx, cancel := context.WithTimeout(context.Background(), rtBound)
			defer cancel()
			done := rtStartWaiters(ctx, f.c, 1)
			<-w.entered
			rtAwait(t, "the waiter to block", func() bool { return rtParkedInWait(f.c) == 1 })
			if side == "producer" {
				f.p.Terminate()
			} else {
				f.c.Terminate()
			}
			rtCollect(t, done, 1, ErrTerminated)
		})
	}
	for _, how := range []string{"Commit", "producer Terminate", "consumer Terminate"} {
		t.Run("several waiters woken by "+how, func(t *testing.T) {
			const n = 5
			w := rtNewSpy()
			f := rtNew(t, w)
			ctx, cancel := context.WithTimeout(context.Background(), rtBound)
			defer cancel()
			done := rtStartWaiters(ctx, f.c, n)
			rtAwait(t, "all waiters to block", func() bool { return rtParkedInWait(f.c) == n })
			if w.waits.Load() != 1 {
				t.Fatalf("%d goroutines called the waker's Wait, want 1", w.waits.Load())
			}
			var want error
			switch how {
			case "Commit":
				f.send(10, 0)
			case "producer Terminate":
				f.p.Terminate()
				want = ErrTerminated
			default:
				f.c.Terminate()
				want = ErrTerminated
			}
			rtCollect(t, done, n, want)
		})
	}
	t.Run("sleeper cancelled, others keep waiting", func(t *testing.T) {
		w := rtNewSpy()
		f := rtNew(t, w)
		ctx1, cancel1 := context.WithCancel(context.Background())
		done1 := rtStartWaiters(ctx1, f.c, 1)
		<-w.entered // waiter 1 sleeps on the waker
		ctx, cancel := context.WithTimeout(context.Background(), rtBound)
		defer cancel()
		done := rtStartWaiters(ctx, f.c, 3)
		rtAwait(t, "all waiters to block", func() bool { return rtParkedInWait(f.c) == 4 })
		cancel1()
		rtCollect(t, done1, 1, context.Canceled)
		<-w.entered // another waiter took over the waker
		rtAwait(t, "the others to block again", func() bool { return rtParkedInWait(f.c) == 3 })
		select {
		case err := <-done:
			t.Fatalf("a waiter returned %v with nothing to receive", err)
		default:
		}
		f.send(10, 0)
		rtCollect(t, done, 3, nil)
	})
}

// TestRingReceiveReadsOnlyItsRecord: Receive must not read any byte past
// the record it returns. Here the producer has written the Size word of the
// next, unpublished record right after it; nothing orders that write before
// the consumer's Receive, so under -race any read of it is reported as a
// data race, whatever the interleaving: the producer goroutine parks after
// the write and the test only looks at its stack before receiving.
func TestRingReceiveReadsOnlyItsRecord(t *testing.T) {
	f := rtNew(t, nil)
	proceed, done := make(chan struct{}), make(chan error, 1)
	go func() {
		defer close(done)
		a, err := f.p.Allocate(8) // payload ends where the next Size word starts
		if err == nil {
			rtFill(a, 1)
			err = f.p.Commit(a)
		}
		if err == nil {
			_, err = f.p.Allocate(8) // writes the next Size word, unpublished
		}
		if err != nil {
			done <- err
			return
		}
		<-proceed
	}()
	rtAwait(t, "the producer to park", func() bool {
		return rtParked("TestRingReceiveReadsOnlyItsRecord.func1", "[chan receive") == 1
	})
	f.recvWant(0, 8, 1)
	close(proceed)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// rtParked counts goroutines in a frame containing fn whose state starts
// with state.
func rtParked(fn, state string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		first, _, _ := strings.Cut(g, "\n")
		if strings.Contains(g, fn) && strings.Contains(first, state) {
			n++
		}
	}
	return n
}

// TestRingWaitLoop moves records one at a time from a producer goroutine to
// a consumer that waits whenever the ring is empty: a lost wake-up makes
// Wait block until the bound.
func TestRingWaitLoop(t *testing.T) {
	const records = 2000
	w := NewChanWaker()
	f := rtNew(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), rtBound)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	perr := make(chan error, 1)
	go func() {
		defer wg.Done()
		for i := 0; i < records; i++ {
			size := i % 200
			for {
				pkt, err := f.p.Allocate(size)
				if errors.Is(err, ErrFull) {
					if ctx.Err() != nil {
						perr <- ctx.Err()
						return
					}
					runtime.Gosched()
					continue
				}
				if err != nil {
					perr <- err
					return
				}
				rtFill(pkt, uint32(i))
				if err := f.p.Commit(pkt); err != nil {
					perr <- err
					return
				}
				break
			}
		}
	}()
	for i := 0; i < records; {
		pkt, err := f.c.Receive()
		if errors.Is(err, ErrEmpty) {
			if err := f.c.Wait(ctx); err != nil {
				t.Fatalf("Wait before record %d: %v", i, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if !bytes.Equal(pkt, rtPattern(i%200, uint32(i))) {
			t.Fatalf("record %d wrong", i)
		}
		f.release(pkt)
		i++
	}
	wg.Wait()
	select {
	case err := <-perr:
		t.Fatalf("producer: %v", err)
	default:
	}
	f.expectEmpty()
}
