package ringtun

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestCallGuard: the memory is freed exactly once, never while a call
// that was let in is still in, and calls after the end are turned away.
func TestCallGuard(t *testing.T) {
	var freed atomic.Int32
	var g callGuard
	g.free = func() { freed.Add(1) }

	if !g.enter(&g.rx) {
		t.Fatal("enter refused before end")
	}
	g.end()
	if freed.Load() != 0 {
		t.Fatal("freed while a call was in")
	}
	if g.enter(&g.tx) {
		t.Fatal("enter let a call in after end")
	}
	if freed.Load() != 0 {
		t.Fatal("a refused call freed the memory under the call still in")
	}
	g.exit(&g.rx)
	if freed.Load() != 1 {
		t.Fatalf("freed %d times after the last call left, want 1", freed.Load())
	}
	g.end()
	if g.enter(&g.rx) || freed.Load() != 1 {
		t.Fatalf("after a second end: freed %d times", freed.Load())
	}
}

// TestCallGuardConcurrent: many goroutines on both sides while the
// session ends; a call that was let in never sees the memory freed.
func TestCallGuardConcurrent(t *testing.T) {
	for round := 0; round < 200; round++ {
		var freed atomic.Bool
		var frees atomic.Int32
		var g callGuard
		g.free = func() { freed.Store(true); frees.Add(1) }
		var wg sync.WaitGroup
		var bad atomic.Int32
		start := make(chan struct{})
		for i := 0; i < 8; i++ {
			side := &g.rx
			if i%2 == 1 {
				side = &g.tx
			}
			wg.Go(func() {
				<-start
				for j := 0; j < 200; j++ {
					if !g.enter(side) {
						return
					}
					if freed.Load() {
						bad.Add(1)
					}
					g.exit(side)
				}
			})
		}
		close(start)
		g.end()
		wg.Wait()
		if bad.Load() != 0 {
			t.Fatalf("round %d: %d calls saw the memory freed while in", round, bad.Load())
		}
		if frees.Load() != 1 {
			t.Fatalf("round %d: freed %d times, want 1", round, frees.Load())
		}
	}
}

// BenchmarkCallGuard is the cost a Session method pays for the guard: one
// enter and one exit.
func BenchmarkCallGuard(b *testing.B) {
	var g callGuard
	g.free = func() {}
	for b.Loop() {
		if g.enter(&g.rx) {
			g.exit(&g.rx)
		}
	}
}

// BenchmarkCallGuardTwoSides: a receiving and a sending goroutine, as a
// forwarder has, each on its own counter.
func BenchmarkCallGuardTwoSides(b *testing.B) {
	var g callGuard
	g.free = func() {}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < b.N; i++ {
			if g.enter(&g.tx) {
				g.exit(&g.tx)
			}
		}
	})
	for i := 0; i < b.N; i++ {
		if g.enter(&g.rx) {
			g.exit(&g.rx)
		}
	}
	wg.Wait()
}
