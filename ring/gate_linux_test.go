package ring

import (
	"context"
	"testing"
	"time"
)

// TestGate: the first Wait asks and returns at once, the next sleeps
// until the peer signals; the peer signals only when asked.
func TestGate(t *testing.T) {
	ev, err := NewEventFD()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	word := make([]byte, 8)
	g, err := NewGate(word[4:], ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewGate(word[1:], ev); err == nil {
		t.Error("a misaligned gate word was accepted")
	}
	g.Signal() // not asked: no signal
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Wait(ctx); err != nil || g.wanted.Load() != 1 {
		t.Fatalf("first Wait: %v, wanted %d", err, g.wanted.Load())
	}
	woke := make(chan error, 1)
	go func() { woke <- g.Wait(ctx) }()
	select {
	case err := <-woke:
		t.Fatalf("the second Wait returned (%v) before a signal: an unasked Signal was kept", err)
	case <-time.After(50 * time.Millisecond):
	}
	g.Signal()
	if err := <-woke; err != nil {
		t.Fatal(err)
	}
	if g.wanted.Load() != 0 {
		t.Error("Signal left the word set")
	}
	short, stop := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer stop()
	g.wanted.Store(1)
	if err := g.Wait(short); err != context.DeadlineExceeded {
		t.Errorf("Wait with nothing signalled: %v, want the context's error", err)
	}
}
