package ring

// Native fuzz targets for the ring protocol.
//
// FuzzModel drives one honest producer and one honest consumer on a ring
// of capacity CapacityMin through a sequence of operations decoded from the
// input, and checks every result against a simple model: a FIFO of records
// with their sizes, content and committed/received/released state.
//
// FuzzHostilePeer puts one side (a Consumer or a Producer) in front of a
// peer that writes arbitrary bytes into the header and the data area
// between calls, and checks that the side never panics, never hands out a
// slice outside the data area, returns only the documented errors, and
// keeps failing once it has reported corruption or termination.
//
// Both targets reuse one region per process (zeroed per input with clear),
// so an input costs microseconds.
//
// This file has what both targets share: input decoding, payloads, the
// trace that replays a failing input, and seed building.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fzInput hands out the fuzz input a few bytes at a time; past its end it
// reads zeros.
type fzInput struct{ b []byte }

func newFzInput(data []byte) *fzInput {
	return &fzInput{b: data[:min(len(data), fzMaxInput)]}
}

func (in *fzInput) empty() bool { return len(in.b) == 0 }

func (in *fzInput) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func (in *fzInput) u16() uint16 { return uint16(in.byte()) | uint16(in.byte())<<8 }

func (in *fzInput) u32() uint32 { return uint32(in.u16()) | uint32(in.u16())<<16 }

// size decodes a packet size: mostly small ones, so that many records fit,
// then larger ones, the largest ones and, rarely, invalid ones.
func (in *fzInput) size() int {
	s := in.byte()
	switch {
	case s < 0x80:
		return int(s)
	case s < 0xC0:
		return int(in.u16() & 0x7FF)
	case s < 0xF0:
		return int(in.u16())
	case s < 0xF8:
		return PacketSizeMax - int(s&7)
	case s == 0xF8:
		return PacketSizeMax + 1
	case s == 0xF9:
		return -1
	default:
		return PacketSizeMax
	}
}

// fzPattern is the pseudo-random content records are filled with; a
// record's content is a window of it chosen by the record's id.
var fzPattern = func() []byte {
	b := make([]byte, 2*TrailingSize)
	x := uint32(0x9E3779B9)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x >> 24)
	}
	return b
}()

func fzPayload(id uint64, size int) []byte {
	start := int(id*40503) & 0xFFFF
	return fzPattern[start : start+size]
}

// fzCancelled is a context that is already done, so that Consumer.Wait
// checks the ring and returns without sleeping.
var fzCancelled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// fzSameErr reports whether got is want (nil included).
func fzSameErr(got, want error) bool {
	if want == nil || got == nil {
		return got == want
	}
	return errors.Is(got, want)
}

// fzTrace keeps the story of one input for the failure message. Formatting
// it for every input would cost more than running the ring, so an input
// runs without it first and, only if it fails, runs again with it.
type fzTrace struct {
	t     *testing.T
	on    bool
	lines []string
}

// fzReplay is the panic that ends a run without the trace when it fails.
type fzReplay struct{}

func (tr *fzTrace) note(format string, args ...any) {
	if tr.on {
		tr.lines = append(tr.lines, fmt.Sprintf(format, args...))
	}
}

func (tr *fzTrace) fatalf(format string, args ...any) {
	tr.t.Helper()
	if !tr.on {
		panic(fzReplay{})
	}
	tr.t.Fatalf("after %d steps:\n\t%s\n%s", len(tr.lines), strings.Join(tr.lines, "\n\t"), fmt.Sprintf(format, args...))
}

// fzRun runs one input and, if it fails, runs it again with the trace on to
// report the failure. run must start from a clean state every time.
func fzRun(t *testing.T, run func(tr *fzTrace)) {
	t.Helper()
	if fzRunQuiet(t, run) {
		return
	}
	run(&fzTrace{t: t, on: true})
	t.Fatal("the failure did not happen again when the input was run with tracing on")
}

func fzRunQuiet(t *testing.T, run func(tr *fzTrace)) (ok bool) {
	defer func() {
		if !ok {
			// Any panic but fzReplay is a crash of the package: let it go
			// on, with the stack of where it happened.
			e := recover()
			if _, replay := e.(fzReplay); e != nil && !replay {
				panic(e)
			}
		}
	}()
	run(&fzTrace{t: t})
	return true
}

// ---------------------------------------------------------------------
// FuzzModel

// fzSize encodes a size for fzInput.size.
func fzSize(size int) []byte {
	switch {
	case size == -1:
		return []byte{0xF9}
	case size > PacketSizeMax:
		return []byte{0xF8}
	case size < 0x80:
		return []byte{byte(size)}
	}
	return []byte{0xC0, byte(size), byte(size >> 8)}
}

// fzSeed is a named input. The seeds in code are also in
// testdata/fuzz/<target>/seed-<name>; next to them, regress-<name> are the
// inputs on which FuzzModel caught the first version of the package
// (Allocate and Receive missing the peer's Terminate, Commit and Release
// accepting a slice that starts inside a record), and the files named by a
// hash are inputs the fuzzer found that add coverage.
type fzSeed struct {
	name string
	data []byte
}
