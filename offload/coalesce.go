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
	// From here on the first packet's headers come from this private copy.
	b := c.hdr[HdrLen:][:copy(c.hdr[HdrLen:], p0)]
	var hd headers
	if !c.canStartRun(&hd, b, p0) {
		return 1
	}
	r := runState{hd: &hd, first: b, gso: len(p0) - hd.hdrLen(), merged: len(p0)}
	r.pseudo = PseudoHeaderSum(hd.src, hd.dst, hd.proto, 0)
	if !l4PartsChecksumValid(r.pseudo, b[hd.ipLen:hd.hdrLen()], p0[hd.hdrLen():]) {
		return 1
	}
	if hd.v6 {
		r.merged -= 40 // counted against maxMergedIPLen: the IPv6 payload length
	}
	if hd.proto == protoTCP {
		r.nextSeq = binary.BigEndian.Uint32(b[hd.ipLen+4:]) + uint32(r.gso)
	}
	k := 1
	for k < len(pkts) && k < MaxRun && r.canAppend(pkts[k]) {
		c.vec[k+1] = pkts[k][hd.hdrLen():]
		k++
		if r.ended {
			break
		}
	}
	if k < 2 {
		return 1
	}
	c.writeMergedHeader(&r)
	c.vec[1] = p0[hd.hdrLen():]
	return k
}

// runState is a run being built: the first packet's headers and what the
// next packet must continue.
type runState struct {
	hd      *headers
	first   []byte // the first packet's headers (Coalescer's copy)
	pseudo  uint64 // pseudo-header sum without length
	gso     int    // payload bytes of the first packet, the most any other may have
	merged  int    // IPv4 total length or IPv6 payload length of the run so far
	nextSeq uint32 // TCP: the sequence number the next packet must have
	psh     bool   // TCP: the last packet has PSH
	ended   bool   // the last packet must be the last of the run
}

// canStartRun parses the first packet's headers (b, a copy of p0's first
// bytes) into hd and reports whether p0 can start a run: a well-formed IPv4
// packet without options or IPv6 packet without extension headers, of a
// protocol c merges, with a payload, and whose L4 header allows merging.
func (c *Coalescer) canStartRun(hd *headers, b, p0 []byte) bool {
	if hd.parseIP(b, len(p0)) != nil || !hd.v6 && hd.ipLen != 20 {
		return false
	}
	if !(hd.proto == protoTCP && c.TCP || hd.proto == protoUDP && c.UDP) {
		return false
	}
	if hd.parseL4(b, len(p0)) != nil || len(p0) <= hd.hdrLen() {
		return false
	}
	l4 := b[hd.ipLen:hd.hdrLen()]
	if hd.proto == protoTCP && !tcpCanStartRun(l4) ||
		hd.proto == protoUDP && !(udpLengthMatches(l4, len(p0)-hd.ipLen) && !udpChecksumAbsent(l4)) {
		return false
	}
	// The checksum last: the cheap checks turn most packets away.
	return hd.v6 || ipv4HeaderValid(b[:20])
}

// tcpCanStartRun reports whether a TCP header can start a run: ACK alone
// (a first packet with PSH would end the run at once), and a checksum
// that a split would write back the same.
func tcpCanStartRun(tcp []byte) bool {
	return tcp[13] == tcpACK && !tcpChecksumUnusual(tcp)
}

// tcpChecksumUnusual reports a TCP checksum of 0xffff: a valid but unusual
// form of the checksum whose usual form is 0. A split would write 0, so
// such a packet is written alone, unchanged.
func tcpChecksumUnusual(tcp []byte) bool { return binary.BigEndian.Uint16(tcp[16:]) == 0xffff }

// udpLengthMatches reports whether a UDP header's length is l4len.
func udpLengthMatches(udp []byte, l4len int) bool {
	return int(binary.BigEndian.Uint16(udp[4:])) == l4len
}

// udpChecksumAbsent reports a UDP datagram sent without a checksum, which
// cannot be verified and so is not merged.
func udpChecksumAbsent(udp []byte) bool { return binary.BigEndian.Uint16(udp[6:]) == 0 }

// l4PartsChecksumValid is l4ChecksumValid for an L4 header and its payload
// held apart.
func l4PartsChecksumValid(pseudo uint64, hdr, payload []byte) bool {
	return Fold(Sum(payload, Sum(hdr, add(pseudo, uint64(len(hdr)+len(payload)))))) == 0xffff
}

// canAppend reports whether p continues the run, and if so accounts for
// it.
func (r *runState) canAppend(p []byte) bool {
	hd := r.hd
	pay := len(p) - hd.hdrLen()
	if pay <= 0 || pay > r.gso || r.merged+pay > maxMergedIPLen {
		return false
	}
	if hd.v6 && !ipv6HeadersCanCoalesce(p, r.first) || !hd.v6 && !ipv4HeadersCanCoalesce(p, r.first) {
		return false
	}
	t, u := p[hd.ipLen:], r.first[hd.ipLen:hd.hdrLen()]
	if hd.proto == protoTCP {
		if !tcpPacketsCanCoalesce(t, u, r.nextSeq) {
			return false
		}
	} else if !udpPacketsCanCoalesce(t, u) {
		return false
	}
	if !l4ChecksumValid(r.pseudo, t) {
		return false
	}
	r.merged += pay
	if hd.proto == protoTCP {
		r.nextSeq += uint32(pay)
		r.psh = t[13]&tcpPSH != 0
	}
	// A shorter packet, or PSH, ends the run.
	r.ended = pay < r.gso || r.psh
	return true
}

// ipv4HeadersCanCoalesce reports whether p's IPv4 header is the first's
// (b) in everything but total length, ID and checksum, with a total length
// that is p's and a checksum that verifies.
func ipv4HeadersCanCoalesce(p, b []byte) bool {
	be := binary.BigEndian
	return be.Uint16(p[0:]) == be.Uint16(b[0:]) && be.Uint32(p[6:]) == be.Uint32(b[6:]) && be.Uint64(p[12:]) == be.Uint64(b[12:]) &&
		int(be.Uint16(p[2:])) == len(p) && ipv4HeaderValid(p[:20])
}

// ipv6HeadersCanCoalesce reports whether p's IPv6 header is the first's
// (b) in everything but payload length, with a payload length that is p's.
func ipv6HeadersCanCoalesce(p, b []byte) bool {
	return bytes.Equal(p[0:4], b[0:4]) && bytes.Equal(p[6:40], b[6:40]) &&
		40+int(binary.BigEndian.Uint16(p[4:])) == len(p)
}

// tcpPacketsCanCoalesce reports whether TCP segment t (header and payload)
// continues the run whose first header is u: the same ports, ACK number,
// data offset, window, urgent pointer and options, ACK alone or with PSH,
// sequence number nextSeq, and a usual checksum.
func tcpPacketsCanCoalesce(t, u []byte, nextSeq uint32) bool {
	be := binary.BigEndian
	return be.Uint32(t[0:]) == be.Uint32(u[0:]) && be.Uint32(t[8:]) == be.Uint32(u[8:]) && t[12] == u[12] &&
		be.Uint16(t[14:]) == be.Uint16(u[14:]) && bytes.Equal(t[18:len(u)], u[18:]) &&
		t[13]&^tcpPSH == tcpACK && be.Uint32(t[4:]) == nextSeq && !tcpChecksumUnusual(t)
}

// udpPacketsCanCoalesce reports whether UDP datagram t (header and
// payload) continues the run whose first header is u: the same ports, a
// length that is t's, and a checksum.
func udpPacketsCanCoalesce(t, u []byte) bool {
	return binary.BigEndian.Uint32(t[0:]) == binary.BigEndian.Uint32(u[0:]) && udpLengthMatches(t, len(t)) && !udpChecksumAbsent(t)
}

// writeMergedHeader rewrites the first packet's headers in c.hdr for the
// merged write of run r, with the virtio_net_hdr before them, and sets
// c.vec[0] to both.
func (c *Coalescer) writeMergedHeader(r *runState) {
	hd, b := r.hd, r.first
	ip := hd.ipLen
	l4len := r.merged
	if hd.v6 {
		binary.BigEndian.PutUint16(b[4:], uint16(r.merged))
	} else {
		l4len -= 20
		binary.BigEndian.PutUint16(b[2:], uint16(r.merged))
		b[10], b[11] = 0, 0
		binary.BigEndian.PutUint16(b[10:], ^Fold(Sum(b[:20], 0)))
	}
	vh := Hdr{Flags: FlagNeedsCsum, HdrLen: uint16(hd.hdrLen()), GSOSize: uint16(r.gso), CsumStart: uint16(ip)}
	partial := Fold(add(r.pseudo, uint64(l4len)))
	if hd.proto == protoTCP {
		if r.psh {
			b[ip+13] |= tcpPSH
		}
		binary.BigEndian.PutUint16(b[ip+16:], partial)
		vh.CsumOffset, vh.GSOType = 16, GSOTCPv4
		if hd.v6 {
			vh.GSOType = GSOTCPv6
		}
	} else {
		binary.BigEndian.PutUint16(b[ip+4:], uint16(l4len))
		binary.BigEndian.PutUint16(b[ip+6:], partial)
		vh.CsumOffset, vh.GSOType = 6, GSOUDPL4
	}
	vh.Encode(c.hdr[:HdrLen])
	c.vec[0] = c.hdr[:HdrLen+hd.hdrLen()]
}
