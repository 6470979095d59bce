// Package packettest builds and checks IP packets for tests: the one place
// the module's tests get IPv4 and IPv6 TCP, UDP and ICMP echo packets with
// correct lengths and checksums, and a reference Internet checksum written
// as plainly as possible, independent of the code under test (package
// offload's checksums above all). It plays the part of wireguard-go's
// tun/tuntest. Only tests import it.
//
// Its addresses are from the documentation ranges the module's tests may
// use, 198.18.0.0/15 and 2001:db8::/32.
package packettest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// IP protocol numbers.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// TCP flags.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
	TCPUrg = 0x20
	TCPEce = 0x40
	TCPCwr = 0x80
)

// Addresses the builders use by default.
var (
	Src4 = []byte{198, 18, 1, 1}
	Dst4 = []byte{198, 18, 2, 1}
	Src6 = []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	Dst6 = []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0xab, 0xcd, 0, 0, 0, 0, 0x12, 0x34}
	// TimestampOpts is a TCP timestamp option with its padding: 12 bytes.
	TimestampOpts = []byte{1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78}
)

// Sum is the ones'-complement sum of the bytes of chunks taken together as
// 16-bit big-endian words (an odd last byte padded with zero), folded to
// 16 bits and not inverted: a header with a correct checksum sums to
// 0xffff.
func Sum(chunks ...[]byte) uint16 {
	var s uint32
	var odd bool // the previous chunk ended in the middle of a word
	for _, c := range chunks {
		for _, b := range c {
			if odd {
				s += uint32(b)
			} else {
				s += uint32(b) << 8
			}
			odd = !odd
			s = s&0xffff + s>>16
		}
	}
	return uint16(s)
}

// Checksum is the Internet checksum (RFC 1071) of chunks: the inverted Sum.
func Checksum(chunks ...[]byte) uint16 { return ^Sum(chunks...) }

// PseudoHeader returns the IPv4 or IPv6 pseudo-header (by the length of
// src) that TCP, UDP and ICMPv6 checksums cover.
func PseudoHeader(src, dst []byte, proto uint8, length int) []byte {
	p := append(append([]byte{}, src...), dst...)
	if len(src) == 4 {
		return append(p, 0, proto, byte(length>>8), byte(length))
	}
	return append(p, byte(length>>24), byte(length>>16), byte(length>>8), byte(length), 0, 0, 0, proto)
}

// Spec describes a TCP or UDP packet over IPv4 or IPv6.
type Spec struct {
	V6       bool
	Proto    uint8 // ProtoTCP or ProtoUDP
	Src, Dst []byte
	TOS      uint8 // IPv4 TOS or IPv6 traffic class
	TTL      uint8 // IPv4 TTL or IPv6 hop limit
	ID       uint16
	DF       bool
	Flow     uint32 // IPv6 flow label
	IPOpts   []byte // IPv4 options (a multiple of 4 bytes)
	SrcPort  uint16
	DstPort  uint16
	Seq, Ack uint32
	Flags    uint8
	Window   uint16
	Urgent   uint16
	TCPOpts  []byte // a multiple of 4 bytes
	Payload  []byte
}

// TCP4 is an IPv4 TCP segment with ACK, a timestamp option and payload.
func TCP4(payload []byte) Spec {
	return Spec{Proto: ProtoTCP, Src: Src4, Dst: Dst4, TTL: 64, ID: 0x1234, DF: true,
		SrcPort: 40000, DstPort: 443, Seq: 1000, Ack: 5000, Flags: TCPAck, Window: 512, TCPOpts: TimestampOpts, Payload: payload}
}

// TCP6 is TCP4 over IPv6, with a flow label and a traffic class.
func TCP6(payload []byte) Spec {
	return Spec{V6: true, Proto: ProtoTCP, Src: Src6, Dst: Dst6, TTL: 60, Flow: 0xbeef1, TOS: 0x20,
		SrcPort: 40000, DstPort: 443, Seq: 1000, Ack: 5000, Flags: TCPAck, Window: 512, TCPOpts: TimestampOpts, Payload: payload}
}

// UDP4 is an IPv4 UDP datagram.
func UDP4(payload []byte) Spec {
	return Spec{Proto: ProtoUDP, Src: Src4, Dst: Dst4, TTL: 64, ID: 7, SrcPort: 5353, DstPort: 4789, Payload: payload}
}

// UDP6 is an IPv6 UDP datagram.
func UDP6(payload []byte) Spec {
	return Spec{V6: true, Proto: ProtoUDP, Src: Src6, Dst: Dst6, TTL: 64, Flow: 3, SrcPort: 5353, DstPort: 4789, Payload: payload}
}

// IPHeaderLen is the length of the packet's IP header.
func (s Spec) IPHeaderLen() int {
	if s.V6 {
		return 40
	}
	return 20 + len(s.IPOpts)
}

// L4HeaderLen is the length of the packet's TCP or UDP header.
func (s Spec) L4HeaderLen() int {
	if s.Proto == ProtoUDP {
		return 8
	}
	return 20 + len(s.TCPOpts)
}

// Build returns the packet with correct lengths and checksums.
func (s Spec) Build() []byte {
	l4len := s.L4HeaderLen() + len(s.Payload)
	l4 := s.l4Header(l4len)
	sum := Checksum(PseudoHeader(s.Src, s.Dst, s.Proto, l4len), l4, s.Payload)
	off := 16
	if s.Proto == ProtoUDP {
		off = 6
		if sum == 0 {
			sum = 0xffff // zero means "no checksum" in UDP
		}
	}
	binary.BigEndian.PutUint16(l4[off:], sum)
	out := append(s.ipHeader(l4len), l4...)
	return append(out, s.Payload...)
}

// l4Header builds the TCP or UDP header with a zero checksum.
func (s Spec) l4Header(l4len int) []byte {
	h := make([]byte, s.L4HeaderLen())
	binary.BigEndian.PutUint16(h[0:], s.SrcPort)
	binary.BigEndian.PutUint16(h[2:], s.DstPort)
	if s.Proto == ProtoUDP {
		binary.BigEndian.PutUint16(h[4:], uint16(l4len))
		return h
	}
	binary.BigEndian.PutUint32(h[4:], s.Seq)
	binary.BigEndian.PutUint32(h[8:], s.Ack)
	h[12] = byte(len(h)/4) << 4
	h[13] = s.Flags
	binary.BigEndian.PutUint16(h[14:], s.Window)
	binary.BigEndian.PutUint16(h[18:], s.Urgent)
	copy(h[20:], s.TCPOpts)
	return h
}

func (s Spec) ipHeader(l4len int) []byte {
	h := make([]byte, s.IPHeaderLen())
	if s.V6 {
		binary.BigEndian.PutUint32(h[0:], 6<<28|uint32(s.TOS)<<20|s.Flow&0xfffff)
		binary.BigEndian.PutUint16(h[4:], uint16(l4len))
		h[6] = s.Proto
		h[7] = s.TTL
		copy(h[8:], s.Src)
		copy(h[24:], s.Dst)
		return h
	}
	h[0] = 0x40 | byte(len(h)/4)
	h[1] = s.TOS
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+l4len))
	binary.BigEndian.PutUint16(h[4:], s.ID)
	if s.DF {
		h[6] = 0x40
	}
	h[8] = s.TTL
	h[9] = s.Proto
	copy(h[12:], s.Src)
	copy(h[16:], s.Dst)
	copy(h[20:], s.IPOpts)
	binary.BigEndian.PutUint16(h[10:], Checksum(h))
	return h
}

// Pattern returns n bytes of a position-dependent pattern, different for
// each seed.
func Pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed*13 + i>>8)
	}
	return b
}

// EchoRequest4 writes an IPv4 ICMP echo request from src to dst with
// payload into b, which must be 28+len(payload) bytes.
func EchoRequest4(b []byte, src, dst netip.Addr, id, seq uint16, payload []byte) {
	clear(b)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8], b[9] = 64, ProtoICMP
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[10:], Checksum(b[:20]))
	b[20] = 8 // echo request
	binary.BigEndian.PutUint16(b[24:], id)
	binary.BigEndian.PutUint16(b[26:], seq)
	copy(b[28:], payload)
	binary.BigEndian.PutUint16(b[22:], Checksum(b[20:]))
}

// EchoRequest6 writes an IPv6 ICMPv6 echo request from src to dst with
// payload into b, which must be 48+len(payload) bytes.
func EchoRequest6(b []byte, src, dst netip.Addr, id, seq uint16, payload []byte) {
	clear(b)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40))
	b[6], b[7] = ProtoICMPv6, 64
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	b[40] = 128 // echo request
	binary.BigEndian.PutUint16(b[44:], id)
	binary.BigEndian.PutUint16(b[46:], seq)
	copy(b[48:], payload)
	binary.BigEndian.PutUint16(b[42:], Checksum(PseudoHeader(s[:], d[:], ProtoICMPv6, len(b)-40), b[40:]))
}

// CheckWellFormed verifies an IPv4 or IPv6 TCP or UDP packet: its lengths
// match its size, and the IPv4 header checksum and the L4 checksum verify
// (a UDP checksum must not be zero). It returns the length of the IP and
// L4 headers together, and the protocol.
func CheckWellFormed(pkt []byte) (hdrLen int, proto uint8, err error) {
	ipLen, proto, src, dst, err := checkIP(pkt)
	if err != nil {
		return 0, 0, err
	}
	l4 := pkt[ipLen:]
	switch proto {
	case ProtoTCP:
		if len(l4) < 20 || int(l4[12]>>4)*4 < 20 || int(l4[12]>>4)*4 > len(l4) {
			return 0, 0, errors.New("TCP header shorter than 20 bytes or beyond the packet")
		}
		hdrLen = ipLen + int(l4[12]>>4)*4
	case ProtoUDP:
		if len(l4) < 8 || int(binary.BigEndian.Uint16(l4[4:])) != len(l4) {
			return 0, 0, errors.New("UDP length does not match the packet")
		}
		if binary.BigEndian.Uint16(l4[6:]) == 0 {
			return 0, 0, errors.New("UDP checksum zero")
		}
		hdrLen = ipLen + 8
	default:
		return 0, 0, fmt.Errorf("protocol %d is neither TCP nor UDP", proto)
	}
	if Sum(PseudoHeader(src, dst, proto, len(l4)), l4) != 0xffff {
		return 0, 0, errors.New("L4 checksum does not verify")
	}
	return hdrLen, proto, nil
}

// checkIP checks the IP header's version, lengths and (IPv4) checksum.
func checkIP(pkt []byte) (ipLen int, proto uint8, src, dst []byte, err error) {
	if len(pkt) < 1 {
		return 0, 0, nil, nil, errors.New("empty packet")
	}
	switch pkt[0] >> 4 {
	case 4:
		ipLen = int(pkt[0]&0xf) * 4
		if ipLen < 20 || len(pkt) < ipLen {
			return 0, 0, nil, nil, errors.New("bad IPv4 header length")
		}
		if n := int(binary.BigEndian.Uint16(pkt[2:])); n != len(pkt) {
			return 0, 0, nil, nil, fmt.Errorf("IPv4 total length %d, packet %d", n, len(pkt))
		}
		if Sum(pkt[:ipLen]) != 0xffff {
			return 0, 0, nil, nil, errors.New("IPv4 header checksum does not verify")
		}
		return ipLen, pkt[9], pkt[12:16], pkt[16:20], nil
	case 6:
		if len(pkt) < 40 || int(binary.BigEndian.Uint16(pkt[4:]))+40 != len(pkt) {
			return 0, 0, nil, nil, errors.New("IPv6 payload length does not match the packet")
		}
		return 40, pkt[6], pkt[8:24], pkt[24:40], nil
	}
	return 0, 0, nil, nil, fmt.Errorf("IP version %d", pkt[0]>>4)
}
