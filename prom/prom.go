// Package prom exports a ringtun session's counters as Prometheus metrics:
//
//	reg.MustRegister(prom.NewCollector(adapter.Name(), adapter.TunnelType(), session.Stats))
//
// Every metric is a counter labelled by adapter and tunnel_type:
//
//	ringtun_session_packets_total{direction="received"|"sent"}
//	ringtun_session_bytes_total{direction="received"|"sent"}
//	ringtun_session_drops_total{reason="receive_ring_full"|"receive_invalid"|"send_not_ip"}
//	ringtun_session_errors_total{direction="received"|"sent"}
//	ringtun_session_receive_ring_full_waits_total
//	ringtun_session_gso_super_packets_received_total, ringtun_session_gso_segments_received_total
//	ringtun_session_writes_total, ringtun_session_coalesced_writes_total, ringtun_session_coalesced_packets_total
//	ringtun_session_application_wakeups_total, ringtun_session_writer_sleeps_total
//
// "received" is host to application, "sent" application to host, as in
// ringtun.Stats.
package prom

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringtun/ringtun"
)

// Collector is a prometheus.Collector of one session's Stats.
type Collector struct {
	stats  func() ringtun.Stats
	labels []string // adapter, tunnel type
}

// NewCollector returns a collector that reads stats (a Session's Stats,
// or a wgtun device's) at every scrape, labelled with the adapter's name
// and tunnel type.
func NewCollector(adapter, tunnelType string, stats func() ringtun.Stats) *Collector {
	return &Collector{stats: stats, labels: []string{adapter, tunnelType}}
}

// metric is one counter: its description and how to read it, with the
// values of its own labels.
type metric struct {
	desc   *prometheus.Desc
	values func(s ringtun.Stats) []valued
}

type valued struct {
	v      uint64
	labels []string
}

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("ringtun_session_"+name, help, append([]string{"adapter", "tunnel_type"}, labels...), nil)
}

func one(f func(s ringtun.Stats) uint64) func(ringtun.Stats) []valued {
	return func(s ringtun.Stats) []valued { return []valued{{v: f(s)}} }
}

var metrics = []metric{
	{newDesc("packets_total", "Packets through the session's rings, by direction (received: host to application).", "direction"),
		func(s ringtun.Stats) []valued {
			return []valued{{s.RxPackets, []string{"received"}}, {s.TxPackets, []string{"sent"}}}
		}},
	{newDesc("bytes_total", "Bytes of those packets, by direction.", "direction"),
		func(s ringtun.Stats) []valued {
			return []valued{{s.RxBytes, []string{"received"}}, {s.TxBytes, []string{"sent"}}}
		}},
	{newDesc("drops_total", "Packets dropped, by reason.", "reason"),
		func(s ringtun.Stats) []valued {
			return []valued{{s.RxDropsFull, []string{"receive_ring_full"}}, {s.RxDropsInvalid, []string{"receive_invalid"}},
				{s.TxDropsNotIP, []string{"send_not_ip"}}, {s.TxDropsInvalid, []string{"send_invalid_record"}}}
		}},
	{newDesc("errors_total", "Packets the device refused or failed to read, by direction.", "direction"),
		func(s ringtun.Stats) []valued {
			return []valued{{s.RxErrors, []string{"received"}}, {s.TxErrors, []string{"sent"}}}
		}},
	{newDesc("receive_ring_full_waits_total", "Times the driver waited for the application to make room in the receive ring."),
		one(func(s ringtun.Stats) uint64 { return s.RxFullWaits })},
	{newDesc("gso_super_packets_received_total", "GSO super-packets from the host, split into packets."),
		one(func(s ringtun.Stats) uint64 { return s.RxSuperPackets })},
	{newDesc("gso_segments_received_total", "Packets those super-packets were split into."),
		one(func(s ringtun.Stats) uint64 { return s.RxSegments })},
	{newDesc("gso_records_total", "Offload-aware sessions: GSO super-packets carried whole, by direction.", "direction"),
		func(s ringtun.Stats) []valued {
			return []valued{{s.RxGSORecords, []string{"received"}}, {s.TxGSORecords, []string{"sent"}}}
		}},
	{newDesc("writes_total", "Write system calls that carried sent packets to the host."),
		one(func(s ringtun.Stats) uint64 { return s.TxWrites })},
	{newDesc("coalesced_writes_total", "Writes that carried several packets merged into one GSO super-packet."),
		one(func(s ringtun.Stats) uint64 { return s.TxCoalescedWrites })},
	{newDesc("coalesced_packets_total", "Packets carried by those writes."),
		one(func(s ringtun.Stats) uint64 { return s.TxCoalescedPackets })},
	{newDesc("application_wakeups_total", "Times the application slept waiting for packets and was woken."),
		one(func(s ringtun.Stats) uint64 { return s.RxWakeups })},
	{newDesc("direct_reads_total", "Reads the application's goroutine made itself while waiting on an empty receive ring."),
		one(func(s ringtun.Stats) uint64 { return s.RxDirectReads })},
	{newDesc("writer_sleeps_total", "Times the driver's writer slept waiting for the application."),
		one(func(s ringtun.Stats) uint64 { return s.TxSleeps })},
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range metrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, m := range metrics {
		for _, v := range m.values(s) {
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(v.v), slices.Concat(c.labels, v.labels)...)
		}
	}
}
