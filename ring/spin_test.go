package ring

import (
	"context"
	"testing"
	"time"
)

// TestRingWaitSpinAdapts checks the adaptive bound of Wait's spin: it grows
// when spinning finds a record and shrinks when the consumer sleeps, within
// spinMin..spinMax; and the Sleeps and Signals counters count exactly the
// sleeps and the wake-ups.
func TestRingWaitSpinAdapts(t *testing.T) {
	w := NewChanWaker()
	f := rtNew(t, w)
	ctx := context.Background()

	for i := 0; i < 12; i++ { // a record is always there: the bound doubles up to spinMax
		f.send(10, uint32(i))
		if err := f.c.Wait(ctx); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		f.release(f.recv())
	}
	if got := f.c.spin.Load(); got != spinMax {
		t.Fatalf("spin bound after 12 ready Waits = %d, want %d", got, spinMax)
	}
	if f.c.Sleeps() != 0 || f.p.Signals() != 0 {
		t.Fatalf("Sleeps %d Signals %d with records always ready, want 0 0", f.c.Sleeps(), f.p.Signals())
	}

	// Nothing comes: every Wait spins, halves the bound and sleeps until
	// its context ends, which happens once it is seen asleep.
	for i := 0; i < 12; i++ {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- f.c.Wait(cctx) }()
		waitAlertable(t, f)
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("Wait on an empty ring = %v, want Canceled", err)
		}
	}
	if got := f.c.spin.Load(); got != spinMin {
		t.Fatalf("spin bound after 12 idle Waits = %d, want %d", got, spinMin)
	}
	if got := f.c.Sleeps(); got != 12 {
		t.Fatalf("Sleeps = %d after 12 idle Waits, want 12", got)
	}

	// A sleeper is woken by exactly one signal.
	done := make(chan error, 1)
	go func() { done <- f.c.Wait(ctx) }()
	waitAlertable(t, f)
	f.send(10, 99)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	case <-time.After(rtBound):
		t.Fatal("Wait was not woken")
	}
	if got := f.p.Signals(); got != 1 {
		t.Fatalf("Signals = %d, want 1", got)
	}
	if got := f.c.Sleeps(); got != 13 {
		t.Fatalf("Sleeps = %d, want 13", got)
	}
}

// waitAlertable waits until the consumer has set Alertable, that is, until a
// Wait is about to sleep or sleeping.
func waitAlertable(t *testing.T, f *rtFixture) {
	t.Helper()
	deadline := time.Now().Add(rtBound)
	for f.alertable() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("consumer never set Alertable")
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// TestRingReady: Ready says whether Receive would return something other
// than ErrEmpty.
func TestRingReady(t *testing.T) {
	f := rtNew(t, nil)
	if f.c.Ready() {
		t.Fatal("Ready on an empty ring")
	}
	a := f.alloc(10, 1)
	if f.c.Ready() {
		t.Fatal("Ready with a record allocated but not committed")
	}
	f.commit(a)
	if !f.c.Ready() {
		t.Fatal("not Ready with a committed record")
	}
	f.release(f.recv())
	if f.c.Ready() {
		t.Fatal("Ready after the only record was received")
	}
	f.p.Terminate()
	if !f.c.Ready() {
		t.Fatal("not Ready on a terminated ring: Receive returns ErrTerminated")
	}
}
