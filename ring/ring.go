package ring

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
)

// Protocol constants, identical to Wintun's.
const (
	// HeaderSize is the size of the shared Head, Tail, Alertable header.
	HeaderSize = 12
	// TrailingSize is the slack after capacity that lets a record starting
	// near the end stay contiguous.
	TrailingSize = 0x10000
	// CapacityMin is the smallest ring capacity, 128 KiB.
	CapacityMin = 0x20000
	// CapacityMax is the largest ring capacity, 64 MiB.
	CapacityMax = 0x4000000
	// PacketSizeMax is the largest record payload.
	PacketSizeMax = 0xFFFF
	// Alignment is the record alignment and the size of a record header.
	Alignment = 4

	// flagBit marks a record as pending (producer side, until Commit) or
	// released (consumer side, after Release).
	flagBit = 0x80000000
	// terminated is the value either side stores to end the ring.
	terminated = 0xFFFFFFFF
)

// RingSize returns the length of the memory region that holds one ring of
// the given capacity: HeaderSize + capacity + TrailingSize.
func RingSize(capacity uint32) int {
	return HeaderSize + int(capacity) + TrailingSize
}

// CheckCapacity returns an error wrapping ErrInvalidCapacity unless
// capacity is a power of two from CapacityMin to CapacityMax.
func CheckCapacity(capacity uint32) error {
	if capacity < CapacityMin || capacity > CapacityMax || capacity&(capacity-1) != 0 {
		return fmt.Errorf("%w: %#x is not a power of two from %#x to %#x",
			ErrInvalidCapacity, capacity, CapacityMin, CapacityMax)
	}
	return nil
}

// align4 rounds n up to a multiple of Alignment.
func align4(n uint32) uint32 { return (n + Alignment - 1) &^ (Alignment - 1) }

// Ring is a view of one ring region. It holds no state of its own beyond
// the memory; the Producer and Consumer built on it hold each side's state.
type Ring struct {
	capacity uint32
	mask     uint32
	data     []byte // capacity + TrailingSize bytes after the header

	// The shared words. Memory ordering: every load and store of them goes
	// through sync/atomic, whose operations are sequentially consistent.
	// That gives the two properties the protocol needs:
	//   - a producer's plain writes of a record happen before its store of
	//     Tail, and a consumer that loads that Tail sees them (and likewise
	//     a consumer's reads of a record happen before its store of Head,
	//     so the producer reuses the bytes only after they were read);
	//   - the producer's "store Tail, then load Alertable" and the
	//     consumer's "store Alertable, then load Tail" cannot both miss
	//     each other, so a consumer going to sleep is always woken.
	head      *atomic.Uint32 // written by the consumer
	tail      *atomic.Uint32 // written by the producer
	alertable *atomic.Int32  // written by the consumer
}

// New returns a view of the ring in mem, which must be exactly
// RingSize(capacity) bytes starting on a 4-byte boundary. New neither reads
// nor writes mem; zeroed memory is an empty ring.
func New(mem []byte, capacity uint32) (*Ring, error) {
	if err := CheckCapacity(capacity); err != nil {
		return nil, err
	}
	if len(mem) != RingSize(capacity) {
		return nil, fmt.Errorf("%w: %d bytes, want %d for capacity %#x",
			ErrInvalidMemory, len(mem), RingSize(capacity), capacity)
	}
	if !aligned4(mem) {
		return nil, fmt.Errorf("%w: not 4-byte aligned", ErrInvalidMemory)
	}
	r := &Ring{capacity: capacity, mask: capacity - 1, data: mem[HeaderSize:]}
	r.head, r.tail, r.alertable = headerWords(mem)
	return r, nil
}

// Capacity returns the ring's capacity in bytes.
func (r *Ring) Capacity() uint32 { return r.capacity }

// InFlight returns the bytes of records between Head and Tail as the shared
// words say now (record headers and padding included): what the producer
// has published and the consumer not yet released. It is 0 for a
// terminated ring, and a snapshot that either side may change at once.
func (r *Ring) InFlight() uint32 {
	head, tail := r.head.Load(), r.tail.Load()
	if head >= r.capacity || tail >= r.capacity {
		return 0
	}
	return r.dist(head, tail)
}

// Terminated reports whether either side has terminated the ring.
func (r *Ring) Terminated() bool {
	return r.head.Load() >= r.capacity || r.tail.Load() >= r.capacity
}

// size reads the Size word of the record at off. The peer may change it at
// any moment, so callers read it once and validate the value they got.
func (r *Ring) size(off uint32) uint32 {
	return binary.NativeEndian.Uint32(r.data[off : off+4])
}

func (r *Ring) setSize(off, v uint32) {
	binary.NativeEndian.PutUint32(r.data[off:off+4], v)
}

// dist returns how far to is ahead of from, going forward around the ring.
func (r *Ring) dist(from, to uint32) uint32 { return (to - from) & r.mask }

// corrupt builds a sticky corruption error.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// bitmap is a private bitmap with one bit for each 4-byte offset in a
// ring. Each side keeps two: where the records it has handed out and not
// yet passed over start, and which of those the application has returned
// (committed or released). With them Commit and Release recognise exactly
// the slices they handed out, tell a double return from a peer's tampering
// with the shared flag bits, and check each record size they read back from
// shared memory against the records they know.
type bitmap []uint64

func newBitmap(capacity uint32) bitmap { return make(bitmap, capacity/Alignment/64) }

func (b bitmap) set(off uint32)   { b[off/256] |= 1 << (off / Alignment % 64) }
func (b bitmap) clear(off uint32) { b[off/256] &^= 1 << (off / Alignment % 64) }
func (b bitmap) has(off uint32) bool {
	return off/256 < uint32(len(b)) && b[off/256]&(1<<(off/Alignment%64)) != 0
}
