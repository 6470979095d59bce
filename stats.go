package ringtun

import "github.com/ringtun/ringtun/internal/driver"

// Stats are a session's packet counters, from the driver's side:
// "received" is host to application, "sent" is application to host. They
// only grow, and reading them is cheap.
type Stats struct {
	RxPackets      uint64 // packets put in the receive ring
	RxBytes        uint64 // bytes of those packets
	RxDropsFull    uint64 // packets dropped because the receive ring was full (only with a drop policy; the default waits)
	RxFullWaits    uint64 // times the driver waited for the application to release room in the receive ring
	RxDropsInvalid uint64 // packets from the host the driver could not take (malformed offload metadata)
	RxErrors       uint64 // reads the device failed for one packet, which is lost
	RxSuperPackets uint64 // GSO super-packets from the host, split into packets
	RxSegments     uint64 // packets those super-packets were split into
	RxWakeups      uint64 // times the application slept in Wait and was woken
	RxGSORecords   uint64 // offload-aware sessions: super-packets from the host put in the receive ring whole
	RxDirectReads  uint64 // reads the application's goroutine made itself while in Wait on an empty ring (no hand-off from the driver's reader)

	TxPackets          uint64 // packets written to the host
	TxBytes            uint64 // bytes of those packets
	TxWrites           uint64 // write system calls that carried them
	TxCoalescedWrites  uint64 // writes that carried several packets merged into one GSO super-packet
	TxCoalescedPackets uint64 // packets carried by those writes
	TxDropsNotIP       uint64 // packets from the application that were not IPv4 or IPv6, dropped
	TxDropsInvalid     uint64 // offload-aware sessions: records from the application that offload.CheckRecord refused, dropped
	TxGSORecords       uint64 // offload-aware sessions: super-packets from the application written whole
	TxErrors           uint64 // packets the host refused
	TxSleeps           uint64 // times the driver's writer slept waiting for the application
}

// statsFrom copies the driver's counters.
func statsFrom(d driver.Stats) Stats {
	return Stats{
		RxPackets: d.RxPackets, RxBytes: d.RxBytes, RxDropsFull: d.RxDropsFull, RxFullWaits: d.RxFullWaits,
		RxDropsInvalid: d.RxDropsInvalid, RxErrors: d.RxErrors, RxSuperPackets: d.RxSuperPackets,
		RxSegments: d.RxSegments, RxWakeups: d.RxWakeups, RxGSORecords: d.RxGSORecords,
		RxDirectReads: d.RxDirectReads,
		TxPackets:     d.TxPackets, TxBytes: d.TxBytes, TxWrites: d.TxWrites,
		TxCoalescedWrites: d.TxCoalescedWrites, TxCoalescedPackets: d.TxCoalescedPackets,
		TxDropsNotIP: d.TxDropsNotIP, TxErrors: d.TxErrors, TxSleeps: d.TxSleeps,
		TxDropsInvalid: d.TxDropsInvalid, TxGSORecords: d.TxGSORecords,
	}
}
