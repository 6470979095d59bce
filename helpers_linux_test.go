package ringtun

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/ringtun/ringtun/internal/netns"
)

// newNS gives the test a fresh network namespace, or skips it with the
// reason when it cannot have one. The namespace goes when the test ends.
func newNS(t testing.TB) *netns.NS {
	t.Helper()
	if err := netns.CanCreate(); err != nil {
		t.Skip("integration test:", err)
	}
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// in runs fn inside ns and fails the test on its error. fn may call
// t.Fatal: the test then stops here, on its own goroutine.
func in(t testing.TB, ns *netns.NS, fn func() error) {
	t.Helper()
	if err := ns.Do(fn); errors.Is(err, netns.ErrGoexit) {
		t.FailNow()
	} else if err != nil {
		t.Fatal(err)
	}
}

// inetChecksum is the Internet checksum of b, folded, starting from sum.
func inetChecksum(sum uint32, b []byte) uint16 {
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// pseudoSum6 is the IPv6 pseudo-header sum for an upper-layer packet.
func pseudoSum6(src, dst netip.Addr, proto uint8, length int) uint32 {
	var sum uint32
	s, d := src.As16(), dst.As16()
	for i := 0; i < 16; i += 2 {
		sum += uint32(s[i])<<8 | uint32(s[i+1])
		sum += uint32(d[i])<<8 | uint32(d[i+1])
	}
	return sum + uint32(length) + uint32(proto)
}

// echoRequest4 writes an IPv4 ICMP echo request with payload into b, which
// must be 28+len(payload) bytes.
func echoRequest4(b []byte, src, dst netip.Addr, id, seq uint16, payload []byte) {
	clear(b)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8], b[9] = 64, 1
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[10:], inetChecksum(0, b[:20]))
	b[20] = 8
	binary.BigEndian.PutUint16(b[24:], id)
	binary.BigEndian.PutUint16(b[26:], seq)
	copy(b[28:], payload)
	binary.BigEndian.PutUint16(b[22:], inetChecksum(0, b[20:]))
}

// echoRequest6 writes an IPv6 ICMPv6 echo request with payload into b,
// which must be 48+len(payload) bytes.
func echoRequest6(b []byte, src, dst netip.Addr, id, seq uint16, payload []byte) {
	clear(b)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40))
	b[6], b[7] = 58, 64
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	b[40] = 128
	binary.BigEndian.PutUint16(b[44:], id)
	binary.BigEndian.PutUint16(b[46:], seq)
	copy(b[48:], payload)
	binary.BigEndian.PutUint16(b[42:], inetChecksum(pseudoSum6(src, dst, 58, len(b)-40), b[40:]))
}
