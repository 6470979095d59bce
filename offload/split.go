package offload

import "encoding/binary"

// MaxSegment is the longest packet a Splitter produces: the largest record
// a ring carries. Reset refuses a packet that would need a longer one.
const MaxSegment = 0xFFFF

// maxSplitHdr is the longest IP+L4 header a super-packet can have: an IPv4
// header with 40 bytes of options and a TCP header with 40 bytes of options.
const maxSplitHdr = 60 + 60

// Splitter kinds.
const (
	kindEmpty = iota // nothing to split
	kindNone         // GSONone: the packet itself, checksum finished
	kindTCP
	kindUDP
)

// Splitter cuts one super-packet into the packets it stands for. The zero
// value is ready to use (and has no segments); a Splitter can be reused for
// any number of packets and never allocates.
//
// Reset copies the headers of the super-packet into the Splitter and reads
// every field it needs once, so later changes to the packet's header bytes
// cannot make Put misbehave; the payload is copied from the packet by Put.
type Splitter struct {
	hdr     [maxSplitHdr]byte // IP+L4 header of the super-packet
	pkt     []byte            // GSONone: the packet
	payload []byte            // GSO: the bytes after the headers
	vh      Hdr               // GSONone: the header, for FinishChecksum
	pseudo  uint64            // pseudo-header sum without the length
	kind    uint8
	v6      bool
	flags   uint8  // TCP flags of the super-packet
	id      uint16 // IPv4 identification of the first segment
	seq     uint32 // TCP sequence number of the first segment
	ipLen   int    // IP header length
	hdrLen  int    // IP + L4 header length
	gso     int    // payload bytes per segment
	nseg    int    // number of segments
	idx     int    // next segment
}

// Reset prepares to split pkt, the bytes that followed the virtio_net_hdr h.
//
// For GSONone it yields pkt as one segment, with its partial checksum
// finished if h has FlagNeedsCsum (the checksum offsets are checked here).
// For GSOTCPv4 and GSOTCPv6 (optionally or-ed with GSOECN) and GSOUDPL4 it
// validates the headers and yields packets of at most GSOSize payload bytes
// each, with their own lengths, IPv4 IDs, TCP sequence numbers and flags,
// and complete checksums. h.HdrLen is not trusted and not used.
//
// On error, which wraps ErrInvalid, the Splitter has no segments.
func (s *Splitter) Reset(h Hdr, pkt []byte) error {
	s.kind = kindEmpty
	s.nseg, s.idx = 0, 0
	s.pkt, s.payload = nil, nil
	if len(pkt) == 0 {
		return invalidError("empty packet")
	}
	if h.GSOType == GSONone {
		return s.resetPlain(h, pkt)
	}
	proto, version, err := gsoProtocol(h)
	if err != nil {
		return err
	}
	// Work on a private copy of the headers: every field below is read from
	// it, so the values checked are the values used.
	b := s.hdr[:copy(s.hdr[:], pkt)]
	if version != 0 && b[0]>>4 != version {
		return invalidError("IP version does not match the GSO type")
	}
	var hd headers
	err = hd.parseIP(b, len(pkt))
	if err == nil {
		err = gsoHeadersFit(h, &hd, proto, b, len(pkt))
	}
	if err != nil {
		return err
	}
	s.setSegments(h, &hd, b, pkt)
	return nil
}

// resetPlain prepares a packet without GSO: one segment.
func (s *Splitter) resetPlain(h Hdr, pkt []byte) error {
	if h.Flags&FlagNeedsCsum != 0 && int(h.CsumStart)+int(h.CsumOffset)+2 > len(pkt) {
		return invalidError("checksum start/offset outside the packet")
	}
	if len(pkt) > MaxSegment {
		return invalidError("packet longer than MaxSegment")
	}
	s.vh = h
	s.pkt = pkt
	s.kind = kindNone
	s.nseg = 1
	return nil
}

// gsoProtocol returns the L4 protocol and IP version h's GSO type stands
// for, and checks the rest of h a GSO packet needs.
func gsoProtocol(h Hdr) (proto uint8, version byte, err error) {
	switch h.GSOType &^ GSOECN {
	case GSONone:
		return 0, 0, invalidError("ECN flag without a GSO type")
	case GSOTCPv4:
		proto, version = protoTCP, 4
	case GSOTCPv6:
		proto, version = protoTCP, 6
	case GSOUDPL4:
		if h.GSOType != GSOUDPL4 {
			return 0, 0, invalidError("ECN flag on a UDP GSO type")
		}
		// USO carries IPv4 or IPv6: the header says which.
		proto, version = protoUDP, 0
	case GSOUDP:
		return 0, 0, invalidError("UFO (GSO type 3) was not negotiated")
	default:
		return 0, 0, invalidError("unknown GSO type")
	}
	if h.GSOSize == 0 {
		return 0, 0, invalidError("GSO size is zero")
	}
	if h.Flags&FlagNeedsCsum == 0 {
		return 0, 0, invalidError("GSO packet without FlagNeedsCsum")
	}
	return proto, version, nil
}

// gsoHeadersFit checks the super-packet's headers against h: the protocol
// of the GSO type, the checksum offsets of that protocol at the end of the
// IP header, a payload, and segments a record can carry. It fills hd's L4
// header length.
func gsoHeadersFit(h Hdr, hd *headers, proto uint8, b []byte, pktLen int) error {
	if hd.proto != proto {
		if hd.v6 {
			return invalidError("IPv6 next header is not the GSO type's protocol (extension headers are not supported)")
		}
		return invalidError("IPv4 protocol does not match the GSO type")
	}
	if int(h.CsumStart) != hd.ipLen {
		return invalidError("checksum start is not the end of the IP header")
	}
	if proto == protoTCP && h.CsumOffset != 16 {
		return invalidError("checksum offset is not TCP's (16)")
	}
	if proto == protoUDP && h.CsumOffset != 6 {
		return invalidError("checksum offset is not UDP's (6)")
	}
	if err := hd.parseL4(b, pktLen); err != nil {
		return err
	}
	payload := pktLen - hd.hdrLen()
	if payload == 0 {
		return invalidError("GSO packet without payload")
	}
	if hd.hdrLen()+min(int(h.GSOSize), payload) > MaxSegment {
		return invalidError("segments longer than MaxSegment")
	}
	return nil
}

// setSegments records what Put needs of a super-packet whose headers
// passed the checks.
func (s *Splitter) setSegments(h Hdr, hd *headers, b, pkt []byte) {
	s.kind = kindUDP
	if hd.proto == protoTCP {
		s.kind = kindTCP
		s.seq = binary.BigEndian.Uint32(b[hd.ipLen+4:])
		s.flags = b[hd.ipLen+13]
	}
	s.v6 = hd.v6
	if !hd.v6 {
		s.id = binary.BigEndian.Uint16(b[4:])
	}
	s.pseudo = PseudoHeaderSum(hd.src, hd.dst, hd.proto, 0)
	s.ipLen = hd.ipLen
	s.hdrLen = hd.hdrLen()
	s.gso = int(h.GSOSize)
	s.payload = pkt[s.hdrLen:]
	s.nseg = (len(s.payload) + s.gso - 1) / s.gso
}

// Segments returns how many segments the current packet splits into (0
// after a failed Reset or for the zero Splitter).
func (s *Splitter) Segments() int { return s.nseg }

// Next returns the length of the next segment, or 0 when there are no more.
func (s *Splitter) Next() int {
	if s.idx >= s.nseg {
		return 0
	}
	if s.kind == kindNone {
		return len(s.pkt)
	}
	return s.hdrLen + s.chunk()
}

// Sizes fills dst with the lengths of the next len(dst) segments, in order
// (what Next would return before each Put), and returns how many there are,
// at most len(dst).
func (s *Splitter) Sizes(dst []int) int {
	n := min(len(dst), s.nseg-s.idx)
	for k := range n {
		dst[k] = s.lengthOf(s.idx + k)
	}
	return n
}

// chunk returns the payload length of segment s.idx (which must exist).
func (s *Splitter) chunk() int {
	return min(s.gso, len(s.payload)-s.idx*s.gso)
}

// Skip drops the next segment, if any, and advances to the one after it.
func (s *Splitter) Skip() {
	if s.idx < s.nseg {
		s.idx++
	}
}

// Put writes the next segment into dst and advances. len(dst) must equal
// Next(); otherwise, or if there are no more segments, Put returns an error
// wrapping ErrInvalid and does not advance.
func (s *Splitter) Put(dst []byte) error {
	n := s.Next()
	if n == 0 {
		return invalidError("no segment left to put")
	}
	if len(dst) != n {
		return invalidError("destination length differs from the segment length")
	}
	if s.kind == kindNone {
		copy(dst, s.pkt)
		// Offsets were checked by Reset against this very length.
		if err := FinishChecksum(s.vh, dst); err != nil {
			return err
		}
		s.idx++
		return nil
	}

	s.putSegment(dst)
	s.idx++
	return nil
}

// putSegment writes segment s.idx of a super-packet into dst, which has its
// length: the headers with this segment's lengths, IPv4 ID, TCP sequence
// number and flags, and checksums, then its part of the payload.
func (s *Splitter) putSegment(dst []byte) {
	i, ip := s.idx, s.ipLen
	off := i * s.gso
	copy(dst[:s.hdrLen], s.hdr[:s.hdrLen])
	copy(dst[s.hdrLen:], s.payload[off:off+len(dst)-s.hdrLen])
	l4len := len(dst) - ip
	if s.v6 {
		binary.BigEndian.PutUint16(dst[4:], uint16(l4len))
	} else {
		binary.BigEndian.PutUint16(dst[2:], uint16(len(dst)))
		binary.BigEndian.PutUint16(dst[4:], s.id+uint16(i))
		dst[10], dst[11] = 0, 0
		binary.BigEndian.PutUint16(dst[10:], ^Fold(Sum(dst[:ip], 0)))
	}
	acc := add(s.pseudo, uint64(l4len))
	if s.kind == kindUDP {
		binary.BigEndian.PutUint16(dst[ip+4:], uint16(l4len))
		dst[ip+6], dst[ip+7] = 0, 0
		c := ^Fold(Sum(dst[ip:], acc))
		if c == 0 {
			c = 0xffff // zero would mean "no checksum"
		}
		binary.BigEndian.PutUint16(dst[ip+6:], c)
		return
	}
	binary.BigEndian.PutUint32(dst[ip+4:], s.seq+uint32(off))
	dst[ip+13] = segmentFlags(s.flags, i == 0, i == s.nseg-1)
	dst[ip+16], dst[ip+17] = 0, 0
	binary.BigEndian.PutUint16(dst[ip+16:], ^Fold(Sum(dst[ip:], acc)))
}

// segmentFlags are the TCP flags of one segment of a super-packet with
// flags f: CWR only on the first, FIN and PSH only on the last.
func segmentFlags(f uint8, first, last bool) uint8 {
	if !first {
		f &^= tcpCWR
	}
	if !last {
		f &^= tcpFIN | tcpPSH
	}
	return f
}
