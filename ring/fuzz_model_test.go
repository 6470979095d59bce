package ring

// FuzzModel: an honest producer and consumer checked against a model of
// the ring (see fuzz_helpers_test.go).

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

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
