package main

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func TestMedianPercentile(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{nan, 5, nan}, 5},
		{[]float64{7}, 7},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(median(nil)) || !math.IsNaN(median([]float64{nan})) {
		t.Error("median of nothing is not NaN")
	}
	var v []float64
	for i := 200; i >= 1; i-- {
		v = append(v, float64(i))
	}
	if got := percentile(v, 99); got != 198 {
		t.Errorf("p99 of 1..200 = %v, want 198 (nearest rank)", got)
	}
	if got := percentile(v[:20], 99); got != 200 {
		t.Errorf("p99 of 20 values = %v, want the largest", got)
	}
}

const iperfUDP312 = `{"start":{},"intervals":[],"end":{
 "sum":{"seconds":1.000093,"bytes":18203520,"bits_per_second":1.4e8,"jitter_ms":0.002,"lost_packets":85392,"packets":284430,"lost_percent":30.02,"sender":true},
 "sum_sent":{"seconds":1.000023,"bytes":18203520,"bits_per_second":1.4e8,"lost_packets":0,"packets":284430,"lost_percent":0,"sender":true},
 "sum_received":{"seconds":1.000093,"bytes":12738432,"bits_per_second":1.0e8,"lost_packets":85392,"packets":284430,"lost_percent":30.02,"sender":false}}}`

const iperfUDPOld = `{"end":{"sum":{"seconds":2,"bytes":640,"bits_per_second":2560,"lost_packets":2,"packets":10,"lost_percent":20}}}`

func TestParseIperf(t *testing.T) {
	u, err := parseIperfUDP([]byte(iperfUDP312))
	if err != nil {
		t.Fatal(err)
	}
	if u.Delivered != 199038 || math.Abs(u.PPS-199038/1.000093) > 1e-6 || math.Abs(u.LossPct-100*85392.0/284430) > 1e-9 {
		t.Errorf("UDP 3.12: %+v", u)
	}
	u, err = parseIperfUDP([]byte(iperfUDPOld))
	if err != nil || u.Delivered != 8 || u.PPS != 4 || u.LossPct != 20 {
		t.Errorf("UDP old: %+v, %v", u, err)
	}
	tcp, err := parseIperfTCP([]byte(`{"end":{"sum_sent":{"seconds":5,"bytes":99,"bits_per_second":1},"sum_received":{"seconds":5,"bytes":5e9,"bits_per_second":8e9}}}`))
	if err != nil || tcp.Bytes != 5e9 || tcp.Gbps != 8 {
		t.Errorf("TCP: %+v, %v", tcp, err)
	}
	if _, err := parseIperfTCP([]byte(`{"end":{},"error":"unable to connect to server: Connection refused"}`)); err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("TCP error: %v", err)
	}
	if _, err := parseIperfTCP([]byte("iperf3: error")); err == nil {
		t.Error("no error for text output")
	}
}

func TestParsePing(t *testing.T) {
	out := `PING 198.18.2.1 (198.18.2.1) 56(84) bytes of data.
64 bytes from 198.18.2.1: icmp_seq=1 ttl=64 time=0.105 ms
64 bytes from 198.18.2.1: icmp_seq=2 ttl=64 time=0.052 ms
64 bytes from 198.18.2.1: icmp_seq=2 ttl=64 time=0.090 ms (DUP!)
64 bytes from 198.18.2.1: icmp_seq=3 ttl=64 time=1.50 ms

--- 198.18.2.1 ping statistics ---
3 packets transmitted, 3 received, +1 duplicates, 0% packet loss, time 20ms
rtt min/avg/max/mdev = 0.052/0.552/1.500/0.671 ms
`
	r, err := parsePing([]byte(out), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{105, 52, 1500}
	if len(r.RTTus) != len(want) {
		t.Fatalf("RTTs %v, want %v", r.RTTus, want)
	}
	for i := range want {
		if math.Abs(r.RTTus[i]-want[i]) > 1e-9 {
			t.Fatalf("RTTs %v, want %v", r.RTTus, want)
		}
	}
	if _, err := parsePing([]byte(out), 10); err == nil {
		t.Error("3 replies of 10 accepted")
	}
}

func testRun() *runInfo {
	ri := &runInfo{
		Machine: [][2]string{{"CPU", "test <cpu> & co"}}, Command: "go -C bench run .", Started: time.Unix(0, 0),
		Rounds: 2, Duration: time.Second, Pings: 10, Interval: 10 * time.Millisecond,
		Contenders: allContenders, Samples: map[string][]sample{},
	}
	for i, c := range allContenders {
		for r := range 2 {
			s := newSample()
			f := float64(i + 1 + r)
			s.TCP1Gbps, s.TCP4Gbps, s.UDPpps, s.UDPLossPct = f, 2*f, 1000*f, 10
			s.PingMinUs, s.PingAvgUs, s.PingP99Us, s.PingLoadUs = f, 2*f, 3*f, 4*f
			if c != cVeth {
				s.CPUsPerGB = f
			}
			if c == cPlain && r == 1 {
				s.TCP1Gbps = math.NaN()
				s.Errors = []string{"TCP 1 stream(s): iperf3: boom\nsecond line"}
			}
			ri.Samples[c] = append(ri.Samples[c], s)
		}
	}
	return ri
}

func TestReport(t *testing.T) {
	ri := testRun()
	md := ri.markdown()
	for _, want := range []string{
		"| ringtun | 1.50 | 3.00 | 2 | 10.0 | 2 / 3 / 4 | 6 | 1.50 |",
		"| plain | 8.00 |", // the failed round is left out of the median
		"| veth | 9.50 | 19.00 | 10 | 10.0 | 10 / 19 / 28 | 38 | n/a |",
		"| ringtun | 0.20× | 0.20× | 0.20× | 0.20× | 0.20× | 0.20× |", // to wireguard-go
		"Ratio to ringtun",
		"| ringtun-brokered | 4.33× | 4.33× | 4.33× | 4.33× | 4.33× | 4.33× |", // to ringtun
		"| TCP 1 stream ≥ 1.2 × wireguard-go | 0.20× | missed by 83% |",
		"| ping avg RTT ≤ wireguard-go | 0.20× | met |",
		"| wintun-8m: TCP 1 stream ≥ 1.0 × wireguard-go | 0.60× | missed by 40% |",
		"| 8 MiB rings not slower than 1 MiB: TCP 1 stream ≥ 1.0 × | 1.29× | met |",
		"- round 2, plain: TCP 1 stream(s): iperf3: boom second line",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, md)
		}
	}
	d := xml.NewDecoder(strings.NewReader(ri.svg()))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("results.svg is not well-formed XML: %v", err)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	stat := "4242 (bench (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 9 0 100 0 0\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil || got != 3.8 {
		t.Errorf("parseStatCPU = %v, %v; want 3.8", got, err)
	}
	if _, err := parseStatCPU([]byte("4242 (bench) S 1")); err == nil {
		t.Error("no error for a short stat")
	}
}

func TestParseTests(t *testing.T) {
	got, err := parseTests(" tcp1, udp ,tcp1")
	if err != nil || len(got) != 2 || !got[tTCP1] || !got[tUDP] {
		t.Errorf("parseTests: %v, %v", got, err)
	}
	for _, bad := range []string{"", " , ", "tcp2", "tcp1,UDP"} {
		if _, err := parseTests(bad); err == nil {
			t.Errorf("parseTests(%q) did not fail", bad)
		}
	}
}
