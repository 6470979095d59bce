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
