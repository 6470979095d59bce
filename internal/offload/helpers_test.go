package offload

import (
	"encoding/binary"
	"fmt"
)

// refSum is a deliberately simple reference: 16-bit big-endian words added
// into a uint32 with folding at the end.
func refSum(chunks ...[]byte) uint16 {
	var all []byte
	for _, c := range chunks {
		all = append(all, c...)
	}
	var s uint32
	for i := 0; i+1 < len(all); i += 2 {
		s += uint32(all[i])<<8 | uint32(all[i+1])
		s = s&0xffff + s>>16
	}
	if len(all)%2 == 1 {
		s += uint32(all[len(all)-1]) << 8
		s = s&0xffff + s>>16
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// refPseudo returns the pseudo-header bytes for the reference checksum.
func refPseudo(src, dst []byte, proto uint8, length int) []byte {
	p := append(append([]byte{}, src...), dst...)
	if len(src) == 4 {
		return append(p, 0, proto, byte(length>>8), byte(length))
	}
	return append(p, byte(length>>24), byte(length>>16), byte(length>>8), byte(length), 0, 0, 0, proto)
}

// pktSpec describes a test packet.
type pktSpec struct {
	v6       bool
	proto    uint8 // protoTCP or protoUDP
	src, dst []byte
	tos      uint8 // IPv4 TOS or IPv6 traffic class
	ttl      uint8 // IPv4 TTL or IPv6 hop limit
	id       uint16
	df       bool
	flow     uint32 // IPv6 flow label
	ipOpts   []byte // IPv4 options (multiple of 4)
	sport    uint16
	dport    uint16
	seq, ack uint32
	flags    uint8
	window   uint16
	urg      uint16
	tcpOpts  []byte // multiple of 4
	payload  []byte
}

var (
	src4 = []byte{10, 0, 0, 1}
	dst4 = []byte{192, 168, 7, 9}
	src6 = []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	dst6 = []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0xab, 0xcd, 0, 0, 0, 0, 0x12, 0x34}
	// Timestamp option, padded: 12 bytes.
	tsOpts = []byte{1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78}
)

func tcp4Spec(payload []byte) pktSpec {
	return pktSpec{proto: protoTCP, src: src4, dst: dst4, ttl: 64, id: 0x1234, df: true,
		sport: 40000, dport: 443, seq: 1000, ack: 5000, flags: tcpACK, window: 512, tcpOpts: tsOpts, payload: payload}
}

func tcp6Spec(payload []byte) pktSpec {
	return pktSpec{v6: true, proto: protoTCP, src: src6, dst: dst6, ttl: 60, flow: 0xbeef1, tos: 0x20,
		sport: 40000, dport: 443, seq: 1000, ack: 5000, flags: tcpACK, window: 512, tcpOpts: tsOpts, payload: payload}
}

func udp4Spec(payload []byte) pktSpec {
	return pktSpec{proto: protoUDP, src: src4, dst: dst4, ttl: 64, id: 7, df: false,
		sport: 5353, dport: 4789, payload: payload}
}

func udp6Spec(payload []byte) pktSpec {
	return pktSpec{v6: true, proto: protoUDP, src: src6, dst: dst6, ttl: 64, flow: 3,
		sport: 5353, dport: 4789, payload: payload}
}

// l4Header builds the TCP or UDP header with a zero checksum.
func (p pktSpec) l4Header(l4len int) []byte {
	if p.proto == protoUDP {
		h := make([]byte, 8)
		binary.BigEndian.PutUint16(h[0:], p.sport)
		binary.BigEndian.PutUint16(h[2:], p.dport)
		binary.BigEndian.PutUint16(h[4:], uint16(l4len))
		return h
	}
	h := make([]byte, 20+len(p.tcpOpts))
	binary.BigEndian.PutUint16(h[0:], p.sport)
	binary.BigEndian.PutUint16(h[2:], p.dport)
	binary.BigEndian.PutUint32(h[4:], p.seq)
	binary.BigEndian.PutUint32(h[8:], p.ack)
	h[12] = byte(len(h)/4) << 4
	h[13] = p.flags
	binary.BigEndian.PutUint16(h[14:], p.window)
	binary.BigEndian.PutUint16(h[18:], p.urg)
	copy(h[20:], p.tcpOpts)
	return h
}

func (p pktSpec) ipHeader(l4len int) []byte {
	if p.v6 {
		h := make([]byte, 40)
		binary.BigEndian.PutUint32(h[0:], 6<<28|uint32(p.tos)<<20|p.flow&0xfffff)
		binary.BigEndian.PutUint16(h[4:], uint16(l4len))
		h[6] = p.proto
		h[7] = p.ttl
		copy(h[8:], p.src)
		copy(h[24:], p.dst)
		return h
	}
	h := make([]byte, 20+len(p.ipOpts))
	h[0] = 0x40 | byte(len(h)/4)
	h[1] = p.tos
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+l4len))
	binary.BigEndian.PutUint16(h[4:], p.id)
	if p.df {
		h[6] = 0x40
	}
	h[8] = p.ttl
	h[9] = p.proto
	copy(h[12:], p.src)
	copy(h[16:], p.dst)
	copy(h[20:], p.ipOpts)
	binary.BigEndian.PutUint16(h[10:], ^refSum(h))
	return h
}

// build returns the packet with correct lengths and checksums.
func (p pktSpec) build() []byte {
	l4 := p.l4Header(0)
	l4len := len(l4) + len(p.payload)
	l4 = p.l4Header(l4len)
	ip := p.ipHeader(l4len)
	csum := ^refSum(refPseudo(p.src, p.dst, p.proto, l4len), l4, p.payload)
	off := 16
	if p.proto == protoUDP {
		off = 6
		if csum == 0 {
			csum = 0xffff
		}
	}
	binary.BigEndian.PutUint16(l4[off:], csum)
	out := append(ip, l4...)
	return append(out, p.payload...)
}

// pattern returns n bytes of a position-dependent pattern.
func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed*13 + i>>8)
	}
	return b
}

// superPacket builds a GSO super-packet as the kernel hands it out: lengths
// cover the whole packet and the L4 checksum field holds junk (the splitter
// must not depend on it). It returns the vnet header too.
func superPacket(p pktSpec, gso int) (Hdr, []byte) {
	pkt := p.build()
	ipLen := 40
	if !p.v6 {
		ipLen = 20 + len(p.ipOpts)
	}
	h := Hdr{Flags: FlagNeedsCsum, GSOSize: uint16(gso), CsumStart: uint16(ipLen)}
	switch {
	case p.proto == protoUDP:
		h.GSOType, h.CsumOffset, h.HdrLen = GSOUDPL4, 6, uint16(ipLen+8)
		binary.BigEndian.PutUint16(pkt[ipLen+6:], 0xdead)
	case p.v6:
		h.GSOType, h.CsumOffset, h.HdrLen = GSOTCPv6, 16, uint16(ipLen+20+len(p.tcpOpts))
		binary.BigEndian.PutUint16(pkt[ipLen+16:], 0xdead)
	default:
		h.GSOType, h.CsumOffset, h.HdrLen = GSOTCPv4, 16, uint16(ipLen+20+len(p.tcpOpts))
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

// checkWellFormed verifies an IP packet produced by the splitter: lengths
// match its size, the IPv4 header checksum and the L4 checksum verify (with
// the reference checksum). It returns the header length and the protocol.
func checkWellFormed(seg []byte) (hdrLen int, proto uint8, err error) {
	if len(seg) < 1 {
		return 0, 0, fmt.Errorf("empty segment")
	}
	var ipLen, l4len int
	var src, dst []byte
	switch seg[0] >> 4 {
	case 4:
		ipLen = int(seg[0]&0xf) * 4
		if ipLen < 20 || len(seg) < ipLen {
			return 0, 0, fmt.Errorf("bad IHL")
		}
		if int(binary.BigEndian.Uint16(seg[2:])) != len(seg) {
			return 0, 0, fmt.Errorf("IPv4 total length %d, segment %d", binary.BigEndian.Uint16(seg[2:]), len(seg))
		}
		if refSum(seg[:ipLen]) != 0xffff {
			return 0, 0, fmt.Errorf("IPv4 header checksum does not verify")
		}
		proto = seg[9]
		src, dst = seg[12:16], seg[16:20]
	case 6:
		ipLen = 40
		if len(seg) < 40 || int(binary.BigEndian.Uint16(seg[4:]))+40 != len(seg) {
			return 0, 0, fmt.Errorf("IPv6 payload length mismatch")
		}
		proto = seg[6]
		src, dst = seg[8:24], seg[24:40]
	default:
		return 0, 0, fmt.Errorf("bad version")
	}
	l4len = len(seg) - ipLen
	switch proto {
	case protoTCP:
		if l4len < 20 {
			return 0, 0, fmt.Errorf("short TCP")
		}
		hdrLen = ipLen + int(seg[ipLen+12]>>4)*4
	case protoUDP:
		if l4len < 8 || int(binary.BigEndian.Uint16(seg[ipLen+4:])) != l4len {
			return 0, 0, fmt.Errorf("UDP length mismatch")
		}
		if binary.BigEndian.Uint16(seg[ipLen+6:]) == 0 {
			return 0, 0, fmt.Errorf("UDP checksum zero")
		}
		hdrLen = ipLen + 8
	default:
		return 0, 0, fmt.Errorf("bad protocol %d", proto)
	}
	if hdrLen > len(seg) {
		return 0, 0, fmt.Errorf("header beyond segment")
	}
	if refSum(refPseudo(src, dst, proto, l4len), seg[ipLen:]) != 0xffff {
		return 0, 0, fmt.Errorf("L4 checksum does not verify")
	}
	return hdrLen, proto, nil
}

// run builds count packets of one flow continuing each other's sequence
// numbers, with consecutive IPv4 IDs; sizes gives each payload length (the
// last entry repeats).
func buildRun(base pktSpec, sizes []int, count int) [][]byte {
	var out [][]byte
	p := base
	for i := 0; i < count; i++ {
		n := sizes[min(i, len(sizes)-1)]
		p.payload = pattern(n, i)
		out = append(out, p.build())
		p.seq += uint32(n)
		p.id++
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
	s := refSum(refPseudo(src, dst, proto, len(p)-ip), p[ip:])
	binary.BigEndian.PutUint16(p[len(p)-2:], ^s)
	if refSum(refPseudo(src, dst, proto, len(p)-ip), p[ip:]) != 0xffff {
		panic("tuneZeroSum failed")
	}
}
