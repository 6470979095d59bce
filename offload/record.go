package offload

// A record is what the rings of an offload-aware session carry
// (ringtun.SessionOptions.Offload): a virtio_net_hdr of HdrLen bytes, then
// one IPv4 or IPv6 packet, exactly as Linux reads and writes them on a TUN
// device opened with IFF_VNET_HDR. The packet may be a GSO super-packet
// that stands for many packets of one flow, and its transport checksum may
// be partial (FlagNeedsCsum: the checksum field holds the pseudo-header
// sum, and the ones' complement of the sum from CsumStart to the end goes
// at CsumStart+CsumOffset). A record of a plain, complete packet has a
// header of ten zero bytes.
//
// CheckRecord says whether a record is one the kernel may be given;
// SplitRecord turns one into the plain packets it stands for.

// maxRecordCheck is how many bytes of a record's packet CheckRecord copies
// to parse: the longest IP and L4 headers.
const maxRecordCheck = maxSplitHdr

// flagsKnown are the virtio_net_hdr flags a record may carry.
const flagsKnown = FlagNeedsCsum | FlagDataValid

// CheckRecord reports whether rec is a well-formed record: a header of
// known flags and GSO type, followed by an IPv4 or IPv6 packet whose
// length fields match the record's length; a partial checksum's offsets
// inside the packet, after the IP header; and for a super-packet, a TCP or UDP header of the GSO
// type's protocol and IP version, a checksum start at the end of the IP
// header, a non-zero GSO size, a header length (HdrLen) inside the packet,
// and segments a ring record can carry. It reads rec only and does not
// allocate. The error wraps ErrInvalid.
func CheckRecord(rec []byte) error {
	h, err := DecodeHdr(rec)
	if err != nil {
		return err
	}
	pkt := rec[HdrLen:]
	if h.Flags&^flagsKnown != 0 {
		return invalidError("unknown virtio_net_hdr flags")
	}
	if int(h.HdrLen) > len(pkt) {
		return invalidError("header length beyond the packet")
	}
	if h.GSOType != GSONone {
		var s Splitter
		return s.Reset(h, pkt)
	}
	var b [maxRecordCheck]byte
	var hd headers
	if err := hd.parseIP(b[:copy(b[:], pkt)], len(pkt)); err != nil {
		return err
	}
	if h.Flags&FlagNeedsCsum != 0 {
		switch {
		case int(h.CsumStart) < hd.ipLen:
			return invalidError("checksum start inside the IP header")
		case int(h.CsumStart)+int(h.CsumOffset)+2 > len(pkt):
			return invalidError("checksum start/offset outside the packet")
		}
	}
	return nil
}

// SplitRecord writes the plain packets that rec stands for into bufs, one
// per buffer starting at offset, each with complete checksums, and sets
// sizes[i] to the length of the packet in bufs[i][offset:]. It returns how
// many packets it wrote: one for a record without GSO, one per segment for
// a super-packet. It fails, writing nothing, when rec is not a well-formed
// record (CheckRecord), or when bufs or sizes are too few or a buffer too
// short: the errors wrap ErrInvalid and ErrShortBuffer respectively.
//
// It is for programs that use an offload-aware session but want MTU-sized
// packets after all, for some flows or all of them.
func SplitRecord(rec []byte, bufs [][]byte, sizes []int, offset int) (int, error) {
	if err := CheckRecord(rec); err != nil {
		return 0, err
	}
	h, _ := DecodeHdr(rec)
	var s Splitter
	if err := s.Reset(h, rec[HdrLen:]); err != nil {
		return 0, err
	}
	n := s.Segments()
	if n > len(bufs) || n > len(sizes) {
		return 0, ErrShortBuffer
	}
	for i := range n {
		if offset < 0 || len(bufs[i]) < offset+s.lengthOf(i) {
			return 0, ErrShortBuffer
		}
	}
	for i := range n {
		size := s.Next()
		if err := s.Put(bufs[i][offset : offset+size]); err != nil {
			return i, err // cannot happen: the buffers were measured
		}
		sizes[i] = size
	}
	return n, nil
}

// lengthOf returns the length of segment i of the current packet, which
// must exist.
func (s *Splitter) lengthOf(i int) int {
	if s.kind == kindNone {
		return len(s.pkt)
	}
	return s.hdrLen + min(s.gso, len(s.payload)-i*s.gso)
}
