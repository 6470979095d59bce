package offload

import (
	"github.com/ringtun/ringtun/internal/packettest"

	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func encodeHdr(h Hdr) []byte {
	b := make([]byte, HdrLen)
	h.Encode(b)
	return b
}

// splitSeeds returns valid and invalid (hdr, pkt) pairs, kept small so
// that the fuzzer's minimization of inputs derived from them stays fast.
func splitSeeds() [][2][]byte {
	var out [][2][]byte
	addP := func(h Hdr, pkt []byte) { out = append(out, [2][]byte{encodeHdr(h), pkt}) }
	p := packettest.TCP4(packettest.Pattern(90, 1))
	p.Flags = tcpACK | tcpPSH | tcpFIN | tcpCWR
	addP(superPacket(p, 40))
	addP(superPacket(packettest.TCP6(packettest.Pattern(60, 2)), 16))
	addP(superPacket(packettest.UDP4(packettest.Pattern(61, 3)), 30))
	addP(superPacket(packettest.UDP6(packettest.Pattern(40, 4)), 40))
	q := packettest.TCP4(packettest.Pattern(30, 5))
	q.IPOpts = []byte{1, 1, 1, 1}
	addP(superPacket(q, 7))
	addP(partialPacket(packettest.UDP4(packettest.Pattern(20, 6))))
	addP(partialPacket(packettest.TCP6(packettest.Pattern(21, 7))))
	h, pkt := superPacket(packettest.TCP4(packettest.Pattern(50, 8)), 10)
	h.GSOType = GSOTCPv6
	addP(h, pkt)
	h, pkt = superPacket(packettest.TCP6(packettest.Pattern(50, 9)), 10)
	pkt[6] = 0 // hop-by-hop
	addP(h, pkt)
	h, pkt = superPacket(packettest.UDP4(packettest.Pattern(50, 10)), 10)
	addP(h, pkt[:len(pkt)-1])
	addP(Hdr{}, []byte{0x45})
	return out
}

func FuzzSplit(f *testing.F) {
	for _, s := range splitSeeds() {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, hdr, pkt []byte) {
		buf := make([]byte, len(pkt)+1)
		h, err := DecodeHdr(hdr)
		if err != nil {
			return
		}
		orig := bytes.Clone(pkt)
		var s Splitter
		if err := s.Reset(h, pkt); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if s.Next() != 0 || s.Segments() != 0 || s.Put(buf[:0]) == nil {
				t.Fatal("segments after a failed Reset")
			}
			return
		}
		nseg := s.Segments()
		if nseg < 1 || s.Next() < 1 {
			t.Fatalf("accepted with %d segments, Next %d", nseg, s.Next())
		}
		// Every segment fits in a ring record; the first is the longest.
		if s.Next() > MaxSegment {
			t.Fatalf("a segment of %d bytes, more than MaxSegment", s.Next())
		}
		// A wrong-sized destination is refused without advancing.
		n := s.Next()
		if err := s.Put(buf[:n+1]); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Put with a wrong length: %v", err)
		}
		if h.GSOType == GSONone {
			if nseg != 1 || n != len(pkt) {
				t.Fatalf("GSONone: %d segments of %d", nseg, n)
			}
			want := bytes.Clone(pkt)
			if err := FinishChecksum(h, want); err != nil {
				t.Fatalf("Reset accepted offsets FinishChecksum refuses: %v", err)
			}
			if err := s.Put(buf[:n]); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], want) {
				t.Fatal("GSONone segment differs")
			}
		} else {
			var payload []byte
			var first []byte
			var hl0 int
			gso := int(h.GSOSize)
			for i := 0; i < nseg; i++ {
				n := s.Next()
				seg := buf[:n]
				if err := s.Put(seg); err != nil {
					t.Fatalf("segment %d: %v", i, err)
				}
				hl, proto, err := packettest.CheckWellFormed(seg)
				if err != nil {
					t.Fatalf("segment %d: %v", i, err)
				}
				wantProto := uint8(protoTCP)
				if h.GSOType == GSOUDPL4 {
					wantProto = protoUDP
				}
				if proto != wantProto {
					t.Fatalf("segment %d: protocol %d", i, proto)
				}
				chunk := len(seg) - hl
				if chunk < 1 || chunk > gso || (i < nseg-1 && chunk != gso) {
					t.Fatalf("segment %d: payload %d with GSO size %d", i, chunk, gso)
				}
				if i == 0 {
					first = bytes.Clone(seg[:hl])
					hl0 = hl
				} else if hl != hl0 {
					t.Fatalf("segment %d: header length %d, first %d", i, hl, hl0)
				}
				ip := int(h.CsumStart)
				if proto == protoTCP {
					want := binary.BigEndian.Uint32(first[ip+4:]) + uint32(i*gso)
					if got := binary.BigEndian.Uint32(seg[ip+4:]); got != want {
						t.Fatalf("segment %d: seq %d, want %d", i, got, want)
					}
				}
				payload = append(payload, seg[hl:]...)
			}
			if s.Next() != 0 {
				t.Fatal("more segments than Segments()")
			}
			if hl0 > len(pkt) || !bytes.Equal(payload, pkt[hl0:]) {
				t.Fatal("segment payloads do not concatenate to the original payload")
			}
		}
		if s.Next() != 0 || s.Put(buf[:1]) == nil {
			t.Fatal("segments left")
		}
		if !bytes.Equal(pkt, orig) {
			t.Fatal("Splitter modified its input")
		}
	})
}

// encodePkts writes packets with 2-byte big-endian length prefixes.
func encodePkts(pkts [][]byte) []byte {
	var out []byte
	for _, p := range pkts {
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		out = append(out, p...)
	}
	return out
}

// decodePkts is the inverse of encodePkts; a short last length takes what
// is left.
func decodePkts(data []byte) [][]byte {
	var pkts [][]byte
	for len(data) >= 2 && len(pkts) < 300 {
		n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
		pkts = append(pkts, data[2:2+n:2+n])
		data = data[2+n:]
	}
	return pkts
}

func noOptsTCP4() packettest.Spec {
	p := packettest.TCP4(nil)
	p.TCPOpts = nil
	return p
}

// coalesceSeeds returns packet lists, kept small so that the fuzzer's
// minimization of inputs derived from them stays fast.
func coalesceSeeds() [][]byte {
	var out [][]byte
	tcp4 := buildRun(packettest.TCP4(nil), []int{10}, 5)
	out = append(out, encodePkts(tcp4))
	out = append(out, encodePkts(buildRun(packettest.TCP6(nil), []int{16, 16, 5}, 4)))
	out = append(out, encodePkts(buildRun(packettest.UDP4(nil), []int{30}, 3)))
	out = append(out, encodePkts(buildRun(packettest.UDP6(nil), []int{30, 30, 1}, 3)))
	psh := packettest.TCP4(nil)
	psh.Flags |= tcpPSH
	psh.Seq += 3 * 8
	psh.ID += 3
	psh.Payload = packettest.Pattern(5, 3)
	mixed := append(buildRun(packettest.TCP4(nil), []int{8}, 3), psh.Build())
	mixed = append(mixed, buildRun(packettest.UDP6(nil), []int{10}, 3)...)
	out = append(out, encodePkts(mixed))
	out = append(out, encodePkts(buildRun(noOptsTCP4(), []int{1}, 66)))
	bad := clonePkts(tcp4)
	bad[2][40]++
	out = append(out, encodePkts(bad))
	trunc := clonePkts(tcp4)
	trunc[1] = trunc[1][:30]
	out = append(out, encodePkts(trunc))
	trail := clonePkts(tcp4)
	trail[3] = append(trail[3], 0)
	out = append(out, encodePkts(trail))
	out = append(out, []byte{0, 3, 0x45, 0, 0})
	return out
}

func FuzzCoalesce(f *testing.F) {
	for i, s := range coalesceSeeds() {
		f.Add(s, byte(3))
		if i < 3 {
			f.Add(s, byte(i))
		}
	}
	var co Coalescer
	f.Fuzz(func(t *testing.T, data []byte, mode byte) {
		pkts := decodePkts(data)
		co.TCP, co.UDP = mode&1 != 0, mode&2 != 0
		orig := clonePkts(pkts)
		if n, vec := co.Next(nil); n != 0 || vec != nil {
			t.Fatal("Next(nil) returned a write")
		}
		for i := 0; i < len(pkts); {
			n, vec := co.Next(pkts[i:])
			if n < 1 || n > len(pkts)-i || n > MaxRun {
				t.Fatalf("n = %d with %d packets left", n, len(pkts)-i)
			}
			if n == 1 {
				checkSingle(t, pkts[i:], n, vec)
			} else {
				p0 := pkts[i]
				isTCP := len(p0) > 9 && ((p0[0]>>4 == 4 && p0[9] == protoTCP) || (p0[0]>>4 == 6 && p0[6] == protoTCP))
				if (isTCP && !co.TCP) || (!isTCP && !co.UDP) {
					t.Fatalf("merged with TCP=%v UDP=%v", co.TCP, co.UDP)
				}
				checkMerged(t, pkts[i:], n, vec)
			}
			i += n
		}
		for i := range pkts {
			if !bytes.Equal(pkts[i], orig[i]) {
				t.Fatalf("Next modified packet %d", i)
			}
		}
	})
}
