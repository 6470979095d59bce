// Package driver is ringtun's driver loop, the part that plays wintun.sys:
// a reader moves packets from a TUN queue into a session's receive ring,
// and a writer moves the packets the application commits to the send ring
// into the TUN queue. It touches the rings only through package ring, so
// the same loop runs inside the application or inside a daemon that shares
// the ring memory with it.
package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringtun/ringtun/offload"
	"github.com/ringtun/ringtun/ring"
)

// Device is one queue of a TUN device opened with IFF_VNET_HDR: every
// packet read or written is preceded by a virtio_net_hdr
// (offload.HdrLen bytes). ReadVec reads one header and packet scattered
// over vec (readv), WriteVec writes one gathered from vec (writev); both
// block until done, and Close unblocks them. Once the device is gone they
// return an error wrapping os.ErrClosed; any other WriteVec error rejects
// only that packet.
type Device interface {
	ReadVec(vec [][]byte) (int, error)
	WriteVec(vec [][]byte) (int, error)
	Close() error
}

// FullPolicy says what the reader does with a packet when the receive ring
// has no room for it.
type FullPolicy int

const (
	// Wait holds the packet until the application releases enough
	// records, so that the kernel's queue fills and the host stack sees
	// the congestion (the default).
	Wait FullPolicy = iota
	// Drop drops the packet and counts it.
	Drop
)

// Config sets up a Loop.
type Config struct {
	// Device is the TUN queue; the Loop closes it when it stops.
	Device Device
	// Receive is the driver's side of the receive ring (host to app).
	Receive *ring.Producer
	// Send is the driver's side of the send ring (app to host).
	Send *ring.Consumer
	// Full is the policy for a full receive ring.
	Full FullPolicy
	// MTU is the size of the largest plain packet the reader expects. The
	// reader reserves that much in the receive ring before each read, so
	// that a plain packet lands in ring memory with no copy; a larger one
	// still arrives, copied once, and raises the reservation. 0 means
	// 1500.
	MTU int
	// CoalesceTCP and CoalesceUDP let the writer merge runs of
	// consecutive TCP segments, and UDP datagrams, of one flow into one
	// GSO write. Set them only for a device that accepts such writes
	// (tundev.Queue.ProbeGSO). If the device refuses a merged write
	// anyway, the writer stops merging that protocol and logs it.
	CoalesceTCP, CoalesceUDP bool
	// Records makes the rings carry records rather than plain packets: a
	// virtio_net_hdr then a packet that may be a GSO super-packet, as the
	// device reads and writes them (offload.CheckRecord). The reader puts
	// what it reads into the receive ring as it is, and the writer writes
	// each record of the send ring as it is, after checking it; nothing is
	// split, merged or checksummed. A super-packet too long for one record
	// is split into plain records. The coalescing options are ignored.
	Records bool
	// Space, if not nil, is signalled when the application releases
	// receive records, so that a reader waiting for room looks again at
	// once. The reader waits on it only while the receive ring is full.
	// Without it the reader looks again every SpacePoll.
	Space ring.Waker
	// SpacePoll is how often a reader waiting for room looks again when
	// there is no Space waker; 0 means 1 ms.
	SpacePoll time.Duration
	// Direct, if not nil, is a second handle on Device's queue, with
	// which WaitDirect lets the application's goroutine read the device
	// itself while it waits on an empty receive ring. Device must then be
	// Interruptible. The Loop closes it when it stops.
	Direct DirectReader
	// Log, if not nil, receives the loop's log messages.
	Log func(warn bool, msg string)
	// OnStop, if not nil, is called once, on a goroutine of its own, when
	// the loop stops by itself (the device is gone or a ring ended or was
	// corrupted), with the reason.
	OnStop func(err error)
}

// Stats are the loop's counters. Reading them is cheap; they are always
// on.
type Stats struct {
	RxPackets      uint64 // packets put in the receive ring
	RxBytes        uint64 // bytes of those packets
	RxDropsFull    uint64 // packets dropped because the receive ring was full (Drop policy)
	RxFullWaits    uint64 // times the reader waited for room (Wait policy)
	RxDropsInvalid uint64 // reads the driver could not finish or split (malformed offload metadata)
	RxErrors       uint64 // reads the device failed for one packet, which is lost (the kernel said why: EINVAL, ENOBUFS…)
	RxSuperPackets uint64 // GSO super-packets read from the device and split
	RxSegments     uint64 // packets those super-packets were split into
	RxWakeups      uint64 // commits that signalled the application asleep in Wait (Session.Stats: the application's sleeps)
	RxGSORecords   uint64 // Records: super-packets put in the receive ring whole
	RxDirectReads  uint64 // reads made by the application's goroutine in WaitDirect, without a hand-off

	TxPackets          uint64 // packets written to the device
	TxBytes            uint64 // bytes of those packets
	TxWrites           uint64 // write system calls that carried them
	TxCoalescedWrites  uint64 // writes that carried a merged super-packet
	TxCoalescedPackets uint64 // packets carried by those writes
	TxDropsNotIP       uint64 // packets from the app that were not IPv4 or IPv6
	TxDropsInvalid     uint64 // Records: records from the app that offload.CheckRecord refused
	TxGSORecords       uint64 // Records: super-packets written whole
	TxErrors           uint64 // packets the device refused
	TxSleeps           uint64 // times the writer slept waiting for the application
}

type counters struct {
	// The reader's counters, then the writer's, a cache line apart so
	// that the two goroutines do not contend for one line.
	rxPackets, rxBytes, rxDropsFull, rxFullWaits atomic.Uint64
	rxDropsInvalid, rxSuperPackets, rxSegments   atomic.Uint64
	rxErrors, rxGSORecords, rxDirectReads        atomic.Uint64
	_                                            [64]byte
	txPackets, txBytes, txWrites                 atomic.Uint64
	txCoalescedWrites, txCoalescedPackets        atomic.Uint64
	txDropsNotIP, txErrors                       atomic.Uint64
	txDropsInvalid, txGSORecords                 atomic.Uint64
}

// Loop is a running driver loop.
type Loop struct {
	cfg      Config
	c        counters
	stop     chan struct{}
	ctx      context.Context // done when stop is closed, for the wakers' Wait
	cancel   context.CancelFunc
	stopOnce sync.Once
	stopped  sync.WaitGroup
	reason   atomic.Pointer[error]

	// The reader's state and buffers for splitting, used by whoever holds
	// the read token rsem: the reader goroutine, or the application's in
	// WaitDirect (see reader.go).
	rs     readerState
	sizes  [batch]int
	recs   [batch][]byte
	rsem   chan struct{} // the read token: a send takes it
	owner  atomic.Int32  // who reads: ownerReader, ownerApp or ownerLease
	resume chan struct{} // the reader goroutine may read again
	leftAt atomic.Int64  // when the application last left WaitDirect on lease (now)
	// read is readPlain or readRecord; the readFuncs are the method
	// values of the device's reads, made once.
	read                           func(readFunc, bool) step
	devRead, directRead, directTry readFunc

	// The writer's state. Whoever holds wmu writes: the writer goroutine,
	// or an application goroutine in Kick.
	wmu       sync.Mutex
	pkts, ips [batch][]byte
	one       [1][]byte // writeRecords' vector
	co        offload.Coalescer
	lastWrite atomic.Int64 // when the last write ended, in nanoseconds since start
	epoch     time.Time
}

// kickIdle is how long the device must have gone without a write for Kick
// to write from the application's goroutine. A busier stream is left to
// the writer goroutine, which spins and merges runs; writing each packet
// as it is sent would merge nothing.
const kickIdle = 50 * time.Microsecond

// batch is how many records the writer takes from the send ring at once.
const batch = 128

// bigOnes is how many reads in a row the reader keeps reserving room for
// the largest plain packet it saw beyond the MTU.
const bigOnes = 1024

// A read error that is not the device going away costs the packet it was
// for, not the session. After readErrorBurst of them in a row the reader
// pauses readErrorPause before each read, so that a device that keeps
// failing (out of memory, say) does not make it spin.
const (
	readErrorBurst = 64
	readErrorPause = 10 * time.Millisecond
)

// scratchSize is the reader's buffer for what does not go straight into
// the ring: a GSO super-packet is at most 64 KiB of IP packet, and room is
// left beyond that so that an oversized read shows up as such rather than
// being cut to a plausible length.
const scratchSize = 1 << 17

// Start starts the reader and writer goroutines.
func Start(cfg Config) *Loop {
	if cfg.SpacePoll == 0 {
		cfg.SpacePoll = time.Millisecond
	}
	if cfg.MTU <= 0 {
		cfg.MTU = 1500
	}
	cfg.MTU = min(cfg.MTU, ring.PacketSizeMax)
	l := &Loop{cfg: cfg, stop: make(chan struct{}), epoch: time.Now()}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.lastWrite.Store(-int64(kickIdle))
	l.co = offload.Coalescer{TCP: cfg.CoalesceTCP, UDP: cfg.CoalesceUDP}
	l.rs = readerState{scratch: make([]byte, scratchSize), readSize: cfg.MTU, timer: time.NewTimer(time.Hour)}
	l.rs.timer.Stop()
	l.rsem, l.resume = make(chan struct{}, 1), make(chan struct{}, 1)
	l.read, l.devRead = l.readPlain, cfg.Device.ReadVec
	if cfg.Records {
		l.co = offload.Coalescer{}
		l.read = l.readRecord
	}
	if cfg.Direct != nil {
		l.directRead, l.directTry = cfg.Direct.ReadVec, cfg.Direct.TryReadVec
	}
	l.stopped.Add(2)
	go l.reader()
	go l.writer()
	return l
}

// Stats returns a snapshot of the counters.
func (l *Loop) Stats() Stats {
	c := &l.c
	return Stats{
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(),
		RxDropsFull: c.rxDropsFull.Load(), RxFullWaits: c.rxFullWaits.Load(),
		RxDropsInvalid: c.rxDropsInvalid.Load(), RxErrors: c.rxErrors.Load(),
		RxSuperPackets: c.rxSuperPackets.Load(), RxSegments: c.rxSegments.Load(),
		RxWakeups: l.cfg.Receive.Signals(), RxGSORecords: c.rxGSORecords.Load(),
		RxDirectReads: c.rxDirectReads.Load(),
		TxPackets:     c.txPackets.Load(), TxBytes: c.txBytes.Load(), TxWrites: c.txWrites.Load(),
		TxCoalescedWrites: c.txCoalescedWrites.Load(), TxCoalescedPackets: c.txCoalescedPackets.Load(),
		TxDropsNotIP: c.txDropsNotIP.Load(), TxErrors: c.txErrors.Load(),
		TxDropsInvalid: c.txDropsInvalid.Load(), TxGSORecords: c.txGSORecords.Load(),
		TxSleeps: l.cfg.Send.Sleeps(),
	}
}

// Stop ends both rings from the driver's side, closes the device and waits
// for the loop's goroutines. It returns the reason the loop had stopped by
// itself, if it had. It is safe to call more than once and concurrently.
func (l *Loop) Stop() error {
	l.shutdown(nil)
	l.stopped.Wait()
	l.wmu.Lock() // wait for a Kick in progress
	l.wmu.Unlock()
	l.rsem <- struct{}{} // and for a WaitDirect's read in progress
	<-l.rsem
	if p := l.reason.Load(); p != nil {
		return *p
	}
	return nil
}

// shutdown stops the loop once; err is the reason when it stops by itself.
func (l *Loop) shutdown(err error) {
	l.stopOnce.Do(func() {
		if err != nil {
			l.reason.Store(&err)
		}
		close(l.stop)
		l.cancel()
		l.cfg.Receive.Terminate()
		l.cfg.Send.Terminate()
		l.cfg.Device.Close()
		if l.cfg.Direct != nil {
			l.cfg.Direct.Close()
		}
		if err != nil && l.cfg.OnStop != nil {
			go l.cfg.OnStop(err)
		}
	})
}

func (l *Loop) stopping() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *Loop) logf(warn bool, format string, args ...any) {
	if l.cfg.Log != nil {
		l.cfg.Log(warn, fmt.Sprintf(format, args...))
	}
}

// readPlain is one read of the plain path into the receive ring. Before
// the read it reserves an MTU-sized record, and reads the virtio_net_hdr
// into its own buffer, the packet into the record and anything longer into
// scratch. A plain packet that fits (the common case) is committed where it
// landed, its partial checksum finished in place. Anything else, a GSO
// super-packet above all, is gathered in scratch and split into the ring.
func (l *Loop) readPlain(read readFunc, direct bool) step {
	rs, rx := &l.rs, l.cfg.Receive
	rec, err := rx.Allocate(rs.readSize)
	var vec [3][]byte
	switch {
	case err == nil:
		vec = [3][]byte{rs.hdr[:], rec, rs.scratch[rs.readSize:]}
	case errors.Is(err, ring.ErrFull):
		rec = nil
		vec = [3][]byte{rs.hdr[:], rs.scratch, nil}
	default:
		l.fail(fmt.Errorf("driver: receive ring: %w", err))
		return stepStop
	}
	n, err := read(vec[:])
	if err != nil {
		if rec != nil {
			rx.Cancel(rec)
		}
		return l.readError(err, direct)
	}
	rs.failures = 0
	n -= offload.HdrLen
	if rs.readSize > l.cfg.MTU {
		if rs.sinceBig++; rs.sinceBig == bigOnes {
			rs.readSize = l.cfg.MTU
		}
	}
	h, herr := offload.DecodeHdr(rs.hdr[:])
	if n <= 0 || herr != nil {
		if rec != nil {
			rx.Cancel(rec)
		}
		l.invalid(fmt.Errorf("read of %d bytes", n+offload.HdrLen))
		return stepRead
	}
	if rec != nil && n <= len(rec) && h.GSOType == offload.GSONone {
		pkt, err := rx.Shrink(rec, n)
		if err != nil { // cannot happen: rec is the last record allocated
			rx.Cancel(rec)
			l.invalid(err)
			return stepRead
		}
		if err := offload.FinishChecksum(h, pkt); err != nil {
			rx.Cancel(pkt)
			l.invalid(err)
			return stepRead
		}
		// Counted before the commit, so that a packet the application
		// has received is in Stats.
		l.c.rxPackets.Add(1)
		l.c.rxBytes.Add(uint64(n))
		rx.Commit(pkt)
		return stepRead
	}
	if rec != nil {
		// The packet starts in the record and goes on in scratch: make
		// it contiguous there and give the record back.
		copy(rs.scratch, rec)
		rx.Cancel(rec)
		if h.GSOType == offload.GSONone && n <= ring.PacketSizeMax {
			// A plain packet over the MTU (the MTU was raised, say):
			// reserve that much from now on, until bigOnes reads in a row
			// have been within the configured MTU again.
			rs.readSize, rs.sinceBig = n, 0
		}
	}
	if n >= scratchSize { // it filled every buffer: cut short
		l.invalid(fmt.Errorf("packet of %d bytes or more, more than a packet can be", n))
		return stepRead
	}
	if err := rs.split.Reset(h, rs.scratch[:n]); err != nil {
		l.invalid(err)
		return stepRead
	}
	if h.GSOType != offload.GSONone {
		l.c.rxSuperPackets.Add(1)
		l.c.rxSegments.Add(uint64(rs.split.Segments()))
	}
	if !l.deliver(&rs.split, direct) {
		return stepStop
	}
	return stepRead
}

// readError handles a failed read: the reader was interrupted (Direct),
// there was nothing to read (TryReadVec), the device is gone, or one
// packet was lost.
func (l *Loop) readError(err error, direct bool) step {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return stepInterrupted
	case errors.Is(err, syscall.EAGAIN):
		return stepEmpty
	case errors.Is(err, os.ErrClosed):
		l.fail(fmt.Errorf("driver: device read: %w", err))
		return stepStop
	}
	if !l.readFailed(err, direct) {
		return stepStop
	}
	return stepRead
}

// readFailed counts a read that failed for one packet, logs the first,
// and, on the reader goroutine (not direct), pauses once failures in a
// row pass readErrorBurst. It reports false when the loop must stop.
func (l *Loop) readFailed(err error, direct bool) bool {
	if l.c.rxErrors.Add(1) == 1 {
		l.logf(true, "a read from the device failed; the packet is lost, the session goes on (logged once): %v", err)
	}
	if l.rs.failures++; l.rs.failures <= readErrorBurst || direct {
		return true
	}
	timer := l.rs.timer
	timer.Reset(readErrorPause)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-l.stop:
		return false
	}
}

// deliver puts the segments of split into the receive ring, allocating and
// committing them in batches. When the ring is full it waits for room, or
// drops what is left under the Drop policy or when direct (the
// application's goroutine, which must not wait for itself). It reports
// false when the loop must stop.
func (l *Loop) deliver(split *offload.Splitter, direct bool) bool {
	rx := l.cfg.Receive
	for split.Next() > 0 {
		sizes := l.sizes[:split.Sizes(l.sizes[:])]
		n, err := rx.AllocateBatch(sizes, l.recs[:])
		if n > 0 {
			recs := l.recs[:n]
			for i, rec := range recs {
				if err := split.Put(rec); err != nil {
					// Cannot happen: each record has the size Sizes
					// gave. Give back what is not filled, last first.
					for j := n - 1; j >= i; j-- {
						rx.Cancel(recs[j])
					}
					recs = recs[:i]
					l.invalid(err)
					break
				}
				l.c.rxBytes.Add(uint64(len(rec)))
			}
			l.c.rxPackets.Add(uint64(len(recs)))
			rx.CommitBatch(recs)
			if len(recs) < n {
				return true
			}
			continue
		}
		if errors.Is(err, ring.ErrPacketSize) {
			// Cannot happen: the splitter makes no segment longer than a
			// record can be. Drop the packet rather than the session.
			l.invalid(fmt.Errorf("segment of %d bytes: %w", sizes[0], err))
			return true
		}
		if !errors.Is(err, ring.ErrFull) {
			l.fail(fmt.Errorf("driver: receive ring: %w", err))
			return false
		}
		if l.cfg.Full == Drop || direct {
			for split.Next() > 0 {
				split.Skip()
				l.c.rxDropsFull.Add(1)
			}
			return true
		}
		l.c.rxFullWaits.Add(1)
		if !l.waitSpace() {
			return false
		}
	}
	return true
}

// waitSpace waits until the application may have released receive
// records, and reports false if the loop is stopping.
func (l *Loop) waitSpace() bool {
	timer := l.rs.timer
	if l.cfg.Space != nil {
		if err := l.cfg.Space.Wait(l.ctx); err != nil && !l.stopping() {
			l.fail(fmt.Errorf("driver: waiting for room in the receive ring: %w", err))
			return false
		}
		return !l.stopping()
	}
	timer.Reset(l.cfg.SpacePoll)
	select {
	case <-timer.C:
		return true
	case <-l.stop:
		timer.Stop()
		return false
	}
}

// fail stops the loop for err, unless it is already stopping.
func (l *Loop) fail(err error) {
	if !l.stopping() {
		l.shutdown(err)
	}
}

// invalid counts a read the driver cannot deliver, and logs the first one.
func (l *Loop) invalid(err error) {
	if l.c.rxDropsInvalid.Add(1) == 1 {
		l.logf(true, "dropped a packet from the host stack (logged once): %v", err)
	}
}

// isIP reports whether p can be an IPv4 or IPv6 packet: the version nibble
// and the minimum header length. The kernel checks the rest.
func isIP(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch p[0] >> 4 {
	case 4:
		return len(p) >= 20
	case 6:
		return len(p) >= 40
	}
	return false
}

// writer moves packets the application committed to the send ring into the
// device. It takes every committed record on each pass and writes runs of
// one flow's segments as one super-packet where it can; every write is
// gathered straight from ring memory, with no copy.
func (l *Loop) writer() {
	defer l.stopped.Done()
	ctx := l.ctx
	send := l.cfg.Send
	for {
		l.wmu.Lock()
		ok := l.drain()
		l.wmu.Unlock()
		if !ok {
			return
		}
		if err := send.Wait(ctx); err != nil && !errors.Is(err, ring.ErrTerminated) && !l.stopping() {
			l.shutdown(fmt.Errorf("driver: send ring: %w", err))
			return
		}
		if l.stopping() {
			return
		}
	}
}

// Kick writes what the application committed to the send ring from the
// calling goroutine, one batch at most, and reports whether the ring is
// empty after it (false: the writer goroutine must be woken). It writes
// only when the device has been idle for kickIdle and the writer is not
// writing already. An in-process session's send waker calls it before
// waking the writer goroutine: a lone packet then goes out without a
// goroutine switch, which is most of its latency.
func (l *Loop) Kick() bool {
	if time.Since(l.epoch).Nanoseconds()-l.lastWrite.Load() < int64(kickIdle) {
		return false
	}
	if !l.wmu.TryLock() {
		return false
	}
	defer l.wmu.Unlock()
	if l.stopping() {
		return false
	}
	// One batch at most: the application's call must not turn into the
	// writer for a whole stream. If more is waiting, the writer goroutine
	// is woken for it.
	n, err := l.cfg.Send.ReceiveBatch(l.pkts[:])
	if err != nil {
		return errors.Is(err, ring.ErrEmpty)
	}
	l.write(l.pkts[:n])
	l.cfg.Send.ReleaseBatch(l.pkts[:n])
	l.lastWrite.Store(time.Since(l.epoch).Nanoseconds())
	return !l.cfg.Send.Ready()
}

// SendReady reports whether the send ring has records for the writer.
func (l *Loop) SendReady() bool { return l.cfg.Send.Ready() }

// drain writes every record in the send ring, until it is empty, with wmu
// held. It reports false when the loop must stop.
func (l *Loop) drain() bool {
	send := l.cfg.Send
	for {
		n, err := send.ReceiveBatch(l.pkts[:])
		if errors.Is(err, ring.ErrEmpty) {
			return true
		}
		if err != nil {
			l.fail(fmt.Errorf("driver: send ring: %w", err))
			return false
		}
		ok := l.write(l.pkts[:n])
		send.ReleaseBatch(l.pkts[:n])
		l.lastWrite.Store(time.Since(l.epoch).Nanoseconds())
		if !ok {
			return false
		}
	}
}

// write writes a batch of records from the send ring, merging runs. It
// reports false when the device is gone.
func (l *Loop) write(pkts [][]byte) bool {
	if l.cfg.Records {
		return l.writeRecords(pkts)
	}
	valid := l.ips[:0]
	for _, p := range pkts {
		if isIP(p) {
			valid = append(valid, p)
		} else {
			l.c.txDropsNotIP.Add(1)
		}
	}
	for len(valid) > 0 {
		k, vec := l.co.Next(valid)
		_, err := l.cfg.Device.WriteVec(vec)
		switch {
		case err == nil:
			var bytes uint64
			for _, p := range valid[:k] {
				bytes += uint64(len(p))
			}
			l.c.txPackets.Add(uint64(k))
			l.c.txBytes.Add(bytes)
			l.c.txWrites.Add(1)
			if k > 1 {
				l.c.txCoalescedWrites.Add(1)
				l.c.txCoalescedPackets.Add(uint64(k))
			}
		case errors.Is(err, os.ErrClosed):
			l.fail(fmt.Errorf("driver: device write: %w", err))
			return false
		case k > 1 && errors.Is(err, syscall.EINVAL):
			// The kernel refuses merged writes after all: stop merging
			// this protocol and write the run again, one packet at a
			// time.
			if protocol(valid[0]) == 17 {
				l.co.UDP = false
			} else {
				l.co.TCP = false
			}
			l.logf(true, "device refused a merged write of %d packets, writing them one by one from now on: %v", k, err)
			continue
		default:
			if l.c.txErrors.Add(uint64(k)) == uint64(k) {
				l.logf(true, "device refused a packet (logged once): %v", err)
			}
		}
		valid = valid[k:]
	}
	return true
}

// protocol returns the transport protocol number of an IPv4 or IPv6 packet
// that isIP accepted (for IPv6, the first next-header).
func protocol(p []byte) byte {
	if p[0]>>4 == 4 {
		return p[9]
	}
	return p[6]
}
