package ring

// FuzzHostilePeer: one side of the ring against a peer that writes
// anything into the shared memory (see fuzz_helpers_test.go).

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
)

// fzHostile is one side of a ring whose peer is the fuzz input.
type fzHostile struct {
	t     *testing.T
	mem   []byte
	r     *Ring
	w     *ChanWaker
	in    *fzInput
	p     *Producer // the side under test: p or c
	c     *Consumer
	held  [][]byte // slices handed out and not given back yet
	stale [][]byte // slices given back, for misuse
	// dead is set once the side returned an error wrapping ErrCorrupt or
	// ErrTerminated: every later Receive or Allocate must fail.
	dead bool
	// termSeen is set once Head or Tail held a terminated value.
	termSeen bool
	peer     uint32 // the peer's cursor: where it writes or reads the next record
	*fzTrace
}

// value decodes a word for the peer to write, given the current one.
func (h *fzHostile) value(old uint32) uint32 {
	switch h.in.byte() % 8 {
	case 0:
		return h.in.u32()
	case 1:
		return uint32(h.in.u16()) // a plausible size
	case 2:
		return uint32(h.in.u16()) | flagBit // a pending or released size
	case 3:
		return old ^ flagBit
	case 4:
		return terminated
	case 5:
		return h.in.u32() & h.r.mask &^ (Alignment - 1) // a plausible position
	case 6:
		return (old + Alignment*uint32(int8(h.in.byte()))) & h.r.mask // a nearby position
	default:
		return (old + uint32(int8(h.in.byte()))) & h.r.mask
	}
}

// poke is one hostile write into the header or the data area.
func (h *fzHostile) poke() {
	target := h.in.byte()
	var off uint32 // offset in mem
	switch target % 8 {
	case 0:
		off = 0 // Head
	case 1:
		off = 4 // Tail
	case 2:
		off = 8 // Alertable
	case 3, 4:
		// The Size word of a record this side handed out.
		if len(h.held) > 0 {
			at, _ := offsetIn(h.r.data, h.held[int(h.in.byte())%len(h.held)])
			off = HeaderSize + at - Alignment
			break
		}
		fallthrough
	case 5:
		off = HeaderSize + h.in.u32()%uint32(len(h.r.data)-3)
	default:
		// Near Head or Tail.
		pos := h.r.head.Load()
		if target&1 != 0 {
			pos = h.r.tail.Load()
		}
		off = HeaderSize + (pos+Alignment*uint32(h.in.byte()))&h.r.mask
	}
	old := binary.NativeEndian.Uint32(h.mem[off:])
	v := h.value(old)
	h.note("poke %#x at mem offset %#x (was %#x)", v, off, old)
	switch off {
	case 0:
		h.r.head.Store(v)
	case 4:
		h.r.tail.Store(v)
	case 8:
		h.r.alertable.Store(int32(v))
	default:
		binary.NativeEndian.PutUint32(h.mem[off:], v)
	}
	h.seeTerm()
}

func (h *fzHostile) seeTerm() {
	if h.r.head.Load() >= h.r.capacity || h.r.tail.Load() >= h.r.capacity {
		h.termSeen = true
	}
}

// checkSlice checks a slice the side handed out: it must start on a
// record's payload, inside the data area, and end inside it.
func (h *fzHostile) checkSlice(what string, b []byte) {
	at, ok := offsetIn(h.r.data, b)
	if !ok || at < Alignment || (at-Alignment)%Alignment != 0 || at-Alignment >= h.r.capacity ||
		len(b) > PacketSizeMax || uint64(at)+uint64(cap(b)) > uint64(len(h.r.data)) {
		h.fatalf("%s returned a slice at %#x (in ring: %v) len %d cap %d; the data area is %#x bytes",
			what, at, ok, len(b), cap(b), len(h.r.data))
	}
	size := h.r.size(at - Alignment)
	if h.c != nil && size != uint32(len(b)) {
		h.fatalf("%s returned %d bytes for a record of size %#x", what, len(b), size)
	}
	if h.p != nil && size != uint32(len(b))|flagBit {
		h.fatalf("%s returned %d bytes, but the record's Size word is %#x", what, len(b), size)
	}
	h.held = append(h.held, b)
}

// checkErr checks an error returned by the side: it must be one of
// allowed, and an error that ends the session makes the side dead.
func (h *fzHostile) checkErr(what string, err error, allowed ...error) {
	if err == nil {
		return
	}
	h.note("  %s: %v", what, err)
	if errors.Is(err, ErrTerminated) && !h.termSeen {
		h.fatalf("%s = %v, but neither Head nor Tail was ever terminated", what, err)
	}
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTerminated) {
		h.dead = true
	}
	for _, a := range allowed {
		if errors.Is(err, a) {
			return
		}
	}
	h.fatalf("%s = %v, want one of %v", what, err, allowed)
}

// checkDead checks that the side reports its sticky error.
func (h *fzHostile) checkDead(what string, ok bool, err error) {
	if !h.dead {
		return
	}
	if ok || !(errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTerminated)) {
		h.fatalf("%s after the side failed: ok %v, error %v", what, ok, err)
	}
}

func (h *fzHostile) sideErr() error {
	if h.c != nil {
		return h.c.Err()
	}
	return h.p.Err()
}

// take removes and returns the k-th held slice.
func (h *fzHostile) take(k byte) []byte {
	if len(h.held) == 0 {
		return nil
	}
	i := int(k) % len(h.held)
	b := h.held[i]
	h.held = append(h.held[:i], h.held[i+1:]...)
	if len(h.stale) == 8 {
		h.stale = h.stale[1:]
	}
	h.stale = append(h.stale, b)
	return b
}

// misuseSlice returns a slice the side did not hand out, or no longer
// holds.
func (h *fzHostile) misuseSlice(k byte) []byte {
	switch {
	case k%4 == 0 && len(h.stale) > 0:
		return h.stale[int(k>>2)%len(h.stale)]
	case k%4 == 1:
		return nil
	case k%4 == 2:
		return make([]byte, k>>2)
	default:
		off := HeaderSize + uint32(k)*Alignment
		return h.mem[off : off+4]
	}
}

func (h *fzHostile) batchSlices(take func(byte) []byte) [][]byte {
	pkts := make([][]byte, 1+h.in.byte()%8)
	for i := range pkts {
		if k := h.in.byte(); k%8 == 7 {
			pkts[i] = h.misuseSlice(k >> 3)
		} else {
			pkts[i] = take(k >> 3)
		}
	}
	return pkts
}

// consumerStep is one operation of a consumer facing a hostile producer.
func (h *fzHostile) consumerStep() {
	c := h.c
	switch op := h.in.byte() % 16; op {
	case 0, 1, 2:
		wasDead := h.dead || c.Err() != nil
		b, err := c.Receive()
		h.note("Receive: %d bytes, %v", len(b), err)
		if err == nil {
			h.checkSlice("Receive", b)
		}
		h.checkErr("Receive", err, ErrEmpty, ErrTerminated, ErrCorrupt)
		if wasDead {
			h.dead = true
		}
		h.checkDead("Receive", err == nil, err)
	case 3, 4:
		b := h.take(h.in.byte())
		err := c.Release(b)
		h.note("Release: %v", err)
		h.checkErr("Release", err, ErrForeignPacket, ErrCorrupt)
	case 5:
		wasDead := h.dead || c.Err() != nil
		pkts := make([][]byte, 1+h.in.byte()%8)
		n, err := c.ReceiveBatch(pkts)
		h.note("ReceiveBatch(%d): %d, %v", len(pkts), n, err)
		if n < 0 || n > len(pkts) || (n > 0 && err != nil) || (n == 0 && err == nil) {
			h.fatalf("ReceiveBatch = %d, %v", n, err)
		}
		for _, b := range pkts[:n] {
			h.checkSlice("ReceiveBatch", b)
		}
		h.checkErr("ReceiveBatch", err, ErrEmpty, ErrTerminated, ErrCorrupt)
		if wasDead {
			h.dead = true
		}
		h.checkDead("ReceiveBatch", n > 0, err)
	case 6:
		pkts := h.batchSlices(h.take)
		err := c.ReleaseBatch(pkts)
		h.note("ReleaseBatch(%d): %v", len(pkts), err)
		h.checkErr("ReleaseBatch", err, ErrForeignPacket, ErrCorrupt)
	case 7:
		err := c.Wait(fzCancelled)
		h.note("Wait: %v", err)
		h.checkErr("Wait", err, context.Canceled, ErrTerminated, ErrCorrupt)
		if err == nil {
			// Wait saw something to receive.
			b, err := c.Receive()
			h.note("Receive after Wait: %d bytes, %v", len(b), err)
			if err == nil {
				h.checkSlice("Receive", b)
			}
			h.checkErr("Receive after Wait", err, ErrTerminated, ErrCorrupt)
		}
	case 8, 9:
		h.poke()
	case 10, 11:
		// The peer writes records at its cursor and maybe publishes them.
		n := 1 + h.in.byte()%4
		for range n {
			size := h.in.size()
			v := uint32(size)
			if size < 0 || size > PacketSizeMax {
				v = h.value(v)
			}
			binary.NativeEndian.PutUint32(h.r.data[h.peer:], v)
			h.note("peer writes size %#x at %#x", v, h.peer)
			h.peer = (h.peer + align4(Alignment+v&PacketSizeMax)) & h.r.mask
		}
		if h.in.byte()&1 == 0 {
			h.r.tail.Store(h.peer)
			h.note("peer publishes Tail %#x", h.peer)
		}
	case 12:
		h.r.tail.Store(h.peer)
		h.note("peer publishes Tail %#x", h.peer)
	case 13:
		err := c.Release(h.misuseSlice(h.in.byte()))
		h.note("Release of a foreign slice: %v", err)
		h.checkErr("Release", err, ErrForeignPacket, ErrCorrupt)
	case 14:
		if h.in.byte()%4 == 0 {
			c.Terminate()
			h.note("Terminate")
			h.termSeen = true
			if c.Err() == nil {
				h.fatalf("Err() = nil after Terminate")
			}
		}
	case 15:
		if h.in.byte()%4 == 0 {
			h.c = NewConsumer(h.r, h.w)
			h.held, h.dead = nil, false
			h.note("new Consumer, Err %v", h.c.Err())
		}
	}
}

// producerStep is one operation of a producer facing a hostile consumer.
func (h *fzHostile) producerStep() {
	p := h.p
	switch op := h.in.byte() % 16; op {
	case 0, 1, 2:
		size := h.in.size()
		wasDead := h.dead || p.Err() != nil
		b, err := p.Allocate(size)
		h.note("Allocate(%d): %v", size, err)
		valid := size >= 0 && size <= PacketSizeMax
		if err == nil {
			h.checkSlice("Allocate", b)
			if len(b) != size {
				h.fatalf("Allocate(%d) returned %d bytes", size, len(b))
			}
			if len(b) > 0 {
				b[0], b[len(b)-1] = 0xAB, 0xCD
			}
		}
		// An invalid size gives ErrPacketSize, or the sticky error if the
		// side checks that first; a valid one never gives ErrPacketSize.
		sizeErr := errors.Is(err, ErrPacketSize)
		if valid && sizeErr || !valid && !sizeErr && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTerminated) {
			h.fatalf("Allocate(%d) = %v", size, err)
		}
		h.checkErr("Allocate", err, ErrFull, ErrTerminated, ErrCorrupt, ErrPacketSize)
		if wasDead {
			h.dead = true
		}
		if valid {
			h.checkDead("Allocate", err == nil, err)
		}
	case 3, 4:
		err := p.Commit(h.take(h.in.byte()))
		h.note("Commit: %v", err)
		h.checkErr("Commit", err, ErrForeignPacket, ErrCorrupt)
	case 5:
		wasDead := h.dead || p.Err() != nil
		sizes := make([]int, 1+h.in.byte()%8)
		for i := range sizes {
			sizes[i] = int(h.in.u16()) >> (h.in.byte() % 16)
		}
		pkts := make([][]byte, len(sizes))
		n, err := p.AllocateBatch(sizes, pkts)
		h.note("AllocateBatch(%v): %d, %v", sizes, n, err)
		if n < 0 || n > len(sizes) || (n > 0 && err != nil) || (n < len(sizes) && n == 0 && err == nil) {
			h.fatalf("AllocateBatch = %d, %v", n, err)
		}
		for i, b := range pkts[:n] {
			h.checkSlice("AllocateBatch", b)
			if len(b) != sizes[i] {
				h.fatalf("AllocateBatch record %d: %d bytes, want %d", i, len(b), sizes[i])
			}
		}
		h.checkErr("AllocateBatch", err, ErrFull, ErrTerminated, ErrCorrupt)
		if wasDead {
			h.dead = true
		}
		h.checkDead("AllocateBatch", n > 0, err)
	case 6:
		pkts := h.batchSlices(h.take)
		err := p.CommitBatch(pkts)
		h.note("CommitBatch(%d): %v", len(pkts), err)
		h.checkErr("CommitBatch", err, ErrForeignPacket, ErrCorrupt)
	case 7, 8:
		h.poke()
	case 9, 10, 11:
		// The peer consumes up to n records honestly and publishes Head.
		n := 1 + h.in.byte()%8
		tail := h.r.tail.Load()
		for range n {
			if tail >= h.r.capacity || h.peer == tail {
				break
			}
			size := h.r.size(h.peer)
			aligned := align4(Alignment + size&PacketSizeMax)
			if size > PacketSizeMax || aligned > h.r.dist(h.peer, tail) {
				break
			}
			h.peer = (h.peer + aligned) & h.r.mask
		}
		h.r.head.Store(h.peer)
		h.note("peer consumes to Head %#x (Tail %#x)", h.peer, tail)
	case 12:
		v := h.value(h.r.head.Load())
		h.r.head.Store(v)
		if v < h.r.capacity {
			h.peer = v &^ (Alignment - 1)
		}
		h.note("peer sets Head %#x", v)
		h.seeTerm()
	case 13:
		err := p.Commit(h.misuseSlice(h.in.byte()))
		h.note("Commit of a foreign slice: %v", err)
		h.checkErr("Commit", err, ErrForeignPacket, ErrCorrupt)
	case 14:
		if h.in.byte()%4 == 0 {
			p.Terminate()
			h.note("Terminate")
			h.termSeen = true
			if p.Err() == nil {
				h.fatalf("Err() = nil after Terminate")
			}
		}
	case 15:
		if h.in.byte()%4 == 0 {
			h.p = NewProducer(h.r, h.w)
			h.held, h.dead = nil, false
			h.note("new Producer, Err %v", h.p.Err())
		}
	}
}

func runHostile(t *testing.T, mem []byte, data []byte) {
	fzRun(t, func(tr *fzTrace) { runHostileOnce(t, tr, mem, data) })
}

func runHostileOnce(t *testing.T, tr *fzTrace, mem []byte, data []byte) {
	clear(mem)
	r, err := New(mem, CapacityMin)
	if err != nil {
		t.Fatal(err)
	}
	in := newFzInput(data)
	h := &fzHostile{t: t, mem: mem, r: r, w: NewChanWaker(), in: in, fzTrace: tr}
	producerSide := in.byte()&1 != 0
	r.head.Store(h.value(0))
	r.tail.Store(h.value(0))
	r.alertable.Store(int32(h.value(0)))
	for n := in.byte() % 8; n > 0; n-- {
		h.poke()
	}
	h.seeTerm()
	if producerSide {
		h.p = NewProducer(r, h.w)
		h.peer = r.head.Load() & r.mask &^ (Alignment - 1)
		h.note("Producer at Head %#x Tail %#x: Err %v", r.head.Load(), r.tail.Load(), h.p.Err())
	} else {
		h.c = NewConsumer(r, h.w)
		h.peer = r.tail.Load() & r.mask &^ (Alignment - 1)
		h.note("Consumer at Head %#x Tail %#x: Err %v", r.head.Load(), r.tail.Load(), h.c.Err())
	}
	for !in.empty() {
		if producerSide {
			h.producerStep()
		} else {
			h.consumerStep()
		}
		for len(h.w.c) > 0 {
			<-h.w.c
		}
		if err := h.sideErr(); err != nil {
			if errors.Is(err, ErrTerminated) && !h.termSeen {
				h.fatalf("Err() = %v, but neither Head nor Tail was ever terminated", err)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTerminated) {
				h.fatalf("Err() = %v", err)
			}
			h.dead = true
		} else if h.dead {
			h.fatalf("Err() = nil after the side failed")
		}
	}
}

func FuzzHostilePeer(f *testing.F) {
	for _, seed := range fzHostileSeeds() {
		f.Add(seed.data)
	}
	mem := make([]byte, RingSize(CapacityMin))
	f.Fuzz(func(t *testing.T, data []byte) {
		runHostile(t, mem, data)
	})
}

// fzHostileSeed builds FuzzHostilePeer inputs. The words are encoded for
// fzHostile.value.
type fzHostileSeed struct{ b []byte }

// newHostileSeed starts a seed with Head and Tail at plausible positions
// and Alertable 0.
func newHostileSeed(producer bool, head, tail uint32) *fzHostileSeed {
	s := &fzHostileSeed{}
	if producer {
		s.b = append(s.b, 1)
	} else {
		s.b = append(s.b, 0)
	}
	s.b = append(s.b, fzWord(head)...)
	s.b = append(s.b, fzWord(tail)...)
	s.b = append(s.b, fzWord(0)...)
	s.b = append(s.b, 0) // no initial pokes
	return s
}

// fzWord encodes an exact value for fzHostile.value.
func fzWord(v uint32) []byte {
	return []byte{0, byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

func (s *fzHostileSeed) add(b ...byte) *fzHostileSeed { s.b = append(s.b, b...); return s }

// Consumer-side operations.
func (s *fzHostileSeed) recv() *fzHostileSeed { return s.add(0) }

func (s *fzHostileSeed) release(k byte) *fzHostileSeed { return s.add(3, k) }

func (s *fzHostileSeed) wait() *fzHostileSeed { return s.add(7) }

// write has the peer write records of the given sizes (up to 4) at its
// cursor and publish Tail.
func (s *fzHostileSeed) write(sizes ...int) *fzHostileSeed {
	s.add(10, byte(len(sizes)-1))
	for _, size := range sizes {
		if size < 0 || size > PacketSizeMax {
			// An invalid size: the Size word is then decoded as a value.
			s.add(0xF8).add(fzWord(uint32(size))...)
			continue
		}
		s.add(fzSize(size)...)
	}
	return s.add(0)
}

// pokeHead, pokeTail and pokeHeld write an exact value into Head, Tail or
// the Size word of the k-th held record.
func (s *fzHostileSeed) pokeHead(op byte, v uint32) *fzHostileSeed {
	return s.add(op, 0).add(fzWord(v)...)
}

func (s *fzHostileSeed) pokeTail(op byte, v uint32) *fzHostileSeed {
	return s.add(op, 1).add(fzWord(v)...)
}

func (s *fzHostileSeed) pokeHeld(op, k byte, v uint32) *fzHostileSeed {
	return s.add(op, 3, k).add(fzWord(v)...)
}

// Producer-side operations.
func (s *fzHostileSeed) alloc(size int) *fzHostileSeed { return s.add(0).add(fzSize(size)...) }

func (s *fzHostileSeed) commit(k byte) *fzHostileSeed { return s.add(3, k) }

func (s *fzHostileSeed) consume(n byte) *fzHostileSeed { return s.add(9, n-1) }

func (s *fzHostileSeed) setHead(v uint32) *fzHostileSeed {
	return s.add(12).add(fzWord(v)...)
}

// fzHostileSeeds are the FuzzHostilePeer inputs added in code: honest
// traffic, then each kind of corruption and termination.
func fzHostileSeeds() []fzSeed {
	const pokeC, pokeP = 8, 7 // the poke operation of each side
	return []fzSeed{
		{"consumer-honest", newHostileSeed(false, 0, 0).write(5, 0, 1500).recv().recv().release(0).recv().recv().
			release(0).release(0).b},
		// A maximum record at capacity-4, through the trailing area.
		{"consumer-wrap", newHostileSeed(false, CapacityMin-4, CapacityMin-4).write(PacketSizeMax, 7).recv().recv().
			release(1).release(0).b},
		{"consumer-size-too-big", newHostileSeed(false, 0, 0).write(PacketSizeMax + 1).recv().recv().b},
		{"consumer-record-past-tail", newHostileSeed(false, 0, 0).write(100).pokeTail(pokeC, 8).recv().recv().b},
		{"consumer-tail-misaligned", newHostileSeed(false, 0, 0).pokeTail(pokeC, 6).recv().wait().b},
		{"consumer-tail-moved-back", newHostileSeed(false, 0x100, 0x100).write(4, 4).recv().recv().
			pokeTail(pokeC, 0x104).recv().b},
		{"consumer-tail-terminated", newHostileSeed(false, 0, 0).write(10).recv().pokeTail(pokeC, terminated).recv().
			release(0).wait().b},
		// The peer rewrites the Size of a received record.
		{"consumer-size-rewritten", newHostileSeed(false, 0, 0).write(10, 20).recv().recv().pokeHeld(pokeC, 0, 0x7000).
			release(0).release(0).recv().b},
		// The peer marks a received record released.
		{"consumer-released-by-peer", newHostileSeed(false, 0, 0).write(10, 20).recv().recv().
			pokeHeld(pokeC, 0, 10|flagBit).release(1).recv().b},
		{"consumer-head-misaligned", newHostileSeed(false, 2, 8).recv().b},
		{"consumer-head-terminated", newHostileSeed(false, terminated, 0).recv().wait().b},
		{"producer-honest", newHostileSeed(true, 0, 0).alloc(10).alloc(20).commit(1).commit(0).consume(2).
			alloc(PacketSizeMax).alloc(PacketSizeMax).b},
		// A full ring, then Head moves past the published records.
		{"producer-head-past-tail", newHostileSeed(true, 0, 0).alloc(PacketSizeMax).alloc(PacketSizeMax).commit(0).
			setHead(CapacityMin - 0x100).alloc(PacketSizeMax).alloc(1).b},
		{"producer-head-misaligned", newHostileSeed(true, 0, 0).alloc(PacketSizeMax).commit(0).setHead(2).
			alloc(PacketSizeMax).alloc(1).b},
		{"producer-head-terminated", newHostileSeed(true, 0, 0).alloc(PacketSizeMax).commit(0).setHead(terminated).
			alloc(PacketSizeMax).alloc(1).b},
		// The peer clears the pending bit of an allocated record and gives
		// it a size that runs past the allocated ones.
		{"producer-size-rewritten", newHostileSeed(true, 0, 0).alloc(10).alloc(20).pokeHeld(pokeP, 0, 0x1000).
			commit(1).alloc(1).b},
		// The peer clears the pending bit, so Commit fails.
		{"producer-pending-cleared", newHostileSeed(true, 0, 0).alloc(10).pokeHeld(pokeP, 0, 10).commit(0).alloc(1).b},
		{"producer-wrap", newHostileSeed(true, CapacityMin-4, CapacityMin-4).alloc(PacketSizeMax).alloc(3).
			commit(0).commit(0).consume(2).b},
	}
}
