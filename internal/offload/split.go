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

	var proto uint8
	var wantVersion byte // 0: either
	typ := h.GSOType
	switch typ &^ GSOECN {
	case GSONone:
		if typ != GSONone {
			return invalidError("ECN flag without a GSO type")
		}
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
	case GSOTCPv4:
		proto, wantVersion = protoTCP, 4
	case GSOTCPv6:
		proto, wantVersion = protoTCP, 6
	case GSOUDPL4:
		if typ != GSOUDPL4 {
			return invalidError("ECN flag on a UDP GSO type")
		}
		proto = protoUDP
	case GSOUDP:
		return invalidError("UFO (GSO type 3) was not negotiated")
	default:
		return invalidError("unknown GSO type")
	}
	if h.GSOSize == 0 {
		return invalidError("GSO size is zero")
	}
	if h.Flags&FlagNeedsCsum == 0 {
		return invalidError("GSO packet without FlagNeedsCsum")
	}

	// Work on a private copy of the headers: every field below is read from
	// it, so the values checked are the values used.
	n := copy(s.hdr[:], pkt)
	b := s.hdr[:n]
	version := b[0] >> 4
	if wantVersion != 0 && version != wantVersion {
		return invalidError("IP version does not match the GSO type")
	}
	var ipLen int
	var src, dst []byte
	switch version {
	case 4:
		if n < 20 {
			return invalidError("IPv4 header truncated")
		}
		ipLen = int(b[0]&0x0f) * 4
		if ipLen < 20 {
			return invalidError("IPv4 header length below 20")
		}
		if ipLen > len(pkt) {
			return invalidError("IPv4 header truncated")
		}
		total := int(binary.BigEndian.Uint16(b[2:]))
		if total > len(pkt) {
			return invalidError("IPv4 total length exceeds the packet")
		}
		if total < len(pkt) {
			return invalidError("IPv4 total length shorter than the packet")
		}
		if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 {
			return invalidError("IPv4 fragment")
		}
		if b[9] != proto {
			return invalidError("IPv4 protocol does not match the GSO type")
		}
		src, dst = b[12:16], b[16:20]
		s.id = binary.BigEndian.Uint16(b[4:])
		s.v6 = false
	case 6:
		if n < 40 {
			return invalidError("IPv6 header truncated")
		}
		ipLen = 40
		plen := int(binary.BigEndian.Uint16(b[4:]))
		if 40+plen > len(pkt) {
			return invalidError("IPv6 payload length exceeds the packet")
		}
		if 40+plen < len(pkt) {
			return invalidError("IPv6 payload length shorter than the packet")
		}
		if b[6] != proto {
			return invalidError("IPv6 next header is not the GSO type's protocol (extension headers are not supported)")
		}
		src, dst = b[8:24], b[24:40]
		s.v6 = true
	default:
		return invalidError("not an IPv4 or IPv6 packet")
	}
	if int(h.CsumStart) != ipLen {
		return invalidError("checksum start is not the end of the IP header")
	}

	var hdrLen int
	if proto == protoTCP {
		if h.CsumOffset != 16 {
			return invalidError("checksum offset is not TCP's (16)")
		}
		if ipLen+20 > len(pkt) {
			return invalidError("TCP header truncated")
		}
		doff := int(b[ipLen+12]>>4) * 4
		if doff < 20 {
			return invalidError("TCP data offset below 5")
		}
		hdrLen = ipLen + doff
		if hdrLen > len(pkt) {
			return invalidError("TCP header truncated")
		}
		s.seq = binary.BigEndian.Uint32(b[ipLen+4:])
		s.flags = b[ipLen+13]
		s.kind = kindTCP
	} else {
		if h.CsumOffset != 6 {
			return invalidError("checksum offset is not UDP's (6)")
		}
		hdrLen = ipLen + 8
		if hdrLen > len(pkt) {
			return invalidError("UDP header truncated")
		}
		s.kind = kindUDP
	}
	payload := len(pkt) - hdrLen
	if payload == 0 {
		s.kind = kindEmpty
		return invalidError("GSO packet without payload")
	}
	if hdrLen+min(int(h.GSOSize), payload) > MaxSegment {
		s.kind = kindEmpty
		return invalidError("segments longer than MaxSegment")
	}
	s.pseudo = PseudoHeaderSum(src, dst, proto, 0)
	s.ipLen = ipLen
	s.hdrLen = hdrLen
	s.gso = int(h.GSOSize)
	s.payload = pkt[hdrLen:]
	s.nseg = (payload + s.gso - 1) / s.gso
	return nil
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
		if s.kind == kindNone {
			dst[k] = len(s.pkt)
			continue
		}
		i := s.idx + k
		dst[k] = s.hdrLen + min(s.gso, len(s.payload)-i*s.gso)
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

	i := s.idx
	off := i * s.gso
	chunk := n - s.hdrLen
	ip := s.ipLen
	copy(dst[:s.hdrLen], s.hdr[:s.hdrLen])
	copy(dst[s.hdrLen:], s.payload[off:off+chunk])
	l4len := n - ip
	if s.v6 {
		binary.BigEndian.PutUint16(dst[4:], uint16(l4len))
	} else {
		binary.BigEndian.PutUint16(dst[2:], uint16(n))
		binary.BigEndian.PutUint16(dst[4:], s.id+uint16(i))
		dst[10], dst[11] = 0, 0
		binary.BigEndian.PutUint16(dst[10:], ^Fold(Sum(dst[:ip], 0)))
	}
	acc := add(s.pseudo, uint64(l4len))
	if s.kind == kindTCP {
		binary.BigEndian.PutUint32(dst[ip+4:], s.seq+uint32(off))
		f := s.flags
		if i != 0 {
			f &^= tcpCWR
		}
		if i != s.nseg-1 {
			f &^= tcpFIN | tcpPSH
		}
		dst[ip+13] = f
		dst[ip+16], dst[ip+17] = 0, 0
		binary.BigEndian.PutUint16(dst[ip+16:], ^Fold(Sum(dst[ip:], acc)))
	} else {
		binary.BigEndian.PutUint16(dst[ip+4:], uint16(l4len))
		dst[ip+6], dst[ip+7] = 0, 0
		c := ^Fold(Sum(dst[ip:], acc))
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(dst[ip+6:], c)
	}
	s.idx++
	return nil
}
