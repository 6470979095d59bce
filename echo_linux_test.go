package ringtun

// ICMP echo through a session, IPv4 and IPv6: the smallest end-to-end
// check of both rings.

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/internal/packettest"
)

// receiveMatching waits for a packet that match accepts, releasing the
// others, and returns a copy of it.
func receiveMatching(t *testing.T, s *Session, match func([]byte) bool) []byte {
	t.Helper()
	for {
		p := receiveNext(t, s)
		ok := match(p)
		if !ok {
			t.Logf("skipped packet % x", p[:min(len(p), 48)])
		}
		c := bytes.Clone(p)
		s.ReleaseReceivePacket(p)
		if ok {
			return c
		}
	}
}

// withEchoSession runs fn in ns with a session on a fresh adapter name
// that has address addr; the adapter and session go when fn returns.
func withEchoSession(t *testing.T, ns *netns.NS, name string, addr netip.Prefix, fn func(s *Session) error) {
	t.Helper()
	in(t, ns, func() error {
		a, err := CreateAdapterWithOptions(name, "Test", AdapterOptions{
			Config: &Config{Addresses: []netip.Prefix{addr}},
		})
		if err != nil {
			return err
		}
		defer a.Close()
		s, err := a.StartSession(RingCapacityMin)
		if err != nil {
			return err
		}
		defer s.End()
		return fn(s)
	})
}

func TestEchoIPv4(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("198.18.7.7"), netip.MustParseAddr("198.18.7.8")
	withEchoSession(t, ns, "echo4", netip.PrefixFrom(local, 24), func(s *Session) error {
		payload := []byte("ringtun echo payload")
		p, err := s.AllocateSendPacket(28 + len(payload))
		if err != nil {
			return err
		}
		packettest.EchoRequest4(p, peer, local, 0x1234, 7, payload)
		s.SendPacket(p)

		r := receiveMatching(t, s, func(p []byte) bool { return len(p) >= 21 && p[0]>>4 == 4 && p[9] == 1 && p[20] == 0 })
		if len(r) != 28+len(payload) {
			t.Fatalf("reply is %d bytes, want %d", len(r), 28+len(payload))
		}
		if !bytes.Equal(r[12:16], local.AsSlice()) || !bytes.Equal(r[16:20], peer.AsSlice()) {
			t.Errorf("reply from %v to %v", r[12:16], r[16:20])
		}
		if packettest.Sum(r[:20]) != 0xffff {
			t.Error("bad IPv4 header checksum")
		}
		if packettest.Sum(r[20:]) != 0xffff {
			t.Error("bad ICMP checksum")
		}
		if id, seq := binary.BigEndian.Uint16(r[24:]), binary.BigEndian.Uint16(r[26:]); id != 0x1234 || seq != 7 {
			t.Errorf("reply id %#x seq %d", id, seq)
		}
		if !bytes.Equal(r[28:], payload) {
			t.Errorf("reply payload %q", r[28:])
		}
		return nil
	})
}

func TestEchoIPv6(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("2001:db8:7::7"), netip.MustParseAddr("2001:db8:7::8")
	withEchoSession(t, ns, "echo6", netip.PrefixFrom(local, 64), func(s *Session) error {
		payload := []byte("ringtun echo6 payload")
		p, err := s.AllocateSendPacket(48 + len(payload))
		if err != nil {
			return err
		}
		packettest.EchoRequest6(p, peer, local, 0x4321, 9, payload)
		s.SendPacket(p)

		r := receiveMatching(t, s, func(p []byte) bool { return len(p) >= 41 && p[0]>>4 == 6 && p[6] == 58 && p[40] == 129 })
		if len(r) != 48+len(payload) {
			t.Fatalf("reply is %d bytes, want %d", len(r), 48+len(payload))
		}
		src, _ := netip.AddrFromSlice(r[8:24])
		dst, _ := netip.AddrFromSlice(r[24:40])
		if src != local || dst != peer {
			t.Errorf("reply from %v to %v", src, dst)
		}
		if packettest.Sum(packettest.PseudoHeader(r[8:24], r[24:40], packettest.ProtoICMPv6, len(r)-40), r[40:]) != 0xffff {
			t.Error("bad ICMPv6 checksum")
		}
		if id, seq := binary.BigEndian.Uint16(r[44:]), binary.BigEndian.Uint16(r[46:]); id != 0x4321 || seq != 9 {
			t.Errorf("reply id %#x seq %d", id, seq)
		}
		if !bytes.Equal(r[48:], payload) {
			t.Errorf("reply payload %q", r[48:])
		}
		return nil
	})
}
