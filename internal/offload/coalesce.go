package offload

import (
	"bytes"
	"encoding/binary"
)

// MaxRun is the largest number of packets Coalescer merges into one write.
const MaxRun = 64

// maxMergedIPLen is the largest IPv4 total length, and the largest IPv6
// payload length, of a merged write.
const maxMergedIPLen = 65535

// maxCoalesceHdr is the longest IP+L4 header Coalescer merges: an IPv6
// header (IPv4 headers with options are not merged) and a TCP header with 40
// bytes of options.
const maxCoalesceHdr = 40 + 60

// Coalescer merges runs of consecutive packets of one flow into GSO
// super-packets for a TUN device to segment. The zero value merges nothing:
// set TCP and/or UDP to the offloads the device accepts before use. A
// Coalescer never allocates; it must not be copied after first use if the
// returned vectors are still in use.
type Coalescer struct {
	TCP bool // merge TCP segments (the device accepts TSO4/TSO6 writes)
	UDP bool // merge UDP datagrams (the device accepts USO4/USO6 writes)

	// hdr holds the virtio_net_hdr followed by a private copy of the first
	// packet's IP and L4 headers, rewritten for a merged write.
	hdr [HdrLen + maxCoalesceHdr]byte
	vec [MaxRun + 1][]byte
}

// Next looks at pkts, in order, and decides the next write. It returns n,
// the number of leading packets of pkts the write carries, and vec, the
// buffers to hand to writev in order. vec[0] is in the Coalescer's memory:
// the virtio_net_hdr, followed for a merged write (n >= 2) by the rewritten
// IP and TCP/UDP headers of the first packet; vec[1:] are sub-slices of
// pkts: the whole packet when n == 1 (vec[0] is then a zero virtio_net_hdr),
// or every packet's payload after its headers when n >= 2. vec is valid
// until the next call. n is 0 only if pkts is empty.
//
// A run is merged only if every packet in it is a well-formed IPv4 (no
// options, not a fragment, valid header checksum) or IPv6 (no extension
// headers) TCP segment or UDP datagram with a valid checksum, all of one
// flow with identical header fields except lengths, IPv4 IDs and checksums,
// TCP sequence numbers following on, equal payload sizes except for a
// shorter last packet, and only ACK (plus PSH on the last packet) set among
// the TCP flags. Runs hold at most MaxRun packets and 65535 bytes of IPv4
// total length or IPv6 payload length.
//
// Next never writes to pkts, and it reads each header field it relies on
// once, so packets changing under it cannot make it misbehave.
func (c *Coalescer) Next(pkts [][]byte) (n int, vec [][]byte) {
	if len(pkts) == 0 {
		return 0, nil
	}
	if k := c.run(pkts); k >= 2 {
		return k, c.vec[:k+1]
	}
	clear(c.hdr[:HdrLen])
	c.vec[0] = c.hdr[:HdrLen]
	c.vec[1] = pkts[0]
	return 1, c.vec[:2]
}

// run finds the run starting at pkts[0]. If it holds two packets or more it
// fills c.hdr and c.vec[:k+1] for the merged write and returns k; otherwise
// it returns 1.
func (c *Coalescer) run(pkts [][]byte) int {
	if !c.TCP && !c.UDP {
		return 1
	}
	p0 := pkts[0]
	h := c.hdr[HdrLen:]
	cp := copy(h, p0) // from here on, the first packet's headers come from h
	b := h[:cp]
	if cp < 1 {
		return 1
	}

	var ipLen int
	var proto uint8
	var src, dst []byte
	switch b[0] >> 4 {
	case 4:
		if cp < 20 || b[0] != 0x45 {
			return 1
		}
		if int(binary.BigEndian.Uint16(b[2:])) != len(p0) {
			return 1
		}
		if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 {
			return 1
		}
		if Fold(Sum(b[:20], 0)) != 0xffff {
			return 1
		}
		ipLen, proto = 20, b[9]
		src, dst = b[12:16], b[16:20]
	case 6:
		if cp < 40 {
			return 1
		}
		if 40+int(binary.BigEndian.Uint16(b[4:])) != len(p0) {
			return 1
		}
		ipLen, proto = 40, b[6]
		src, dst = b[8:24], b[24:40]
	default:
		return 1
	}
	var l4Hdr int
	switch {
	case proto == protoTCP && c.TCP:
		if ipLen+20 > len(p0) {
			return 1
		}
		l4Hdr = int(b[ipLen+12]>>4) * 4
		if l4Hdr < 20 || ipLen+l4Hdr > len(p0) {
			return 1
		}
		// ACK alone: a first packet with PSH would end the run at once.
		if b[ipLen+13] != tcpACK {
			return 1
		}
		if binary.BigEndian.Uint16(b[ipLen+16:]) == 0xffff {
			// 0xffff is a valid but unusual form of a checksum whose
			// usual form is 0; a split would write 0, so the packet is
			// written alone, unchanged.
			return 1
		}
	case proto == protoUDP && c.UDP:
		l4Hdr = 8
		if ipLen+8 > len(p0) {
			return 1
		}
		if int(binary.BigEndian.Uint16(b[ipLen+4:])) != len(p0)-ipLen {
			return 1
		}
		if binary.BigEndian.Uint16(b[ipLen+6:]) == 0 {
			return 1
		}
	default:
		return 1
	}
	hdrLen := ipLen + l4Hdr
	gso := len(p0) - hdrLen
	if gso <= 0 {
		return 1
	}
	pseudo := PseudoHeaderSum(src, dst, proto, 0)
	// Verify the first packet's L4 checksum over the private header copy
	// and the packet's payload.
	if Fold(Sum(p0[hdrLen:], Sum(b[ipLen:hdrLen], add(pseudo, uint64(len(p0)-ipLen))))) != 0xffff {
		return 1
	}

	// Length counted against maxMergedIPLen: the IPv4 total length or the
	// IPv6 payload length.
	merged := len(p0)
	if ipLen == 40 {
		merged -= 40
	}
	var nextSeq uint32
	if proto == protoTCP {
		nextSeq = binary.BigEndian.Uint32(b[ipLen+4:]) + uint32(gso)
	}
	var psh bool
	k := 1
	for k < len(pkts) && k < MaxRun {
		p := pkts[k]
		if len(p) <= hdrLen {
			break
		}
		pay := len(p) - hdrLen
		if pay > gso || merged+pay > maxMergedIPLen {
			break
		}
		// IP header: everything but lengths, ID and checksum as the first's.
		if ipLen == 20 {
			if !bytes.Equal(p[0:2], b[0:2]) || !bytes.Equal(p[6:10], b[6:10]) || !bytes.Equal(p[12:20], b[12:20]) {
				break
			}
			if int(binary.BigEndian.Uint16(p[2:])) != len(p) {
				break
			}
			if Fold(Sum(p[:20], 0)) != 0xffff {
				break
			}
		} else {
			if !bytes.Equal(p[0:4], b[0:4]) || !bytes.Equal(p[6:40], b[6:40]) {
				break
			}
			if 40+int(binary.BigEndian.Uint16(p[4:])) != len(p) {
				break
			}
		}
		t := p[ipLen:]
		u := b[ipLen:hdrLen]
		if proto == protoTCP {
			// Ports; ack, data offset; window; urgent pointer and options.
			if !bytes.Equal(t[0:4], u[0:4]) || !bytes.Equal(t[8:13], u[8:13]) ||
				!bytes.Equal(t[14:16], u[14:16]) || !bytes.Equal(t[18:l4Hdr], u[18:l4Hdr]) {
				break
			}
			flags := t[13]
			if flags&^tcpPSH != tcpACK {
				break
			}
			if binary.BigEndian.Uint32(t[4:]) != nextSeq {
				break
			}
			if binary.BigEndian.Uint16(t[16:]) == 0xffff {
				break
			}
			if Fold(Sum(t, add(pseudo, uint64(len(t))))) != 0xffff {
				break
			}
			nextSeq += uint32(pay)
			psh = flags&tcpPSH != 0
		} else {
			if !bytes.Equal(t[0:4], u[0:4]) {
				break
			}
			if int(binary.BigEndian.Uint16(t[4:])) != len(t) {
				break
			}
			if binary.BigEndian.Uint16(t[6:]) == 0 {
				break
			}
			if Fold(Sum(t, add(pseudo, uint64(len(t))))) != 0xffff {
				break
			}
		}
		c.vec[k+1] = p[hdrLen:]
		merged += pay
		k++
		if pay < gso || psh {
			break
		}
	}
	if k < 2 {
		return 1
	}

	// Rewrite the first packet's headers for the merged write.
	l4len := merged
	if ipLen == 20 {
		l4len -= 20
		binary.BigEndian.PutUint16(b[2:], uint16(merged))
		b[10], b[11] = 0, 0
		binary.BigEndian.PutUint16(b[10:], ^Fold(Sum(b[:20], 0)))
	} else {
		binary.BigEndian.PutUint16(b[4:], uint16(merged))
	}
	vh := Hdr{
		Flags:     FlagNeedsCsum,
		HdrLen:    uint16(hdrLen),
		GSOSize:   uint16(gso),
		CsumStart: uint16(ipLen),
	}
	partial := Fold(add(pseudo, uint64(l4len)))
	if proto == protoTCP {
		if psh {
			b[ipLen+13] |= tcpPSH
		}
		binary.BigEndian.PutUint16(b[ipLen+16:], partial)
		vh.CsumOffset = 16
		vh.GSOType = GSOTCPv4
		if ipLen == 40 {
			vh.GSOType = GSOTCPv6
		}
	} else {
		binary.BigEndian.PutUint16(b[ipLen+4:], uint16(l4len))
		binary.BigEndian.PutUint16(b[ipLen+6:], partial)
		vh.CsumOffset = 6
		vh.GSOType = GSOUDPL4
	}
	vh.Encode(c.hdr[:HdrLen])
	c.vec[0] = c.hdr[:HdrLen+hdrLen]
	c.vec[1] = p0[hdrLen:]
	return k
}
