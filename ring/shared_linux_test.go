//go:build linux

package ring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// This file tests the Linux pieces, CreateShared, MapShared and EventFD, and
// runs the two-process test: the test binary re-executes itself as a child
// that shares two rings with it through one memfd and two eventfds.

// shOpenFDs returns the open file descriptors of this process and where
// they point.
func shOpenFDs(t testing.TB) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := make(map[string]string, len(ents))
	for _, e := range ents {
		link, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fds[e.Name()] = link
	}
	return fds
}

// shCheckFDs counts the open file descriptors now and fails the test if
// more are open when it ends (after the cleanups registered later).
func shCheckFDs(t testing.TB) {
	t.Helper()
	// Make sure the runtime's poller is up, so that its own descriptors
	// are counted before the test and not blamed on it.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before := shOpenFDs(t)
	t.Cleanup(func() {
		var now map[string]string
		for deadline := time.Now().Add(5 * time.Second); ; {
			if now = shOpenFDs(t); len(now) <= len(before) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(now) > len(before) {
			var extra []string
			for fd, link := range now {
				if before[fd] != link {
					extra = append(extra, fd+" -> "+link)
				}
			}
			t.Errorf("file descriptor leak: %d open before the test, %d after; new: %s",
				len(before), len(now), strings.Join(extra, ", "))
		}
	})
}

// shMemfd makes a memfd of size bytes with the given memfd_create flags and
// seals, closed when the test ends.
func shMemfd(t *testing.T, size int, flags, seals int) int {
	t.Helper()
	fd, err := unix.MemfdCreate("ringtun-test-raw", flags)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		t.Fatal(err)
	}
	if seals != 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
			t.Fatal(err)
		}
	}
	return fd
}

func TestCreateShared(t *testing.T) {
	shCheckFDs(t)
	for _, size := range []int{1, 12, 4095, 4096, 4097, RingSize(CapacityMin), 2 * RingSize(CapacityMax>>4)} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			s, err := CreateShared("ringtun-test", size)
			if err != nil {
				t.Fatal(err)
			}
			mem := s.Bytes()
			if len(mem) != size {
				t.Fatalf("Bytes() is %d bytes, want %d", len(mem), size)
			}
			if zeros := bytes.Count(mem, []byte{0}); zeros != size {
				t.Errorf("new region has %d non-zero bytes", size-zeros)
			}
			mem[0], mem[size-1] = 0xA5, 0x5A // writable at both ends

			fd := s.Fd()
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != int64(size) {
				t.Errorf("memfd is %d bytes, want %d", st.Size, size)
			}
			seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
			if err != nil {
				t.Fatal(err)
			}
			if want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL; seals != want {
				t.Errorf("seals %#x, want %#x (shrink, grow, seal)", seals, want)
			}
			if err := unix.Ftruncate(fd, int64(size)+4096); err == nil {
				t.Error("the memfd could grow")
			}
			if err := unix.Ftruncate(fd, 0); err == nil {
				t.Error("the memfd could shrink")
			}
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE); err == nil {
				t.Error("a peer could add F_SEAL_WRITE")
			}
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Errorf("memfd flags %#x, %v: want close-on-exec", flags, err)
			}
			if link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); !strings.Contains(link, "memfd:ringtun-test") {
				t.Errorf("memfd shows as %q, want its name", link)
			}

			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if s.Bytes() != nil {
				t.Error("Bytes() after Close is not nil")
			}
			if err := s.Close(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("second Close: %v, want os.ErrClosed", err)
			}
		})
	}
	for _, size := range []int{0, -1, -RingSize(CapacityMin)} {
		if s, err := CreateShared("ringtun-test", size); !errors.Is(err, ErrInvalidMemory) {
			t.Errorf("CreateShared(%d): %v, want ErrInvalidMemory", size, err)
			if s != nil {
				s.Close()
			}
		}
	}
}

func TestMapShared(t *testing.T) {
	shCheckFDs(t)
	const capacity = CapacityMin
	size := RingSize(capacity)
	s, err := CreateShared("ringtun-test", size)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := MapShared(s.Fd(), size)
	if err != nil {
		t.Fatal(err)
	}
	if m.Fd() == s.Fd() {
		t.Error("MapShared did not duplicate the descriptor")
	}
	if len(m.Bytes()) != size {
		t.Fatalf("mapping is %d bytes, want %d", len(m.Bytes()), size)
	}

	// One ring, its producer on one mapping and its consumer on the other.
	r1, err := New(s.Bytes(), capacity)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := New(m.Bytes(), capacity)
	if err != nil {
		t.Fatal(err)
	}
	p, c := NewProducer(r1, nil), NewConsumer(r2, nil)
	for i := range 10_000 { // wraps the ring several times
		b, err := p.Allocate(tpSize(uint64(i)))
		if err != nil {
			t.Fatalf("Allocate %d: %v", i, err)
		}
		tpFill(b, uint64(i))
		if err := p.Commit(b); err != nil {
			t.Fatal(err)
		}
		if b, err = c.Receive(); err != nil {
			t.Fatalf("Receive %d: %v", i, err)
		}
		if err := tpCheck(b, uint64(i)); err != nil {
			t.Fatal(err)
		}
		if err := c.Release(b); err != nil {
			t.Fatal(err)
		}
	}

	// The second mapping owns its own descriptor: it outlives the first.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	m.Bytes()[size-1] = 1
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v, want os.ErrClosed", err)
	}

	// What MapShared must refuse.
	good, err := CreateShared("ringtun-test", size)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	const resize = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW
	for _, tc := range []struct {
		name    string
		fd      int
		size    int
		invalid bool // the error must wrap ErrInvalidMemory
	}{
		{"smaller size", good.Fd(), size - 4, true},
		{"larger size", good.Fd(), size + 4096, true},
		{"zero size", good.Fd(), 0, true},
		{"unsealable memfd", shMemfd(t, size, unix.MFD_CLOEXEC, 0), size, true},
		{"memfd without seals", shMemfd(t, size, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING, 0), size, true},
		{"memfd that may grow", shMemfd(t, size, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING, unix.F_SEAL_SHRINK), size, true},
		{"memfd that may shrink", shMemfd(t, size, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING, unix.F_SEAL_GROW), size, true},
		{"sealed memfd of another size", shMemfd(t, size+4096, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING, resize), size, true},
		{"write-sealed memfd", shMemfd(t, size, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING, resize|unix.F_SEAL_WRITE), size, false},
		{"pipe", int(pr.Fd()), size, false},
		{"closed descriptor", -1, size, false},
	} {
		m, err := MapShared(tc.fd, tc.size)
		if err == nil {
			m.Close()
			t.Errorf("%s: MapShared succeeded", tc.name)
			continue
		}
		if tc.invalid && !errors.Is(err, ErrInvalidMemory) {
			t.Errorf("%s: %v, want ErrInvalidMemory", tc.name, err)
		}
	}

	// A memfd sealed as CreateShared seals it, but made by someone else.
	fd := shMemfd(t, size, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING, resize)
	if m, err = MapShared(fd, size); err != nil {
		t.Fatalf("MapShared of a memfd sealed against resizing: %v", err)
	}
	m.Close()
}

func TestEventFD(t *testing.T) {
	shCheckFDs(t)
	ccCheckGoroutines(t)
	e, err := NewEventFD()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if flags, err := unix.FcntlInt(uintptr(e.Fd()), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("eventfd flags %#x, %v: want close-on-exec", flags, err)
	}
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 30*time.Millisecond)
	}
	long := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), ccWaitTimeout)
	}
	// expectEmpty checks that Wait blocks until its deadline.
	expectEmpty := func(what string, w *EventFD) {
		t.Helper()
		ctx, cancel := short()
		defer cancel()
		if err := w.Wait(ctx); err != context.DeadlineExceeded {
			t.Errorf("%s: Wait returned %v, want context.DeadlineExceeded", what, err)
		}
	}
	// waitAsync starts Wait in a goroutine and checks that it blocks.
	waitAsync := func(w *EventFD, ctx context.Context) chan error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- w.Wait(ctx) }()
		select {
		case err := <-done:
			t.Fatalf("Wait returned %v at once", err)
		case <-time.After(20 * time.Millisecond):
		}
		return done
	}
	result := func(done chan error) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(ccWaitTimeout):
			t.Fatalf("Wait not woken within %v", ccWaitTimeout)
			return nil
		}
	}

	// A Signal before Wait is kept; several count as one.
	expectEmpty("new eventfd", e)
	e.Signal()
	e.Signal()
	e.Signal()
	ctx, cancel := long()
	if err := e.Wait(ctx); err != nil {
		t.Errorf("Wait after Signal: %v", err)
	}
	cancel()
	expectEmpty("after the signals were consumed", e)

	// Signal wakes a goroutine in Wait.
	ctx, cancel = long()
	done := waitAsync(e, ctx)
	e.Signal()
	if err := result(done); err != nil {
		t.Errorf("Wait woken by Signal: %v", err)
	}
	cancel()

	// Cancelling the context wakes it, and leaves no signal behind.
	ctx, cancel = long()
	done = waitAsync(e, ctx)
	cancel()
	if err := result(done); err != context.Canceled {
		t.Errorf("Wait woken by cancel: %v, want context.Canceled", err)
	}
	expectEmpty("after a cancelled Wait", e)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := e.Wait(ctx); err != context.Canceled {
		t.Errorf("Wait with a cancelled context: %v, want context.Canceled", err)
	}
	expectEmpty("after a Wait with a cancelled context", e)

	// The counter is a native-endian uint64, as every other eventfd user
	// (another process, another language) writes it.
	e.Signal()
	var buf [8]byte
	if n, err := unix.Read(e.Fd(), buf[:]); n != 8 || err != nil || binary.NativeEndian.Uint64(buf[:]) != 1 {
		t.Errorf("read of the eventfd after Signal: %d, %v, %x; want the native-endian count 1", n, err, buf)
	}
	binary.NativeEndian.PutUint64(buf[:], 7)
	if _, err := unix.Write(e.Fd(), buf[:]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = long()
	if err := e.Wait(ctx); err != nil {
		t.Errorf("Wait after a raw write: %v", err)
	}
	cancel()
	expectEmpty("after a raw write was consumed", e)

	// EventFDFrom on a duplicate: both ends see the same counter; closing
	// one leaves the other working.
	e2, err := EventFDFrom(e.Fd())
	if err != nil {
		t.Fatal(err)
	}
	if e2.Fd() == e.Fd() {
		t.Error("EventFDFrom did not duplicate the descriptor")
	}
	e.Signal()
	ctx, cancel = long()
	if err := e2.Wait(ctx); err != nil {
		t.Errorf("Wait on the duplicate after Signal on the original: %v", err)
	}
	done = waitAsync(e, ctx)
	e2.Signal()
	if err := result(done); err != nil {
		t.Errorf("Wait on the original woken by the duplicate: %v", err)
	}
	cancel()
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	e.Signal()
	ctx, cancel = long()
	if err := e.Wait(ctx); err != nil {
		t.Errorf("Wait on the original after closing the duplicate: %v", err)
	}
	cancel()

	// EventFDFrom makes a blocking eventfd (as a C peer may pass it)
	// non-blocking, so that Wait stays cancellable.
	raw, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	e3, err := EventFDFrom(raw)
	unix.Close(raw)
	if err != nil {
		t.Fatal(err)
	}
	if fl, err := unix.FcntlInt(uintptr(e3.Fd()), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK == 0 {
		t.Errorf("EventFDFrom of a blocking eventfd: flags %#x, %v; want O_NONBLOCK", fl, err)
	}
	expectEmpty("EventFDFrom of a blocking eventfd", e3)
	e3.Close()
	if e4, err := EventFDFrom(-1); err == nil {
		e4.Close()
		t.Error("EventFDFrom(-1) succeeded")
	}

	// Close wakes a goroutine in Wait with an error wrapping os.ErrClosed.
	e5, err := NewEventFD()
	if err != nil {
		t.Fatal(err)
	}
	done = waitAsync(e5, context.Background())
	if err := e5.Close(); err != nil {
		t.Fatal(err)
	}
	if err := result(done); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Wait woken by Close: %v, want os.ErrClosed", err)
	}
	e5.Signal() // no effect, no panic
	ctx, cancel = long()
	if err := e5.Wait(ctx); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Wait after Close: %v, want os.ErrClosed", err)
	}
	cancel()
}

// shNewEventFD is a newWaker for the shared Consumer tests.
func shNewEventFD(t *testing.T) Waker {
	e, err := NewEventFD()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestEventFDConsumer runs the Consumer wake-up tests of
// concurrency_test.go with an eventfd as the waker.
func TestEventFDConsumer(t *testing.T) {
	shCheckFDs(t)
	t.Run("LostWakeup", func(t *testing.T) {
		tc := ccLostWakeupCase{target: 3000, minSleeps: 1000, maxRecords: 300_000, maxTime: 10 * time.Second}
		if testing.Short() {
			tc = ccLostWakeupCase{target: 500, minSleeps: 200, maxRecords: 50_000, maxTime: 5 * time.Second}
		}
		ccLostWakeup(t, shNewEventFD(t), tc)
	})
	t.Run("Terminate", func(t *testing.T) { ccWaitTerminate(t, shNewEventFD) })
	t.Run("Cancel", func(t *testing.T) { ccWaitCancel(t, shNewEventFD) })
}

// The two-process test and benchmark re-execute the test binary with
// -test.run=^TestTwoProcess$ and the child's role in tpEnvRole. The child
// gets its memfd and eventfds as descriptors 3, 4 and 5.
const (
	tpEnvRole     = "RINGTUN_RING_TEST_CHILD"
	tpEnvRecords  = "RINGTUN_RING_TEST_RECORDS"
	tpRoleTwoProc = "two-process"
	tpRoleBench   = "bench"
	tpCapacity    = 1 << 20
	tpTimeout     = 2 * time.Minute
	tpBatch       = 32
)

// tpSize is the size of record i: 8 to 63 bytes, and now and then up to
// 1407.
func tpSize(i uint64) int {
	h := ccMix(0xabc, i)
	if h%97 == 0 {
		return 8 + int(h>>8%1400)
	}
	return 8 + int(h>>8%56)
}

// tpFill writes record i: its sequence number, then a window of ccPattern.
func tpFill(b []byte, i uint64) {
	binary.LittleEndian.PutUint64(b, i)
	off := int(i % 251)
	copy(b[8:], ccPattern[off:off+len(b)-8])
}

func tpCheck(b []byte, i uint64) error {
	if want := tpSize(i); len(b) != want {
		return fmt.Errorf("record %d is %d bytes, want %d", i, len(b), want)
	}
	if got := binary.LittleEndian.Uint64(b); got != i {
		return fmt.Errorf("record %d carries sequence number %d", i, got)
	}
	off := int(i % 251)
	if !bytes.Equal(b[8:], ccPattern[off:off+len(b)-8]) {
		return fmt.Errorf("record %d: content damaged", i)
	}
	return nil
}

// tpProduce sends records 0..n-1, mixing single and batch calls and
// committing some batches in reverse order. It backs off with
// runtime.Gosched when the ring is full.
func tpProduce(ctx context.Context, p *Producer, n uint64, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 11))
	var (
		sizes [tpBatch]int
		pkts  [tpBatch][]byte
	)
	for i := uint64(0); i < n; {
		mode := rng.IntN(3)
		k := 1
		if mode > 0 {
			k = 1 + rng.IntN(tpBatch)
		}
		k = int(min(uint64(k), n-i))
		var err error
		if mode == 0 {
			pkts[0], err = p.Allocate(tpSize(i))
		} else {
			for j := range k {
				sizes[j] = tpSize(i + uint64(j))
			}
			k, err = p.AllocateBatch(sizes[:k], pkts[:])
		}
		if errors.Is(err, ErrFull) {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("producer stopped at record %d of %d: %w", i, n, err)
			}
			runtime.Gosched()
			continue
		}
		if err != nil {
			return fmt.Errorf("producer: allocating record %d: %w", i, err)
		}
		for j, b := range pkts[:k] {
			tpFill(b, i+uint64(j))
		}
		switch mode {
		case 0:
			err = p.Commit(pkts[0])
		case 1:
			err = p.CommitBatch(pkts[:k])
		case 2:
			for j := k - 1; j >= 0 && err == nil; j-- {
				err = p.Commit(pkts[j])
			}
		}
		if err != nil {
			return fmt.Errorf("producer: committing records %d..%d: %w", i, i+uint64(k)-1, err)
		}
		i += uint64(k)
	}
	return nil
}

// tpConsume receives records 0..n-1 and checks them, mixing single and
// batch calls and releasing some batches in reverse order. It sleeps in
// Wait when the ring is empty.
func tpConsume(ctx context.Context, c *Consumer, n uint64, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 13))
	var pkts [tpBatch][]byte
	for i := uint64(0); i < n; {
		mode := rng.IntN(3)
		k := 1
		var err error
		if mode == 0 {
			pkts[0], err = c.Receive()
		} else {
			k, err = c.ReceiveBatch(pkts[:int(min(uint64(1+rng.IntN(tpBatch)), n-i))])
		}
		if errors.Is(err, ErrEmpty) {
			if err := c.Wait(ctx); err != nil {
				return fmt.Errorf("consumer waiting for record %d of %d: %w", i, n, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("consumer: receiving record %d: %w", i, err)
		}
		for j, b := range pkts[:k] {
			if err := tpCheck(b, i+uint64(j)); err != nil {
				return err
			}
		}
		switch mode {
		case 0:
			err = c.Release(pkts[0])
		case 1:
			err = c.ReleaseBatch(pkts[:k])
		case 2:
			for j := k - 1; j >= 0 && err == nil; j-- {
				err = c.Release(pkts[j])
			}
		}
		if err != nil {
			return fmt.Errorf("consumer: releasing records %d..%d: %w", i, i+uint64(k)-1, err)
		}
		i += uint64(k)
	}
	return nil
}

// tpTerminateWhenDrained waits until the consumer has released every
// record, then terminates the ring from the producer side.
func tpTerminateWhenDrained(ctx context.Context, p *Producer) error {
	r := p.Ring()
	for r.head.Load() != r.tail.Load() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for the consumer to release every record (Head %#x, Tail %#x): %w",
				r.head.Load(), r.tail.Load(), err)
		}
		time.Sleep(time.Millisecond)
	}
	p.Terminate()
	return nil
}

// tpExpectTerminated checks that the consumer gets no more records and is
// woken with ErrTerminated when the producer terminates the ring.
func tpExpectTerminated(ctx context.Context, c *Consumer) error {
	for {
		b, err := c.Receive()
		switch {
		case err == nil:
			return fmt.Errorf("consumer: got a record of %d bytes after the last one", len(b))
		case errors.Is(err, ErrTerminated):
			return nil
		case !errors.Is(err, ErrEmpty):
			return fmt.Errorf("consumer: waiting for the end of the ring: %w", err)
		}
		if err := c.Wait(ctx); err != nil && !errors.Is(err, ErrTerminated) {
			return fmt.Errorf("consumer: waiting for the end of the ring: %w", err)
		}
	}
}

// tpRings returns rings A and B of a two-ring region.
func tpRings(mem []byte) (a, b *Ring, err error) {
	size := RingSize(tpCapacity)
	if a, err = New(mem[:size:size], tpCapacity); err != nil {
		return nil, nil, err
	}
	if b, err = New(mem[size:], tpCapacity); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// tpDupFile returns a duplicate of fd as an *os.File for exec.Cmd.ExtraFiles.
func tpDupFile(t testing.TB, fd int, name string) *os.File {
	t.Helper()
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(d), name)
}

// tpCommand returns the command that re-executes this test binary as a
// child in the given role, with files as descriptors 3, 4, ... The child is
// killed when ctx ends and when this process dies.
func tpCommand(ctx context.Context, role string, env []string, files []*os.File, out *bytes.Buffer) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestTwoProcess$")
	cmd.Env = append(append(os.Environ(), tpEnvRole+"="+role), env...)
	cmd.ExtraFiles = files
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// tpStart starts cmd and closes the parent's copies of its extra files.
func tpStart(cmd *exec.Cmd) error {
	err := cmd.Start()
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	return err
}

// tpChild runs in the re-executed test binary. A failure is reported on
// stderr and in the exit status.
func tpChild(role string) {
	var err error
	switch role {
	case tpRoleTwoProc:
		err = tpTwoProcessChild()
	case tpRoleBench:
		err = benchTwoProcessChild()
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ring test child (%s): %v\n", role, err)
		os.Exit(2)
	}
}

func tpRecords() (uint64, error) {
	n, err := strconv.ParseUint(os.Getenv(tpEnvRecords), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", tpEnvRecords, err)
	}
	return n, nil
}

// tpTwoProcessChild is the child of TestTwoProcess: it consumes ring A and
// produces ring B.
func tpTwoProcessChild() error {
	n, err := tpRecords()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), tpTimeout)
	defer cancel()
	sh, err := MapShared(3, 2*RingSize(tpCapacity))
	unix.Close(3)
	if err != nil {
		return err
	}
	defer sh.Close()
	wA, err := EventFDFrom(4)
	unix.Close(4)
	if err != nil {
		return err
	}
	defer wA.Close()
	wB, err := EventFDFrom(5)
	unix.Close(5)
	if err != nil {
		return err
	}
	defer wB.Close()
	ringA, ringB, err := tpRings(sh.Bytes())
	if err != nil {
		return err
	}
	cA, pB := NewConsumer(ringA, wA), NewProducer(ringB, wB)

	var wg sync.WaitGroup
	var consErr, prodErr error
	wg.Go(func() {
		if consErr = tpConsume(ctx, cA, n, 3); consErr == nil {
			consErr = tpExpectTerminated(ctx, cA)
		}
		if consErr != nil {
			cancel()
		}
	})
	wg.Go(func() {
		if prodErr = tpProduce(ctx, pB, n, 4); prodErr == nil {
			prodErr = tpTerminateWhenDrained(ctx, pB)
		}
		if prodErr != nil {
			cancel()
		}
	})
	wg.Wait()
	return errors.Join(consErr, prodErr)
}

// TestTwoProcess shares two rings between this process and a re-executed
// child through one memfd and two eventfds. The parent produces n records
// on ring A and consumes n from ring B while the child does the opposite;
// both sides check every record, and each producer then terminates its
// ring once it is drained, which the other process must see.
func TestTwoProcess(t *testing.T) {
	if role := os.Getenv(tpEnvRole); role != "" {
		tpChild(role)
		return
	}
	shCheckFDs(t)
	ccCheckGoroutines(t)
	n := uint64(1_000_000)
	if testing.Short() {
		n = 100_000
	}

	sh, err := CreateShared("ringtun-two-process", 2*RingSize(tpCapacity))
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	evA, err := NewEventFD()
	if err != nil {
		t.Fatal(err)
	}
	defer evA.Close()
	evB, err := NewEventFD()
	if err != nil {
		t.Fatal(err)
	}
	defer evB.Close()
	ringA, ringB, err := tpRings(sh.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	pA, cB := NewProducer(ringA, evA), NewConsumer(ringB, evB)

	ctx, cancel := context.WithTimeout(context.Background(), tpTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := tpCommand(ctx, tpRoleTwoProc, []string{tpEnvRecords + "=" + strconv.FormatUint(n, 10)}, []*os.File{
		tpDupFile(t, sh.Fd(), "memfd"),
		tpDupFile(t, evA.Fd(), "eventfd-a"),
		tpDupFile(t, evB.Fd(), "eventfd-b"),
	}, &out)
	start := time.Now()
	if err := tpStart(cmd); err != nil {
		t.Fatal(err)
	}
	childDone := make(chan struct{})
	var childErr error
	go func() {
		if childErr = cmd.Wait(); childErr != nil {
			cancel() // stop this side too
		}
		close(childDone)
	}()
	defer func() { cancel(); <-childDone }() // the child never outlives the test

	var wg sync.WaitGroup
	var prodErr, consErr error
	wg.Go(func() {
		if prodErr = tpProduce(ctx, pA, n, 1); prodErr == nil {
			prodErr = tpTerminateWhenDrained(ctx, pA)
		}
		if prodErr != nil {
			cancel()
		}
	})
	wg.Go(func() {
		if consErr = tpConsume(ctx, cB, n, 2); consErr == nil {
			consErr = tpExpectTerminated(ctx, cB)
		}
		if consErr != nil {
			cancel()
		}
	})
	wg.Wait()
	<-childDone
	elapsed := time.Since(start)
	if childErr != nil {
		t.Errorf("child: %v\n%s", childErr, out.Bytes())
	}
	if prodErr != nil {
		t.Errorf("parent: %v", prodErr)
	}
	if consErr != nil {
		t.Errorf("parent: %v", consErr)
	}
	if !t.Failed() {
		t.Logf("%d records each way between two processes in %v, child start-up included", n, elapsed)
	}
}
