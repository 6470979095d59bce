package ringtun

import (
	"sync"
	"sync/atomic"
)

// callGuard frees a session's ring memory once the session has ended and
// no call that could touch the memory is in progress, so that no call
// ever reads unmapped memory, whatever the program does with its
// references: the memory's lifetime does not depend on the garbage
// collector. Every Session method that touches a ring counts itself in
// with enter and out with exit; end marks the session ended and frees the
// memory at once if no call is in, and otherwise the last call out frees
// it. A call that comes in after end touches nothing and fails.
//
// Calls on the receive ring and on the send ring count on separate cache
// lines, so that an application that receives on one goroutine and sends
// on another does not make them contend.
type callGuard struct {
	rx    atomic.Int64
	_     [56]byte
	tx    atomic.Int64
	_     [56]byte
	ended atomic.Bool
	once  sync.Once
	free  func()
}

// enter counts a call in on one side (&g.rx or &g.tx) and reports whether
// it may touch the memory; if not, the call must not call exit.
//
// The order of the atomic operations is what makes it safe (they are
// sequentially consistent): a call that found ended false had counted
// itself in before end set it, so end or a later tryFree sees the count
// and leaves the memory to that call's exit.
func (g *callGuard) enter(side *atomic.Int64) bool {
	side.Add(1)
	if g.ended.Load() {
		g.exit(side)
		return false
	}
	return true
}

// exit counts a call out.
func (g *callGuard) exit(side *atomic.Int64) {
	if side.Add(-1) == 0 && g.ended.Load() {
		g.tryFree()
	}
}

// end marks the session ended; the memory is freed now or by the last
// call out.
func (g *callGuard) end() {
	g.ended.Store(true)
	g.tryFree()
}

// tryFree frees the memory if no call that may touch it is in. A count
// above zero here can also be a call that came in after end and is on its
// way out without touching anything; its exit tries again.
func (g *callGuard) tryFree() {
	if g.rx.Load() == 0 && g.tx.Load() == 0 {
		g.once.Do(g.free)
	}
}
