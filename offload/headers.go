package offload

import "encoding/binary"

// headers is what parseIP and parseL4 read of a packet's IP
// and TCP/UDP headers. The Splitter and the Coalescer parse with them, and
// then apply their own rules as named predicates.
type headers struct {
	v6       bool
	ipLen    int    // IP header length
	l4Len    int    // TCP or UDP header length
	proto    uint8  // IPv4 protocol or IPv6 next header
	src, dst []byte // the addresses, inside the parsed bytes
}

// hdrLen is the length of the IP and L4 headers together.
func (h *headers) hdrLen() int { return h.ipLen + h.l4Len }

// parseIP reads the IP header at the start of b, a private copy of
// the first bytes of a packet of pktLen bytes. It checks what every user
// needs: a known version, a header inside the packet, a total (IPv4) or
// payload (IPv6) length that is exactly the packet's, and no IPv4
// fragment. It returns the reason when a check fails.
// It fills h in place: the parsers run once or more per packet, and
// returning the struct would copy it at every level.
func (h *headers) parseIP(b []byte, pktLen int) error {
	if len(b) < 1 {
		return invalidError("empty packet")
	}
	switch b[0] >> 4 {
	case 4:
		return h.parseIPv4(b, pktLen)
	case 6:
		return h.parseIPv6(b, pktLen)
	}
	return invalidError("not an IPv4 or IPv6 packet")
}

func (h *headers) parseIPv4(b []byte, pktLen int) error {
	if len(b) < 20 {
		return invalidError("IPv4 header truncated")
	}
	h.ipLen = int(b[0]&0x0f) * 4
	switch total := int(binary.BigEndian.Uint16(b[2:])); {
	case h.ipLen < 20:
		return invalidError("IPv4 header length below 20")
	case h.ipLen > pktLen || h.ipLen > len(b):
		return invalidError("IPv4 header truncated")
	case total > pktLen:
		return invalidError("IPv4 total length exceeds the packet")
	case total < pktLen:
		return invalidError("IPv4 total length shorter than the packet")
	case isIPv4Fragment(b):
		return invalidError("IPv4 fragment")
	}
	h.v6, h.proto, h.src, h.dst = false, b[9], b[12:16], b[16:20]
	return nil
}

func (h *headers) parseIPv6(b []byte, pktLen int) error {
	if len(b) < 40 {
		return invalidError("IPv6 header truncated")
	}
	switch plen := int(binary.BigEndian.Uint16(b[4:])); {
	case 40+plen > pktLen:
		return invalidError("IPv6 payload length exceeds the packet")
	case 40+plen < pktLen:
		return invalidError("IPv6 payload length shorter than the packet")
	}
	h.v6, h.ipLen, h.proto, h.src, h.dst = true, 40, b[6], b[8:24], b[24:40]
	return nil
}

// isIPv4Fragment reports whether an IPv4 header has more fragments or a
// fragment offset.
func isIPv4Fragment(b []byte) bool { return binary.BigEndian.Uint16(b[6:])&0x3fff != 0 }

// parseL4 reads the length of the TCP or UDP header after h's IP
// header in b (a copy of the packet's first bytes, pktLen long in all),
// and checks that it lies inside the packet and inside b.
func (h *headers) parseL4(b []byte, pktLen int) error {
	switch h.proto {
	case protoTCP:
		if h.ipLen+20 > pktLen || h.ipLen+20 > len(b) {
			return invalidError("TCP header truncated")
		}
		h.l4Len = int(b[h.ipLen+12]>>4) * 4
		if h.l4Len < 20 {
			return invalidError("TCP data offset below 5")
		}
		if h.hdrLen() > pktLen || h.hdrLen() > len(b) {
			return invalidError("TCP header truncated")
		}
	case protoUDP:
		h.l4Len = 8
		if h.hdrLen() > pktLen || h.hdrLen() > len(b) {
			return invalidError("UDP header truncated")
		}
	default:
		return invalidError("neither TCP nor UDP")
	}
	return nil
}

// ipv4HeaderValid reports whether the checksum of ip, an IPv4 header
// without options (20 bytes), verifies. It adds the five 32-bit words
// itself: this runs for every packet the Coalescer looks at.
func ipv4HeaderValid(ip []byte) bool {
	_ = ip[19]
	s := uint64(binary.BigEndian.Uint32(ip[0:])) + uint64(binary.BigEndian.Uint32(ip[4:])) +
		uint64(binary.BigEndian.Uint32(ip[8:])) + uint64(binary.BigEndian.Uint32(ip[12:])) +
		uint64(binary.BigEndian.Uint32(ip[16:]))
	return Fold(s) == 0xffff
}

// l4ChecksumValid reports whether the TCP or UDP checksum of l4 (header
// and payload) verifies over pseudo, the pseudo-header sum without length.
func l4ChecksumValid(pseudo uint64, l4 []byte) bool {
	// pseudo is a sum of a few 16-bit words: adding the length cannot wrap.
	return Fold(Sum(l4, pseudo+uint64(len(l4)))) == 0xffff
}
