package ring

// The batch calls: ReceiveBatch, ReleaseBatch, AllocateBatch and
// CommitBatch, and how often they publish and signal.

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

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
