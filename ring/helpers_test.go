package ring

// Helpers shared by the package's deterministic tests: a ring in a plain
// []byte with its two sides (rtFixture), and what the tests check with.
// Helpers and tests of these files are prefixed rt / TestRing so that they
// do not collide with the fuzz targets' (fz).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
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
func (f *rtFixture) head() uint32 { return f.r.head.Load() }

func (f *rtFixture) tail() uint32 { return f.r.tail.Load() }

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
	base := addr(f.mem[HeaderSize:])
	at := addr(pkt)
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
	if !sameStart(got, sent) || len(got) != len(sent) {
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

func rtIsOrNil(err, target error) bool {
	if target == nil {
		return err == nil
	}
	return errors.Is(err, target)
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
