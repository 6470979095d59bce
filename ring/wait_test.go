package ring

// Wait and the Alertable protocol: who signals, when, and how waiting
// goroutines wake.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRingSignalOnlyWhenAlertable: the producer signals the waker when it
// moves Tail while Alertable is set, and Terminate always signals.
func TestRingSignalOnlyWhenAlertable(t *testing.T) {
	w := &rtCountingWaker{}
	f := rtNew(t, w)
	f.send(1, 0)
	if n := w.signals.Load(); n != 0 {
		t.Fatalf("%d signals with Alertable = 0", n)
	}
	f.r.alertable.Store(1)
	f.send(1, 0)
	if n := w.signals.Load(); n != 1 {
		t.Fatalf("%d signals with Alertable = 1, want 1", n)
	}
	c := f.alloc(1, 0)
	d := f.alloc(1, 0)
	f.commit(d) // Tail cannot move past C
	if n := w.signals.Load(); n != 1 {
		t.Fatalf("%d signals without a Tail move, want 1", n)
	}
	f.commit(c)
	if n := w.signals.Load(); n != 2 {
		t.Fatalf("%d signals, want 2", n)
	}
	f.r.alertable.Store(0)
	f.p.Terminate()
	if n := w.signals.Load(); n != 3 {
		t.Fatalf("%d signals after Terminate, want 3", n)
	}
	f.c.Terminate()
	if n := w.signals.Load(); n != 4 {
		t.Fatalf("%d signals after Consumer.Terminate, want 4", n)
	}
}

// rtSpyWaker is a ChanWaker that reports each call to Wait.
type rtSpyWaker struct {
	*ChanWaker
	entered chan struct{}
	waits   atomic.Int32
}

func rtNewSpy() *rtSpyWaker {
	return &rtSpyWaker{ChanWaker: NewChanWaker(), entered: make(chan struct{}, 100)}
}

func (w *rtSpyWaker) Wait(ctx context.Context) error {
	w.waits.Add(1)
	select {
	case w.entered <- struct{}{}:
	default:
	}
	return w.ChanWaker.Wait(ctx)
}

// rtParkedInWait counts goroutines blocked in a select or channel receive
// inside c.Wait, whether on the waker or on another waiter.
func rtParkedInWait(c *Consumer) int {
	frame := fmt.Sprintf("ring.(*Consumer).Wait(%p", c)
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		first, _, _ := strings.Cut(g, "\n")
		if strings.Contains(g, frame) &&
			(strings.Contains(first, "[select") || strings.Contains(first, "[chan receive")) {
			n++
		}
	}
	return n
}

// rtAwait polls cond until it holds; the bound only turns a hang into a
// failure.
func rtAwait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(rtBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// rtStartWaiters starts n goroutines in Wait and returns their results.
func rtStartWaiters(ctx context.Context, c *Consumer, n int) chan error {
	done := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { done <- c.Wait(ctx) }()
	}
	return done
}

func rtCollect(t *testing.T, done chan error, n int, want error) {
	t.Helper()
	timeout := time.After(rtBound)
	for i := 0; i < n; i++ {
		select {
		case err := <-done:
			if !rtIsOrNil(err, want) {
				t.Fatalf("Wait = %v, want %v", err, want)
			}
		case <-timeout:
			t.Fatalf("%d of %d waiters still blocked", n-i, n)
		}
	}
}

func TestRingWait(t *testing.T) {
	t.Run("no waker", func(t *testing.T) {
		f := rtNew(t, nil)
		if err := f.c.Wait(context.Background()); err == nil {
			t.Fatal("Wait without a waker = nil")
		}
	})
	t.Run("ready", func(t *testing.T) {
		w := rtNewSpy()
		f := rtNew(t, w)
		f.send(10, 0)
		// A cancelled context proves Wait did not need to block.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := f.c.Wait(ctx); err != nil {
			t.Fatalf("Wait with a record ready = %v, want nil", err)
		}
		if w.waits.Load() != 0 || f.alertable() != 0 {
			t.Fatalf("Wait slept (%d) or left Alertable = %d", w.waits.Load(), f.alertable())
		}
		f.recvWant(0, 10, 0)
		// A record received but not released is not a reason to wake.
		if err := f.c.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait with nothing new = %v, want context.Canceled", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		f := rtNew(t, rtNewSpy())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := f.c.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
		ctx, cancel = context.WithDeadline(context.Background(), time.Unix(1, 0))
		defer cancel()
		if err := f.c.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want context.DeadlineExceeded", err)
		}
		if f.alertable() != 0 {
			t.Fatalf("Alertable = %d after Wait", f.alertable())
		}
	})
	t.Run("cancelled while blocked", func(t *testing.T) {
		w := rtNewSpy()
		f := rtNew(t, w)
		ctx, cancel := context.WithCancel(context.Background())
		done := rtStartWaiters(ctx, f.c, 1)
		<-w.entered
		rtAwait(t, "the waiter to block", func() bool { return rtParkedInWait(f.c) == 1 })
		if f.alertable() != 1 {
			t.Fatalf("Alertable = %d while the consumer sleeps", f.alertable())
		}
		cancel()
		rtCollect(t, done, 1, context.Canceled)
		if f.alertable() != 0 {
			t.Fatalf("Alertable = %d after Wait", f.alertable())
		}
	})
	t.Run("woken by Commit", func(t *testing.T) {
		w := rtNewSpy()
		f := rtNew(t, w)
		ctx, cancel := context.WithTimeout(context.Background(), rtBound)
		defer cancel()
		done := rtStartWaiters(ctx, f.c, 1)
		<-w.entered
		rtAwait(t, "the waiter to block", func() bool { return rtParkedInWait(f.c) == 1 })
		f.send(10, 0)
		rtCollect(t, done, 1, nil)
		f.recvWant(0, 10, 0)
	})
	for _, side := range []string{"producer", "consumer"} {
		t.Run("woken by "+side+" Terminate", func(t *testing.T) {
			w := rtNewSpy()
			f := rtNew(t, w)
			ctx, cancel := context.WithTimeout(context.Background(), rtBound)
			defer cancel()
			done := rtStartWaiters(ctx, f.c, 1)
			<-w.entered
			rtAwait(t, "the waiter to block", func() bool { return rtParkedInWait(f.c) == 1 })
			if side == "producer" {
				f.p.Terminate()
			} else {
				f.c.Terminate()
			}
			rtCollect(t, done, 1, ErrTerminated)
		})
	}
	for _, how := range []string{"Commit", "producer Terminate", "consumer Terminate"} {
		t.Run("several waiters woken by "+how, func(t *testing.T) {
			const n = 5
			w := rtNewSpy()
			f := rtNew(t, w)
			ctx, cancel := context.WithTimeout(context.Background(), rtBound)
			defer cancel()
			done := rtStartWaiters(ctx, f.c, n)
			rtAwait(t, "all waiters to block", func() bool { return rtParkedInWait(f.c) == n })
			if w.waits.Load() != 1 {
				t.Fatalf("%d goroutines called the waker's Wait, want 1", w.waits.Load())
			}
			var want error
			switch how {
			case "Commit":
				f.send(10, 0)
			case "producer Terminate":
				f.p.Terminate()
				want = ErrTerminated
			default:
				f.c.Terminate()
				want = ErrTerminated
			}
			rtCollect(t, done, n, want)
		})
	}
	t.Run("sleeper cancelled, others keep waiting", func(t *testing.T) {
		w := rtNewSpy()
		f := rtNew(t, w)
		ctx1, cancel1 := context.WithCancel(context.Background())
		done1 := rtStartWaiters(ctx1, f.c, 1)
		<-w.entered // waiter 1 sleeps on the waker
		ctx, cancel := context.WithTimeout(context.Background(), rtBound)
		defer cancel()
		done := rtStartWaiters(ctx, f.c, 3)
		rtAwait(t, "all waiters to block", func() bool { return rtParkedInWait(f.c) == 4 })
		cancel1()
		rtCollect(t, done1, 1, context.Canceled)
		<-w.entered // another waiter took over the waker
		rtAwait(t, "the others to block again", func() bool { return rtParkedInWait(f.c) == 3 })
		select {
		case err := <-done:
			t.Fatalf("a waiter returned %v with nothing to receive", err)
		default:
		}
		f.send(10, 0)
		rtCollect(t, done, 3, nil)
	})
}

// rtParked counts goroutines in a frame containing fn whose state starts
// with state.
func rtParked(fn, state string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		first, _, _ := strings.Cut(g, "\n")
		if strings.Contains(g, fn) && strings.Contains(first, state) {
			n++
		}
	}
	return n
}

// TestRingWaitLoop moves records one at a time from a producer goroutine to
// a consumer that waits whenever the ring is empty: a lost wake-up makes
// Wait block until the bound.
func TestRingWaitLoop(t *testing.T) {
	const records = 2000
	w := NewChanWaker()
	f := rtNew(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), rtBound)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	perr := make(chan error, 1)
	go func() {
		defer wg.Done()
		for i := 0; i < records; i++ {
			size := i % 200
			for {
				pkt, err := f.p.Allocate(size)
				if errors.Is(err, ErrFull) {
					if ctx.Err() != nil {
						perr <- ctx.Err()
						return
					}
					runtime.Gosched()
					continue
				}
				if err != nil {
					perr <- err
					return
				}
				rtFill(pkt, uint32(i))
				if err := f.p.Commit(pkt); err != nil {
					perr <- err
					return
				}
				break
			}
		}
	}()
	for i := 0; i < records; {
		pkt, err := f.c.Receive()
		if errors.Is(err, ErrEmpty) {
			if err := f.c.Wait(ctx); err != nil {
				t.Fatalf("Wait before record %d: %v", i, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if !bytes.Equal(pkt, rtPattern(i%200, uint32(i))) {
			t.Fatalf("record %d wrong", i)
		}
		f.release(pkt)
		i++
	}
	wg.Wait()
	select {
	case err := <-perr:
		t.Fatalf("producer: %v", err)
	default:
	}
	f.expectEmpty()
}
