package offload

import (
	"github.com/ringtun/ringtun/internal/packettest"

	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"testing"
)

func TestHdrEncodeDecode(t *testing.T) {
	h := Hdr{Flags: FlagNeedsCsum, GSOType: GSOTCPv6 | GSOECN, HdrLen: 0x0102, GSOSize: 0x0304, CsumStart: 0x0506, CsumOffset: 0x0708}
	var b [HdrLen]byte
	h.Encode(b[:])
	want := []byte{1, 0x84, 2, 1, 4, 3, 6, 5, 8, 7}
	if !bytes.Equal(b[:], want) {
		t.Fatalf("Encode = % x, want % x", b, want)
	}
	got, err := DecodeHdr(append(b[:], 0xff))
	if err != nil || got != h {
		t.Fatalf("DecodeHdr = %+v, %v; want %+v", got, err, h)
	}
	if _, err := DecodeHdr(b[:HdrLen-1]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("DecodeHdr(short) err = %v", err)
	}
}

func TestSum(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, 300)
	rng.Read(buf)
	for n := 0; n <= 200; n++ {
		for off := 0; off < 9; off++ {
			b := buf[off : off+n]
			if got, want := Fold(Sum(b, 0)), packettest.Sum(b); got != want {
				t.Fatalf("Fold(Sum(len %d off %d)) = %#04x, want %#04x", n, off, got, want)
			}
			// Split at an even point and chain the accumulator.
			for cut := 0; cut <= n; cut += 6 {
				if got, want := Fold(Sum(b[cut:], Sum(b[:cut], 0))), packettest.Sum(b); got != want {
					t.Fatalf("chained Sum len %d cut %d = %#04x, want %#04x", n, cut, got, want)
				}
			}
		}
	}
	// All-ones data exercises every carry.
	ones := bytes.Repeat([]byte{0xff}, 4096+3)
	if got, want := Fold(Sum(ones, ^uint64(0))), packettest.Sum(ones); got != want {
		t.Fatalf("Sum(ones, max acc) = %#04x, want %#04x", got, want)
	}
	if got := Fold(Sum(nil, 0)); got != 0 {
		t.Fatalf("Fold(Sum(nil)) = %#04x", got)
	}
}

func TestFold(t *testing.T) {
	for _, c := range []struct {
		in   uint64
		want uint16
	}{
		{0, 0},
		{0xffff, 0xffff},
		{0x10000, 1},
		{0x1fffe, 0xffff},
		{^uint64(0), 0xffff},
		{0x0001_0002_0003_0004, 10},
		{0xffff_0000_0000_0001, 1},
	} {
		if got := Fold(c.in); got != c.want {
			t.Errorf("Fold(%#x) = %#x, want %#x", c.in, got, c.want)
		}
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	for _, c := range []struct {
		Src, Dst []byte
		Proto    uint8
		length   int
	}{
		{packettest.Src4, packettest.Dst4, protoTCP, 1480},
		{packettest.Src4, packettest.Dst4, protoUDP, 65535},
		{packettest.Src6, packettest.Dst6, protoTCP, 40},
		{packettest.Src6, packettest.Dst6, protoUDP, 70000},
	} {
		got := Fold(PseudoHeaderSum(c.Src, c.Dst, c.Proto, c.length))
		want := packettest.Sum(packettest.PseudoHeader(c.Src, c.Dst, c.Proto, c.length))
		if got != want {
			t.Errorf("PseudoHeaderSum(%v, %d) = %#x, want %#x", c.Proto, c.length, got, want)
		}
	}
}

// partialPacket turns a built packet into a CHECKSUM_PARTIAL one: the L4
// checksum field holds the folded pseudo-header sum.
func partialPacket(p packettest.Spec) (Hdr, []byte) {
	pkt := p.Build()
	ipLen := 40
	if !p.V6 {
		ipLen = 20 + len(p.IPOpts)
	}
	off := 16
	if p.Proto == protoUDP {
		off = 6
	}
	l4len := len(pkt) - ipLen
	binary.BigEndian.PutUint16(pkt[ipLen+off:], packettest.Sum(packettest.PseudoHeader(p.Src, p.Dst, p.Proto, l4len)))
	return Hdr{Flags: FlagNeedsCsum, CsumStart: uint16(ipLen), CsumOffset: uint16(off)}, pkt
}

func TestFinishChecksum(t *testing.T) {
	for _, p := range []packettest.Spec{packettest.TCP4(packettest.Pattern(1001, 1)), packettest.TCP6(packettest.Pattern(77, 2)), packettest.UDP4(packettest.Pattern(3, 3)), packettest.UDP6(nil)} {
		want := p.Build()
		h, pkt := partialPacket(p)
		if bytes.Equal(pkt, want) {
			t.Fatal("test packet already complete")
		}
		if err := FinishChecksum(h, pkt); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pkt, want) {
			t.Fatalf("FinishChecksum result differs from the reference packet")
		}
	}

	// A sum that complements to 0 is stored as 0xffff.
	p := packettest.UDP4(make([]byte, 10))
	h, pkt := partialPacket(p)
	spare := pkt[len(pkt)-2:]
	binary.BigEndian.PutUint16(spare, ^packettest.Sum(pkt[20:]))
	if packettest.Sum(pkt[20:]) != 0xffff {
		t.Fatal("could not build a zero-checksum packet")
	}
	if err := FinishChecksum(h, pkt); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint16(pkt[26:]); got != 0xffff {
		t.Fatalf("zero checksum stored as %#x, want 0xffff", got)
	}

	// Without the flag nothing changes.
	_, pkt = partialPacket(packettest.TCP4(packettest.Pattern(10, 1)))
	orig := bytes.Clone(pkt)
	if err := FinishChecksum(Hdr{CsumStart: 20, CsumOffset: 16}, pkt); err != nil || !bytes.Equal(pkt, orig) {
		t.Fatalf("FinishChecksum without flag: err %v, changed %v", err, !bytes.Equal(pkt, orig))
	}

	// Bad offsets.
	for _, h := range []Hdr{
		{Flags: FlagNeedsCsum, CsumStart: uint16(len(pkt)), CsumOffset: 0},
		{Flags: FlagNeedsCsum, CsumStart: uint16(len(pkt) - 1), CsumOffset: 0},
		{Flags: FlagNeedsCsum, CsumStart: 20, CsumOffset: uint16(len(pkt) - 21)},
		{Flags: FlagNeedsCsum, CsumStart: 0xffff, CsumOffset: 0xffff},
	} {
		if err := FinishChecksum(h, pkt); !errors.Is(err, ErrInvalid) {
			t.Errorf("FinishChecksum(%+v) err = %v", h, err)
		}
		if !bytes.Equal(pkt, orig) {
			t.Fatalf("FinishChecksum(%+v) modified the packet on error", h)
		}
	}
	// The last two bytes are a valid field position.
	if err := FinishChecksum(Hdr{Flags: FlagNeedsCsum, CsumStart: 20, CsumOffset: uint16(len(pkt) - 22)}, pkt); err != nil {
		t.Fatal(err)
	}
}

// checkTCPSegments checks every field of the segments of a TCP super-packet
// built from spec p with the given GSO size.
func checkTCPSegments(t *testing.T, p packettest.Spec, gso int, segs [][]byte) {
	t.Helper()
	ipLen := 40
	if !p.V6 {
		ipLen = 20 + len(p.IPOpts)
	}
	tcpLen := 20 + len(p.TCPOpts)
	hdrLen := ipLen + tcpLen
	want := (len(p.Payload) + gso - 1) / gso
	if len(segs) != want {
		t.Fatalf("%d segments, want %d", len(segs), want)
	}
	for i, seg := range segs {
		chunk := min(gso, len(p.Payload)-i*gso)
		if len(seg) != hdrLen+chunk {
			t.Fatalf("segment %d: length %d, want %d", i, len(seg), hdrLen+chunk)
		}
		// An independent reconstruction of the segment.
		q := p
		q.Payload = p.Payload[i*gso : i*gso+chunk]
		q.Seq = p.Seq + uint32(i*gso)
		q.ID = p.ID + uint16(i)
		if i != 0 {
			q.Flags &^= tcpCWR
		}
		if i != len(segs)-1 {
			q.Flags &^= tcpFIN | tcpPSH
		}
		exp := q.Build()
		if !bytes.Equal(seg, exp) {
			t.Fatalf("segment %d:\n got % x\nwant % x", i, seg[:hdrLen], exp[:hdrLen])
		}
		if _, _, err := packettest.CheckWellFormed(seg); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		// Spot-check fields directly, not only through the builder.
		tcp := seg[ipLen:]
		if got := binary.BigEndian.Uint32(tcp[4:]); got != p.Seq+uint32(i*gso) {
			t.Fatalf("segment %d: seq %d", i, got)
		}
		if !p.V6 {
			if got := binary.BigEndian.Uint16(seg[4:]); got != p.ID+uint16(i) {
				t.Fatalf("segment %d: IPv4 ID %#x", i, got)
			}
		}
		f := tcp[13]
		if (f&tcpCWR != 0) != (i == 0 && p.Flags&tcpCWR != 0) {
			t.Fatalf("segment %d: CWR placement wrong (flags %#x)", i, f)
		}
		last := i == len(segs)-1
		if (f&tcpFIN != 0) != (last && p.Flags&tcpFIN != 0) || (f&tcpPSH != 0) != (last && p.Flags&tcpPSH != 0) {
			t.Fatalf("segment %d: FIN/PSH placement wrong (flags %#x)", i, f)
		}
		if f&tcpACK == 0 || f&tcpECE != p.Flags&tcpECE {
			t.Fatalf("segment %d: flags %#x", i, f)
		}
	}
}

func TestSplitTCP4(t *testing.T) {
	p := packettest.TCP4(packettest.Pattern(3*1448+100, 9))
	p.Seq = 0xffffffff - 2000 // wraps inside the packet
	p.ID = 0xfffe             // wraps too
	p.Flags = tcpACK | tcpPSH | tcpFIN | tcpCWR | tcpECE
	h, pkt := superPacket(p, 1448)
	h.GSOType |= GSOECN
	h.HdrLen = 9999 // not trusted
	orig := bytes.Clone(pkt)
	segs, err := splitAll(h, pkt)
	if err != nil {
		t.Fatal(err)
	}
	checkTCPSegments(t, p, 1448, segs)
	if !bytes.Equal(pkt, orig) {
		t.Fatal("Splitter modified its input")
	}
}

func TestSplitTCP4Options(t *testing.T) {
	p := packettest.TCP4(packettest.Pattern(5000, 3))
	p.IPOpts = []byte{1, 1, 1, 0} // NOPs and EOL
	p.TCPOpts = bytes.Repeat([]byte{1}, 40)
	h, pkt := superPacket(p, 1000)
	segs, err := splitAll(h, pkt)
	if err != nil {
		t.Fatal(err)
	}
	checkTCPSegments(t, p, 1000, segs)
}

func TestSplitTCP6(t *testing.T) {
	p := packettest.TCP6(packettest.Pattern(65535-40, 4))
	p.Flags = tcpACK | tcpPSH
	h, pkt := superPacket(p, 1428)
	segs, err := splitAll(h, pkt)
	if err != nil {
		t.Fatal(err)
	}
	checkTCPSegments(t, p, 1428, segs)
}

func TestSplitSingleSegment(t *testing.T) {
	for _, gso := range []int{100, 101, 5000} {
		p := packettest.TCP4(packettest.Pattern(100, 5))
		p.Flags = tcpACK | tcpPSH | tcpFIN | tcpCWR
		h, pkt := superPacket(p, gso)
		segs, err := splitAll(h, pkt)
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) != 1 || !bytes.Equal(segs[0], p.Build()) {
			t.Fatalf("gso %d: single segment differs from the packet with a full checksum", gso)
		}
	}
}

func checkUDPSegments(t *testing.T, p packettest.Spec, gso int, segs [][]byte) {
	t.Helper()
	want := (len(p.Payload) + gso - 1) / gso
	if len(segs) != want {
		t.Fatalf("%d segments, want %d", len(segs), want)
	}
	for i, seg := range segs {
		chunk := min(gso, len(p.Payload)-i*gso)
		q := p
		q.Payload = p.Payload[i*gso : i*gso+chunk]
		q.ID = p.ID + uint16(i)
		if exp := q.Build(); !bytes.Equal(seg, exp) {
			t.Fatalf("segment %d differs:\n got % x\nwant % x", i, seg, exp)
		}
		hl, proto, err := packettest.CheckWellFormed(seg)
		if err != nil || proto != protoUDP || len(seg)-hl != chunk {
			t.Fatalf("segment %d: %v proto %d", i, err, proto)
		}
	}
}

func TestSplitUDP(t *testing.T) {
	for _, p := range []packettest.Spec{packettest.UDP4(packettest.Pattern(10*1200+7, 1)), packettest.UDP6(packettest.Pattern(3*1200, 2))} {
		p.ID = 0xffff
		h, pkt := superPacket(p, 1200)
		segs, err := splitAll(h, pkt)
		if err != nil {
			t.Fatal(err)
		}
		checkUDPSegments(t, p, 1200, segs)
	}
}

// TestSplitUDPZeroChecksum: a segment whose UDP checksum computes to 0
// carries 0xffff.
func TestSplitUDPZeroChecksum(t *testing.T) {
	for _, base := range []packettest.Spec{packettest.UDP4(nil), packettest.UDP6(nil)} {
		seg0 := base
		seg0.Payload = packettest.Pattern(100, 1)
		b := seg0.Build()
		tuneZeroSum(b, 6)
		p := base
		p.Payload = append(bytes.Clone(b[len(b)-100:]), packettest.Pattern(50, 2)...)
		h, pkt := superPacket(p, 100)
		segs, err := splitAll(h, pkt)
		if err != nil {
			t.Fatal(err)
		}
		checkUDPSegments(t, p, 100, segs)
		ip := len(segs[0]) - 108
		if got := binary.BigEndian.Uint16(segs[0][ip+6:]); got != 0xffff {
			t.Fatalf("UDP checksum %#x, want 0xffff", got)
		}
	}
}

func TestSplitNone(t *testing.T) {
	// Partial checksum finished into the copy, input untouched.
	p := packettest.UDP6(packettest.Pattern(333, 8))
	h, pkt := partialPacket(p)
	orig := bytes.Clone(pkt)
	segs, err := splitAll(h, pkt)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || !bytes.Equal(segs[0], p.Build()) {
		t.Fatal("GSONone segment is not the packet with its checksum finished")
	}
	if !bytes.Equal(pkt, orig) {
		t.Fatal("Splitter modified its input")
	}
	// No flag: verbatim, whatever the content.
	junk := []byte{0xde, 0xad, 0xbe, 0xef, 1}
	segs, err = splitAll(Hdr{Flags: FlagDataValid, CsumStart: 0xffff}, junk)
	if err != nil || len(segs) != 1 || !bytes.Equal(segs[0], junk) {
		t.Fatalf("GSONone without flag: %v %x", err, segs)
	}
	// Bad checksum offsets are rejected at Reset.
	var s Splitter
	if err := s.Reset(Hdr{Flags: FlagNeedsCsum, CsumStart: 4, CsumOffset: 0}, junk); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Reset with bad offsets: %v", err)
	}
	if s.Next() != 0 || s.Segments() != 0 {
		t.Fatal("segments after a failed Reset")
	}
}

func TestSplitterPutErrors(t *testing.T) {
	var s Splitter
	if s.Next() != 0 || s.Segments() != 0 {
		t.Fatal("zero Splitter has segments")
	}
	if err := s.Put(make([]byte, 10)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Put on zero Splitter: %v", err)
	}
	s.Skip() // must not panic

	p := packettest.TCP4(packettest.Pattern(3000, 1))
	h, pkt := superPacket(p, 1000)
	if err := s.Reset(h, pkt); err != nil {
		t.Fatal(err)
	}
	if s.Segments() != 3 {
		t.Fatalf("Segments = %d", s.Segments())
	}
	n := s.Next()
	for _, l := range []int{0, n - 1, n + 1} {
		if err := s.Put(make([]byte, l)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Put(len %d) for segment of %d: %v", l, n, err)
		}
	}
	if s.Next() != n {
		t.Fatal("failed Put advanced")
	}
	s.Skip()
	seg := make([]byte, s.Next())
	if err := s.Put(seg); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint32(seg[24:]); got != p.Seq+1000 {
		t.Fatalf("after Skip, seq %d, want %d", got, p.Seq+1000)
	}
	s.Skip()
	if s.Next() != 0 {
		t.Fatal("segments left after the last")
	}
	s.Skip()
	if err := s.Put(nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Put past the end: %v", err)
	}
	// Reset starts over.
	if err := s.Reset(h, pkt); err != nil || s.Next() != n {
		t.Fatalf("Reset again: %v, Next %d", err, s.Next())
	}
}

func TestSplitRejects(t *testing.T) {
	type mut func(h *Hdr, pkt []byte) []byte
	tcp4 := func() (Hdr, []byte) { return superPacket(packettest.TCP4(packettest.Pattern(3000, 1)), 1000) }
	tcp6 := func() (Hdr, []byte) { return superPacket(packettest.TCP6(packettest.Pattern(3000, 1)), 1000) }
	udp4 := func() (Hdr, []byte) { return superPacket(packettest.UDP4(packettest.Pattern(3000, 1)), 1000) }
	udp6 := func() (Hdr, []byte) { return superPacket(packettest.UDP6(packettest.Pattern(3000, 1)), 1000) }
	setTotal := func(pkt []byte, n int) { binary.BigEndian.PutUint16(pkt[2:], uint16(n)) }
	cases := []struct {
		name string
		base func() (Hdr, []byte)
		mut  mut
	}{
		{"tcp4 on IPv6", tcp6, func(h *Hdr, p []byte) []byte { h.GSOType = GSOTCPv4; return p }},
		{"tcp6 on IPv4", tcp4, func(h *Hdr, p []byte) []byte { h.GSOType = GSOTCPv6; return p }},
		{"version 5", tcp4, func(h *Hdr, p []byte) []byte { p[0] = 0x55; return p }},
		{"udp version 0", udp4, func(h *Hdr, p []byte) []byte { p[0] = 0x05; return p }},
		{"UFO", udp4, func(h *Hdr, p []byte) []byte { h.GSOType = GSOUDP; return p }},
		{"UDP with ECN", udp4, func(h *Hdr, p []byte) []byte { h.GSOType |= GSOECN; return p }},
		{"ECN alone", udp4, func(h *Hdr, p []byte) []byte { h.GSOType = GSOECN; return p }},
		{"unknown type", tcp4, func(h *Hdr, p []byte) []byte { h.GSOType = 2; return p }},
		{"unknown type 6", tcp4, func(h *Hdr, p []byte) []byte { h.GSOType = 6; return p }},
		{"gso size 0", tcp4, func(h *Hdr, p []byte) []byte { h.GSOSize = 0; return p }},
		{"no needs-csum", tcp4, func(h *Hdr, p []byte) []byte { h.Flags = FlagDataValid; return p }},
		{"csum start small", tcp4, func(h *Hdr, p []byte) []byte { h.CsumStart = 19; return p }},
		{"csum start large", tcp6, func(h *Hdr, p []byte) []byte { h.CsumStart = 60; return p }},
		{"csum offset UDP on TCP", tcp4, func(h *Hdr, p []byte) []byte { h.CsumOffset = 6; return p }},
		{"csum offset TCP on UDP", udp6, func(h *Hdr, p []byte) []byte { h.CsumOffset = 16; return p }},
		{"data offset 4", tcp4, func(h *Hdr, p []byte) []byte { p[32] = 4 << 4; return p }},
		{"data offset 0", tcp6, func(h *Hdr, p []byte) []byte { p[52] = 0; return p }},
		{"data offset beyond packet", tcp4, func(h *Hdr, p []byte) []byte {
			p[32] = 15 << 4
			p = p[:20+50]
			setTotal(p, len(p))
			return p
		}},
		{"header only", tcp4, func(h *Hdr, p []byte) []byte { p = p[:20+32]; setTotal(p, len(p)); return p }},
		{"udp header only", udp4, func(h *Hdr, p []byte) []byte { p = p[:28]; setTotal(p, len(p)); return p }},
		{"udp header truncated", udp4, func(h *Hdr, p []byte) []byte { p = p[:27]; setTotal(p, len(p)); return p }},
		{"tcp header truncated", tcp4, func(h *Hdr, p []byte) []byte { p = p[:39]; setTotal(p, len(p)); return p }},
		{"truncated v4", tcp4, func(h *Hdr, p []byte) []byte { return p[:len(p)-1] }},
		{"trailing bytes v4", tcp4, func(h *Hdr, p []byte) []byte { return append(p, 0) }},
		{"truncated v6", tcp6, func(h *Hdr, p []byte) []byte { return p[:len(p)-1] }},
		{"trailing bytes v6", udp6, func(h *Hdr, p []byte) []byte { return append(p, 0) }},
		{"IPv4 header cut", tcp4, func(h *Hdr, p []byte) []byte { return p[:19] }},
		{"IPv6 header cut", tcp6, func(h *Hdr, p []byte) []byte { return p[:39] }},
		{"empty", tcp4, func(h *Hdr, p []byte) []byte { return nil }},
		{"empty none", tcp4, func(h *Hdr, p []byte) []byte { *h = Hdr{}; return p[:0] }},
		{"IHL 4", tcp4, func(h *Hdr, p []byte) []byte { p[0] = 0x44; return p }},
		{"IHL beyond packet", tcp4, func(h *Hdr, p []byte) []byte { p[0] = 0x4f; p = p[:50]; setTotal(p, 50); return p }},
		{"more fragments", tcp4, func(h *Hdr, p []byte) []byte { p[6] |= 0x20; return p }},
		{"fragment offset", udp4, func(h *Hdr, p []byte) []byte { p[7] = 1; return p }},
		{"v4 proto UDP for TCP", tcp4, func(h *Hdr, p []byte) []byte { p[9] = protoUDP; return p }},
		{"v4 proto TCP for UDP", udp4, func(h *Hdr, p []byte) []byte { p[9] = protoTCP; return p }},
		{"v6 hop-by-hop", tcp6, func(h *Hdr, p []byte) []byte { p[6] = 0; return p }},
		{"v6 routing header", udp6, func(h *Hdr, p []byte) []byte { p[6] = 43; return p }},
		{"v6 fragment header", tcp6, func(h *Hdr, p []byte) []byte { p[6] = 44; return p }},
		{"v6 jumbo", tcp6, func(h *Hdr, p []byte) []byte { p[4], p[5] = 0, 0; return p }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, pkt := c.base()
			pkt = c.mut(&h, pkt)
			var s Splitter
			// A previous successful Reset must not leave segments behind.
			gh, gp := tcp4()
			if err := s.Reset(gh, gp); err != nil {
				t.Fatal(err)
			}
			err := s.Reset(h, pkt)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Reset err = %v, want ErrInvalid", err)
			}
			if err.Error() == ErrInvalid.Error() {
				t.Fatalf("error %q does not say what was wrong", err)
			}
			if s.Next() != 0 || s.Segments() != 0 {
				t.Fatal("segments after a failed Reset")
			}
			if err := s.Put(make([]byte, 100)); !errors.Is(err, ErrInvalid) {
				t.Fatal("Put after failed Reset did not fail")
			}
		})
	}
}

func TestSplitAllocs(t *testing.T) {
	h, pkt := superPacket(packettest.TCP4(packettest.Pattern(60000, 1)), 1448)
	h6, pkt6 := superPacket(packettest.UDP6(packettest.Pattern(20000, 1)), 1200)
	bad := Hdr{GSOType: GSOTCPv4, GSOSize: 1, Flags: FlagNeedsCsum}
	var s Splitter
	buf := make([]byte, 65536)
	allocs := testing.AllocsPerRun(20, func() {
		for _, c := range []struct {
			h Hdr
			p []byte
		}{{h, pkt}, {h6, pkt6}} {
			if err := s.Reset(c.h, c.p); err != nil {
				panic(err)
			}
			for n := s.Next(); n > 0; n = s.Next() {
				if err := s.Put(buf[:n]); err != nil {
					panic(err)
				}
			}
		}
		if s.Reset(bad, pkt[:10]) == nil {
			panic("accepted")
		}
		if s.Put(buf[:1]) == nil {
			panic("accepted")
		}
	})
	if allocs != 0 {
		t.Fatalf("split allocates %v times per run", allocs)
	}
}

// TestSplitRejectsOversizedSegments: a segment a ring record cannot hold is
// refused up front, for a GSO packet whose single segment would be too
// long and for a plain packet that is.
func TestSplitRejectsOversizedSegments(t *testing.T) {
	var s Splitter
	plain := make([]byte, MaxSegment+1)
	plain[0] = 0x45
	if err := s.Reset(Hdr{}, plain); !errors.Is(err, ErrInvalid) {
		t.Fatalf("plain packet of %d bytes: %v, want ErrInvalid", len(plain), err)
	}
	if err := s.Reset(Hdr{}, plain[:MaxSegment]); err != nil {
		t.Fatalf("plain packet of %d bytes: %v", MaxSegment, err)
	}
	// IPv6 payload of 65535 bytes (a 32-byte TCP header with options and
	// 65503 bytes of data) in one GSO segment: 40 + 65535 bytes.
	p := packettest.TCP6(packettest.Pattern(65535-20-len(packettest.TimestampOpts), 1))
	h, pkt := superPacket(p, 65535)
	if err := s.Reset(h, pkt); !errors.Is(err, ErrInvalid) {
		t.Fatalf("IPv6 super-packet with a %d-byte segment: %v, want ErrInvalid", len(pkt), err)
	}
	h.GSOSize = 1400
	if err := s.Reset(h, pkt); err != nil || s.Segments() < 2 {
		t.Fatalf("the same super-packet in 1400-byte segments: %v, %d segments", err, s.Segments())
	}
}
