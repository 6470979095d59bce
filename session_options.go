package ringtun

import "fmt"

// SessionOptions configure a session (Adapter.StartSessionWithOptions).
// The zero value is what StartSession starts: plain packets in the rings,
// and DefaultInFlightLimit bytes in flight in each.
type SessionOptions struct {
	// Offload makes the session offload-aware: every record in both rings
	// is a record in the sense of package offload, a 10-byte
	// virtio_net_hdr followed by one IP packet that may be a GSO
	// super-packet of up to 64 KiB with a partial checksum, exactly as
	// Linux reads and writes them on a TUN device with IFF_VNET_HDR. The
	// driver moves them between the rings and the device as they are: no
	// split, merge, copy or checksum, which is most of the work a session
	// does otherwise. A record the application sends is checked
	// (offload.CheckRecord) and dropped and counted (Stats.TxDropsInvalid)
	// if it is inconsistent; a plain packet goes out as a record with a
	// header of ten zero bytes. A super-packet from the host longer than a
	// ring record can be (65535 bytes with its header) arrives split into
	// plain records. offload.SplitRecord gives the plain packets of a
	// record to programs that want them.
	//
	// Default false. Linux only, and the kernel must accept TSO on TUN
	// devices (USO, UDP super-packets, from Linux 6.2): otherwise starting
	// the session fails with an error wrapping ErrNotSupported.
	Offload bool

	// InFlightLimit bounds the bytes of packets in flight in each ring
	// (with their 4-byte record headers and padding): once the receive
	// ring holds that many, the driver waits for the application to
	// release some, as for a full ring, and once the send ring does,
	// AllocateSendPacket returns ErrBufferOverflow. It keeps the memory a
	// session touches, and the time a packet queues in a ring, bounded
	// whatever the capacity: large rings then cost neither cache misses
	// nor latency under load. One packet always fits in an empty ring.
	//
	// A Session's rings then run at the bound's size, rounded up to a
	// power of two (at least RingCapacityMin), whatever capacity was asked
	// for: records sweep a ring's whole capacity, so the bound alone would
	// not keep the memory touched small. (A SharedSession keeps the
	// capacity it was asked for, which the program outside Go relies on;
	// only its driver's side is bounded.)
	//
	// 0 means DefaultInFlightLimit; -1 means no bound but the capacity;
	// a bound at or above the capacity is no bound. Windows takes only 0
	// (wintun.sys bounds nothing but the capacity) and fails otherwise
	// with ErrNotSupported.
	InFlightLimit int
}

// DefaultInFlightLimit is the bound SessionOptions.InFlightLimit has by
// default: 1 MiB, which is where larger rings stopped being faster on the
// bench harness's forwarders (bench/RESULTS.md).
const DefaultInFlightLimit = 1 << 20

// validate checks the options against what this platform can do.
func (o SessionOptions) validate() error {
	switch {
	case o.Offload && !offloadSessions:
		return fmt.Errorf("ringtun: offload-aware sessions: %w", ErrNotSupported)
	case o.InFlightLimit < -1:
		return fmt.Errorf("%w: in-flight limit %d (0 for the default, -1 for none, or a positive number of bytes)", ErrInvalidCapacity, o.InFlightLimit)
	case o.InFlightLimit != 0 && !inFlightLimits:
		return fmt.Errorf("ringtun: in-flight limits: %w", ErrNotSupported)
	}
	return nil
}

// ringCapacity returns the capacity a Session's rings run at for a
// requested capacity: the in-flight limit's, rounded up to a power of two,
// when the limit is below the capacity. Records sweep a ring's whole
// capacity whatever is in flight, so a bound on the bytes in flight alone
// leaves the memory touched at the capacity; with both halves of the
// session in this process, the rings can simply be that small.
func (o SessionOptions) ringCapacity(capacity uint32) uint32 {
	limit := o.inFlightLimit()
	if limit == 0 || limit >= capacity {
		return capacity
	}
	c := uint32(RingCapacityMin)
	for c < limit {
		c <<= 1
	}
	return min(c, capacity)
}

// inFlightLimit returns the ring producers' limit (ring.Producer.SetLimit)
// for these options.
func (o SessionOptions) inFlightLimit() uint32 {
	switch {
	case o.InFlightLimit == 0:
		return DefaultInFlightLimit
	case o.InFlightLimit < 0 || uint64(o.InFlightLimit) > 1<<31:
		return 0
	}
	return uint32(o.InFlightLimit)
}
