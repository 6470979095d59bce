package ring

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Wait re-checks the ring a bounded number of times before it sleeps, so
// that a consumer that is about to get a record does not pay for a
// wake-up, and a busy producer does not pay for signalling one. The bound
// adapts: it doubles (up to spinMax) each time spinning found a record and
// halves (down to spinMin) each time spinning found nothing, so
// an idle ring costs little spinning and a busy one rarely sleeps. Past
// the first spinMin checks, every spinYield checks the spinning goroutine
// yields its processor, so that on a small machine the producer it waits
// for can run. The first spinMin checks (the whole spin of an idle ring)
// do not yield: runtime.Gosched with an idle processor around wakes a
// thread to look for work, a futex call and a context switch for nothing,
// which was most of the extra wake-ups per packet in a ping through a
// forwarder.
const (
	spinMin   = 16
	spinMax   = 4096
	spinYield = 8
)

// Consumer is the reading side of a ring: Receive hands out records in
// order, Release gives them back in any order. Its methods are safe for
// concurrent use.
type Consumer struct {
	r     *Ring
	waker Waker

	mu          sync.Mutex
	head        uint32 // next record to receive
	headRelease uint32 // first record not yet released; the published Head
	tail        uint32 // last Tail read from the producer, validated
	starts      bitmap // where the received records from headRelease to head start
	released    bitmap // which of those were released
	err         error  // sticky: ErrTerminated or corruption
	ended       bool   // this side terminated the ring: never store Head again

	keepAlertable atomic.Bool   // Alertable stays 1: the producer signals every Tail move
	spin          atomic.Int32  // Wait's current spin bound, spinMin..spinMax (0: spinMin)
	spinCap       int32         // tests: a lower spinMax (0: spinMax)
	sleeps        atomic.Uint64 // times Wait slept on the waker

	waitMu   sync.Mutex
	sleeping chan struct{} // non-nil while one goroutine sleeps on the waker; closed when it wakes
}

// NewConsumer returns the consumer side of r. It starts from the ring's
// current Head. The waker is the one the producer signals when Alertable is
// set; it may be nil if Wait is never called.
func NewConsumer(r *Ring, w Waker) *Consumer {
	c := &Consumer{r: r, waker: w, starts: newBitmap(r.capacity), released: newBitmap(r.capacity)}
	switch head := r.head.Load(); {
	case head >= r.capacity:
		c.err = ErrTerminated
	case head%Alignment != 0:
		c.err = corrupt("head %#x is not 4-byte aligned", head)
	default:
		c.head, c.headRelease, c.tail = head, head, head
	}
	return c
}

// Ring returns the ring this consumer reads.
func (c *Consumer) Ring() *Ring { return c.r }

// Receive returns the next committed record. The slice aliases ring memory
// and stays valid until it is passed to Release; the peer can still write
// those bytes, so treat their content as untrusted. It returns ErrEmpty
// when there is nothing to receive, ErrTerminated once either side has
// terminated the ring, and an error wrapping ErrCorrupt when the producer
// broke the protocol.
func (c *Consumer) Receive() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.receive()
}

func (c *Consumer) receive() ([]byte, error) {
	if err := c.look(); err != nil {
		return nil, err
	}
	if c.head == c.tail {
		return nil, ErrEmpty
	}
	return c.next()
}

// look reads and validates the shared Tail, as Wintun's consumer does on
// every receive, so that termination and corruption show at once.
func (c *Consumer) look() error {
	if c.err != nil {
		return c.err
	}
	r := c.r
	tail := r.tail.Load()
	switch {
	case tail >= r.capacity:
		c.err = ErrTerminated
	case tail%Alignment != 0:
		c.err = corrupt("tail %#x is not 4-byte aligned", tail)
	case r.dist(c.headRelease, tail) < r.dist(c.headRelease, c.tail):
		c.err = corrupt("tail %#x moved back from %#x", tail, c.tail)
	default:
		c.tail = tail
	}
	return c.err
}

// next hands out the record at head, which is before tail.
func (c *Consumer) next() ([]byte, error) {
	r, tail := c.r, c.tail
	content := r.dist(c.head, tail)
	size := r.size(c.head)
	if size > PacketSizeMax {
		c.err = corrupt("record at %#x has size %#x", c.head, size)
		return nil, c.err
	}
	aligned := align4(Alignment + size)
	if aligned > content {
		c.err = corrupt("record at %#x of size %#x runs past tail %#x", c.head, size, tail)
		return nil, c.err
	}
	p := packetAt(r.data, c.head+Alignment, size)
	c.starts.set(c.head)
	c.head = (c.head + aligned) & r.mask
	return p, nil
}

// Release gives a received record back to the producer. Records may be
// released in any order; the shared Head advances over the contiguous run
// of released records at its front. Release returns ErrForeignPacket for a
// slice that is not an unreleased record from Receive (with its start
// unchanged), and an error wrapping ErrCorrupt when the producer rewrote a
// record header it no longer owns.
func (c *Consumer) Release(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.mark(p); err != nil {
		return err
	}
	return c.advance()
}

// ReceiveBatch receives up to len(pkts) records into pkts, as Receive would
// one by one, and returns how many. It returns 0 and the error Receive
// would have returned when there is no record to hand out; an error met
// after the first record is returned by the next call.
func (c *Consumer) ReceiveBatch(pkts [][]byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.look(); err != nil {
		return 0, err
	}
	if c.head == c.tail {
		if len(pkts) == 0 {
			return 0, nil
		}
		return 0, ErrEmpty
	}
	for i := range pkts {
		if c.head == c.tail {
			return i, nil
		}
		p, err := c.next()
		if err != nil {
			if i > 0 {
				err = nil
			}
			return i, err
		}
		pkts[i] = p
	}
	return len(pkts), nil
}

// ReleaseBatch releases every record in pkts, as Release would one by one
// but publishing Head once. It returns the first error met; the other
// records are still released.
func (c *Consumer) ReleaseBatch(pkts [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for _, p := range pkts {
		if err := c.mark(p); err != nil && first == nil {
			first = err
		}
	}
	if err := c.advance(); err != nil && first == nil {
		first = err
	}
	return first
}

// mark sets the released bit on the record whose payload is p.
func (c *Consumer) mark(p []byte) error {
	r := c.r
	at, ok := offsetIn(r.data, p)
	if !ok || at < Alignment || (at-Alignment)%Alignment != 0 {
		return ErrForeignPacket
	}
	off := at - Alignment
	if off >= r.capacity || !c.starts.has(off) || c.released.has(off) {
		return ErrForeignPacket
	}
	size := r.size(off)
	if size&flagBit != 0 {
		c.err = corrupt("producer set the released bit of record at %#x", off)
		return c.err
	}
	r.setSize(off, size|flagBit)
	c.released.set(off)
	return nil
}

// advance moves Head over the released records at its front and publishes
// it.
func (c *Consumer) advance() error {
	if c.err != nil && c.err != ErrTerminated {
		return c.err
	}
	r := c.r
	old := c.headRelease
	for c.headRelease != c.head && c.released.has(c.headRelease) {
		size := r.size(c.headRelease)
		if size&flagBit == 0 {
			c.err = corrupt("producer cleared the released bit of record at %#x", c.headRelease)
			return c.err
		}
		size &^= flagBit
		aligned := align4(Alignment + size)
		next := (c.headRelease + aligned) & r.mask
		if size > PacketSizeMax || aligned > r.dist(c.headRelease, c.head) || next != c.head && !c.starts.has(next) {
			c.err = corrupt("received record at %#x changed size to %#x", c.headRelease, size)
			return c.err
		}
		c.starts.clear(c.headRelease)
		c.released.clear(c.headRelease)
		c.headRelease = next
	}
	if c.headRelease != old && !c.ended {
		r.head.Store(c.headRelease)
	}
	return nil
}

// Terminate ends the ring from the consumer side by storing 0xFFFFFFFF in
// Head, and wakes every goroutine in Wait. Later calls to Receive return
// ErrTerminated; the producer sees ErrTerminated on its next Allocate.
func (c *Consumer) Terminate() {
	c.mu.Lock()
	c.ended = true
	if c.err == nil {
		c.err = ErrTerminated
	}
	c.r.head.Store(terminated)
	c.mu.Unlock()
	if c.waker != nil {
		c.waker.Signal()
	}
}

// Err returns the sticky error, or nil while the ring is usable.
func (c *Consumer) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// poll reports whether Receive would return something other than
// ErrEmpty, and the sticky error, which it sets when the producer has
// terminated the ring.
func (c *Consumer) poll() (bool, error) {
	tail := c.r.tail.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && tail >= c.r.capacity {
		c.err = ErrTerminated
	}
	return c.err != nil || tail != c.head, c.err
}

// Ready reports whether Receive would now return a record or an error
// rather than ErrEmpty.
func (c *Consumer) Ready() bool {
	ready, _ := c.poll()
	return ready
}

// Wait blocks until Receive may return a record or an error other than
// ErrEmpty, or until ctx is done. It returns nil when the ring is ready, the
// sticky error once the ring is terminated or corrupt, and ctx.Err() when
// ctx ends first.
//
// Wait follows Wintun's protocol: it sets Alertable, checks the ring once
// more, and only then sleeps on the waker, which the producer signals when
// it moves Tail while Alertable is set. Several goroutines may wait at once:
// one of them sleeps on the waker and wakes the others when it wakes, so
// the waker never has more than one goroutine in Wait.
func (c *Consumer) Wait(ctx context.Context) error {
	if c.waker == nil {
		return errNoWaker
	}
	if c.spinWait() {
		_, err := c.poll()
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.waitMu.Lock()
		if c.sleeping != nil {
			woken := c.sleeping
			c.waitMu.Unlock()
			select {
			case <-woken:
			case <-ctx.Done():
				return ctx.Err()
			}
		} else {
			woken := make(chan struct{})
			c.sleeping = woken
			c.waitMu.Unlock()
			err := c.sleep(ctx)
			c.waitMu.Lock()
			c.sleeping = nil
			c.waitMu.Unlock()
			close(woken)
			if err != nil {
				return err
			}
		}
		if ready, err := c.poll(); ready {
			return err
		}
	}
}

// spinWait polls the ring up to the current spin bound and reports whether
// a record (or an error) showed up, adapting the bound.
func (c *Consumer) spinWait() bool {
	bound := c.spin.Load()
	if bound < spinMin {
		bound = spinMin
	}
	for i := int32(1); i <= bound; i++ {
		if ready, _ := c.poll(); ready {
			limit := int32(spinMax)
			if c.spinCap != 0 {
				limit = c.spinCap
			}
			c.spin.Store(min(bound*2, limit))
			return true
		}
		if i > spinMin && i%spinYield == 0 {
			runtime.Gosched()
		}
	}
	c.spin.Store(max(bound/2, spinMin))
	return false
}

// Sleeps returns how many times Wait has put a goroutine to sleep on the
// waker: the wake-ups this consumer asked the producer for.
func (c *Consumer) Sleeps() uint64 { return c.sleeps.Load() }

// KeepAlertable sets Alertable and keeps it set, so that the producer
// signals the waker on every Tail move, as Wintun's driver does. It is for
// consumers that wait on the waker's file descriptor themselves instead of
// calling Wait. There is no way back.
func (c *Consumer) KeepAlertable() {
	c.keepAlertable.Store(true)
	c.r.alertable.Store(1)
}

// sleep is Wintun's "set Alertable, re-check, wait" step, done by one
// goroutine at a time.
func (c *Consumer) sleep(ctx context.Context) error {
	c.r.alertable.Store(1)
	defer func() {
		if !c.keepAlertable.Load() {
			c.r.alertable.Store(0)
		}
	}()
	if ready, _ := c.poll(); ready {
		return nil
	}
	c.sleeps.Add(1)
	return c.waker.Wait(ctx)
}
