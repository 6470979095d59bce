package offload

import (
	"github.com/ringtun/ringtun/internal/packettest"

	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"testing"
)

// clonePkts deep-copies a packet list.
func clonePkts(pkts [][]byte) [][]byte {
	out := make([][]byte, len(pkts))
	for i, p := range pkts {
		out[i] = bytes.Clone(p)
	}
	return out
}

// checkSingle checks that a write carries pkts[0] alone and unmodified.
func checkSingle(t *testing.T, pkts [][]byte, n int, vec [][]byte) {
	t.Helper()
	if n != 1 || len(vec) != 2 {
		t.Fatalf("n = %d, len(vec) = %d; want a single write", n, len(vec))
	}
	if !bytes.Equal(vec[0], make([]byte, HdrLen)) {
		t.Fatalf("single write vnet header % x, want zeros", vec[0])
	}
	if len(vec[1]) != len(pkts[0]) || (len(pkts[0]) > 0 && &vec[1][0] != &pkts[0][0]) {
		t.Fatal("single write does not carry pkts[0] itself")
	}
}

// unmerge turns a merged write back into packets through the Splitter.
func unmerge(vec [][]byte) ([][]byte, Hdr, error) {
	all := concat(vec)
	h, err := DecodeHdr(all)
	if err != nil {
		return nil, h, err
	}
	segs, err := splitAll(h, all[HdrLen:])
	return segs, h, err
}

// normalizeIDs returns copies of IPv4 packets with IDs first+i and the
// header checksum recomputed, as a merged write split again yields them.
func normalizeIDs(pkts [][]byte) [][]byte {
	out := clonePkts(pkts)
	if len(out) == 0 || len(out[0]) < 20 || out[0][0]>>4 != 4 {
		return out
	}
	id := binary.BigEndian.Uint16(out[0][4:])
	for i, p := range out {
		binary.BigEndian.PutUint16(p[4:], id+uint16(i))
		p[10], p[11] = 0, 0
		binary.BigEndian.PutUint16(p[10:], ^packettest.Sum(p[:20]))
	}
	return out
}

// checkMerged checks the merged write of pkts[:n] field by field and by
// round trip through the Splitter.
func checkMerged(t *testing.T, pkts [][]byte, n int, vec [][]byte) {
	t.Helper()
	if n < 2 || len(vec) != n+1 {
		t.Fatalf("n = %d, len(vec) = %d; want a merged write", n, len(vec))
	}
	h, err := DecodeHdr(vec[0])
	if err != nil {
		t.Fatal(err)
	}
	p0 := pkts[0]
	v6 := p0[0]>>4 == 6
	ipLen := 20
	if v6 {
		ipLen = 40
	}
	proto := p0[9]
	if v6 {
		proto = p0[6]
	}
	l4Hdr := 8
	wantType, wantOff := uint8(GSOUDPL4), uint16(6)
	if proto == protoTCP {
		l4Hdr = int(p0[ipLen+12]>>4) * 4
		wantType, wantOff = GSOTCPv4, 16
		if v6 {
			wantType = GSOTCPv6
		}
	}
	hdrLen := ipLen + l4Hdr
	want := Hdr{Flags: FlagNeedsCsum, GSOType: wantType, HdrLen: uint16(hdrLen),
		GSOSize: uint16(len(p0) - hdrLen), CsumStart: uint16(ipLen), CsumOffset: wantOff}
	if h != want {
		t.Fatalf("vnet header %+v, want %+v", h, want)
	}
	if len(vec[0]) != HdrLen+hdrLen {
		t.Fatalf("len(vec[0]) = %d, want %d", len(vec[0]), HdrLen+hdrLen)
	}
	total := 0
	for i := 0; i < n; i++ {
		if !bytes.Equal(vec[i+1], pkts[i][hdrLen:]) || &vec[i+1][0] != &pkts[i][hdrLen] {
			t.Fatalf("vec[%d] is not the payload of packet %d", i+1, i)
		}
		total += len(pkts[i]) - hdrLen
	}
	mh := vec[0][HdrLen:]
	l4len := l4Hdr + total
	if v6 {
		if got := int(binary.BigEndian.Uint16(mh[4:])); got != l4len {
			t.Fatalf("IPv6 payload length %d, want %d", got, l4len)
		}
	} else {
		if got := int(binary.BigEndian.Uint16(mh[2:])); got != 20+l4len {
			t.Fatalf("IPv4 total length %d, want %d", got, 20+l4len)
		}
		if packettest.Sum(mh[:20]) != 0xffff {
			t.Fatal("merged IPv4 header checksum does not verify")
		}
	}
	var src, dst []byte
	if v6 {
		src, dst = p0[8:24], p0[24:40]
	} else {
		src, dst = p0[12:16], p0[16:20]
	}
	partial := packettest.Sum(packettest.PseudoHeader(src, dst, proto, l4len))
	if got := binary.BigEndian.Uint16(mh[ipLen+int(wantOff):]); got != partial {
		t.Fatalf("L4 checksum field %#x, want folded pseudo-header sum %#x", got, partial)
	}
	if proto == protoUDP {
		if got := int(binary.BigEndian.Uint16(mh[ipLen+4:])); got != l4len {
			t.Fatalf("UDP length %d, want %d", got, l4len)
		}
	} else {
		lastPSH := pkts[n-1][ipLen+13] & tcpPSH
		if mh[ipLen+13] != tcpACK|lastPSH {
			t.Fatalf("merged TCP flags %#x", mh[ipLen+13])
		}
	}
	// The merged write, finished as the kernel would, has a valid checksum.
	full := concat(vec)[HdrLen:]
	if err := FinishChecksum(h, full); err != nil {
		t.Fatal(err)
	}
	if _, _, err := packettest.CheckWellFormed(full); err != nil {
		t.Fatalf("merged packet after FinishChecksum: %v", err)
	}

	segs, _, err := unmerge(vec)
	if err != nil {
		t.Fatalf("splitting the merged write: %v", err)
	}
	exp := normalizeIDs(pkts[:n])
	if len(segs) != n {
		t.Fatalf("round trip gave %d packets, want %d", len(segs), n)
	}
	for i := range segs {
		if !bytes.Equal(segs[i], exp[i]) {
			t.Fatalf("round trip packet %d differs:\n got % x\nwant % x", i, segs[i][:hdrLen], exp[i][:hdrLen])
		}
	}
}

// coalesce runs a Coalescer over pkts and checks that it leaves them alone.
func coalesce(t *testing.T, c *Coalescer, pkts [][]byte) (int, [][]byte) {
	t.Helper()
	orig := clonePkts(pkts)
	n, vec := c.Next(pkts)
	for i := range pkts {
		if !bytes.Equal(pkts[i], orig[i]) {
			t.Fatalf("Next modified packet %d", i)
		}
	}
	if n < 0 || n > len(pkts) || n > MaxRun || (len(pkts) > 0 && n == 0) {
		t.Fatalf("n = %d for %d packets", n, len(pkts))
	}
	return n, vec
}

func TestCoalesceCleanRuns(t *testing.T) {
	for _, c := range []struct {
		name  string
		spec  packettest.Spec
		sizes []int
		count int
		tcp   bool
		udp   bool
	}{
		{"tcp4", packettest.TCP4(nil), []int{1448}, 5, true, false},
		{"tcp6", packettest.TCP6(nil), []int{1428}, 7, true, true},
		{"tcp4 no options", func() packettest.Spec { p := packettest.TCP4(nil); p.TCPOpts = nil; return p }(), []int{1460}, 2, true, false},
		{"udp4", packettest.UDP4(nil), []int{1200}, 9, false, true},
		{"udp6", packettest.UDP6(nil), []int{1}, 3, true, true},
		{"tcp4 seq wrap", func() packettest.Spec { p := packettest.TCP4(nil); p.Seq = 0xffffff00; p.ID = 0xfffe; return p }(), []int{100}, 6, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			pkts := buildRun(c.spec, c.sizes, c.count)
			co := Coalescer{TCP: c.tcp, UDP: c.udp}
			n, vec := coalesce(t, &co, pkts)
			if n != c.count {
				t.Fatalf("n = %d, want %d", n, c.count)
			}
			checkMerged(t, pkts, n, vec)
		})
	}
}

func TestCoalesceEmpty(t *testing.T) {
	var c Coalescer
	if n, vec := c.Next(nil); n != 0 || vec != nil {
		t.Fatalf("Next(nil) = %d, %v", n, vec)
	}
	c.TCP = true
	// An empty packet is written alone.
	pkts := [][]byte{{}, {}}
	n, vec := coalesce(t, &c, pkts)
	checkSingle(t, pkts, n, vec)
}

func TestCoalesceDisabled(t *testing.T) {
	tcp := buildRun(packettest.TCP4(nil), []int{1448}, 4)
	udp := buildRun(packettest.UDP6(nil), []int{1000}, 4)
	for _, c := range []struct {
		co   Coalescer
		pkts [][]byte
	}{
		{Coalescer{}, tcp},
		{Coalescer{}, udp},
		{Coalescer{UDP: true}, tcp},
		{Coalescer{TCP: true}, udp},
	} {
		for i := range c.pkts {
			n, vec := coalesce(t, &c.co, c.pkts[i:])
			checkSingle(t, c.pkts[i:], n, vec)
		}
	}
}

// fixTCP4 recomputes the TCP checksum of an IPv4 packet without options.
func fixTCP4(p []byte) {
	p[36], p[37] = 0, 0
	binary.BigEndian.PutUint16(p[36:], ^packettest.Sum(packettest.PseudoHeader(p[12:16], p[16:20], protoTCP, len(p)-20), p[20:]))
}

// nonCanonicalTCP4 adjusts the last two bytes of an IPv4 TCP packet (even
// offset, payload >= 2) so that its correct checksum is 0x0000, then stores
// the equivalent 0xffff, which verifies too but would not survive a split.
func nonCanonicalTCP4(p []byte) {
	p[36], p[37] = 0, 0
	p[len(p)-2], p[len(p)-1] = 0, 0
	s := packettest.Sum(packettest.PseudoHeader(p[12:16], p[16:20], protoTCP, len(p)-20), p[20:])
	binary.BigEndian.PutUint16(p[len(p)-2:], ^s)
	if ^packettest.Sum(packettest.PseudoHeader(p[12:16], p[16:20], protoTCP, len(p)-20), p[20:]) != 0 {
		panic("nonCanonicalTCP4: could not reach checksum 0")
	}
	p[36], p[37] = 0xff, 0xff
	if packettest.Sum(packettest.PseudoHeader(p[12:16], p[16:20], protoTCP, len(p)-20), p[20:]) != 0xffff {
		panic("nonCanonicalTCP4: 0xffff does not verify")
	}
}

// ipv4Fix recomputes an IPv4 header checksum after a mutation.
func ipv4Fix(p []byte) {
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], ^packettest.Sum(p[:20]))
}

func TestCoalesceBreaks(t *testing.T) {
	// Packet 2 of a 5-packet run is replaced by one built from a mutated
	// spec (rebuilt with correct checksums unless said otherwise): the run
	// must stop before it (want 2) or, where noted, include it and stop
	// after it (want 3).
	type mutation struct {
		name string
		spec func(p *packettest.Spec) // change the spec of packet 2
		raw  func(p []byte) []byte    // or change the built bytes
		want int
	}
	// Expected run from the mutated packet on, where it is not 1.
	wantFirst := map[string]int{
		// As the first packet, 1201 sets the size and 1200 is a shorter last.
		"udp4/larger": 2,
	}
	tcp4 := []mutation{
		{"src", func(p *packettest.Spec) { p.Src = []byte{10, 0, 0, 2} }, nil, 2},
		{"dst", func(p *packettest.Spec) { p.Dst = []byte{10, 0, 0, 2} }, nil, 2},
		{"tos", func(p *packettest.Spec) { p.TOS = 4 }, nil, 2},
		{"ttl", func(p *packettest.Spec) { p.TTL = 63 }, nil, 2},
		{"df", func(p *packettest.Spec) { p.DF = false }, nil, 2},
		{"ip options", func(p *packettest.Spec) { p.IPOpts = []byte{1, 1, 1, 1} }, nil, 2},
		{"sport", func(p *packettest.Spec) { p.SrcPort++ }, nil, 2},
		{"dport", func(p *packettest.Spec) { p.DstPort++ }, nil, 2},
		{"ack", func(p *packettest.Spec) { p.Ack++ }, nil, 2},
		{"window", func(p *packettest.Spec) { p.Window++ }, nil, 2},
		{"urgent pointer", func(p *packettest.Spec) { p.Urgent = 1 }, nil, 2},
		{"data offset", func(p *packettest.Spec) { p.TCPOpts = append(bytes.Clone(p.TCPOpts), 1, 1, 1, 1) }, nil, 2},
		{"no options", func(p *packettest.Spec) { p.TCPOpts = nil }, nil, 2},
		{"option bytes", func(p *packettest.Spec) { o := bytes.Clone(p.TCPOpts); o[11]++; p.TCPOpts = o }, nil, 2},
		{"SYN", func(p *packettest.Spec) { p.Flags |= tcpSYN }, nil, 2},
		{"FIN", func(p *packettest.Spec) { p.Flags |= tcpFIN }, nil, 2},
		{"RST", func(p *packettest.Spec) { p.Flags |= tcpRST }, nil, 2},
		{"URG", func(p *packettest.Spec) { p.Flags |= tcpURG }, nil, 2},
		{"CWR", func(p *packettest.Spec) { p.Flags |= tcpCWR }, nil, 2},
		{"ECE", func(p *packettest.Spec) { p.Flags |= tcpECE }, nil, 2},
		{"no ACK", func(p *packettest.Spec) { p.Flags = tcpPSH }, nil, 2},
		{"seq gap", func(p *packettest.Spec) { p.Seq++ }, nil, 2},
		{"seq back", func(p *packettest.Spec) { p.Seq -= 1448 }, nil, 2},
		{"larger payload", func(p *packettest.Spec) { p.Payload = packettest.Pattern(1449, 2) }, nil, 2},
		{"empty payload", func(p *packettest.Spec) { p.Payload = nil }, nil, 2},
		{"UDP", func(p *packettest.Spec) { p.Proto = protoUDP }, nil, 2},
		{"IPv6", func(p *packettest.Spec) { p.V6, p.Src, p.Dst = true, packettest.Src6, packettest.Dst6 }, nil, 2},
		{"PSH ends run", func(p *packettest.Spec) { p.Flags |= tcpPSH }, nil, 3},
		{"shorter ends run", func(p *packettest.Spec) { p.Payload = packettest.Pattern(1000, 2) }, nil, 3},
		{"bad TCP checksum", nil, func(p []byte) []byte { p[36]++; return p }, 2},
		{"TCP checksum 0xffff", nil, func(p []byte) []byte { nonCanonicalTCP4(p); return p }, 2},
		{"payload changed", nil, func(p []byte) []byte { p[len(p)-1]++; return p }, 2},
		{"bad IPv4 checksum", nil, func(p []byte) []byte { p[10]++; return p }, 2},
		{"trailing byte", nil, func(p []byte) []byte { return append(p, 0) }, 2},
		{"total length short", nil, func(p []byte) []byte {
			binary.BigEndian.PutUint16(p[2:], uint16(len(p)-1))
			ipv4Fix(p)
			return p
		}, 2},
		{"more fragments", nil, func(p []byte) []byte { p[6] |= 0x20; ipv4Fix(p); return p }, 2},
		{"fragment offset", nil, func(p []byte) []byte { p[7] = 1; ipv4Fix(p); return p }, 2},
		{"reserved bit", nil, func(p []byte) []byte { p[6] |= 0x80; ipv4Fix(p); return p }, 2},
		{"version", nil, func(p []byte) []byte { p[0] = 0x55; ipv4Fix(p); return p }, 2},
		{"truncated", nil, func(p []byte) []byte { return p[:30] }, 2},
		{"header only", nil, func(p []byte) []byte { return p[:52] }, 2},
		{"empty", nil, func(p []byte) []byte { return nil }, 2},
	}
	tcp6 := []mutation{
		{"src", func(p *packettest.Spec) { p.Src = packettest.Dst6 }, nil, 2},
		{"dst", func(p *packettest.Spec) { p.Dst = packettest.Src6 }, nil, 2},
		{"traffic class", func(p *packettest.Spec) { p.TOS++ }, nil, 2},
		{"flow label", func(p *packettest.Spec) { p.Flow++ }, nil, 2},
		{"hop limit", func(p *packettest.Spec) { p.TTL++ }, nil, 2},
		{"IPv4", func(p *packettest.Spec) { p.V6, p.Src, p.Dst = false, packettest.Src4, packettest.Dst4 }, nil, 2},
		{"ack", func(p *packettest.Spec) { p.Ack-- }, nil, 2},
		{"seq gap", func(p *packettest.Spec) { p.Seq += 2 }, nil, 2},
		{"PSH ends run", func(p *packettest.Spec) { p.Flags |= tcpPSH }, nil, 3},
		{"shorter ends run", func(p *packettest.Spec) { p.Payload = packettest.Pattern(1, 2) }, nil, 3},
		{"next header", nil, func(p []byte) []byte { p[6] = 0; return p }, 2},
		{"payload length", nil, func(p []byte) []byte { p[5]--; return p }, 2},
		{"trailing byte", nil, func(p []byte) []byte { return append(p, 0) }, 2},
		{"bad TCP checksum", nil, func(p []byte) []byte { p[57]++; return p }, 2},
	}
	udp4 := []mutation{
		{"sport", func(p *packettest.Spec) { p.SrcPort++ }, nil, 2},
		{"dport", func(p *packettest.Spec) { p.DstPort++ }, nil, 2},
		{"ttl", func(p *packettest.Spec) { p.TTL++ }, nil, 2},
		{"TCP", func(p *packettest.Spec) { p.Proto = protoTCP; p.Flags = tcpACK }, nil, 2},
		{"larger", func(p *packettest.Spec) { p.Payload = packettest.Pattern(1201, 2) }, nil, 2},
		{"empty payload", func(p *packettest.Spec) { p.Payload = nil }, nil, 2},
		{"shorter ends run", func(p *packettest.Spec) { p.Payload = packettest.Pattern(1199, 2) }, nil, 3},
		{"zero checksum", nil, func(p []byte) []byte { p[26], p[27] = 0, 0; return p }, 2},
		{"bad checksum", nil, func(p []byte) []byte { p[27]++; return p }, 2},
		{"UDP length", nil, func(p []byte) []byte {
			binary.BigEndian.PutUint16(p[24:], binary.BigEndian.Uint16(p[24:])-1)
			binary.BigEndian.PutUint16(p[26:], binary.BigEndian.Uint16(p[26:])+1) // keep the sum
			return p
		}, 2},
	}
	udp6 := []mutation{
		{"flow label", func(p *packettest.Spec) { p.Flow++ }, nil, 2},
		{"shorter ends run", func(p *packettest.Spec) { p.Payload = packettest.Pattern(7, 2) }, nil, 3},
		{"zero checksum", nil, func(p []byte) []byte { p[46], p[47] = 0, 0; return p }, 2},
	}
	groups := []struct {
		name string
		base packettest.Spec
		size int
		co   Coalescer
		muts []mutation
	}{
		{"tcp4", packettest.TCP4(nil), 1448, Coalescer{TCP: true, UDP: true}, tcp4},
		{"tcp6", packettest.TCP6(nil), 1448, Coalescer{TCP: true, UDP: true}, tcp6},
		{"udp4", packettest.UDP4(nil), 1200, Coalescer{TCP: true, UDP: true}, udp4},
		{"udp6", packettest.UDP6(nil), 1200, Coalescer{TCP: true, UDP: true}, udp6},
	}
	for _, g := range groups {
		for _, m := range g.muts {
			t.Run(g.name+"/"+m.name, func(t *testing.T) {
				pkts := buildRun(g.base, []int{g.size}, 5)
				// Sanity: unmodified, the five merge.
				co := g.co
				if n, _ := coalesce(t, &co, pkts); n != 5 {
					t.Fatalf("clean run merged %d, want 5", n)
				}
				p := g.base
				p.Seq += 2 * uint32(g.size)
				p.ID += 2
				p.Payload = packettest.Pattern(g.size, 2)
				if m.spec != nil {
					m.spec(&p)
				}
				b := p.Build()
				if m.raw != nil {
					b = m.raw(b)
				}
				pkts[2] = b
				n, vec := coalesce(t, &co, pkts)
				if n != m.want {
					t.Fatalf("n = %d, want %d", n, m.want)
				}
				checkMerged(t, pkts, n, vec)
				// From the mutated packet on: written alone (it does not
				// follow on, or cannot start a run).
				n, vec = coalesce(t, &co, pkts[2:])
				if wf := wantFirst[g.name+"/"+m.name]; wf == 0 {
					checkSingle(t, pkts[2:], n, vec)
				} else {
					if n != wf {
						t.Fatalf("from packet 2: n = %d, want %d", n, wf)
					}
					checkMerged(t, pkts[2:], n, vec)
				}
			})
		}
	}
}

// TestCoalesceUDPZeroChecksum: a datagram whose correct checksum is 0xffff
// merges; the same datagram with 0 (no checksum, which verifies too) does not.
func TestCoalesceUDPZeroChecksum(t *testing.T) {
	for _, base := range []packettest.Spec{packettest.UDP4(nil), packettest.UDP6(nil)} {
		pkts := buildRun(base, []int{200}, 4)
		tuneZeroSum(pkts[2], 6)
		ip := len(pkts[2]) - 208
		co := Coalescer{UDP: true}
		pkts[2][ip+6], pkts[2][ip+7] = 0xff, 0xff
		n, vec := coalesce(t, &co, pkts)
		if n != 4 {
			t.Fatalf("with checksum 0xffff: n = %d, want 4", n)
		}
		checkMerged(t, pkts, n, vec)
		pkts[2][ip+6], pkts[2][ip+7] = 0, 0
		if n, vec = coalesce(t, &co, pkts); n != 2 {
			t.Fatalf("with checksum 0: n = %d, want 2", n)
		}
		checkMerged(t, pkts, n, vec)
		n, vec = coalesce(t, &co, pkts[2:])
		checkSingle(t, pkts[2:], n, vec)
	}
}

func TestCoalesceFirstBad(t *testing.T) {
	// A first packet that cannot start a run is written alone even when
	// the rest would merge.
	for _, c := range []struct {
		name string
		mut  func(p []byte) []byte
	}{
		{"bad TCP checksum", func(p []byte) []byte { p[37]++; return p }},
		{"bad IP checksum", func(p []byte) []byte { p[11]++; return p }},
		{"PSH", func(p []byte) []byte { p[33] |= tcpPSH; fixTCP4(p); return p }},
		{"TCP checksum 0xffff", func(p []byte) []byte { nonCanonicalTCP4(p); return p }},
		{"trailing", func(p []byte) []byte { return append(p, 0) }},
		{"data offset 4", func(p []byte) []byte { p[32] = 4 << 4; return p }},
		{"data offset beyond", func(p []byte) []byte { return p[:20+20+4] }},
		{"short", func(p []byte) []byte { return p[:19] }},
		{"version 0", func(p []byte) []byte { p[0] = 0; return p }},
		{"IPv6 short", func(p []byte) []byte { p[0] = 0x60; return p[:39] }},
		{"TCP header cut", func(p []byte) []byte {
			p = p[:35]
			binary.BigEndian.PutUint16(p[2:], 35)
			ipv4Fix(p)
			return p
		}},
		{"UDP header cut", func(p []byte) []byte {
			p = p[:27]
			p[9] = protoUDP
			binary.BigEndian.PutUint16(p[2:], 27)
			ipv4Fix(p)
			return p
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pkts := buildRun(packettest.TCP4(nil), []int{500}, 4)
			pkts[0] = c.mut(pkts[0])
			co := Coalescer{TCP: true, UDP: true}
			n, vec := coalesce(t, &co, pkts)
			checkSingle(t, pkts, n, vec)
			n, vec = coalesce(t, &co, pkts[1:])
			if n != 3 {
				t.Fatalf("rest merged %d, want 3", n)
			}
			checkMerged(t, pkts[1:], n, vec)
		})
	}
}

func TestCoalesceLimits(t *testing.T) {
	co := Coalescer{TCP: true, UDP: true}
	// Packet count limit.
	pkts := buildRun(packettest.TCP4(nil), []int{100}, 70)
	n, vec := coalesce(t, &co, pkts)
	if n != MaxRun || MaxRun != 64 {
		t.Fatalf("n = %d, want %d", n, MaxRun)
	}
	checkMerged(t, pkts, n, vec)
	n, vec = coalesce(t, &co, pkts[n:])
	if n != 6 {
		t.Fatalf("rest: n = %d, want 6", n)
	}
	checkMerged(t, pkts[64:], n, vec)

	// Length limit: IPv4 total length 20+32+k*1448 <= 65535 gives k = 45.
	pkts = buildRun(packettest.TCP4(nil), []int{1448}, 50)
	n, vec = coalesce(t, &co, pkts)
	if n != 45 {
		t.Fatalf("IPv4 length limit: n = %d, want 45", n)
	}
	checkMerged(t, pkts, n, vec)

	noOpts := func(p packettest.Spec) packettest.Spec { p.TCPOpts = nil; return p }
	for _, c := range []struct {
		name   string
		spec   packettest.Spec
		size   int
		want   int
		length int // merged IPv4 total length or IPv6 payload length
	}{
		// 40 + 5*13099 == 65535 exactly; one byte more per packet: 4 fit.
		{"tcp4 exact", noOpts(packettest.TCP4(nil)), 13099, 5, 65535},
		{"tcp4 over", noOpts(packettest.TCP4(nil)), 13100, 4, 40 + 4*13100},
		// IPv6 counts the payload length only: 20 + 5*13103 == 65535.
		{"tcp6 exact", noOpts(packettest.TCP6(nil)), 13103, 5, 65535},
		{"tcp6 over", noOpts(packettest.TCP6(nil)), 13104, 4, 20 + 4*13104},
		// UDP: 28 + 13*5039 == 65535.
		{"udp4 exact", packettest.UDP4(nil), 5039, 13, 65535},
		{"udp4 over", packettest.UDP4(nil), 5040, 12, 28 + 12*5040},
		{"udp6 exact", packettest.UDP6(nil), 5039, 13, 8 + 13*5039},
	} {
		pkts := buildRun(c.spec, []int{c.size}, c.want+2)
		n, vec := coalesce(t, &co, pkts)
		if n != c.want {
			t.Fatalf("%s: n = %d, want %d", c.name, n, c.want)
		}
		checkMerged(t, pkts, n, vec)
		off := 2
		if c.spec.V6 {
			off = 4
		}
		if got := int(binary.BigEndian.Uint16(vec[0][HdrLen+off:])); got != c.length {
			t.Fatalf("%s: merged length %d, want %d", c.name, got, c.length)
		}
	}
}

// TestCoalesceRoundTrip runs the Coalescer over random mixes of flows and
// checks that every write, split again, gives back the input packets.
func TestCoalesceRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	bases := []packettest.Spec{packettest.TCP4(nil), packettest.TCP6(nil), packettest.UDP4(nil), packettest.UDP6(nil)}
	for iter := 0; iter < 300; iter++ {
		var pkts [][]byte
		for len(pkts) < 150 {
			b := bases[rng.Intn(len(bases))]
			b.Seq = rng.Uint32()
			b.ID = uint16(rng.Uint32())
			b.SrcPort = uint16(rng.Intn(3))
			size := 1 + rng.Intn(1500)
			count := 1 + rng.Intn(80)
			sizes := []int{size}
			if rng.Intn(3) == 0 {
				sizes = append(sizes, 1+rng.Intn(size))
			}
			pkts = append(pkts, buildRun(b, sizes, count)...)
		}
		co := Coalescer{TCP: iter%4 != 1, UDP: iter%4 != 2}
		for i := 0; i < len(pkts); {
			n, vec := coalesce(t, &co, pkts[i:])
			if n == 1 {
				checkSingle(t, pkts[i:], n, vec)
			} else {
				checkMerged(t, pkts[i:], n, vec)
			}
			i += n
		}
	}
}

func TestCoalesceAllocs(t *testing.T) {
	pkts := buildRun(packettest.TCP4(nil), []int{1448}, 44)
	pkts = append(pkts, buildRun(packettest.UDP6(nil), []int{1200}, 10)...)
	pkts = append(pkts, []byte{1, 2, 3})
	co := Coalescer{TCP: true, UDP: true}
	var writes int
	allocs := testing.AllocsPerRun(20, func() {
		writes = 0
		for i := 0; i < len(pkts); writes++ {
			n, _ := co.Next(pkts[i:])
			i += n
		}
	})
	if allocs != 0 {
		t.Fatalf("Coalescer.Next allocates %v times per run", allocs)
	}
	if writes != 3 {
		t.Fatalf("%d writes, want 3", writes)
	}
}

func ExampleCoalescer() {
	p := packettest.TCP4(nil)
	pkts := buildRun(p, []int{1000, 1000, 400}, 3)
	c := Coalescer{TCP: true}
	n, vec := c.Next(pkts)
	h, _ := DecodeHdr(vec[0])
	fmt.Println(n, len(vec), h.GSOType == GSOTCPv4, h.GSOSize, h.HdrLen)
	// Output: 3 4 true 1000 52
}
