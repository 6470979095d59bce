package ring

import (
	"sync"
	"sync/atomic"
)

// Producer is the writing side of a ring: Allocate reserves a record,
// Commit publishes it. Records may be committed in any order; the consumer
// receives them in allocation order. Its methods are safe for concurrent
// use.
type Producer struct {
	r     *Ring
	waker Waker

	mu          sync.Mutex
	tail        uint32 // next record to allocate
	tailRelease uint32 // first record not yet committed; the published Tail
	head        uint32 // last Head read from the consumer, validated
	starts      bitmap // where the allocated records from tailRelease to tail start
	committed   bitmap // which of those were committed
	err         error  // sticky: ErrTerminated or corruption
	ended       bool   // this side terminated the ring: never store Tail again
	limit       uint32 // SetLimit's bound on the bytes in flight; 0: the capacity

	signals atomic.Uint64 // times a Tail move signalled the waker
}

// NewProducer returns the producer side of r. It starts from the ring's
// current Tail. The waker is signalled when Tail moves while the consumer
// has set Alertable; it may be nil if the consumer never sleeps.
func NewProducer(r *Ring, w Waker) *Producer {
	p := &Producer{r: r, waker: w, starts: newBitmap(r.capacity), committed: newBitmap(r.capacity)}
	tail, head := r.tail.Load(), r.head.Load()
	switch {
	case tail >= r.capacity || head >= r.capacity:
		p.err = ErrTerminated
	case tail%Alignment != 0:
		p.err = corrupt("tail %#x is not 4-byte aligned", tail)
	case head%Alignment != 0:
		p.err = corrupt("head %#x is not 4-byte aligned", head)
	default:
		p.tail, p.tailRelease, p.head = tail, tail, head
	}
	return p
}

// Ring returns the ring this producer writes.
func (p *Producer) Ring() *Ring { return p.r }

// Allocate reserves a record of size bytes and returns its payload, which
// aliases ring memory. Fill it, then pass it to Commit. It returns
// ErrPacketSize for a size outside 0..PacketSizeMax, ErrFull when the ring
// has no room (nothing is reserved), ErrTerminated once either side has
// terminated the ring, and an error wrapping ErrCorrupt when the consumer
// broke the protocol.
func (p *Producer) Allocate(size int) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.look(); err != nil {
		return nil, err
	}
	return p.allocate(size)
}

// AllocateBatch allocates one record for each of sizes, in order, into
// pkts, which must be at least as long, and returns how many it allocated.
// It stops at the first size that does not fit; it returns 0 and the error
// Allocate would have returned when not even the first one fits.
func (p *Producer) AllocateBatch(sizes []int, pkts [][]byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(sizes) == 0 {
		return 0, nil
	}
	if err := p.look(); err != nil {
		return 0, err
	}
	for i, size := range sizes {
		b, err := p.allocate(size)
		if err != nil {
			if i > 0 {
				err = nil
			}
			return i, err
		}
		pkts[i] = b
	}
	return len(sizes), nil
}

// SetLimit bounds the bytes of records in flight (allocated and not yet
// released by the consumer, record headers and padding included): once
// they reach limit, Allocate returns ErrFull as if the ring were full. A
// record that crosses the bound is allowed, so any record fits in an empty
// ring whatever the limit. 0, or a limit at or above the capacity, leaves
// the capacity as the only bound.
//
// A ring's memory is touched over the span the records in flight cover: a
// limit keeps that span, and the time a packet waits in the ring, small
// whatever the capacity, as a byte queue limit does for a NIC's queue. It
// is the producer's local policy; the consumer sees only a ring that fills
// sooner.
func (p *Producer) SetLimit(limit uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limit = limit
	if limit >= p.r.capacity {
		p.limit = 0
	}
}

// Room returns how many bytes of records Allocate can surely reserve now,
// under the limit (SetLimit) and the capacity, record headers and padding
// included; 0 once the ring is terminated or corrupt.
func (p *Producer) Room() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.look() != nil {
		return 0
	}
	r := p.r
	room := r.dist(p.tail, p.head-Alignment)
	if p.limit != 0 {
		inFlight := r.dist(p.head, p.tail)
		if inFlight >= p.limit && inFlight != 0 {
			return 0
		}
		room = min(room, p.limit-inFlight)
	}
	return room
}

// allocate reserves one record after look has read Head.
func (p *Producer) allocate(size int) ([]byte, error) {
	if size < 0 || size > PacketSizeMax {
		return nil, ErrPacketSize
	}
	r := p.r
	aligned := align4(Alignment + uint32(size))
	if r.dist(p.tail, p.head-Alignment) < aligned {
		return nil, ErrFull
	}
	if inFlight := r.dist(p.head, p.tail); p.limit != 0 && inFlight != 0 && inFlight >= p.limit {
		return nil, ErrFull
	}
	r.setSize(p.tail, uint32(size)|flagBit)
	b := packetAt(r.data, p.tail+Alignment, uint32(size))
	p.starts.set(p.tail)
	p.tail = (p.tail + aligned) & r.mask
	return b, nil
}

// look reads and validates the shared Head, as Wintun's producer does on
// every allocation, so that termination and corruption show at once. The
// consumer may only move Head forward, and not past what was published.
func (p *Producer) look() error {
	if p.err != nil {
		return p.err
	}
	r := p.r
	head := r.head.Load()
	switch {
	case head >= r.capacity:
		p.err = ErrTerminated
	case head%Alignment != 0:
		p.err = corrupt("head %#x is not 4-byte aligned", head)
	case r.dist(p.head, head) > r.dist(p.head, p.tailRelease):
		p.err = corrupt("head %#x is outside the published records %#x..%#x", head, p.head, p.tailRelease)
	default:
		p.head = head
	}
	return p.err
}

// Commit publishes a record returned by Allocate. The shared Tail advances
// over the contiguous run of committed records at its front, and the
// consumer's waker is signalled if the consumer is asleep. Commit returns
// ErrForeignPacket for a slice that is not an uncommitted record from
// Allocate (with its start unchanged). Committing after the ring was
// terminated is allowed and has no effect on the peer.
func (p *Producer) Commit(b []byte) error {
	p.mu.Lock()
	err := p.mark(b)
	wake := false
	if err == nil {
		wake, err = p.advance()
	}
	p.mu.Unlock()
	if wake {
		p.signals.Add(1)
		p.waker.Signal()
	}
	return err
}

// CommitBatch commits every record in pkts, as Commit would one by one but
// publishing Tail and signalling the consumer at most once. It returns the
// first error met; the other records are still committed.
func (p *Producer) CommitBatch(pkts [][]byte) error {
	p.mu.Lock()
	var first error
	for _, b := range pkts {
		if err := p.mark(b); err != nil && first == nil {
			first = err
		}
	}
	wake, err := p.advance()
	if first == nil {
		first = err
	}
	p.mu.Unlock()
	if wake {
		p.signals.Add(1)
		p.waker.Signal()
	}
	return first
}

// Signals returns how many times committing records woke the consumer
// through the waker (a system call each with EventFD, none with
// ChanWaker).
func (p *Producer) Signals() uint64 { return p.signals.Load() }

// mark clears the pending bit of the record whose payload is b.
func (p *Producer) mark(b []byte) error {
	r := p.r
	at, ok := offsetIn(r.data, b)
	if !ok || at < Alignment || (at-Alignment)%Alignment != 0 {
		return ErrForeignPacket
	}
	off := at - Alignment
	if off >= r.capacity || !p.starts.has(off) || p.committed.has(off) {
		return ErrForeignPacket
	}
	size := r.size(off)
	if size&flagBit == 0 {
		p.err = corrupt("consumer cleared the pending bit of record at %#x", off)
		return p.err
	}
	r.setSize(off, size&^flagBit)
	p.committed.set(off)
	return nil
}

// advance moves Tail over the committed records at its front, publishes it
// and reports whether the consumer must be woken.
func (p *Producer) advance() (wake bool, err error) {
	r := p.r
	if p.err != nil && p.err != ErrTerminated {
		return false, p.err
	}
	old := p.tailRelease
	for p.tailRelease != p.tail && p.committed.has(p.tailRelease) {
		size := r.size(p.tailRelease)
		if size&flagBit != 0 {
			p.err = corrupt("consumer set the pending bit of record at %#x", p.tailRelease)
			return false, p.err
		}
		aligned := align4(Alignment + size)
		next := (p.tailRelease + aligned) & r.mask
		if size > PacketSizeMax || aligned > r.dist(p.tailRelease, p.tail) || next != p.tail && !p.starts.has(next) {
			p.err = corrupt("allocated record at %#x changed size to %#x", p.tailRelease, size)
			return false, p.err
		}
		p.starts.clear(p.tailRelease)
		p.committed.clear(p.tailRelease)
		p.tailRelease = next
	}
	if p.tailRelease == old || p.ended {
		return false, nil
	}
	r.tail.Store(p.tailRelease)
	return p.waker != nil && r.alertable.Load() != 0, nil
}

// Terminate ends the ring from the producer side by storing 0xFFFFFFFF in
// Tail, and signals the consumer. Later calls to Allocate return
// ErrTerminated.
func (p *Producer) Terminate() {
	p.mu.Lock()
	p.ended = true
	if p.err == nil {
		p.err = ErrTerminated
	}
	p.r.tail.Store(terminated)
	p.mu.Unlock()
	if p.waker != nil {
		p.waker.Signal()
	}
}

// Err returns the sticky error, or nil while the ring is usable.
func (p *Producer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Shrink cuts the payload of the record most recently returned by Allocate
// or AllocateBatch, not yet committed, down to size bytes, and returns the
// shortened payload; the bytes it gives up go back to the ring. It lets a
// producer reserve room for the largest record it may get, fill it, and
// keep only what it used. Shrink returns ErrForeignPacket unless b is that
// record, and ErrPacketSize unless 0 <= size <= len(b).
func (p *Producer) Shrink(b []byte, size int) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	off, ok := p.last(b)
	if !ok {
		return nil, ErrForeignPacket
	}
	if size < 0 || size > len(b) {
		return nil, ErrPacketSize
	}
	r := p.r
	r.setSize(off, uint32(size)|flagBit)
	p.tail = (off + align4(Alignment+uint32(size))) & r.mask
	return b[:size:size], nil
}

// Cancel gives back the record most recently returned by Allocate or
// AllocateBatch, not yet committed, as if it had never been allocated. It
// returns ErrForeignPacket unless b is that record.
func (p *Producer) Cancel(b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	off, ok := p.last(b)
	if !ok {
		return ErrForeignPacket
	}
	p.starts.clear(off)
	p.tail = off
	return nil
}

// last returns the offset of b's record if b is the payload of the most
// recently allocated record and that record is not committed.
func (p *Producer) last(b []byte) (uint32, bool) {
	r := p.r
	at, ok := offsetIn(r.data, b)
	if !ok || at < Alignment || (at-Alignment)%Alignment != 0 || len(b) > PacketSizeMax {
		return 0, false
	}
	off := at - Alignment
	if off >= r.capacity || !p.starts.has(off) || p.committed.has(off) {
		return 0, false
	}
	if (off+align4(Alignment+uint32(len(b))))&r.mask != p.tail {
		return 0, false
	}
	return off, true
}
