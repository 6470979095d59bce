package offload

import (
	"github.com/ringtun/ringtun/internal/packettest"

	"encoding/binary"
	"fmt"
)

// superPacket builds a GSO super-packet as the kernel hands it out: lengths
// cover the whole packet and the L4 checksum field holds junk (the splitter
// must not depend on it). It returns the vnet header too.
func superPacket(p packettest.Spec, gso int) (Hdr, []byte) {
	pkt := p.Build()
	ipLen := 40
	if !p.V6 {
		ipLen = 20 + len(p.IPOpts)
	}
	h := Hdr{Flags: FlagNeedsCsum, GSOSize: uint16(gso), CsumStart: uint16(ipLen)}
	switch {
	case p.Proto == protoUDP:
		h.GSOType, h.CsumOffset, h.HdrLen = GSOUDPL4, 6, uint16(ipLen+8)
		binary.BigEndian.PutUint16(pkt[ipLen+6:], 0xdead)
	case p.V6:
		h.GSOType, h.CsumOffset, h.HdrLen = GSOTCPv6, 16, uint16(ipLen+20+len(p.TCPOpts))
		binary.BigEndian.PutUint16(pkt[ipLen+16:], 0xdead)
	default:
		h.GSOType, h.CsumOffset, h.HdrLen = GSOTCPv4, 16, uint16(ipLen+20+len(p.TCPOpts))
		binary.BigEndian.PutUint16(pkt[ipLen+16:], 0xdead)
	}
	return h, pkt
}

// splitAll splits with a fresh Splitter and returns the segments.
func splitAll(h Hdr, pkt []byte) ([][]byte, error) {
	var s Splitter
	if err := s.Reset(h, pkt); err != nil {
		return nil, err
	}
	var out [][]byte
	sizes := make([]int, s.Segments()+3)
	sizes = sizes[:s.Sizes(sizes)]
	if len(sizes) != s.Segments() {
		return nil, fmt.Errorf("Sizes listed %d segments, Segments() = %d", len(sizes), s.Segments())
	}
	for n := s.Next(); n > 0; n = s.Next() {
		if i := len(out); i >= len(sizes) || sizes[i] != n || n > MaxSegment {
			return nil, fmt.Errorf("segment %d has %d bytes, Sizes said %v", i, n, sizes)
		}
		var two [2]int
		if k := s.Sizes(two[:]); k != min(2, len(sizes)-len(out)) || two[0] != n {
			return nil, fmt.Errorf("Sizes after %d segments: %d, %v", len(out), k, two)
		}
		seg := make([]byte, n)
		if err := s.Put(seg); err != nil {
			return nil, err
		}
		out = append(out, seg)
	}
	if len(out) != s.Segments() || len(out) != len(sizes) {
		return nil, fmt.Errorf("got %d segments, Segments() = %d, Sizes listed %d", len(out), s.Segments(), len(sizes))
	}
	return out, nil
}

// run builds count packets of one flow continuing each other's sequence
// numbers, with consecutive IPv4 IDs; sizes gives each payload length (the
// last entry repeats).
func buildRun(base packettest.Spec, sizes []int, count int) [][]byte {
	var out [][]byte
	p := base
	for i := 0; i < count; i++ {
		n := sizes[min(i, len(sizes)-1)]
		p.Payload = packettest.Pattern(n, i)
		out = append(out, p.Build())
		p.Seq += uint32(n)
		p.ID++
	}
	return out
}

func concat(vec [][]byte) []byte {
	var out []byte
	for _, v := range vec {
		out = append(out, v...)
	}
	return out
}

// tuneZeroSum rewrites the last two bytes of an IPv4 packet without options
// or an IPv6 packet (L4 checksum field at off, payload of even length) so
// that the L4 data, with a zero checksum field, sums to 0xffff: its correct
// checksum is then 0x0000 (0xffff for UDP). The checksum field is left 0.
func tuneZeroSum(p []byte, off int) {
	ip, src, dst, proto := 20, p[12:16], p[16:20], p[9]
	if p[0]>>4 == 6 {
		ip, src, dst, proto = 40, p[8:24], p[24:40], p[6]
	}
	p[ip+off], p[ip+off+1] = 0, 0
	p[len(p)-2], p[len(p)-1] = 0, 0
	s := packettest.Sum(packettest.PseudoHeader(src, dst, proto, len(p)-ip), p[ip:])
	binary.BigEndian.PutUint16(p[len(p)-2:], ^s)
	if packettest.Sum(packettest.PseudoHeader(src, dst, proto, len(p)-ip), p[ip:]) != 0xffff {
		panic("tuneZeroSum failed")
	}
}
