// Package offload implements the packet work that a Linux TUN device opened
// with IFF_VNET_HDR and TUNSETOFFLOAD hands to user space: it decodes and
// encodes the virtio_net_hdr that precedes every packet, finishes
// CHECKSUM_PARTIAL checksums, splits GSO super-packets (TCP over IPv4/IPv6
// and UDP segmentation offload) into the packets they stand for, and merges
// runs of same-flow TCP segments or UDP datagrams into super-packets for the
// kernel to segment.
//
// ringtun's driver uses it to give the rings of an ordinary session plain
// packets. Programs that use an offload-aware session, whose rings carry
// records (a virtio_net_hdr and a packet that may be a super-packet), use
// it to check records (CheckRecord), to turn one into plain packets
// (SplitRecord) and to merge plain packets into one (Coalescer).
//
// All input is treated as hostile: malformed packets are rejected with an
// error wrapping ErrInvalid, never by a panic, and the per-packet paths
// (Splitter.Reset/Next/Put/Skip, Coalescer.Next, Sum, FinishChecksum) do not
// allocate.
package offload

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// HdrLen is the size of struct virtio_net_hdr (without num_buffers).
const HdrLen = 10

// virtio_net_hdr flags and GSO types, with the values of the virtio
// specification.
const (
	FlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: checksum is partial
	FlagDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID: checksum already verified

	GSONone  = 0    // VIRTIO_NET_HDR_GSO_NONE
	GSOTCPv4 = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	GSOUDP   = 3    // VIRTIO_NET_HDR_GSO_UDP (UFO): never negotiated, invalid on input
	GSOTCPv6 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	GSOUDPL4 = 5    // VIRTIO_NET_HDR_GSO_UDP_L4 (USO)
	GSOECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN, or-ed into a TCP type
)

// IP protocol numbers used here.
const (
	protoTCP = 6
	protoUDP = 17
)

// TCP flag bits (byte 13 of the TCP header).
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
	tcpURG = 0x20
	tcpECE = 0x40
	tcpCWR = 0x80
)

// ErrInvalid is wrapped by every error this package returns for a packet or
// header it refuses.
var ErrInvalid = errors.New("offload: invalid packet")

// ErrShortBuffer is returned by SplitRecord when the buffers it was given
// cannot hold every packet of the record.
var ErrShortBuffer = errors.New("offload: buffers too few or too short")

// invalidError is a rejection reason. It is a string type so that returning
// one of the constant reasons does not allocate.
type invalidError string

func (e invalidError) Error() string { return ErrInvalid.Error() + ": " + string(e) }
func (e invalidError) Unwrap() error { return ErrInvalid }

// Hdr is a virtio_net_hdr. Its multi-byte fields are little-endian on the
// wire (the TUN device uses the host's byte order, little-endian on every
// architecture ringtun supports, unless TUNSETVNETBE is used).
type Hdr struct {
	Flags, GSOType                         uint8
	HdrLen, GSOSize, CsumStart, CsumOffset uint16
}

// DecodeHdr decodes the first HdrLen bytes of b. It fails only if b is
// shorter than HdrLen; it does not judge the field values.
func DecodeHdr(b []byte) (Hdr, error) {
	if len(b) < HdrLen {
		return Hdr{}, invalidError("virtio_net_hdr truncated")
	}
	return Hdr{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.LittleEndian.Uint16(b[2:]),
		GSOSize:    binary.LittleEndian.Uint16(b[4:]),
		CsumStart:  binary.LittleEndian.Uint16(b[6:]),
		CsumOffset: binary.LittleEndian.Uint16(b[8:]),
	}, nil
}

// Encode writes h into the first HdrLen bytes of b. It panics if
// len(b) < HdrLen, like any out-of-range slice access.
func (h Hdr) Encode(b []byte) {
	_ = b[HdrLen-1]
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.LittleEndian.PutUint16(b[2:], h.HdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.GSOSize)
	binary.LittleEndian.PutUint16(b[6:], h.CsumStart)
	binary.LittleEndian.PutUint16(b[8:], h.CsumOffset)
}

// Sum adds the bytes of b, taken as big-endian 16-bit words, to the
// one's-complement accumulator acc and returns the new, unfolded,
// accumulator. An odd trailing byte counts as the high byte of a word
// padded with zero, so only the last piece of a checksummed region may have
// an odd length when a sum is built from several calls. Any uint64 value is
// a valid accumulator; Fold reduces it to 16 bits.
func Sum(b []byte, acc uint64) uint64 {
	if len(b) >= 64 {
		// The bulk is summed as little-endian words, which saves a byte
		// swap per word: the one's-complement sum of byte-swapped 16-bit
		// words is the byte-swapped sum (RFC 1071, section 2), so the
		// folded result is swapped back and added to acc.
		var le uint64
		le, b = sumLE(b)
		acc = add(acc, uint64(bits.ReverseBytes16(Fold(le))))
	}
	var c uint64
	if len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b[0:4])), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b[0:2])), c)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0])<<8, c)
	}
	// End-around carry; a second carry is impossible because acc is then 0.
	acc, c = bits.Add64(acc, c, 0)
	return acc + c
}

// sumLE sums the leading multiple of 64 bytes of b as little-endian 64-bit
// words with end-around carry, and returns the sum and the rest of b.
func sumLE(b []byte) (uint64, []byte) {
	var acc, c uint64
	// Little-endian 64-bit words are four byte-swapped 16-bit words; since
	// 2^16 == 1 modulo 0xffff, adding them with end-around carry keeps the
	// sum's class modulo 0xffff, which is all the internet checksum depends
	// on.
	for len(b) >= 64 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:32]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[32:40]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[40:48]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[48:56]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[56:64]), c)
		b = b[64:]
	}
	acc, c = bits.Add64(acc, c, 0)
	return acc + c, b
}

// add adds x to the one's-complement accumulator acc.
func add(acc, x uint64) uint64 {
	s, c := bits.Add64(acc, x, 0)
	return s + c
}

// Fold reduces a one's-complement accumulator to 16 bits. The result is not
// complemented: a checksum field holds ^Fold(...), and a received region
// verifies when Fold of its sum (pseudo-header included) is 0xffff.
func Fold(acc uint64) uint16 {
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>16 + acc&0xffff
	acc = acc>>16 + acc&0xffff
	return uint16(acc)
}

// PseudoHeaderSum returns the unfolded sum of the TCP/UDP pseudo-header for
// the given source and destination addresses (4 bytes each for IPv4, 16 for
// IPv6), protocol number and upper-layer length in bytes.
func PseudoHeaderSum(src, dst []byte, proto uint8, length int) uint64 {
	acc := Sum(src, 0)
	acc = Sum(dst, acc)
	// The IPv6 32-bit length is two 16-bit words, and hi*2^16+lo == hi+lo
	// modulo 0xffff, so adding the length as one number is right for both.
	return add(acc, uint64(proto)+uint64(uint32(length)))
}

// FinishChecksum completes a CHECKSUM_PARTIAL packet in place, as the
// kernel's skb_checksum_help does. If h.Flags has FlagNeedsCsum, it checks
// that the two-byte checksum field at CsumStart+CsumOffset lies inside pkt,
// sums pkt[CsumStart:] (whose checksum field already holds the folded
// pseudo-header sum) and stores the complement of the folded sum there, 0
// being stored as 0xffff. Without the flag it does nothing. It returns an
// error wrapping ErrInvalid, and leaves pkt alone, if the offsets are bad.
func FinishChecksum(h Hdr, pkt []byte) error {
	if h.Flags&FlagNeedsCsum == 0 {
		return nil
	}
	start := int(h.CsumStart)
	field := start + int(h.CsumOffset)
	if field+2 > len(pkt) {
		return invalidError("checksum start/offset outside the packet")
	}
	sum := ^Fold(Sum(pkt[start:], 0))
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(pkt[field:], sum)
	return nil
}
