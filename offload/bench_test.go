package offload

import (
	"github.com/ringtun/ringtun/internal/packettest"

	"testing"
)

func benchSplit(b *testing.B, h Hdr, pkt []byte) {
	var s Splitter
	buf := make([]byte, 65536)
	if err := s.Reset(h, pkt); err != nil {
		b.Fatal(err)
	}
	segs := s.Segments()
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Reset(h, pkt); err != nil {
			b.Fatal(err)
		}
		for n := s.Next(); n > 0; n = s.Next() {
			if err := s.Put(buf[:n]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*segs), "ns/pkt")
}

// BenchmarkSplitTCP4 splits a 64 KiB TCP/IPv4 super-packet (with the
// timestamp option) into 46 segments of 1448 bytes of payload.
func BenchmarkSplitTCP4(b *testing.B) {
	h, pkt := superPacket(packettest.TCP4(packettest.Pattern(65535-52, 1)), 1448)
	benchSplit(b, h, pkt)
}

// BenchmarkSplitUDP splits a 64 KiB UDP/IPv4 super-packet into datagrams of
// 1472 bytes of payload.
func BenchmarkSplitUDP(b *testing.B) {
	h, pkt := superPacket(packettest.UDP4(packettest.Pattern(65535-28, 1)), 1472)
	benchSplit(b, h, pkt)
}

// BenchmarkCoalesceTCP4 merges 44 TCP/IPv4 segments of 1448 bytes of
// payload into one write.
func BenchmarkCoalesceTCP4(b *testing.B) {
	pkts := buildRun(packettest.TCP4(nil), []int{1448}, 44)
	c := Coalescer{TCP: true, UDP: true}
	if n, _ := c.Next(pkts); n != 44 {
		b.Fatalf("merged %d", n)
	}
	b.SetBytes(int64(44 * len(pkts[0])))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Next(pkts)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*44), "ns/pkt")
}

var sink uint64

func benchSum(b *testing.B, n int) {
	buf := packettest.Pattern(n, 3)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sink += Sum(buf, 0)
	}
}

func BenchmarkChecksum1500(b *testing.B) { benchSum(b, 1500) }
func BenchmarkChecksum64K(b *testing.B)  { benchSum(b, 65536) }

// BenchmarkCoalesceUDPSmall merges 64 UDP/IPv4 datagrams of 64 bytes of
// payload: the header checks dominate, not the checksums.
func BenchmarkCoalesceUDPSmall(b *testing.B) {
	var pkts [][]byte
	for i := range 64 {
		pkts = append(pkts, packettest.UDP4(packettest.Pattern(64, i)).Build())
	}
	c := Coalescer{TCP: true, UDP: true}
	if n, _ := c.Next(pkts); n != 64 {
		b.Fatalf("merged %d", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Next(pkts)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/pkt")
}

// BenchmarkSplitTCP6Small splits a TCP/IPv6 super-packet into 40 segments
// of 100 bytes of payload: per-segment work, not copying, dominates.
func BenchmarkSplitTCP6Small(b *testing.B) {
	h, pkt := superPacket(packettest.TCP6(packettest.Pattern(4000, 1)), 100)
	benchSplit(b, h, pkt)
}

// BenchmarkCoalesceSingle is a packet that cannot be merged (PSH set):
// the cost of deciding so.
func BenchmarkCoalesceSingle(b *testing.B) {
	s := packettest.TCP4(packettest.Pattern(100, 1))
	s.Flags |= packettest.TCPPsh
	pkts := [][]byte{s.Build(), s.Build()}
	c := Coalescer{TCP: true, UDP: true}
	b.ReportAllocs()
	for b.Loop() {
		if n, _ := c.Next(pkts); n != 1 {
			b.Fatalf("merged %d", n)
		}
	}
}
