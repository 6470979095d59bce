package driver

import (
	"errors"
	"fmt"
	"os"

	"github.com/ringtun/ringtun/offload"
	"github.com/ringtun/ringtun/ring"
)

// The record paths (Config.Records): the rings carry what the device reads
// and writes, a virtio_net_hdr and a packet, and the driver only moves
// them.

// readRecord is one read of the record path into the receive ring.
// Before the read it reserves the largest record a ring can carry, reads
// into it, and shrinks it to what was read: a read lands in ring memory
// and is committed where it landed, super-packet or not. What does not fit
// (the ring too full for a largest record, or a super-packet longer than a
// record can be) is read into scratch and delivered from there.
func (l *Loop) readRecord(read readFunc, direct bool) step {
	rs, rx := &l.rs, l.cfg.Receive
	rec, err := rx.Allocate(ring.PacketSizeMax)
	var vec [2][]byte
	switch {
	case err == nil:
		vec = [2][]byte{rec, rs.scratch[len(rec):]}
	case errors.Is(err, ring.ErrFull):
		rec = nil
		vec = [2][]byte{rs.scratch, nil}
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
	if n <= offload.HdrLen {
		if rec != nil {
			rx.Cancel(rec)
		}
		l.invalid(fmt.Errorf("read of %d bytes", n))
		return stepRead
	}
	if rec != nil && n <= len(rec) {
		r, err := rx.Shrink(rec, n)
		if err != nil { // cannot happen: rec is the last record allocated
			rx.Cancel(rec)
			l.invalid(err)
			return stepRead
		}
		l.countRecord(r)
		rx.Commit(r)
		return stepRead
	}
	if rec != nil {
		copy(rs.scratch, rec)
		rx.Cancel(rec)
	}
	if !l.deliverRecord(rs.scratch[:n], direct) {
		return stepStop
	}
	return stepRead
}

// countRecord counts a record put in the receive ring.
func (l *Loop) countRecord(r []byte) {
	l.c.rxPackets.Add(1)
	l.c.rxBytes.Add(uint64(len(r) - offload.HdrLen))
	if r[1] != offload.GSONone {
		l.c.rxGSORecords.Add(1)
	}
}

// deliverRecord puts a record read into scratch in the receive ring: as it
// is when a ring record can hold it, split into plain records when it is a
// super-packet too long for one. It reports false when the loop must stop.
func (l *Loop) deliverRecord(r []byte, direct bool) bool {
	rx := l.cfg.Receive
	if len(r) >= scratchSize {
		l.invalid(fmt.Errorf("read of %d bytes or more, more than a packet can be", len(r)))
		return true
	}
	if len(r) > ring.PacketSizeMax {
		return l.deliverSplit(r, direct)
	}
	for {
		b, err := rx.Allocate(len(r))
		if err == nil {
			copy(b, r)
			l.countRecord(b)
			rx.Commit(b)
			return true
		}
		if !errors.Is(err, ring.ErrFull) {
			l.fail(fmt.Errorf("driver: receive ring: %w", err))
			return false
		}
		if l.cfg.Full == Drop || direct {
			l.c.rxDropsFull.Add(1)
			return true
		}
		l.c.rxFullWaits.Add(1)
		if !l.waitSpace() {
			return false
		}
	}
}

// deliverSplit splits a super-packet record too long for a ring record
// into plain records, each a zero header and one complete packet.
func (l *Loop) deliverSplit(r []byte, direct bool) bool {
	h, _ := offload.DecodeHdr(r)
	var split offload.Splitter
	if err := split.Reset(h, r[offload.HdrLen:]); err != nil {
		l.invalid(err)
		return true
	}
	l.c.rxSuperPackets.Add(1)
	l.c.rxSegments.Add(uint64(split.Segments()))
	rx := l.cfg.Receive
	for n := split.Next(); n > 0; n = split.Next() {
		b, err := rx.Allocate(offload.HdrLen + n)
		if errors.Is(err, ring.ErrFull) {
			if l.cfg.Full == Drop || direct {
				split.Skip()
				l.c.rxDropsFull.Add(1)
				continue
			}
			l.c.rxFullWaits.Add(1)
			if !l.waitSpace() {
				return false
			}
			continue
		}
		if err != nil {
			l.fail(fmt.Errorf("driver: receive ring: %w", err))
			return false
		}
		offload.Hdr{}.Encode(b)
		if err := split.Put(b[offload.HdrLen:]); err != nil { // cannot happen: b has Next's size
			rx.Cancel(b)
			l.invalid(err)
			return true
		}
		l.countRecord(b)
		rx.Commit(b)
	}
	return true
}

// writeRecords writes a batch of records from the send ring, each as it
// is, after offload.CheckRecord: a record it refuses is dropped and
// counted, never written. The application's half is in this process, so
// the record does not change between the check and the write; the kernel
// checks again in any case. It reports false when the device is gone.
func (l *Loop) writeRecords(recs [][]byte) bool {
	for _, r := range recs {
		if err := offload.CheckRecord(r); err != nil {
			if l.c.txDropsInvalid.Add(1) == 1 {
				l.logf(true, "dropped a record from the application (logged once): %v", err)
			}
			continue
		}
		l.one[0] = r
		_, err := l.cfg.Device.WriteVec(l.one[:])
		switch {
		case err == nil:
			l.c.txPackets.Add(1)
			l.c.txBytes.Add(uint64(len(r) - offload.HdrLen))
			l.c.txWrites.Add(1)
			if r[1] != offload.GSONone {
				l.c.txGSORecords.Add(1)
			}
		case errors.Is(err, os.ErrClosed):
			l.fail(fmt.Errorf("driver: device write: %w", err))
			return false
		default:
			if l.c.txErrors.Add(1) == 1 {
				l.logf(true, "device refused a record (logged once): %v", err)
			}
		}
	}
	return true
}
