package packettest

import (
	"net/netip"
	"testing"
)

// TestChecksumKnownValues checks the reference checksum against values
// worked out by hand, including the textbook IPv4 header whose checksum is
// 0xb861.
func TestChecksumKnownValues(t *testing.T) {
	ip := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	if got := Checksum(ip); got != 0xb861 {
		t.Errorf("IPv4 header checksum %#04x, want 0xb861", got)
	}
	ip[10], ip[11] = 0xb8, 0x61
	if got := Sum(ip); got != 0xffff {
		t.Errorf("a header with its checksum sums to %#04x, want 0xffff", got)
	}
	// ICMP echo request, id 1, seq 1, no payload: 0x0800+0x0001+0x0001.
	if got := Checksum([]byte{8, 0, 0, 0, 0, 1, 0, 1}); got != 0xf7fd {
		t.Errorf("ICMP checksum %#04x, want 0xf7fd", got)
	}
	if got := Checksum([]byte{0x01}); got != 0xfeff {
		t.Errorf("odd byte: %#04x, want 0xfeff (padded on the right)", got)
	}
	if a, b := Sum([]byte{0x01}, []byte{0x02, 0x03}), Sum([]byte{0x01, 0x02, 0x03}); a != b || a != 0x0402 {
		t.Errorf("chunks split mid-word sum to %#04x, whole %#04x, want 0x0402", a, b)
	}
	if got := Sum([]byte{0xff, 0xff, 0x00, 0x01}); got != 0x0001 {
		t.Errorf("carry: %#04x, want 0x0001", got)
	}
}

// TestBuildersWellFormed: every builder makes packets CheckWellFormed
// takes, and any single flipped bit makes it refuse them, except in the
// IPv6 fields no checksum covers (traffic class, flow label, hop limit).
func TestBuildersWellFormed(t *testing.T) {
	for name, s := range map[string]Spec{
		"TCP4": TCP4(Pattern(301, 1)), "TCP6": TCP6(Pattern(300, 2)),
		"UDP4": UDP4(Pattern(99, 3)), "UDP6": UDP6(Pattern(1000, 4)),
		"TCP4 options": func() Spec { s := TCP4(Pattern(8, 5)); s.IPOpts = []byte{1, 1, 1, 0}; return s }(),
	} {
		pkt := s.Build()
		hdr, proto, err := CheckWellFormed(pkt)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if proto != s.Proto || hdr != s.IPHeaderLen()+s.L4HeaderLen() || len(pkt) != hdr+len(s.Payload) {
			t.Errorf("%s: header %d, proto %d, length %d", name, hdr, proto, len(pkt))
		}
		for bit := range len(pkt) * 8 {
			if byteAt := bit / 8; s.V6 && (byteAt == 0 && bit%8 < 4 || byteAt >= 1 && byteAt <= 3 || byteAt == 7) {
				continue
			}
			pkt[bit/8] ^= 1 << (bit % 8)
			if _, _, err := CheckWellFormed(pkt); err == nil {
				t.Errorf("%s: took the packet with bit %d flipped", name, bit)
			}
			pkt[bit/8] ^= 1 << (bit % 8)
		}
	}
}

// TestEchoRequests: the echo builders' checksums verify, the ICMPv6 one
// over its pseudo-header.
func TestEchoRequests(t *testing.T) {
	b4 := make([]byte, 28+5)
	EchoRequest4(b4, netip.MustParseAddr("198.18.7.8"), netip.MustParseAddr("198.18.7.7"), 1, 1, []byte("hello"))
	if Sum(b4[:20]) != 0xffff || Sum(b4[20:]) != 0xffff || b4[20] != 8 {
		t.Fatalf("IPv4 echo request does not verify: % x", b4)
	}
	src, dst := netip.MustParseAddr("2001:db8::8"), netip.MustParseAddr("2001:db8::7")
	b6 := make([]byte, 48+5)
	EchoRequest6(b6, src, dst, 1, 1, []byte("hello"))
	s, d := src.As16(), dst.As16()
	if Sum(PseudoHeader(s[:], d[:], ProtoICMPv6, len(b6)-40), b6[40:]) != 0xffff || b6[40] != 128 {
		t.Fatalf("IPv6 echo request does not verify: % x", b6)
	}
}
