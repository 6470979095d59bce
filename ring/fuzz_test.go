package ring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

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

// Operations of FuzzModel. An operation byte is mapped through fzModelOps
// so that the common operations are drawn more often than the ones that
// end the session.
const (
	fzAllocate = iota
	fzCommit
	fzReceive
	fzRelease
	fzAllocateBatch
	fzCommitBatch
	fzReceiveBatch
	fzReleaseBatch
	fzPump
	fzMisuse
	fzWait
	fzAlertable // set or clear Alertable as a sleeping consumer does, or KeepAlertable
	fzRestartProducer
	fzRestartConsumer
	fzTerminateProducer
	fzTerminateConsumer
	fzNumModelOps
)

var fzModelOpNames = [fzNumModelOps]string{
	"Allocate", "Commit", "Receive", "Release",
	"AllocateBatch", "CommitBatch", "ReceiveBatch", "ReleaseBatch",
	"Pump", "Misuse", "Wait", "Alertable",
	"RestartProducer", "RestartConsumer", "TerminateProducer", "TerminateConsumer",
}

var fzModelOps = func() (t [64]uint8) {
	weights := [fzNumModelOps]int{
		fzAllocate: 10, fzCommit: 8, fzReceive: 8, fzRelease: 8,
		fzAllocateBatch: 4, fzCommitBatch: 4, fzReceiveBatch: 4, fzReleaseBatch: 4,
		fzPump: 4, fzMisuse: 3, fzWait: 2, fzAlertable: 1,
		fzRestartProducer: 1, fzRestartConsumer: 1, fzTerminateProducer: 1, fzTerminateConsumer: 1,
	}
	i := 0
	for op, n := range weights {
		for ; n > 0; n-- {
			t[i] = uint8(op)
			i++
		}
	}
	if i != len(t) {
		panic("fzModelOps: weights must add up to 64")
	}
	return t
}()

// Kinds of misuse FuzzModel tries (fzMisuse); each must give
// ErrForeignPacket unless noted.
const (
	fzDoubleCommit      = iota // Commit of a committed record still in the ring
	fzDoubleRelease            // Release of a released record still in the ring
	fzForeignCommit            // Commit of nil or of memory outside the ring
	fzForeignRelease           // Release of nil or of memory outside the ring
	fzReleaseUnreceived        // Release of a record the consumer has not received
	fzCommitReceived           // Commit of a record the consumer has received
	fzMidRecordCommit          // Commit of b[4k:] or of a stale slice, unless it starts where an uncommitted record does
	fzMidRecordRelease         // Release of b[4k:] or of a stale slice, unless it starts where an unreleased record does
	fzNumMisuse
)

// fzRec is one record of the model.
type fzRec struct {
	id        uint64
	off       uint32 // offset of the Size word in the data area
	size      int
	committed bool
	released  bool
	pkt       []byte // from Allocate
	rpkt      []byte // from Receive, once received
}

func (r *fzRec) String() string { return fmt.Sprintf("record #%d at %#x size %d", r.id, r.off, r.size) }

// fzModel is the model of one ring and the real ring it checks.
type fzModel struct {
	t       *testing.T
	r       *Ring
	p       *Producer
	c       *Consumer
	w       *ChanWaker
	foreign []byte

	fifo     []*fzRec // records not yet passed by Head, in allocation order
	nPub     int      // fifo[:nPub] are published: Tail is past them
	nRecv    int      // fifo[:nRecv] are received; nRecv <= nPub
	allocPos uint32   // where the next record goes: the producer's private tail
	tailPos  uint32   // the producer's published position, Tail unless terminated
	headPos  uint32   // the consumer's published position, Head unless terminated

	alertable bool
	wakes     int  // signals expected on w since the last check (0 or 1)
	keepAlert bool // Consumer.KeepAlertable was called
	prodEnded bool // Producer.Terminate was called
	consEnded bool // Consumer.Terminate was called

	nextID  uint64
	retired []*fzRec // the last records Head passed, for stale-slice misuse
	work    int      // payload bytes allocated so far, to bound an input's cost
	*fzTrace
}

func (m *fzModel) terminated() bool { return m.prodEnded || m.consEnded }

func (m *fzModel) end(rec *fzRec) uint32 {
	return (rec.off + align4(Alignment+uint32(rec.size))) & m.r.mask
}

// fits reports whether a record of size bytes fits: its aligned size is at
// most capacity - 4 - the bytes from Head to the producer's tail.
func (m *fzModel) fits(size int) bool {
	used := m.r.dist(m.headPos, m.allocPos)
	return align4(Alignment+uint32(size)) <= m.r.capacity-Alignment-used
}

func (m *fzModel) checkContent(rec *fzRec, b []byte, when string) {
	if !bytes.Equal(b, fzPayload(rec.id, rec.size)) {
		m.fatalf("%s: content of %v changed", when, rec)
	}
}

func (m *fzModel) checkSlice(rec *fzRec, b []byte, what string) {
	at, ok := offsetIn(m.r.data, b)
	if !ok || at != rec.off+Alignment || len(b) != rec.size || cap(b) != rec.size {
		m.fatalf("%s returned a slice at %#x (in ring: %v) len %d cap %d, want %v", what, at, ok, len(b), cap(b), rec)
	}
}

// allocOutcome predicts Allocate(size): the error, or nil for a new
// record. Once either side has terminated the ring, Allocate returns
// ErrTerminated; for an invalid size then, ErrPacketSize is right too.
func (m *fzModel) allocOutcome(size int) (want, alt error) {
	invalid := size < 0 || size > PacketSizeMax
	switch {
	case invalid && m.terminated():
		return ErrTerminated, ErrPacketSize
	case invalid:
		return ErrPacketSize, nil
	case m.terminated():
		return ErrTerminated, nil
	case !m.fits(size):
		return ErrFull, nil
	}
	return nil, nil
}

// gotAlloc checks the result of allocating size bytes and records the new
// record, which it returns.
func (m *fzModel) gotAlloc(what string, size int, b []byte, err error) *fzRec {
	want, alt := m.allocOutcome(size)
	if !fzSameErr(err, want) && (alt == nil || !fzSameErr(err, alt)) {
		m.fatalf("%s(%d) = %v, want %v", what, size, err, want)
	}
	if err != nil {
		return nil
	}
	rec := &fzRec{id: m.nextID, off: m.allocPos, size: size, pkt: b}
	m.nextID++
	m.work += size
	m.checkSlice(rec, b, what)
	copy(b, fzPayload(rec.id, size))
	m.fifo = append(m.fifo, rec)
	m.allocPos = m.end(rec)
	return rec
}

// publish moves the model's Tail over the committed records at its front.
func (m *fzModel) publish() {
	old := m.tailPos
	for m.nPub < len(m.fifo) && m.fifo[m.nPub].committed {
		m.tailPos = m.end(m.fifo[m.nPub])
		m.nPub++
	}
	if m.tailPos != old && !m.prodEnded && m.alertable {
		m.wakes = 1
	}
}

// recvOutcome predicts Receive: the record, or the error. Once either
// side has terminated the ring, Receive returns ErrTerminated, even with
// records published before.
func (m *fzModel) recvOutcome() (rec *fzRec, want error) {
	switch {
	case m.terminated():
		return nil, ErrTerminated
	case m.nRecv < m.nPub:
		return m.fifo[m.nRecv], nil
	}
	return nil, ErrEmpty
}

// gotRecv checks the result of a receive and returns the record received.
func (m *fzModel) gotRecv(what string, b []byte, err error) *fzRec {
	rec, want := m.recvOutcome()
	if !fzSameErr(err, want) {
		m.fatalf("%s = %v, want %v", what, err, want)
	}
	if err != nil {
		return nil
	}
	m.checkSlice(rec, b, what)
	m.checkContent(rec, b, what)
	rec.rpkt = b
	m.nRecv++
	return rec
}

// pop moves the model's Head over the released records at its front.
func (m *fzModel) pop() {
	for len(m.fifo) > 0 && m.fifo[0].released {
		rec := m.fifo[0]
		m.headPos = m.end(rec)
		m.fifo = m.fifo[1:]
		m.nPub--
		m.nRecv--
		if len(m.retired) == 16 {
			m.retired = m.retired[1:]
		}
		m.retired = append(m.retired, rec)
	}
}

// uncommitted returns the k-th record allocated and not committed.
func (m *fzModel) uncommitted(k byte) *fzRec {
	var recs []*fzRec
	for _, rec := range m.fifo[m.nPub:] {
		if !rec.committed {
			recs = append(recs, rec)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	return recs[int(k)%len(recs)]
}

// unreleased returns the k-th record received and not released.
func (m *fzModel) unreleased(k byte) *fzRec {
	var recs []*fzRec
	for _, rec := range m.fifo[:m.nRecv] {
		if !rec.released {
			recs = append(recs, rec)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	return recs[int(k)%len(recs)]
}

// pick returns the k-th record of fifo that satisfies ok.
func (m *fzModel) pick(k byte, ok func(*fzRec) bool) *fzRec {
	var recs []*fzRec
	for _, rec := range m.fifo {
		if ok(rec) {
			recs = append(recs, rec)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	return recs[int(k)%len(recs)]
}

func (m *fzModel) allocate(size int) *fzRec {
	b, err := m.p.Allocate(size)
	return m.gotAlloc("Allocate", size, b, err)
}

func (m *fzModel) commit(rec *fzRec) {
	m.checkContent(rec, rec.pkt, "before Commit")
	if err := m.p.Commit(rec.pkt); err != nil {
		m.fatalf("Commit(%v) = %v", rec, err)
	}
	rec.committed = true
	m.publish()
}

func (m *fzModel) receive() *fzRec {
	b, err := m.c.Receive()
	return m.gotRecv("Receive", b, err)
}

func (m *fzModel) release(rec *fzRec) {
	m.checkContent(rec, rec.rpkt, "before Release")
	if err := m.c.Release(rec.rpkt); err != nil {
		m.fatalf("Release(%v) = %v", rec, err)
	}
	rec.released = true
	m.pop()
}

// foreignSlice returns, for a misuse that must give ErrForeignPacket, a
// slice that is not in the ring.
func (m *fzModel) foreignSlice(k byte) []byte {
	switch k % 4 {
	case 0:
		return nil
	case 1:
		return m.foreign[:0]
	case 2:
		return m.foreign[4:20]
	default:
		return m.foreign
	}
}

// midRecordSlice returns a slice whose start is not the start of an
// outstanding record of the kind wanted, or (when a stale slice happens to
// start where such a record starts) that record.
func (m *fzModel) midRecordSlice(k, j byte, outstanding *fzRec, pkt []byte) []byte {
	if k&1 == 0 && len(m.retired) > 0 {
		rec := m.retired[int(j)%len(m.retired)]
		if k&2 == 0 {
			return rec.pkt
		}
		return rec.rpkt
	}
	if outstanding != nil && len(pkt) > Alignment {
		n := 1 + int(j)%((len(pkt)-1)/Alignment)
		return pkt[n*Alignment:]
	}
	return nil
}

// atPayload returns the record in the ring whose payload starts where b
// does and that satisfies ok.
func (m *fzModel) atPayload(b []byte, ok func(*fzRec) bool) *fzRec {
	at, in := offsetIn(m.r.data, b)
	if !in {
		return nil
	}
	for _, rec := range m.fifo {
		if rec.off+Alignment == at && ok(rec) {
			return rec
		}
	}
	return nil
}

func (m *fzModel) misuse(in *fzInput) {
	kind, k, j := in.byte()%fzNumMisuse, in.byte(), in.byte()
	var (
		b      []byte
		commit bool
		target *fzRec // the record the call acts on, when it is legitimate
	)
	switch kind {
	case fzDoubleCommit:
		commit = true
		if rec := m.pick(k, func(r *fzRec) bool { return r.committed }); rec != nil {
			b = rec.pkt
		} else {
			b = m.foreignSlice(j)
		}
	case fzDoubleRelease:
		if rec := m.pick(k, func(r *fzRec) bool { return r.released }); rec != nil {
			b = rec.rpkt
		} else {
			b = m.foreignSlice(j)
		}
	case fzForeignCommit:
		commit, b = true, m.foreignSlice(k)
	case fzForeignRelease:
		b = m.foreignSlice(k)
	case fzReleaseUnreceived:
		if m.nRecv < len(m.fifo) {
			b = m.fifo[m.nRecv+int(k)%(len(m.fifo)-m.nRecv)].pkt
		} else {
			b = m.foreignSlice(j)
		}
	case fzCommitReceived:
		commit = true
		if m.nRecv > 0 {
			b = m.fifo[int(k)%m.nRecv].rpkt
		} else {
			b = m.foreignSlice(j)
		}
	case fzMidRecordCommit:
		commit = true
		rec := m.uncommitted(k >> 2)
		var pkt []byte
		if rec != nil {
			pkt = rec.pkt
		}
		b = m.midRecordSlice(k, j, rec, pkt)
		target = m.atPayload(b, func(r *fzRec) bool { return !r.committed })
	case fzMidRecordRelease:
		rec := m.unreleased(k >> 2)
		var pkt []byte
		if rec != nil {
			pkt = rec.rpkt
		}
		b = m.midRecordSlice(k, j, rec, pkt)
		target = m.atPayload(b, func(r *fzRec) bool { return r.rpkt != nil && !r.released })
	}
	verb := "Release"
	if commit {
		verb = "Commit"
	}
	at, inRing := offsetIn(m.r.data, b)
	m.note("misuse %d: %s of a slice at %#x (in ring: %v) len %d, target %v", kind, verb, at, inRing, len(b), target)
	var err error
	if commit {
		err = m.p.Commit(b)
	} else {
		err = m.c.Release(b)
	}
	switch {
	case target == nil && err != ErrForeignPacket:
		m.fatalf("misuse returned %v, want ErrForeignPacket", err)
	case target != nil && err != nil:
		m.fatalf("%s of a slice that starts where %v starts returned %v", verb, target, err)
	case target != nil && commit:
		target.committed = true
		m.publish()
	case target != nil:
		target.released = true
		m.pop()
	}
}

// batchCommits decodes the slices for CommitBatch and predicts its error.
func (m *fzModel) batchCommits(in *fzInput) ([][]byte, error) {
	n := 1 + int(in.byte()%8)
	pkts := make([][]byte, n)
	var first error
	for i := range pkts {
		k := in.byte()
		var rec *fzRec
		if k%4 != 3 {
			rec = m.uncommitted(k >> 2)
		} else if rec = m.pick(k>>2, func(r *fzRec) bool { return r.committed }); rec == nil {
			pkts[i] = m.foreignSlice(k >> 2)
		}
		if rec == nil {
			if first == nil {
				first = ErrForeignPacket
			}
			if pkts[i] == nil {
				pkts[i] = m.foreignSlice(k >> 2)
			}
			continue
		}
		pkts[i] = rec.pkt
		if rec.committed {
			if first == nil {
				first = ErrForeignPacket
			}
			continue
		}
		m.checkContent(rec, rec.pkt, "before CommitBatch")
		rec.committed = true
	}
	return pkts, first
}

// batchReleases decodes the slices for ReleaseBatch and predicts its error.
func (m *fzModel) batchReleases(in *fzInput) ([][]byte, error) {
	n := 1 + int(in.byte()%8)
	pkts := make([][]byte, n)
	var first error
	for i := range pkts {
		k := in.byte()
		var rec *fzRec
		switch k % 4 {
		case 3:
			rec = m.pick(k>>2, func(r *fzRec) bool { return r.released })
		case 2:
			if m.nRecv < len(m.fifo) {
				pkts[i] = m.fifo[m.nRecv+int(k>>2)%(len(m.fifo)-m.nRecv)].pkt
			}
		default:
			rec = m.unreleased(k >> 2)
		}
		if rec == nil {
			if first == nil {
				first = ErrForeignPacket
			}
			if pkts[i] == nil {
				pkts[i] = m.foreignSlice(k >> 2)
			}
			continue
		}
		pkts[i] = rec.rpkt
		if rec.released {
			if first == nil {
				first = ErrForeignPacket
			}
			continue
		}
		m.checkContent(rec, rec.rpkt, "before ReleaseBatch")
		rec.released = true
	}
	return pkts, first
}

// check compares the shared words, the waker and the sticky errors with
// the model after every operation.
func (m *fzModel) check() {
	wantTail, wantHead := m.tailPos, m.headPos
	if m.prodEnded {
		wantTail = terminated
	}
	if m.consEnded {
		wantHead = terminated
	}
	if got := m.r.tail.Load(); got != wantTail {
		m.fatalf("Tail = %#x, want %#x", got, wantTail)
	}
	if got := m.r.head.Load(); got != wantHead {
		m.fatalf("Head = %#x, want %#x", got, wantHead)
	}
	if got := m.r.alertable.Load() != 0; got != m.alertable {
		m.fatalf("Alertable = %v, want %v", got, m.alertable)
	}
	if got := m.r.Terminated(); got != m.terminated() {
		m.fatalf("Terminated() = %v, want %v", got, m.terminated())
	}
	if got := len(m.w.c); got != m.wakes {
		m.fatalf("%d pending wake-ups, want %d", got, m.wakes)
	}
	for len(m.w.c) > 0 {
		<-m.w.c
	}
	m.wakes = 0
	if !m.terminated() {
		if err := m.p.Err(); err != nil {
			m.fatalf("Producer.Err() = %v", err)
		}
		if err := m.c.Err(); err != nil {
			m.fatalf("Consumer.Err() = %v", err)
		}
	}
}

func (m *fzModel) step(in *fzInput) {
	op := fzModelOps[in.byte()%64]
	m.note("%s", fzModelOpNames[op])
	switch op {
	case fzAllocate:
		size := in.size()
		m.note("  Allocate(%d)", size)
		m.allocate(size)

	case fzCommit:
		if rec := m.uncommitted(in.byte()); rec != nil {
			m.note("  Commit(%v)", rec)
			m.commit(rec)
		}

	case fzReceive:
		if rec := m.receive(); rec != nil {
			m.note("  got %v", rec)
		}

	case fzRelease:
		if rec := m.unreleased(in.byte()); rec != nil {
			m.note("  Release(%v)", rec)
			m.release(rec)
		}

	case fzAllocateBatch:
		sizes := make([]int, 1+in.byte()%8)
		for i := range sizes {
			sizes[i] = in.size()
		}
		m.note("  AllocateBatch(%v)", sizes)
		pkts := make([][]byte, len(sizes))
		n, err := m.p.AllocateBatch(sizes, pkts)
		if n < 0 || n > len(sizes) {
			m.fatalf("AllocateBatch returned %d records", n)
		}
		for i := 0; i < n; i++ {
			if m.gotAlloc("AllocateBatch", sizes[i], pkts[i], nil) == nil {
				m.fatalf("AllocateBatch allocated record %d, which should not fit", i)
			}
		}
		if n < len(sizes) {
			want, alt := m.allocOutcome(sizes[n])
			if want == nil {
				m.fatalf("AllocateBatch stopped after %d records (error %v), but size %d fits", n, err, sizes[n])
			}
			if n > 0 {
				want, alt = nil, nil
			}
			if !fzSameErr(err, want) && (alt == nil || !fzSameErr(err, alt)) {
				m.fatalf("AllocateBatch = %d, %v, want error %v", n, err, want)
			}
		} else if err != nil {
			m.fatalf("AllocateBatch = %d, %v", n, err)
		}

	case fzCommitBatch:
		pkts, want := m.batchCommits(in)
		m.note("  CommitBatch of %d", len(pkts))
		err := m.p.CommitBatch(pkts)
		if !fzSameErr(err, want) {
			m.fatalf("CommitBatch = %v, want %v", err, want)
		}
		m.publish()

	case fzReceiveBatch:
		pkts := make([][]byte, 1+in.byte()%8)
		n, err := m.c.ReceiveBatch(pkts)
		m.note("  ReceiveBatch(%d) = %d, %v", len(pkts), n, err)
		if n < 0 || n > len(pkts) {
			m.fatalf("ReceiveBatch returned %d records", n)
		}
		for i := 0; i < n; i++ {
			if m.gotRecv("ReceiveBatch", pkts[i], nil) == nil {
				m.fatalf("ReceiveBatch returned record %d, want none", i)
			}
		}
		if n < len(pkts) {
			_, want := m.recvOutcome()
			if want == nil {
				m.fatalf("ReceiveBatch stopped after %d records (error %v) with records left", n, err)
			}
			if n > 0 {
				want = nil
			}
			if !fzSameErr(err, want) {
				m.fatalf("ReceiveBatch = %d, %v, want error %v", n, err, want)
			}
		} else if err != nil {
			m.fatalf("ReceiveBatch = %d, %v", n, err)
		}

	case fzReleaseBatch:
		pkts, want := m.batchReleases(in)
		m.note("  ReleaseBatch of %d", len(pkts))
		err := m.c.ReleaseBatch(pkts)
		if !fzSameErr(err, want) {
			m.fatalf("ReleaseBatch = %v, want %v", err, want)
		}
		m.pop()

	case fzPump:
		count, size := 1+int(in.byte()), in.size()
		if size > 0 {
			count = min(count, 1+(256<<10)/size)
		}
		m.note("  Pump(%d x %d)", count, size)
		for range count {
			rec := m.allocate(size)
			if rec == nil {
				break
			}
			m.commit(rec)
			if rec = m.receive(); rec == nil {
				break
			}
			m.release(rec)
		}

	case fzMisuse:
		m.misuse(in)

	case fzWait:
		err := m.c.Wait(fzCancelled)
		var want error
		switch {
		case m.terminated():
			want = ErrTerminated
		case m.nRecv < m.nPub:
			want = nil
		default:
			want = context.Canceled
		}
		if !fzSameErr(err, want) {
			m.fatalf("Wait = %v, want %v", err, want)
		}

	case fzAlertable:
		// Mostly the test plays a consumer that sets and clears Alertable
		// around a sleep; sometimes the consumer keeps it set for good.
		switch {
		case in.byte()%8 == 7:
			m.c.KeepAlertable()
			m.alertable, m.keepAlert = true, true
		case !m.keepAlert:
			m.alertable = !m.alertable
			var v int32
			if m.alertable {
				v = 1
			}
			m.r.alertable.Store(v)
		}

	case fzRestartProducer:
		// A new producer starts from the published Tail: the records that
		// were allocated and not published are gone.
		m.p = NewProducer(m.r, m.w)
		for _, rec := range m.fifo[m.nPub:] {
			rec.pkt = nil
		}
		m.fifo = m.fifo[:m.nPub]
		m.allocPos = m.tailPos

	case fzRestartConsumer:
		// Only when it holds no record: a new consumer starts from Head.
		if m.nRecv == 0 {
			m.c = NewConsumer(m.r, m.w)
			m.keepAlert = false // Alertable stays as it is
		}

	case fzTerminateProducer:
		m.p.Terminate()
		m.prodEnded = true
		m.wakes = 1

	case fzTerminateConsumer:
		m.c.Terminate()
		m.consEnded = true
		m.wakes = 1
	}
	m.check()
}

// finish checks the content of every outstanding record and, unless the
// ring was terminated, drains it: commits, receives and releases
// everything, which must leave Head == Tail.
func (m *fzModel) finish() {
	m.note("finish")
	for _, rec := range m.fifo {
		if rec.rpkt != nil {
			m.checkContent(rec, rec.rpkt, "at the end")
		} else {
			m.checkContent(rec, rec.pkt, "at the end")
		}
	}
	if m.terminated() {
		return
	}
	for rec := m.uncommitted(0); rec != nil; rec = m.uncommitted(0) {
		m.commit(rec)
	}
	for m.receive() != nil {
	}
	for rec := m.unreleased(0); rec != nil; rec = m.unreleased(0) {
		m.release(rec)
	}
	m.check()
	if len(m.fifo) != 0 || m.r.head.Load() != m.r.tail.Load() {
		m.fatalf("ring not empty after draining: %d records, Head %#x, Tail %#x", len(m.fifo), m.r.head.Load(), m.r.tail.Load())
	}
}

// fzMaxInput and fzMaxWork bound the work one input can ask for: bytes of
// input read (a few hundred operations), and payload bytes allocated (each
// is written once and compared a few times). Short inputs also keep the
// fuzzer's minimization of every new input, which is quadratic in its
// length, from eating the fuzzing time.
const (
	fzMaxInput = 256
	fzMaxWork  = 4 << 20
)

func runModel(t *testing.T, mem []byte, data []byte) {
	fzRun(t, func(tr *fzTrace) { runModelOnce(t, tr, mem, data) })
}

func runModelOnce(t *testing.T, tr *fzTrace, mem []byte, data []byte) {
	clear(mem)
	r, err := New(mem, CapacityMin)
	if err != nil {
		t.Fatal(err)
	}
	in := newFzInput(data)
	// The session starts with Head == Tail at any aligned offset, as if a
	// previous session had moved them there, so that inputs reach the end
	// of the ring quickly.
	start := uint32(in.u16()) << 2 & r.mask
	r.head.Store(start)
	r.tail.Store(start)
	w := NewChanWaker()
	m := &fzModel{
		t: t, r: r, w: w,
		p:        NewProducer(r, w),
		c:        NewConsumer(r, w),
		foreign:  make([]byte, 64),
		allocPos: start, tailPos: start, headPos: start,
		fzTrace: tr,
	}
	m.note("start at %#x", start)
	m.check()
	for !in.empty() && m.work < fzMaxWork {
		m.step(in)
	}
	m.finish()
}

func FuzzModel(f *testing.F) {
	for _, seed := range fzModelSeeds() {
		f.Add(seed.data)
	}
	mem := make([]byte, RingSize(CapacityMin))
	f.Fuzz(func(t *testing.T, data []byte) {
		runModel(t, mem, data)
	})
}

// fzModelSeed builds FuzzModel inputs.
type fzModelSeed struct{ b []byte }

func newModelSeed(start uint32) *fzModelSeed {
	s := start >> 2
	return &fzModelSeed{b: []byte{byte(s), byte(s >> 8)}}
}

func (s *fzModelSeed) op(op int, args ...byte) *fzModelSeed {
	for i, o := range fzModelOps {
		if int(o) == op {
			s.b = append(s.b, byte(i))
			s.b = append(s.b, args...)
			return s
		}
	}
	panic("unknown op")
}

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

func (s *fzModelSeed) alloc(size int) *fzModelSeed { return s.op(fzAllocate, fzSize(size)...) }
func (s *fzModelSeed) commit(k byte) *fzModelSeed  { return s.op(fzCommit, k) }
func (s *fzModelSeed) recv() *fzModelSeed          { return s.op(fzReceive) }
func (s *fzModelSeed) release(k byte) *fzModelSeed { return s.op(fzRelease, k) }
func (s *fzModelSeed) pump(n byte, size int) *fzModelSeed {
	return s.op(fzPump, append([]byte{n - 1}, fzSize(size)...)...)
}
func (s *fzModelSeed) misuse(kind, k, j byte) *fzModelSeed { return s.op(fzMisuse, kind, k, j) }

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

// fzModelSeeds are the FuzzModel inputs added in code: each is a situation
// the model must get right.
func fzModelSeeds() []fzSeed {
	return []fzSeed{
		{"one-record", newModelSeed(0).alloc(5).commit(0).recv().release(0).b},
		// Commit and release out of order; ErrEmpty while the first
		// record is pending.
		{"out-of-order", newModelSeed(0).alloc(1).alloc(2).alloc(3).commit(2).recv().commit(1).recv().
			commit(0).recv().recv().recv().release(1).release(1).release(0).b},
		// Two maximum records do not fit, the exact rest does, then not
		// even an empty one; after one release a maximum one fits again.
		{"full-ring", newModelSeed(0).alloc(PacketSizeMax).alloc(PacketSizeMax).alloc(0xFFF4).alloc(0).
			commit(0).commit(0).recv().release(0).alloc(PacketSizeMax).b},
		// A maximum record starting at capacity-4 runs through the whole
		// trailing area; the next one starts at 0x10000.
		{"wrap-max-record", newModelSeed(CapacityMin - 4).alloc(PacketSizeMax).alloc(100).commit(0).commit(0).
			recv().recv().release(1).release(0).b},
		// Many records across the end of the ring.
		{"wrap-pump", newModelSeed(CapacityMin-0x100).pump(200, 37).pump(10, 0).pump(50, 1500).b},
		// Batches, with a duplicate in each.
		{"batches", newModelSeed(0).op(fzAllocateBatch, 2, 10, 20, 30).op(fzCommitBatch, 3, 0, 4, 3, 0).
			op(fzReceiveBatch, 7).op(fzReleaseBatch, 3, 0, 4, 3, 0).b},
		// Double commit, double release, foreign slices.
		{"misuse", newModelSeed(0).alloc(8).alloc(8).commit(0).misuse(fzDoubleCommit, 0, 0).
			misuse(fzForeignCommit, 2, 0).recv().misuse(fzReleaseUnreceived, 0, 0).
			misuse(fzCommitReceived, 0, 0).release(0).misuse(fzForeignRelease, 3, 0).b},
		// Wait and the wake-up: Alertable set, then a commit signals.
		{"wait-alertable", newModelSeed(0).op(fzWait).op(fzAlertable, 0).alloc(3).op(fzWait).commit(0).op(fzWait).
			recv().release(0).op(fzAlertable, 0).alloc(1).commit(0).b},
		// KeepAlertable: every Tail move signals, in batches once.
		{"keep-alertable", newModelSeed(0).op(fzAlertable, 7).alloc(1).alloc(2).commit(1).commit(0).
			op(fzAllocateBatch, 1, 3, 4).op(fzCommitBatch, 1, 0, 0).op(fzReceiveBatch, 7).op(fzAlertable, 0).b},
		// Restarting each side from the shared words.
		{"restart", newModelSeed(0x1000).alloc(10).alloc(20).commit(0).op(fzRestartProducer).alloc(30).
			commit(0).op(fzRestartConsumer).recv().release(0).op(fzRestartConsumer).recv().release(0).b},
		{"invalid-sizes", newModelSeed(0).alloc(-1).alloc(PacketSizeMax+1).op(fzAllocateBatch, 1, 0xF8).b},
		// The producer terminates with a record allocated and one
		// committed that the consumer has not looked at: a late Commit is
		// allowed, the consumer sees ErrTerminated, also after a restart.
		{"terminate-producer", newModelSeed(0x2000).alloc(5).alloc(6).commit(0).op(fzTerminateProducer).
			commit(0).alloc(1).recv().op(fzWait).op(fzRestartConsumer).recv().op(fzRestartProducer).alloc(1).b},
		// The consumer terminates when the ring is full: the producer sees
		// ErrTerminated rather than ErrFull.
		{"terminate-consumer-full", newModelSeed(0).alloc(PacketSizeMax).alloc(0xFFF4).commit(0).commit(0).
			recv().op(fzTerminateConsumer).alloc(0).recv().release(0).op(fzRestartProducer).alloc(0).b},
	}
}

// ---------------------------------------------------------------------
// FuzzHostilePeer

// fzHostile is one side of a ring whose peer is the fuzz input.
type fzHostile struct {
	t     *testing.T
	mem   []byte
	r     *Ring
	w     *ChanWaker
	in    *fzInput
	p     *Producer // the side under test: p or c
	c     *Consumer
	held  [][]byte // slices handed out and not given back yet
	stale [][]byte // slices given back, for misuse
	// dead is set once the side returned an error wrapping ErrCorrupt or
	// ErrTerminated: every later Receive or Allocate must fail.
	dead bool
	// termSeen is set once Head or Tail held a terminated value.
	termSeen bool
	peer     uint32 // the peer's cursor: where it writes or reads the next record
	*fzTrace
}

// value decodes a word for the peer to write, given the current one.
func (h *fzHostile) value(old uint32) uint32 {
	switch h.in.byte() % 8 {
	case 0:
		return h.in.u32()
	case 1:
		return uint32(h.in.u16()) // a plausible size
	case 2:
		return uint32(h.in.u16()) | flagBit // a pending or released size
	case 3:
		return old ^ flagBit
	case 4:
		return terminated
	case 5:
		return h.in.u32() & h.r.mask &^ (Alignment - 1) // a plausible position
	case 6:
		return (old + Alignment*uint32(int8(h.in.byte()))) & h.r.mask // a nearby position
	default:
		return (old + uint32(int8(h.in.byte()))) & h.r.mask
	}
}

// poke is one hostile write into the header or the data area.
func (h *fzHostile) poke() {
	target := h.in.byte()
	var off uint32 // offset in mem
	switch target % 8 {
	case 0:
		off = 0 // Head
	case 1:
		off = 4 // Tail
	case 2:
		off = 8 // Alertable
	case 3, 4:
		// The Size word of a record this side handed out.
		if len(h.held) > 0 {
			at, _ := offsetIn(h.r.data, h.held[int(h.in.byte())%len(h.held)])
			off = HeaderSize + at - Alignment
			break
		}
		fallthrough
	case 5:
		off = HeaderSize + h.in.u32()%uint32(len(h.r.data)-3)
	default:
		// Near Head or Tail.
		pos := h.r.head.Load()
		if target&1 != 0 {
			pos = h.r.tail.Load()
		}
		off = HeaderSize + (pos+Alignment*uint32(h.in.byte()))&h.r.mask
	}
	old := binary.NativeEndian.Uint32(h.mem[off:])
	v := h.value(old)
	h.note("poke %#x at mem offset %#x (was %#x)", v, off, old)
	switch off {
	case 0:
		h.r.head.Store(v)
	case 4:
		h.r.tail.Store(v)
	case 8:
		h.r.alertable.Store(int32(v))
	default:
		binary.NativeEndian.PutUint32(h.mem[off:], v)
	}
	h.seeTerm()
}

func (h *fzHostile) seeTerm() {
	if h.r.head.Load() >= h.r.capacity || h.r.tail.Load() >= h.r.capacity {
		h.termSeen = true
	}
}

// checkSlice checks a slice the side handed out: it must start on a
// record's payload, inside the data area, and end inside it.
func (h *fzHostile) checkSlice(what string, b []byte) {
	at, ok := offsetIn(h.r.data, b)
	if !ok || at < Alignment || (at-Alignment)%Alignment != 0 || at-Alignment >= h.r.capacity ||
		len(b) > PacketSizeMax || uint64(at)+uint64(cap(b)) > uint64(len(h.r.data)) {
		h.fatalf("%s returned a slice at %#x (in ring: %v) len %d cap %d; the data area is %#x bytes",
			what, at, ok, len(b), cap(b), len(h.r.data))
	}
	size := h.r.size(at - Alignment)
	if h.c != nil && size != uint32(len(b)) {
		h.fatalf("%s returned %d bytes for a record of size %#x", what, len(b), size)
	}
	if h.p != nil && size != uint32(len(b))|flagBit {
		h.fatalf("%s returned %d bytes, but the record's Size word is %#x", what, len(b), size)
	}
	h.held = append(h.held, b)
}

// checkErr checks an error returned by the side: it must be one of
// allowed, and an error that ends the session makes the side dead.
func (h *fzHostile) checkErr(what string, err error, allowed ...error) {
	if err == nil {
		return
	}
	h.note("  %s: %v", what, err)
	if errors.Is(err, ErrTerminated) && !h.termSeen {
		h.fatalf("%s = %v, but neither Head nor Tail was ever terminated", what, err)
	}
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTerminated) {
		h.dead = true
	}
	for _, a := range allowed {
		if errors.Is(err, a) {
			return
		}
	}
	h.fatalf("%s = %v, want one of %v", what, err, allowed)
}

// checkDead checks that the side reports its sticky error.
func (h *fzHostile) checkDead(what string, ok bool, err error) {
	if !h.dead {
		return
	}
	if ok || !(errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTerminated)) {
		h.fatalf("%s after the side failed: ok %v, error %v", what, ok, err)
	}
}

func (h *fzHostile) sideErr() error {
	if h.c != nil {
		return h.c.Err()
	}
	return h.p.Err()
}

// take removes and returns the k-th held slice.
func (h *fzHostile) take(k byte) []byte {
	if len(h.held) == 0 {
		return nil
	}
	i := int(k) % len(h.held)
	b := h.held[i]
	h.held = append(h.held[:i], h.held[i+1:]...)
	if len(h.stale) == 8 {
		h.stale = h.stale[1:]
	}
	h.stale = append(h.stale, b)
	return b
}

// misuseSlice returns a slice the side did not hand out, or no longer
// holds.
func (h *fzHostile) misuseSlice(k byte) []byte {
	switch {
	case k%4 == 0 && len(h.stale) > 0:
		return h.stale[int(k>>2)%len(h.stale)]
	case k%4 == 1:
		return nil
	case k%4 == 2:
		return make([]byte, k>>2)
	default:
		off := HeaderSize + uint32(k)*Alignment
		return h.mem[off : off+4]
	}
}

func (h *fzHostile) batchSlices(take func(byte) []byte) [][]byte {
	pkts := make([][]byte, 1+h.in.byte()%8)
	for i := range pkts {
		if k := h.in.byte(); k%8 == 7 {
			pkts[i] = h.misuseSlice(k >> 3)
		} else {
			pkts[i] = take(k >> 3)
		}
	}
	return pkts
}

// consumerStep is one operation of a consumer facing a hostile producer.
func (h *fzHostile) consumerStep() {
	c := h.c
	switch op := h.in.byte() % 16; op {
	case 0, 1, 2:
		wasDead := h.dead || c.Err() != nil
		b, err := c.Receive()
		h.note("Receive: %d bytes, %v", len(b), err)
		if err == nil {
			h.checkSlice("Receive", b)
		}
		h.checkErr("Receive", err, ErrEmpty, ErrTerminated, ErrCorrupt)
		if wasDead {
			h.dead = true
		}
		h.checkDead("Receive", err == nil, err)
	case 3, 4:
		b := h.take(h.in.byte())
		err := c.Release(b)
		h.note("Release: %v", err)
		h.checkErr("Release", err, ErrForeignPacket, ErrCorrupt)
	case 5:
		wasDead := h.dead || c.Err() != nil
		pkts := make([][]byte, 1+h.in.byte()%8)
		n, err := c.ReceiveBatch(pkts)
		h.note("ReceiveBatch(%d): %d, %v", len(pkts), n, err)
		if n < 0 || n > len(pkts) || (n > 0 && err != nil) || (n == 0 && err == nil) {
			h.fatalf("ReceiveBatch = %d, %v", n, err)
		}
		for _, b := range pkts[:n] {
			h.checkSlice("ReceiveBatch", b)
		}
		h.checkErr("ReceiveBatch", err, ErrEmpty, ErrTerminated, ErrCorrupt)
		if wasDead {
			h.dead = true
		}
		h.checkDead("ReceiveBatch", n > 0, err)
	case 6:
		pkts := h.batchSlices(h.take)
		err := c.ReleaseBatch(pkts)
		h.note("ReleaseBatch(%d): %v", len(pkts), err)
		h.checkErr("ReleaseBatch", err, ErrForeignPacket, ErrCorrupt)
	case 7:
		err := c.Wait(fzCancelled)
		h.note("Wait: %v", err)
		h.checkErr("Wait", err, context.Canceled, ErrTerminated, ErrCorrupt)
		if err == nil {
			// Wait saw something to receive.
			b, err := c.Receive()
			h.note("Receive after Wait: %d bytes, %v", len(b), err)
			if err == nil {
				h.checkSlice("Receive", b)
			}
			h.checkErr("Receive after Wait", err, ErrTerminated, ErrCorrupt)
		}
	case 8, 9:
		h.poke()
	case 10, 11:
		// The peer writes records at its cursor and maybe publishes them.
		n := 1 + h.in.byte()%4
		for range n {
			size := h.in.size()
			v := uint32(size)
			if size < 0 || size > PacketSizeMax {
				v = h.value(v)
			}
			binary.NativeEndian.PutUint32(h.r.data[h.peer:], v)
			h.note("peer writes size %#x at %#x", v, h.peer)
			h.peer = (h.peer + align4(Alignment+v&PacketSizeMax)) & h.r.mask
		}
		if h.in.byte()&1 == 0 {
			h.r.tail.Store(h.peer)
			h.note("peer publishes Tail %#x", h.peer)
		}
	case 12:
		h.r.tail.Store(h.peer)
		h.note("peer publishes Tail %#x", h.peer)
	case 13:
		err := c.Release(h.misuseSlice(h.in.byte()))
		h.note("Release of a foreign slice: %v", err)
		h.checkErr("Release", err, ErrForeignPacket, ErrCorrupt)
	case 14:
		if h.in.byte()%4 == 0 {
			c.Terminate()
			h.note("Terminate")
			h.termSeen = true
			if c.Err() == nil {
				h.fatalf("Err() = nil after Terminate")
			}
		}
	case 15:
		if h.in.byte()%4 == 0 {
			h.c = NewConsumer(h.r, h.w)
			h.held, h.dead = nil, false
			h.note("new Consumer, Err %v", h.c.Err())
		}
	}
}

// producerStep is one operation of a producer facing a hostile consumer.
func (h *fzHostile) producerStep() {
	p := h.p
	switch op := h.in.byte() % 16; op {
	case 0, 1, 2:
		size := h.in.size()
		wasDead := h.dead || p.Err() != nil
		b, err := p.Allocate(size)
		h.note("Allocate(%d): %v", size, err)
		valid := size >= 0 && size <= PacketSizeMax
		if err == nil {
			h.checkSlice("Allocate", b)
			if len(b) != size {
				h.fatalf("Allocate(%d) returned %d bytes", size, len(b))
			}
			if len(b) > 0 {
				b[0], b[len(b)-1] = 0xAB, 0xCD
			}
		}
		// An invalid size gives ErrPacketSize, or the sticky error if the
		// side checks that first; a valid one never gives ErrPacketSize.
		sizeErr := errors.Is(err, ErrPacketSize)
		if valid && sizeErr || !valid && !sizeErr && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTerminated) {
			h.fatalf("Allocate(%d) = %v", size, err)
		}
		h.checkErr("Allocate", err, ErrFull, ErrTerminated, ErrCorrupt, ErrPacketSize)
		if wasDead {
			h.dead = true
		}
		if valid {
			h.checkDead("Allocate", err == nil, err)
		}
	case 3, 4:
		err := p.Commit(h.take(h.in.byte()))
		h.note("Commit: %v", err)
		h.checkErr("Commit", err, ErrForeignPacket, ErrCorrupt)
	case 5:
		wasDead := h.dead || p.Err() != nil
		sizes := make([]int, 1+h.in.byte()%8)
		for i := range sizes {
			sizes[i] = int(h.in.u16()) >> (h.in.byte() % 16)
		}
		pkts := make([][]byte, len(sizes))
		n, err := p.AllocateBatch(sizes, pkts)
		h.note("AllocateBatch(%v): %d, %v", sizes, n, err)
		if n < 0 || n > len(sizes) || (n > 0 && err != nil) || (n < len(sizes) && n == 0 && err == nil) {
			h.fatalf("AllocateBatch = %d, %v", n, err)
		}
		for i, b := range pkts[:n] {
			h.checkSlice("AllocateBatch", b)
			if len(b) != sizes[i] {
				h.fatalf("AllocateBatch record %d: %d bytes, want %d", i, len(b), sizes[i])
			}
		}
		h.checkErr("AllocateBatch", err, ErrFull, ErrTerminated, ErrCorrupt)
		if wasDead {
			h.dead = true
		}
		h.checkDead("AllocateBatch", n > 0, err)
	case 6:
		pkts := h.batchSlices(h.take)
		err := p.CommitBatch(pkts)
		h.note("CommitBatch(%d): %v", len(pkts), err)
		h.checkErr("CommitBatch", err, ErrForeignPacket, ErrCorrupt)
	case 7, 8:
		h.poke()
	case 9, 10, 11:
		// The peer consumes up to n records honestly and publishes Head.
		n := 1 + h.in.byte()%8
		tail := h.r.tail.Load()
		for range n {
			if tail >= h.r.capacity || h.peer == tail {
				break
			}
			size := h.r.size(h.peer)
			aligned := align4(Alignment + size&PacketSizeMax)
			if size > PacketSizeMax || aligned > h.r.dist(h.peer, tail) {
				break
			}
			h.peer = (h.peer + aligned) & h.r.mask
		}
		h.r.head.Store(h.peer)
		h.note("peer consumes to Head %#x (Tail %#x)", h.peer, tail)
	case 12:
		v := h.value(h.r.head.Load())
		h.r.head.Store(v)
		if v < h.r.capacity {
			h.peer = v &^ (Alignment - 1)
		}
		h.note("peer sets Head %#x", v)
		h.seeTerm()
	case 13:
		err := p.Commit(h.misuseSlice(h.in.byte()))
		h.note("Commit of a foreign slice: %v", err)
		h.checkErr("Commit", err, ErrForeignPacket, ErrCorrupt)
	case 14:
		if h.in.byte()%4 == 0 {
			p.Terminate()
			h.note("Terminate")
			h.termSeen = true
			if p.Err() == nil {
				h.fatalf("Err() = nil after Terminate")
			}
		}
	case 15:
		if h.in.byte()%4 == 0 {
			h.p = NewProducer(h.r, h.w)
			h.held, h.dead = nil, false
			h.note("new Producer, Err %v", h.p.Err())
		}
	}
}

func runHostile(t *testing.T, mem []byte, data []byte) {
	fzRun(t, func(tr *fzTrace) { runHostileOnce(t, tr, mem, data) })
}

func runHostileOnce(t *testing.T, tr *fzTrace, mem []byte, data []byte) {
	clear(mem)
	r, err := New(mem, CapacityMin)
	if err != nil {
		t.Fatal(err)
	}
	in := newFzInput(data)
	h := &fzHostile{t: t, mem: mem, r: r, w: NewChanWaker(), in: in, fzTrace: tr}
	producerSide := in.byte()&1 != 0
	r.head.Store(h.value(0))
	r.tail.Store(h.value(0))
	r.alertable.Store(int32(h.value(0)))
	for n := in.byte() % 8; n > 0; n-- {
		h.poke()
	}
	h.seeTerm()
	if producerSide {
		h.p = NewProducer(r, h.w)
		h.peer = r.head.Load() & r.mask &^ (Alignment - 1)
		h.note("Producer at Head %#x Tail %#x: Err %v", r.head.Load(), r.tail.Load(), h.p.Err())
	} else {
		h.c = NewConsumer(r, h.w)
		h.peer = r.tail.Load() & r.mask &^ (Alignment - 1)
		h.note("Consumer at Head %#x Tail %#x: Err %v", r.head.Load(), r.tail.Load(), h.c.Err())
	}
	for !in.empty() {
		if producerSide {
			h.producerStep()
		} else {
			h.consumerStep()
		}
		for len(h.w.c) > 0 {
			<-h.w.c
		}
		if err := h.sideErr(); err != nil {
			if errors.Is(err, ErrTerminated) && !h.termSeen {
				h.fatalf("Err() = %v, but neither Head nor Tail was ever terminated", err)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTerminated) {
				h.fatalf("Err() = %v", err)
			}
			h.dead = true
		} else if h.dead {
			h.fatalf("Err() = nil after the side failed")
		}
	}
}

func FuzzHostilePeer(f *testing.F) {
	for _, seed := range fzHostileSeeds() {
		f.Add(seed.data)
	}
	mem := make([]byte, RingSize(CapacityMin))
	f.Fuzz(func(t *testing.T, data []byte) {
		runHostile(t, mem, data)
	})
}

// fzHostileSeed builds FuzzHostilePeer inputs. The words are encoded for
// fzHostile.value.
type fzHostileSeed struct{ b []byte }

// newHostileSeed starts a seed with Head and Tail at plausible positions
// and Alertable 0.
func newHostileSeed(producer bool, head, tail uint32) *fzHostileSeed {
	s := &fzHostileSeed{}
	if producer {
		s.b = append(s.b, 1)
	} else {
		s.b = append(s.b, 0)
	}
	s.b = append(s.b, fzWord(head)...)
	s.b = append(s.b, fzWord(tail)...)
	s.b = append(s.b, fzWord(0)...)
	s.b = append(s.b, 0) // no initial pokes
	return s
}

// fzWord encodes an exact value for fzHostile.value.
func fzWord(v uint32) []byte {
	return []byte{0, byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

func (s *fzHostileSeed) add(b ...byte) *fzHostileSeed { s.b = append(s.b, b...); return s }

// Consumer-side operations.
func (s *fzHostileSeed) recv() *fzHostileSeed          { return s.add(0) }
func (s *fzHostileSeed) release(k byte) *fzHostileSeed { return s.add(3, k) }
func (s *fzHostileSeed) wait() *fzHostileSeed          { return s.add(7) }

// write has the peer write records of the given sizes (up to 4) at its
// cursor and publish Tail.
func (s *fzHostileSeed) write(sizes ...int) *fzHostileSeed {
	s.add(10, byte(len(sizes)-1))
	for _, size := range sizes {
		if size < 0 || size > PacketSizeMax {
			// An invalid size: the Size word is then decoded as a value.
			s.add(0xF8).add(fzWord(uint32(size))...)
			continue
		}
		s.add(fzSize(size)...)
	}
	return s.add(0)
}

// pokeHead, pokeTail and pokeHeld write an exact value into Head, Tail or
// the Size word of the k-th held record.
func (s *fzHostileSeed) pokeHead(op byte, v uint32) *fzHostileSeed {
	return s.add(op, 0).add(fzWord(v)...)
}
func (s *fzHostileSeed) pokeTail(op byte, v uint32) *fzHostileSeed {
	return s.add(op, 1).add(fzWord(v)...)
}
func (s *fzHostileSeed) pokeHeld(op, k byte, v uint32) *fzHostileSeed {
	return s.add(op, 3, k).add(fzWord(v)...)
}

// Producer-side operations.
func (s *fzHostileSeed) alloc(size int) *fzHostileSeed { return s.add(0).add(fzSize(size)...) }
func (s *fzHostileSeed) commit(k byte) *fzHostileSeed  { return s.add(3, k) }
func (s *fzHostileSeed) consume(n byte) *fzHostileSeed { return s.add(9, n-1) }
func (s *fzHostileSeed) setHead(v uint32) *fzHostileSeed {
	return s.add(12).add(fzWord(v)...)
}

// fzHostileSeeds are the FuzzHostilePeer inputs added in code: honest
// traffic, then each kind of corruption and termination.
func fzHostileSeeds() []fzSeed {
	const pokeC, pokeP = 8, 7 // the poke operation of each side
	return []fzSeed{
		{"consumer-honest", newHostileSeed(false, 0, 0).write(5, 0, 1500).recv().recv().release(0).recv().recv().
			release(0).release(0).b},
		// A maximum record at capacity-4, through the trailing area.
		{"consumer-wrap", newHostileSeed(false, CapacityMin-4, CapacityMin-4).write(PacketSizeMax, 7).recv().recv().
			release(1).release(0).b},
		{"consumer-size-too-big", newHostileSeed(false, 0, 0).write(PacketSizeMax + 1).recv().recv().b},
		{"consumer-record-past-tail", newHostileSeed(false, 0, 0).write(100).pokeTail(pokeC, 8).recv().recv().b},
		{"consumer-tail-misaligned", newHostileSeed(false, 0, 0).pokeTail(pokeC, 6).recv().wait().b},
		{"consumer-tail-moved-back", newHostileSeed(false, 0x100, 0x100).write(4, 4).recv().recv().
			pokeTail(pokeC, 0x104).recv().b},
		{"consumer-tail-terminated", newHostileSeed(false, 0, 0).write(10).recv().pokeTail(pokeC, terminated).recv().
			release(0).wait().b},
		// The peer rewrites the Size of a received record.
		{"consumer-size-rewritten", newHostileSeed(false, 0, 0).write(10, 20).recv().recv().pokeHeld(pokeC, 0, 0x7000).
			release(0).release(0).recv().b},
		// The peer marks a received record released.
		{"consumer-released-by-peer", newHostileSeed(false, 0, 0).write(10, 20).recv().recv().
			pokeHeld(pokeC, 0, 10|flagBit).release(1).recv().b},
		{"consumer-head-misaligned", newHostileSeed(false, 2, 8).recv().b},
		{"consumer-head-terminated", newHostileSeed(false, terminated, 0).recv().wait().b},
		{"producer-honest", newHostileSeed(true, 0, 0).alloc(10).alloc(20).commit(1).commit(0).consume(2).
			alloc(PacketSizeMax).alloc(PacketSizeMax).b},
		// A full ring, then Head moves past the published records.
		{"producer-head-past-tail", newHostileSeed(true, 0, 0).alloc(PacketSizeMax).alloc(PacketSizeMax).commit(0).
			setHead(CapacityMin - 0x100).alloc(PacketSizeMax).alloc(1).b},
		{"producer-head-misaligned", newHostileSeed(true, 0, 0).alloc(PacketSizeMax).commit(0).setHead(2).
			alloc(PacketSizeMax).alloc(1).b},
		{"producer-head-terminated", newHostileSeed(true, 0, 0).alloc(PacketSizeMax).commit(0).setHead(terminated).
			alloc(PacketSizeMax).alloc(1).b},
		// The peer clears the pending bit of an allocated record and gives
		// it a size that runs past the allocated ones.
		{"producer-size-rewritten", newHostileSeed(true, 0, 0).alloc(10).alloc(20).pokeHeld(pokeP, 0, 0x1000).
			commit(1).alloc(1).b},
		// The peer clears the pending bit, so Commit fails.
		{"producer-pending-cleared", newHostileSeed(true, 0, 0).alloc(10).pokeHeld(pokeP, 0, 10).commit(0).alloc(1).b},
		{"producer-wrap", newHostileSeed(true, CapacityMin-4, CapacityMin-4).alloc(PacketSizeMax).alloc(3).
			commit(0).commit(0).consume(2).b},
	}
}
