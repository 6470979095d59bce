package ring

import "context"

// Waker carries the producer's wake-up to a sleeping consumer. It behaves
// like an auto-reset event: a Signal with no goroutine in Wait is kept and
// ends the next Wait at once, and several Signals before a Wait count as
// one. Spurious wake-ups are allowed; the consumer re-checks the ring.
//
// ChanWaker serves goroutines in one process; on Linux, EventFD serves
// processes that share a ring.
type Waker interface {
	// Signal wakes one goroutine in Wait, now or at its next call. It is
	// safe from any goroutine and never blocks.
	Signal()
	// Wait blocks until a Signal or until ctx is done, when it returns
	// ctx.Err(). It returns another error only when the waker is closed.
	// Consumer never calls Wait from two goroutines at once.
	Wait(ctx context.Context) error
}

// ChanWaker is a Waker for a producer and consumer in the same process. It
// makes no system call.
type ChanWaker struct {
	c chan struct{}
}

// NewChanWaker returns a ready ChanWaker.
func NewChanWaker() *ChanWaker { return &ChanWaker{c: make(chan struct{}, 1)} }

// Signal implements Waker.
func (w *ChanWaker) Signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// Wait implements Waker.
func (w *ChanWaker) Wait(ctx context.Context) error {
	select {
	case <-w.c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
