package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The contenders, in the order of the tables.
const (
	cRingtun   = "ringtun"
	cBrokered  = "ringtun-brokered"
	cWireguard = "wireguard-go"
	cPlain     = "plain"
	cVeth      = "veth"
	// The WireGuard scenario: a WireGuard tunnel between the namespaces,
	// wireguard-go on ringtun (wgtun) and on its own Linux tun.
	cWGRingtun = "wg-ringtun"
	cWGTun     = "wg-tun"
	// The physical limit of a TUN forwarder: frames with their offload
	// header read from one TUN and written unchanged to the other.
	cLimit = "limit"
	// ringtun's offload-aware sessions: records forwarded as they are.
	cOffload = "ringtun-offload"
	// Forwarders written as Wintun programs are: one call per packet, with
	// 1 MiB and 8 MiB rings, and 8 MiB rings without the in-flight limit.
	cWintun1      = "wintun-1m"
	cWintun8      = "wintun-8m"
	cWintun8NoLim = "wintun-8m-nolimit"
)

var allContenders = []string{cRingtun, cOffload, cWintun1, cWintun8, cWintun8NoLim, cBrokered, cWireguard, cPlain, cVeth, cWGRingtun, cWGTun, cLimit}

// wintunCapacity is the ring capacity of the Wintun-style contenders.
var wintunCapacity = map[string]uint32{cWintun1: 1 << 20, cWintun8: 8 << 20, cWintun8NoLim: 8 << 20}

// isWireGuard reports whether c is a contender of the WireGuard scenario.
func isWireGuard(c string) bool { return c == cWGRingtun || c == cWGTun }

// udpSize is the size of iperf3's UDP datagrams (-udp-size).
var udpSize = 64

// setUDPSize sets udpSize and the names of the metrics that show it.
func setUDPSize(n int) {
	udpSize = n
	for i := range metrics {
		switch metrics[i].key {
		case "udp":
			metrics[i].title = fmt.Sprintf("UDP %d B delivered", n)
		case "loss":
			metrics[i].title = fmt.Sprintf("UDP %d B loss", n)
		}
	}
}

// The measurements, in the order they run (-tests).
const (
	tPing = "ping"
	tTCP1 = "tcp1"
	tTCP4 = "tcp4"
	tUDP  = "udp"
	// ping during the TCP 1-stream run (it needs tcp1)
	tPingLoad = "pingload"
)

var allTests = []string{tPing, tTCP1, tTCP4, tUDP, tPingLoad}

// parseTests parses -tests: a comma-separated subset of allTests.
func parseTests(list string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !slices.Contains(allTests, t) {
			return nil, fmt.Errorf("unknown test %q (known: %s)", t, strings.Join(allTests, ", "))
		}
		set[t] = true
	}
	if len(set) == 0 {
		return nil, errors.New("no tests")
	}
	if set[tPingLoad] && !set[tTCP1] {
		return nil, errors.New("pingload pings during the TCP 1-stream run: it needs tcp1")
	}
	return set, nil
}

// contenderNote describes each contender in the report.
var contenderNote = map[string]string{
	cRingtun:      "two ringtun adapters, forwarded with the public Session API's batch calls (ReceivePackets → AllocateSendPackets+copy+SendPackets → ReleaseReceivePackets, Wait when empty), one goroutine per direction; driver with offloads (GSO split, GRO-style merging, writev from ring memory), 1 MiB rings",
	cBrokered:     "the ringtun forwarder run as an unprivileged user (uid 65534), its adapters made by one ringtund per namespace and its sessions on the TUN queues they pass it",
	cWireguard:    "two golang.zx2c4.com/wireguard/tun devices (IFF_VNET_HDR, TSO/USO offloads, batched Read/Write with GSO split and GRO coalescing, offset 16 as wireguard-go uses it), one goroutine per direction",
	cPlain:        "read()/write() on /dev/net/tun (IFF_TUN|IFF_NO_PI, no offloads), one packet per system call, one locked thread per direction",
	cVeth:         "a veth pair between the namespaces (198.18.4.1/24 ↔ 198.18.4.2/24): the kernel alone, the ceiling",
	cWGRingtun:    "WireGuard scenario: wireguard-go's device on ringtun adapters through wgtun (8 MiB rings), one at each end of a tunnel between the namespaces over the veth pair, both in one process",
	cWGTun:        "WireGuard scenario: wireguard-go's device on its own Linux tun (offloads, batched Read/Write), one at each end of the same tunnel, both in one process",
	cOffload:      "two ringtun adapters with offload-aware sessions (SessionOptions.Offload): each record (virtio-net header + packet or GSO super-packet) forwarded unchanged with the batch calls, as the ringtun contender forwards packets; 1 MiB rings",
	cWintun1:      "ringtun forwarded as Wintun programs are written (wintun's example.c, wireguard-go's Windows tun): one ReceivePacket → AllocateSendPacket+copy+SendPacket → ReleaseReceivePacket per packet, Wait when empty; 1 MiB rings",
	cWintun8:      "the same one-call-per-packet forwarder with 8 MiB rings (the default in-flight limit of 1 MiB)",
	cWintun8NoLim: "the same with 8 MiB rings and no in-flight limit (InFlightLimit -1): the rings fill to their capacity",
	cLimit:        "the physical limit of a TUN forwarder: each frame (virtio-net header + packet or GSO super-packet of up to 64 KiB) read from one TUN with checksum, TSO and USO offloads and written unchanged to the other; no ring, no split, no merge",
}

// sample is what one round measures for one contender. A NaN field was not
// measured (failed, or n/a).
type sample struct {
	TCP1Gbps   float64 // iperf3 TCP, 1 stream, receiver throughput
	TCP4Gbps   float64 // iperf3 TCP, 4 streams
	UDPpps     float64 // iperf3 UDP 64-byte datagrams delivered per second at the receiver
	UDPLossPct float64
	PingMinUs  float64
	PingAvgUs  float64
	PingP99Us  float64
	CPUsPerGB  float64 // forwarder CPU seconds per 10^9 bytes moved during the TCP runs
	PingLoadUs float64 // ping avg during the TCP 1-stream run

	Errors []string
}

func newSample() sample {
	n := math.NaN()
	return sample{n, n, n, n, n, n, n, n, n, nil}
}

// metric names one figure of a sample, for tables and the chart.
type metric struct {
	key         string
	title       string // column title
	unit        string
	lowerBetter bool
	get         func(*sample) float64
	digits      int
}

var metrics = []metric{
	{"tcp1", "TCP 1 stream", "Gbit/s", false, func(s *sample) float64 { return s.TCP1Gbps }, 2},
	{"tcp4", "TCP 4 streams", "Gbit/s", false, func(s *sample) float64 { return s.TCP4Gbps }, 2},
	{"udp", "UDP 64 B delivered", "kpps", false, func(s *sample) float64 { return s.UDPpps / 1e3 }, 0},
	{"loss", "UDP 64 B loss", "%", true, func(s *sample) float64 { return s.UDPLossPct }, 1},
	{"pingmin", "ping min", "µs", true, func(s *sample) float64 { return s.PingMinUs }, 0},
	{"pingavg", "ping avg", "µs", true, func(s *sample) float64 { return s.PingAvgUs }, 0},
	{"pingp99", "ping p99", "µs", true, func(s *sample) float64 { return s.PingP99Us }, 0},
	{"cpu", "forwarder CPU", "s/GB", true, func(s *sample) float64 { return s.CPUsPerGB }, 2},
	{"pingload", "ping avg under TCP 1-stream load", "µs", true, func(s *sample) float64 { return s.PingLoadUs }, 0},
}

func metricByKey(k string) metric {
	for _, m := range metrics {
		if m.key == k {
			return m
		}
	}
	panic("no metric " + k)
}

// median returns the median of the values that are not NaN, or NaN.
func median(v []float64) float64 {
	var x []float64
	for _, f := range v {
		if !math.IsNaN(f) {
			x = append(x, f)
		}
	}
	if len(x) == 0 {
		return math.NaN()
	}
	slices.Sort(x)
	if len(x)%2 == 1 {
		return x[len(x)/2]
	}
	return (x[len(x)/2-1] + x[len(x)/2]) / 2
}

// percentile returns the p-th percentile (0 < p ≤ 100) of v by the
// nearest-rank method, or NaN for no values.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	x := slices.Clone(v)
	slices.Sort(x)
	rank := int(math.Ceil(p / 100 * float64(len(x))))
	rank = max(1, min(rank, len(x)))
	return x[rank-1]
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var s float64
	for _, f := range v {
		s += f
	}
	return s / float64(len(v))
}

// iperfReport is the part of iperf3's JSON output (-J) the harness reads.
type iperfReport struct {
	End struct {
		Sum         iperfSum `json:"sum"`
		SumSent     iperfSum `json:"sum_sent"`
		SumReceived iperfSum `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

type iperfSum struct {
	Seconds       float64  `json:"seconds"`
	Bytes         float64  `json:"bytes"`
	BitsPerSecond float64  `json:"bits_per_second"`
	Packets       *float64 `json:"packets"`
	LostPackets   *float64 `json:"lost_packets"`
	LostPercent   *float64 `json:"lost_percent"`
}

// tcpResult is an iperf3 TCP run as the receiver saw it.
type tcpResult struct {
	Bytes   float64
	Seconds float64
	Gbps    float64
}

func parseIperfTCP(out []byte) (tcpResult, error) {
	var r iperfReport
	if err := json.Unmarshal(out, &r); err != nil {
		return tcpResult{}, fmt.Errorf("iperf3 output is not JSON: %v: %q", err, firstBytes(out, 200))
	}
	if r.Error != "" {
		return tcpResult{}, fmt.Errorf("iperf3: %s", r.Error)
	}
	s := r.End.SumReceived
	if s.Seconds <= 0 || s.Bytes <= 0 {
		return tcpResult{}, errors.New("iperf3: the receiver got no data")
	}
	return tcpResult{Bytes: s.Bytes, Seconds: s.Seconds, Gbps: s.BitsPerSecond / 1e9}, nil
}

// udpResult is an iperf3 UDP run: datagrams sent, and delivered at the
// receiver.
type udpResult struct {
	Sent, Delivered float64
	Seconds         float64
	PPS             float64 // delivered per second
	LossPct         float64
}

func parseIperfUDP(out []byte) (udpResult, error) {
	var r iperfReport
	if err := json.Unmarshal(out, &r); err != nil {
		return udpResult{}, fmt.Errorf("iperf3 output is not JSON: %v: %q", err, firstBytes(out, 200))
	}
	if r.Error != "" {
		return udpResult{}, fmt.Errorf("iperf3: %s", r.Error)
	}
	// iperf3 ≥ 3.13 gives the receiver's sums in sum_received; older ones
	// put the sender's packet count and the receiver's loss in sum.
	var res udpResult
	switch rs := r.End.SumReceived; {
	case rs.Packets != nil && rs.LostPackets != nil && rs.Seconds > 0:
		res.Sent = *rs.Packets
		res.Delivered = *rs.Packets - *rs.LostPackets
		res.Seconds = rs.Seconds
	case r.End.Sum.Packets != nil && r.End.Sum.LostPackets != nil && r.End.Sum.Seconds > 0:
		s := r.End.Sum
		res.Sent = *s.Packets
		res.Delivered = *s.Packets - *s.LostPackets
		res.Seconds = s.Seconds
	default:
		return udpResult{}, errors.New("iperf3: no UDP packet counts in the report")
	}
	if res.Delivered < 0 {
		res.Delivered = 0
	}
	res.PPS = res.Delivered / res.Seconds
	if res.Sent > 0 {
		res.LossPct = 100 * (res.Sent - res.Delivered) / res.Sent
	}
	return res, nil
}

// pingResult is a ping run: round-trip times in microseconds.
type pingResult struct {
	Sent  int
	RTTus []float64
}

var pingTime = regexp.MustCompile(`icmp_seq=\d+ .*time=([0-9.]+) ms`)

// parsePing reads the per-reply lines of iputils ping.
func parsePing(out []byte, sent int) (pingResult, error) {
	r := pingResult{Sent: sent}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "DUP!") {
			continue
		}
		m := pingTime.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ms, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		r.RTTus = append(r.RTTus, ms*1000)
	}
	if len(r.RTTus) < (sent+1)/2 {
		return r, fmt.Errorf("ping: %d of %d replies", len(r.RTTus), sent)
	}
	return r, nil
}

func firstBytes(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// parseStatCPU reads utime and stime from /proc/PID/stat, in seconds.
func parseStatCPU(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is the state (field 3); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	ut, err1 := strconv.ParseUint(fields[11], 10, 64)
	st, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	const userHZ = 100 // USER_HZ: what /proc reports in, on every Linux architecture Go supports
	return float64(ut+st) / userHZ, nil
}
