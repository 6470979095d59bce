package ring

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Gate is a Waker for a waiting side whose peer is not Go code: a C
// library in the same process or another process. The peer signals an
// eventfd only when the waiting side asked for it through one shared word,
// Wanted, so that a busy peer makes no system call. It is the Alertable
// protocol for a direction the ring header has no word for (a producer
// waiting for the consumer to release records).
//
// The protocol, with every access sequentially consistent:
//   - the waiting side calls Wait after it found no progress. The first
//     Wait stores 1 in Wanted and returns at once, so that the caller looks
//     again; a Wait that finds Wanted already 1 sleeps on the eventfd.
//   - the peer, after publishing progress (storing Head), exchanges Wanted
//     with 0 and signals the eventfd if it was 1.
//
// A wake-up cannot be lost: the waiter's "store Wanted, look at the ring"
// and the peer's "store Head, exchange Wanted" cannot both miss each other,
// so either the waiter's second look sees the progress or the peer sees
// Wanted and signals. Extra signals are spurious wake-ups, which callers
// tolerate.
type Gate struct {
	wanted *atomic.Uint32
	ev     *EventFD
}

// NewGate returns a gate over the shared word at the start of word (at
// least 4 bytes, 4-byte aligned) and the eventfd the peer signals.
func NewGate(word []byte, ev *EventFD) (*Gate, error) {
	w, err := SharedWord(word)
	if err != nil {
		return nil, err
	}
	return &Gate{wanted: w, ev: ev}, nil
}

// SharedWord returns the 4-byte word at the start of mem as an atomic, for
// a protocol word beside the rings in shared memory. mem must be at least
// 4 bytes and 4-byte aligned.
func SharedWord(mem []byte) (*atomic.Uint32, error) {
	if len(mem) < 4 || !aligned4(mem) {
		return nil, fmt.Errorf("%w: a shared word needs 4 aligned bytes", ErrInvalidMemory)
	}
	return wordAt(mem), nil
}

// Wait implements Waker for the waiting side.
func (g *Gate) Wait(ctx context.Context) error {
	if g.wanted.Swap(1) == 0 {
		return ctx.Err()
	}
	return g.ev.Wait(ctx)
}

// Signal is the peer's half, for tests and for Go peers: it signals the
// eventfd if the waiting side asked for it.
func (g *Gate) Signal() {
	if g.wanted.Swap(0) == 1 {
		g.ev.Signal()
	}
}
