package ring

import (
	"errors"
	"testing"
)

// TestRingLimit checks SetLimit: allocation stops once the records in
// flight reach the limit, whether committed or only allocated, starts
// again when the consumer releases, always admits a record into an empty
// ring, and the ring still wraps and delivers every record in order.
func TestRingLimit(t *testing.T) {
	f := rtNew(t, nil)
	const limit = 4096
	f.p.SetLimit(limit)
	held := 0 // bytes in flight, as the ring counts them
	var recs [][]byte
	for {
		b, err := f.p.Allocate(1000)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b[0] = byte(len(recs))
		recs = append(recs, b)
		held += 1004
	}
	if held < limit || held >= limit+1004 {
		t.Fatalf("%d bytes in flight with a limit of %d: want the record that crosses it and no more", held, limit)
	}
	// Committed or not, they count.
	for _, b := range recs {
		if err := f.p.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.p.Allocate(10); !errors.Is(err, ErrFull) {
		t.Fatalf("Allocate after commit = %v, want ErrFull", err)
	}
	// One released record makes room for one more.
	p, err := f.c.Receive()
	if err != nil || p[0] != 0 {
		t.Fatalf("Receive = %v, %v", p[:1], err)
	}
	if err := f.c.Release(p); err != nil {
		t.Fatal(err)
	}
	if _, err := f.p.Allocate(1000); err != nil {
		t.Fatalf("Allocate after a release: %v", err)
	}
	if _, err := f.p.Allocate(1000); !errors.Is(err, ErrFull) {
		t.Fatalf("second Allocate after one release = %v, want ErrFull", err)
	}

	// An empty ring takes a record of any size, whatever the limit.
	g := rtNew(t, nil)
	g.p.SetLimit(16)
	big, err := g.p.Allocate(PacketSizeMax)
	if err != nil {
		t.Fatalf("Allocate(PacketSizeMax) into an empty ring with a limit of 16: %v", err)
	}
	if _, err := g.p.Allocate(1); !errors.Is(err, ErrFull) {
		t.Fatalf("a second record past the limit: %v, want ErrFull", err)
	}
	g.p.Commit(big)

	// Many laps under a limit: every record arrives, in order, and the
	// records in flight never pass the bound.
	h := rtNew(t, nil)
	h.p.SetLimit(limit)
	next, want := 0, 0
	for want < 2000 {
		for {
			b, err := h.p.Allocate(300 + next%700)
			if errors.Is(err, ErrFull) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b[0] = byte(next)
			h.p.Commit(b)
			next++
		}
		if d := h.r.InFlight(); d != h.r.dist(h.head(), h.tail()) || d >= limit+1004 {
			t.Fatalf("%d bytes in flight, limit %d", d, limit)
		}
		p, err := h.c.Receive()
		if err != nil || p[0] != byte(want) || len(p) != 300+want%700 {
			t.Fatalf("record %d: %d bytes, first %d, %v", want, len(p), p[0], err)
		}
		h.c.Release(p)
		want++
	}

	// A limit at or above the capacity is no limit.
	k := rtNew(t, nil)
	k.p.SetLimit(rtCap)
	n := 0
	for ; ; n++ {
		b, err := k.p.Allocate(1000)
		if err != nil {
			break
		}
		k.p.Commit(b)
	}
	if n*1004 < int(rtCap)-2*1004 {
		t.Fatalf("a limit of the capacity let %d records in", n)
	}
}

// TestRingRoom: Room is what can surely be allocated, under the capacity
// and under a limit, and 0 once the ring is terminated.
func TestRingRoom(t *testing.T) {
	f := rtNew(t, nil)
	if got := f.p.Room(); got != rtCap-4 {
		t.Fatalf("Room of an empty ring = %d, want %d", got, rtCap-4)
	}
	b, _ := f.p.Allocate(996) // 1000 bytes of record
	f.p.Commit(b)
	if got := f.p.Room(); got != rtCap-4-1000 {
		t.Fatalf("Room after a record = %d, want %d", got, rtCap-4-1000)
	}
	f.p.SetLimit(4096)
	if got := f.p.Room(); got != 4096-1000 {
		t.Fatalf("Room under a limit = %d, want %d", got, 4096-1000)
	}
	// Records of any size add up to Room without ErrFull.
	for room := f.p.Room(); room >= 100; room = f.p.Room() {
		b, err := f.p.Allocate(96)
		if err != nil {
			t.Fatalf("Allocate with Room %d: %v", room, err)
		}
		f.p.Commit(b)
	}
	f.c.Terminate()
	if got := f.p.Room(); got != 0 {
		t.Fatalf("Room of a terminated ring = %d", got)
	}
}
