package ring

import (
	"errors"
	"testing"
)

// Tests of Producer.Shrink and Producer.Cancel, which let the driver read a
// packet of unknown size straight into a record and keep only what it used.

func TestRingShrink(t *testing.T) {
	f := rtNew(t, nil)
	a := f.alloc(1500, 1)
	got, err := f.p.Shrink(a, 100)
	if err != nil {
		t.Fatalf("Shrink: %v", err)
	}
	if len(got) != 100 || cap(got) != 100 || &got[0] != &a[0] {
		t.Fatalf("Shrink returned len %d cap %d, or another start", len(got), cap(got))
	}
	if w := f.sizeWord(0); w != 100|flagBit {
		t.Fatalf("size word after Shrink = %#x, want pending 100", w)
	}
	b := f.alloc(10, 2)
	if off := f.recOff(b); off != align4(Alignment+100) {
		t.Fatalf("next record at %#x, want %#x right after the shrunk one", off, align4(Alignment+100))
	}
	f.commit(got)
	f.commit(b)
	f.recvWant(0, 100, 1)
	f.recvWant(align4(Alignment+100), 10, 2)
	f.expectEmpty()

	// Shrinking to the full size and to zero are allowed.
	c := f.alloc(64, 3)
	if c2, err := f.p.Shrink(c, 64); err != nil || len(c2) != 64 {
		t.Fatalf("Shrink to the same size = %d, %v", len(c2), err)
	}
	if c3, err := f.p.Shrink(c, 0); err != nil || len(c3) != 0 {
		t.Fatalf("Shrink to 0 = %d, %v", len(c3), err)
	}
	f.commit(c)
	if pkt := f.recv(); len(pkt) != 0 {
		t.Fatalf("received %d bytes, want the empty record", len(pkt))
	}
}

func TestRingShrinkMisuse(t *testing.T) {
	f := rtNew(t, nil)
	a := f.alloc(200, 1)
	b := f.alloc(200, 2)
	for _, tc := range []struct {
		name string
		pkt  []byte
		size int
		want error
	}{
		{"not the last record", a, 10, ErrForeignPacket},
		{"a shorter view of the last record", b[:100], 10, ErrForeignPacket},
		{"a slice inside the last record", b[4:], 10, ErrForeignPacket},
		{"memory outside the ring", make([]byte, 200), 10, ErrForeignPacket},
		{"nil", nil, 0, ErrForeignPacket},
		{"growing", b, 201, ErrPacketSize},
		{"negative", b, -1, ErrPacketSize},
	} {
		if _, err := f.p.Shrink(tc.pkt, tc.size); !errors.Is(err, tc.want) {
			t.Errorf("Shrink(%s) = %v, want %v", tc.name, err, tc.want)
		}
		if tc.want != ErrForeignPacket {
			continue
		}
		if err := f.p.Cancel(tc.pkt); !errors.Is(err, ErrForeignPacket) {
			t.Errorf("Cancel(%s) = %v, want ErrForeignPacket", tc.name, err)
		}
	}
	f.commit(b)
	if _, err := f.p.Shrink(b, 10); !errors.Is(err, ErrForeignPacket) {
		t.Errorf("Shrink of a committed record = %v, want ErrForeignPacket", err)
	}
	if err := f.p.Cancel(b); !errors.Is(err, ErrForeignPacket) {
		t.Errorf("Cancel of a committed record = %v, want ErrForeignPacket", err)
	}
	// Nothing above changed the records: both arrive whole.
	f.commit(a)
	f.recvWant(0, 200, 1)
	f.recvWant(align4(Alignment+200), 200, 2)
	f.expectEmpty()
}

func TestRingCancel(t *testing.T) {
	f := rtNew(t, nil)
	a := f.alloc(100, 1)
	b := f.alloc(300, 2)
	if err := f.p.Cancel(b); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if err := f.p.Commit(b); !errors.Is(err, ErrForeignPacket) {
		t.Fatalf("Commit of a cancelled record = %v, want ErrForeignPacket", err)
	}
	c := f.alloc(50, 3)
	if f.recOff(c) != f.recOff(b) {
		t.Fatalf("record after Cancel at %#x, want the cancelled offset %#x", f.recOff(c), f.recOff(b))
	}
	// Cancel the only outstanding record after committing the one before it:
	// Tail already moved over a, and a record can be allocated again there.
	f.commit(a)
	if err := f.p.Cancel(c); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	f.expectHeadTail(0, align4(Alignment+100))
	f.recvWant(0, 100, 1)
	f.expectEmpty()
	d := f.send(40, 4)
	f.recv2(d)
}

// TestRingShrinkWrap shrinks a record that started near the end of the ring
// and ran into the trailing space, so that Tail wraps to the start.
func TestRingShrinkWrap(t *testing.T) {
	f := rtNew(t, nil)
	end := rtCap - 2*Alignment
	f.advanceTo(end)
	a := f.alloc(1500, 1)
	s, err := f.p.Shrink(a, 3)
	if err != nil {
		t.Fatalf("Shrink: %v", err)
	}
	f.commit(s)
	f.expectHeadTail(end, 0)
	f.recvWant(end, 3, 1)
	b := f.send(20, 2)
	if f.recOff(b) != 0 {
		t.Fatalf("record after the wrap at %#x, want 0", f.recOff(b))
	}
}

// TestRingShrinkMakesRoom: reserving the most a packet can take may fill the
// ring; shrinking gives the rest back at once.
func TestRingShrinkMakesRoom(t *testing.T) {
	f := rtNew(t, nil)
	recs := f.fillRing(PacketSizeMax)
	last := recs[len(recs)-1]
	if _, err := f.p.Allocate(PacketSizeMax); !errors.Is(err, ErrFull) {
		t.Fatalf("Allocate on a full ring = %v, want ErrFull", err)
	}
	if _, err := f.p.Shrink(last, 64); err != nil {
		t.Fatalf("Shrink: %v", err)
	}
	if _, err := f.p.Allocate(PacketSizeMax - 1024); err != nil {
		t.Fatalf("Allocate after Shrink: %v", err)
	}
}
