package ring

// The ring in memory: capacities, sizes, New on valid and invalid memory,
// and sides made over a header another process wrote.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

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
	if addr(big)%8 != 0 {
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
