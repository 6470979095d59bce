package ring

// Misuse by the program and corruption by a hostile peer: every error
// is sticky, nothing panics, nothing reads outside the ring.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

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
