package ring

// Termination by either side, and the values that mean it.

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

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
