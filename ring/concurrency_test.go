package ring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This file holds the concurrency tests: many goroutines on each side of one
// ring, the lost wake-up case of the Alertable protocol, Terminate and
// context cancellation of goroutines blocked in Wait. Every test checks that
// it leaves no goroutine behind.

// ccWaitTimeout bounds every Wait in these tests: a lost wake-up shows as a
// Wait that runs into it instead of as a hung test.
const ccWaitTimeout = 10 * time.Second

// ccCheckGoroutines records the number of goroutines now and, when the test
// ends (after the cleanups registered later), fails it if more remain once
// they had a few seconds to settle.
func ccCheckGoroutines(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		var now int
		for deadline := time.Now().Add(5 * time.Second); ; {
			if now = runtime.NumGoroutine(); now <= before || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if now > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutine leak: %d goroutines before the test, %d after\n%s", before, now, buf)
		}
	})
}

// ccNewRing returns a ring of the given capacity in heap memory.
func ccNewRing(t testing.TB, capacity uint32) *Ring {
	t.Helper()
	r, err := New(make([]byte, RingSize(capacity)), capacity)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ccCountingWaker wraps a Waker, counts its Signal and Wait calls and
// remembers the context of the goroutine sleeping in Wait.
type ccCountingWaker struct {
	Waker
	signals atomic.Int64
	waits   atomic.Int64

	mu      sync.Mutex
	sleeper context.Context // ctx of the goroutine in Wait, nil when none
}

func (w *ccCountingWaker) Signal() {
	w.signals.Add(1)
	w.Waker.Signal()
}

func (w *ccCountingWaker) Wait(ctx context.Context) error {
	w.waits.Add(1)
	w.mu.Lock()
	if w.sleeper != nil {
		w.mu.Unlock()
		panic("two goroutines in Waker.Wait at once")
	}
	w.sleeper = ctx
	w.mu.Unlock()
	err := w.Waker.Wait(ctx)
	w.mu.Lock()
	w.sleeper = nil
	w.mu.Unlock()
	return err
}

// sleeping returns the context of the goroutine in Wait, or nil.
func (w *ccCountingWaker) sleeping() context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sleeper
}

// ccWaitFor polls cond every millisecond for up to ccWaitTimeout.
func ccWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(ccWaitTimeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", ccWaitTimeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Records of the many-goroutine test: a 16-byte header of producer id
// (uint32), sequence number (uint64) and CRC-32 of the payload, then a
// payload whose length and bytes follow from (id, seq).
const ccHeader = 16

// ccCRC is CRC-32C, which the race detector does not slow down on amd64
// and arm64 (it is computed by assembly, not by table look-ups in Go).
var ccCRC = crc32.MakeTable(crc32.Castagnoli)

// ccPattern is the source of every payload: a record's payload is a window
// of it chosen by (id, seq).
var ccPattern = func() []byte {
	b := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}()

func ccMix(id uint32, seq uint64) uint64 {
	x := seq ^ uint64(id)<<56 ^ 0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// ccPayload returns the payload of record (id, seq): mostly small, now and
// then up to 1500 bytes, sometimes empty.
func ccPayload(id uint32, seq uint64) []byte {
	h := ccMix(id, seq)
	n := int(h >> 8 % 48)
	switch h & 63 {
	case 0:
		n = int(h >> 16 % 1500)
	case 1:
		n = 0
	}
	off := int(h >> 32 % uint64(len(ccPattern)-1500))
	return ccPattern[off : off+n]
}

func ccSize(id uint32, seq uint64) int { return ccHeader + len(ccPayload(id, seq)) }

func ccFill(b []byte, id uint32, seq uint64) {
	payload := ccPayload(id, seq)
	binary.LittleEndian.PutUint32(b[0:], id)
	binary.LittleEndian.PutUint64(b[4:], seq)
	binary.LittleEndian.PutUint32(b[12:], crc32.Checksum(payload, ccCRC))
	copy(b[ccHeader:], payload)
}

// ccDelivery is the shared record of what the consumers received.
type ccDelivery struct {
	perProducer uint64
	seen        [][]atomic.Uint64 // one bit per (producer, seq)
	received    atomic.Uint64
}

func newCCDelivery(producers int, perProducer uint64) *ccDelivery {
	d := &ccDelivery{perProducer: perProducer, seen: make([][]atomic.Uint64, producers)}
	for i := range d.seen {
		d.seen[i] = make([]atomic.Uint64, (perProducer+63)/64)
	}
	return d
}

// ccConsumerState is one consumer goroutine's view: the last sequence
// number it got from each producer.
type ccConsumerState struct {
	d    *ccDelivery
	last []int64
}

// check validates one received record; it returns the number of records
// received so far by all consumers, this one included.
func (s *ccConsumerState) check(b []byte) (uint64, error) {
	if len(b) < ccHeader {
		return 0, fmt.Errorf("record of %d bytes, shorter than its header", len(b))
	}
	id := binary.LittleEndian.Uint32(b[0:])
	seq := binary.LittleEndian.Uint64(b[4:])
	if int(id) >= len(s.last) || seq >= s.d.perProducer {
		return 0, fmt.Errorf("record names producer %d sequence %d, which was never sent", id, seq)
	}
	if int64(seq) <= s.last[id] {
		return 0, fmt.Errorf("producer %d: sequence %d received after %d by the same consumer", id, seq, s.last[id])
	}
	s.last[id] = int64(seq)
	payload := ccPayload(id, seq)
	if len(b) != ccHeader+len(payload) ||
		binary.LittleEndian.Uint32(b[12:]) != crc32.Checksum(b[ccHeader:], ccCRC) ||
		!bytes.Equal(b[ccHeader:], payload) {
		return 0, fmt.Errorf("producer %d sequence %d: content damaged (%d bytes)", id, seq, len(b))
	}
	bit := uint64(1) << (seq % 64)
	if s.d.seen[id][seq/64].Or(bit)&bit != 0 {
		return 0, fmt.Errorf("producer %d sequence %d delivered twice", id, seq)
	}
	return s.d.received.Add(1), nil
}

// ccFailer stops every goroutine of a test at the first error.
type ccFailer struct {
	stop   atomic.Bool
	cancel context.CancelFunc
	mu     sync.Mutex
	first  error
}

func (f *ccFailer) fail(err error) {
	f.mu.Lock()
	if f.first == nil {
		f.first = err
	}
	f.mu.Unlock()
	f.stop.Store(true)
	f.cancel()
}

func (f *ccFailer) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first
}

// ccProduce is one producer goroutine: it sends perProducer records with
// its id, mixing Allocate/Commit, AllocateBatch/CommitBatch, and commits
// out of allocation order.
func ccProduce(p *Producer, id uint32, perProducer uint64, seed uint64, f *ccFailer) {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	var (
		sizes [16]int
		pkts  [16][]byte
		order [16]int
		seq   uint64 // next sequence number to allocate
	)
	full := func() bool {
		if f.stop.Load() {
			return true
		}
		runtime.Gosched()
		return false
	}
	for seq < perProducer && !f.stop.Load() {
		switch mode := rng.IntN(4); mode {
		case 0: // one record
			b, err := p.Allocate(ccSize(id, seq))
			if errors.Is(err, ErrFull) {
				if full() {
					return
				}
				continue
			}
			if err != nil {
				f.fail(err)
				return
			}
			ccFill(b, id, seq)
			seq++
			if err := p.Commit(b); err != nil {
				f.fail(err)
				return
			}
		case 1, 2: // a batch, committed at once (shuffled) or one by one in random order
			k := min(1+rng.IntN(len(sizes)), int(perProducer-seq))
			for j := range k {
				sizes[j] = ccSize(id, seq+uint64(j))
			}
			n, err := p.AllocateBatch(sizes[:k], pkts[:])
			if errors.Is(err, ErrFull) {
				if full() {
					return
				}
				continue
			}
			if err != nil {
				f.fail(err)
				return
			}
			for j := range n {
				ccFill(pkts[j], id, seq+uint64(j))
			}
			seq += uint64(n)
			rng.Shuffle(n, func(a, b int) { pkts[a], pkts[b] = pkts[b], pkts[a] })
			if mode == 1 {
				err = p.CommitBatch(pkts[:n])
			} else {
				for _, b := range pkts[:n] {
					if err = p.Commit(b); err != nil {
						break
					}
				}
			}
			if err != nil {
				f.fail(err)
				return
			}
		case 3: // several single allocations, committed in reverse or random order
			k := min(2+rng.IntN(7), int(perProducer-seq))
			n := 0
			for ; n < k; n++ {
				b, err := p.Allocate(ccSize(id, seq))
				if errors.Is(err, ErrFull) {
					break // commit what we hold before backing off
				}
				if err != nil {
					f.fail(err)
					return
				}
				ccFill(b, id, seq)
				seq++
				pkts[n] = b
			}
			for j := range n {
				order[j] = n - 1 - j
			}
			if rng.IntN(2) == 0 {
				rng.Shuffle(n, func(a, b int) { order[a], order[b] = order[b], order[a] })
			}
			for _, j := range order[:n] {
				if err := p.Commit(pkts[j]); err != nil {
					f.fail(err)
					return
				}
			}
			if n < k && full() {
				return
			}
		}
	}
}

// ccConsume is one consumer goroutine. It mixes Receive/Release,
// ReceiveBatch/ReleaseBatch and releases out of order, always releasing
// what it holds before it sleeps in Wait. The goroutine that receives the
// last record terminates the ring, which wakes the others with
// ErrTerminated.
func ccConsume(ctx context.Context, c *Consumer, s *ccConsumerState, total uint64, seed uint64, f *ccFailer, sleeps *atomic.Int64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	var (
		pkts [32][]byte
		held int
	)
	check := func(b []byte) bool {
		n, err := s.check(b)
		if err != nil {
			f.fail(err)
			return false
		}
		if n == total {
			// Release what is held first, so that Head reaches Tail.
			ccReleaseAll(c, pkts[:held], rng, f)
			held = 0
			c.Terminate()
		}
		return true
	}
	for !f.stop.Load() {
		var err error
		switch mode := rng.IntN(4); mode {
		case 0, 3: // single receives, released in random order
			k := 1
			if mode == 3 {
				k = 2 + rng.IntN(7)
			}
			for held < k {
				var b []byte
				if b, err = c.Receive(); err != nil {
					break
				}
				pkts[held] = b
				held++
				if !check(b) {
					return
				}
			}
			if held > 0 {
				ccReleaseAll(c, pkts[:held], rng, f)
				held = 0
			}
		case 1, 2: // a batch, released at once (shuffled) or one by one
			var n int
			n, err = c.ReceiveBatch(pkts[:1+rng.IntN(len(pkts))])
			held = n
			for _, b := range pkts[:n] {
				if !check(b) {
					return
				}
			}
			if held > 0 {
				rng.Shuffle(held, func(a, b int) { pkts[a], pkts[b] = pkts[b], pkts[a] })
				if mode == 1 {
					if rerr := c.ReleaseBatch(pkts[:held]); rerr != nil {
						f.fail(rerr)
						return
					}
				} else {
					ccReleaseAll(c, pkts[:held], nil, f)
				}
				held = 0
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrEmpty):
			sleeps.Add(1)
			wctx, cancel := context.WithTimeout(ctx, ccWaitTimeout)
			werr := c.Wait(wctx)
			cancel()
			switch {
			case werr == nil:
			case errors.Is(werr, ErrTerminated):
				return
			case ctx.Err() != nil:
				return // the test failed or ran out of time; the caller reports it
			case errors.Is(werr, context.DeadlineExceeded):
				f.fail(fmt.Errorf("lost wake-up: a consumer slept in Wait for %v with %d of %d records received",
					ccWaitTimeout, s.d.received.Load(), total))
				return
			default:
				f.fail(werr)
				return
			}
		case errors.Is(err, ErrTerminated):
			return
		default:
			f.fail(err)
			return
		}
	}
}

// ccReleaseAll releases pkts one by one, in random order when rng is set.
func ccReleaseAll(c *Consumer, pkts [][]byte, rng *rand.Rand, f *ccFailer) {
	if rng != nil {
		rng.Shuffle(len(pkts), func(a, b int) { pkts[a], pkts[b] = pkts[b], pkts[a] })
	}
	for _, b := range pkts {
		if err := c.Release(b); err != nil {
			f.fail(err)
			return
		}
	}
}

// TestConcurrentProducersConsumers runs several producer goroutines and
// several consumer goroutines on one small ring with a ChanWaker. Each
// record carries its producer id, sequence number and a checksum; every
// record must arrive exactly once, intact, and each consumer must see each
// producer's sequence numbers strictly increase (delivery order is
// allocation order).
func TestConcurrentProducersConsumers(t *testing.T) {
	ccCheckGoroutines(t)
	const producers, consumers = 3, 3
	perProducer := uint64(700_000) // 2.1 million records, about 10 s under -race
	if testing.Short() {
		perProducer = 100_000
	}
	total := perProducer * producers

	r := ccNewRing(t, CapacityMin)
	w := NewChanWaker()
	p, c := NewProducer(r, w), NewConsumer(r, w)

	// A watchdog bounds the test: a lost wake-up or a deadlock shows as
	// this context expiring instead of a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f := &ccFailer{cancel: cancel}
	d := newCCDelivery(producers, perProducer)
	var sleeps atomic.Int64
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	start := time.Now()
	var wg sync.WaitGroup
	for i := range consumers {
		s := &ccConsumerState{d: d, last: make([]int64, producers)}
		for j := range s.last {
			s.last[j] = -1
		}
		wg.Go(func() { ccConsume(ctx, c, s, total, seed+uint64(i), f, &sleeps) })
	}
	for i := range producers {
		wg.Go(func() { ccProduce(p, uint32(i), perProducer, seed, f) })
	}
	wg.Wait()
	elapsed := time.Since(start)

	if err := f.err(); err != nil {
		t.Fatal(err)
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("consumers stopped before receiving every record (lost wake-up or deadlock?): %v; received %d of %d",
			err, d.received.Load(), total)
	}
	if got := d.received.Load(); got != total {
		t.Fatalf("received %d records, want %d", got, total)
	}
	for id, bits := range d.seen {
		for i := range bits {
			want := ^uint64(0)
			if rem := perProducer - uint64(i)*64; rem < 64 {
				want = 1<<rem - 1
			}
			if got := bits[i].Load(); got != want {
				t.Fatalf("producer %d: records %d..%d: delivered bitmap %#x, want %#x", id, i*64, i*64+63, got, want)
			}
		}
	}
	if err := p.Err(); err != nil && err != ErrTerminated {
		t.Errorf("producer error %v", err)
	}
	t.Logf("%d records by %d producers to %d consumers in %v (%.0f records/s), %d Wait calls",
		total, producers, consumers, elapsed, float64(total)/elapsed.Seconds(), sleeps.Load())
}

// ccLostWakeupCase is one run of the lost wake-up test: the producer
// stops once the consumer has slept target times, or after maxRecords
// records or maxTime, whichever comes first; the consumer must have slept
// at least minSleeps times by then.
type ccLostWakeupCase struct {
	target, minSleeps int64
	maxRecords        uint64
	maxTime           time.Duration
}

// ccEndMark is the sequence number of the producer's last record.
const ccEndMark = ^uint64(0)

// ccLostWakeup runs a producer that commits one record at a time with a
// tiny random pause against a consumer that drains the ring and calls Wait
// whenever it finds it empty, so that the consumer falls asleep and is woken
// thousands of times across the Alertable window. It fails if any Wait runs
// into its timeout, which is how a lost wake-up shows.
func ccLostWakeup(t *testing.T, inner Waker, tc ccLostWakeupCase) {
	ccCheckGoroutines(t)
	r := ccNewRing(t, CapacityMin)
	w := &ccCountingWaker{Waker: inner}
	p, c := NewProducer(r, w), NewConsumer(r, w)
	// Keep Wait's spin short, as it is on an idle ring, so that the
	// consumer sleeps often and the Alertable window is crossed often.
	c.spinCap = spinMin

	// enough tells the producer to send its last record; abort, set when
	// the test ends, stops it at once.
	var enough, abort atomic.Bool
	defer abort.Store(true)
	prodErr := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
		deadline := time.Now().Add(tc.maxTime)
		var sink uint64
		for i := uint64(0); ; i++ {
			if i == tc.maxRecords || enough.Load() || i%1024 == 0 && time.Now().After(deadline) {
				i = ccEndMark // the last record, whose number tells the consumer to stop
			}
			b, err := p.Allocate(8)
			for errors.Is(err, ErrFull) && !abort.Load() {
				runtime.Gosched()
				b, err = p.Allocate(8)
			}
			if err != nil {
				prodErr <- err
				return
			}
			binary.LittleEndian.PutUint64(b, i)
			if err := p.Commit(b); err != nil {
				prodErr <- err
				return
			}
			if i == ccEndMark {
				break
			}
			// Pause for a random while, from nothing to somewhat longer
			// than the consumer spins in Wait before it sleeps, spread
			// evenly on a log scale so that many commits land while the
			// consumer is setting Alertable and re-checking.
			switch x := rng.Uint64(); x % 8 {
			case 0: // no pause
			case 1:
				runtime.Gosched()
			default:
				for j := (x >> 8) & (1<<(x>>3%21) - 1); j > 0; j-- {
					sink += j * 0x9e3779b97f4a7c15
				}
			}
		}
		if sink == 1 {
			runtime.Gosched() // keep the spin loop alive
		}
		prodErr <- nil
	}()

	start := time.Now()
	var i uint64
	for {
		b, err := c.Receive()
		if errors.Is(err, ErrEmpty) {
			if w.waits.Load() >= tc.target {
				enough.Store(true)
			}
			ctx, cancel := context.WithTimeout(context.Background(), ccWaitTimeout)
			err = c.Wait(ctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("lost wake-up: Wait slept %v after %d records (Head %#x, Tail %#x, Alertable %d)",
					ccWaitTimeout, i, r.head.Load(), r.tail.Load(), r.alertable.Load())
			}
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Receive after %d records: %v", i, err)
		}
		got := binary.LittleEndian.Uint64(b)
		if len(b) != 8 || got != i && got != ccEndMark {
			t.Fatalf("record %d: got %d bytes, sequence %d", i, len(b), got)
		}
		if err := c.Release(b); err != nil {
			t.Fatal(err)
		}
		if got == ccEndMark {
			break
		}
		i++
	}
	if err := <-prodErr; err != nil {
		t.Fatalf("producer: %v", err)
	}
	sleeps := w.waits.Load()
	t.Logf("%d records in %v: the consumer slept on the waker %d times, the producer signalled %d times",
		i, time.Since(start).Round(time.Millisecond), sleeps, w.signals.Load())
	if sleeps < tc.minSleeps {
		t.Errorf("the consumer slept only %d times, want at least %d: the test did not exercise the Alertable window",
			sleeps, tc.minSleeps)
	}
}

// TestLostWakeup is the lost wake-up case that Wintun fixed in 2026 with a
// barrier: the consumer sets Alertable and re-checks Tail while the
// producer stores Tail and checks Alertable. The consumer must sleep and be
// woken thousands of times without a Wait ever timing out.
func TestLostWakeup(t *testing.T) {
	tc := ccLostWakeupCase{target: 6000, minSleeps: 2000, maxRecords: 500_000, maxTime: 15 * time.Second}
	if testing.Short() {
		tc = ccLostWakeupCase{target: 1000, minSleeps: 300, maxRecords: 100_000, maxTime: 5 * time.Second}
	}
	ccLostWakeup(t, NewChanWaker(), tc)
}

// ccWaiter is a goroutine blocked in Consumer.Wait.
type ccWaiter struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan error
}

// ccKey tags each waiter's context so that ccCountingWaker can tell which
// waiter is the one sleeping on the waker.
type ccKey struct{}

// ccStartWaiters starts n goroutines in c.Wait and returns once one of them
// sleeps on the waker and the others had time to block behind it. None
// may have returned.
func ccStartWaiters(t *testing.T, c *Consumer, w *ccCountingWaker, n int) []*ccWaiter {
	t.Helper()
	ws := make([]*ccWaiter, n)
	for i := range ws {
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ccKey{}, i), ccWaitTimeout)
		ws[i] = &ccWaiter{ctx: ctx, cancel: cancel, done: make(chan error, 1)}
		t.Cleanup(cancel)
		go func() { ws[i].done <- c.Wait(ctx) }()
	}
	ccWaitFor(t, "a goroutine to sleep on the waker", func() bool { return w.sleeping() != nil })
	time.Sleep(20 * time.Millisecond) // let the others block behind it
	ccExpectBlocked(t, ws)
	return ws
}

// ccExpectBlocked fails if any of ws returned from Wait.
func ccExpectBlocked(t *testing.T, ws []*ccWaiter) {
	t.Helper()
	for i, w := range ws {
		select {
		case err := <-w.done:
			t.Fatalf("waiter %d returned %v while it should still wait", i, err)
		default:
		}
	}
}

// ccExpectDone waits for w to return and checks its error.
func ccExpectDone(t *testing.T, i int, w *ccWaiter, want error) {
	t.Helper()
	select {
	case err := <-w.done:
		if !errors.Is(err, want) && err != want {
			t.Fatalf("waiter %d returned %v, want %v", i, err, want)
		}
	case <-time.After(ccWaitTimeout):
		t.Fatalf("waiter %d was not woken within %v (want %v)", i, ccWaitTimeout, want)
	}
}

// ccWaitTerminate checks that Terminate, from either side, wakes every
// goroutine blocked in Wait with ErrTerminated, and that Wait and Receive
// return ErrTerminated from then on.
func ccWaitTerminate(t *testing.T, newWaker func(t *testing.T) Waker) {
	for _, side := range []string{"consumer", "producer"} {
		t.Run(side, func(t *testing.T) {
			ccCheckGoroutines(t)
			r := ccNewRing(t, CapacityMin)
			w := &ccCountingWaker{Waker: newWaker(t)}
			p, c := NewProducer(r, w), NewConsumer(r, w)
			ws := ccStartWaiters(t, c, w, 5)
			if side == "consumer" {
				c.Terminate()
			} else {
				p.Terminate()
			}
			for i, wt := range ws {
				ccExpectDone(t, i, wt, ErrTerminated)
			}
			ctx, cancel := context.WithTimeout(context.Background(), ccWaitTimeout)
			defer cancel()
			if err := c.Wait(ctx); err != ErrTerminated {
				t.Errorf("Wait after Terminate: %v, want ErrTerminated", err)
			}
			if _, err := c.Receive(); err != ErrTerminated {
				t.Errorf("Receive after Terminate: %v, want ErrTerminated", err)
			}
		})
	}
}

func TestWaitTerminateWakesAll(t *testing.T) {
	ccWaitTerminate(t, func(*testing.T) Waker { return NewChanWaker() })
}

// ccWaitCancel checks that cancelling one waiter's context wakes that
// waiter only: first the one sleeping on the waker (another takes its
// place), then one queued behind it. A record then wakes the rest.
func ccWaitCancel(t *testing.T, newWaker func(t *testing.T) Waker) {
	ccCheckGoroutines(t)
	r := ccNewRing(t, CapacityMin)
	w := &ccCountingWaker{Waker: newWaker(t)}
	p, c := NewProducer(r, w), NewConsumer(r, w)
	ws := ccStartWaiters(t, c, w, 5)
	live := map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true}
	rest := func() []*ccWaiter {
		var l []*ccWaiter
		for i, wt := range ws {
			if live[i] {
				l = append(l, wt)
			}
		}
		return l
	}

	// Cancel the sleeper: it alone returns, and another waiter takes over
	// the waker.
	sleeper := w.sleeping().Value(ccKey{}).(int)
	ws[sleeper].cancel()
	ccExpectDone(t, sleeper, ws[sleeper], context.Canceled)
	delete(live, sleeper)
	ccWaitFor(t, "another goroutine to sleep on the waker", func() bool {
		s := w.sleeping()
		return s != nil && s.Value(ccKey{}).(int) != sleeper
	})
	time.Sleep(20 * time.Millisecond)
	ccExpectBlocked(t, rest())

	// Cancel a waiter that is not the sleeper.
	next := w.sleeping().Value(ccKey{}).(int)
	for i := range live {
		if i != next {
			ws[i].cancel()
			ccExpectDone(t, i, ws[i], context.Canceled)
			delete(live, i)
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	ccExpectBlocked(t, rest())

	// A committed record wakes every remaining waiter with nil.
	b, err := p.Allocate(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(b); err != nil {
		t.Fatal(err)
	}
	for i := range live {
		ccExpectDone(t, i, ws[i], nil)
	}
}

func TestWaitCancelWakesOnlyThatWaiter(t *testing.T) {
	ccWaitCancel(t, func(*testing.T) Waker { return NewChanWaker() })
}

// TestTerminateSeenByPeer checks the documented effect of Terminate on the
// other side: after the consumer terminates, the producer's next Allocate
// returns ErrTerminated, even when it still has room as of the last Head it
// read; after the producer terminates, the consumer's next Receive and Wait
// return ErrTerminated.
func TestTerminateSeenByPeer(t *testing.T) {
	t.Run("consumer", func(t *testing.T) {
		r := ccNewRing(t, CapacityMin)
		p, c := NewProducer(r, nil), NewConsumer(r, nil)
		b, err := p.Allocate(100)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Commit(b); err != nil {
			t.Fatal(err)
		}
		if b, err = c.Receive(); err != nil {
			t.Fatal(err)
		}
		if err := c.Release(b); err != nil {
			t.Fatal(err)
		}
		c.Terminate()
		if _, err := p.Allocate(100); err != ErrTerminated {
			t.Errorf("Allocate after the consumer terminated: %v, want ErrTerminated", err)
		}
		if n, err := p.AllocateBatch([]int{1, 2}, make([][]byte, 2)); n != 0 || err != ErrTerminated {
			t.Errorf("AllocateBatch after the consumer terminated: %d, %v, want 0, ErrTerminated", n, err)
		}
	})
	t.Run("producer", func(t *testing.T) {
		ccCheckGoroutines(t)
		r := ccNewRing(t, CapacityMin)
		w := NewChanWaker()
		p, c := NewProducer(r, w), NewConsumer(r, w)
		p.Terminate()
		if _, err := c.Receive(); err != ErrTerminated {
			t.Errorf("Receive after the producer terminated: %v, want ErrTerminated", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), ccWaitTimeout)
		defer cancel()
		if err := c.Wait(ctx); err != ErrTerminated {
			t.Errorf("Wait after the producer terminated: %v, want ErrTerminated", err)
		}
		if _, err := p.Allocate(1); err != ErrTerminated {
			t.Errorf("Allocate after Terminate: %v, want ErrTerminated", err)
		}
	})
}
