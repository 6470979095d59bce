package offload

import (
	"github.com/ringtun/ringtun/internal/packettest"

	"bytes"
	"errors"
	"testing"
)

// record joins a header and a packet into a record.
func record(h Hdr, pkt []byte) []byte { return append(encodeHdr(h), pkt...) }

// TestSplitRecord checks SplitRecord against the Splitter on the
// hand-built super-packets: the same segments, at the offset asked for.
func TestSplitRecord(t *testing.T) {
	cases := map[string]struct {
		h   Hdr
		pkt []byte
	}{}
	add := func(name string, h Hdr, pkt []byte) {
		cases[name] = struct {
			h   Hdr
			pkt []byte
		}{h, pkt}
	}
	h, p := superPacket(packettest.TCP4(packettest.Pattern(4000, 1)), 1448)
	add("tcp4", h, p)
	h, p = superPacket(packettest.TCP6(packettest.Pattern(3000, 2)), 1000)
	add("tcp6", h, p)
	h, p = superPacket(packettest.UDP4(packettest.Pattern(2500, 3)), 1200)
	add("udp4", h, p)
	h, p = superPacket(packettest.UDP6(packettest.Pattern(100, 4)), 1200)
	add("udp6 one segment", h, p)
	add("plain", Hdr{}, packettest.UDP4(packettest.Pattern(64, 5)).Build())
	h, p = partialPacket(packettest.TCP6(packettest.Pattern(300, 6)))
	add("partial checksum", h, p)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := splitAll(c.h, c.pkt)
			if err != nil {
				t.Fatal(err)
			}
			rec := record(c.h, c.pkt)
			if err := CheckRecord(rec); err != nil {
				t.Fatalf("CheckRecord: %v", err)
			}
			const off = 16
			bufs := make([][]byte, len(want)+2)
			for i := range bufs {
				bufs[i] = make([]byte, off+1500)
			}
			sizes := make([]int, len(bufs))
			n, err := SplitRecord(rec, bufs, sizes, off)
			if err != nil || n != len(want) {
				t.Fatalf("SplitRecord = %d, %v; want %d segments", n, err, len(want))
			}
			for i := range n {
				if got := bufs[i][off : off+sizes[i]]; !bytes.Equal(got, want[i]) {
					t.Errorf("segment %d differs from the Splitter's", i)
				}
				if _, _, err := packettest.CheckWellFormed(want[i]); err != nil {
					t.Errorf("segment %d: %v", i, err)
				}
			}
			// Too few buffers, or too short ones: nothing written.
			if len(want) > 1 {
				if _, err := SplitRecord(rec, bufs[:len(want)-1], sizes, off); !errors.Is(err, ErrShortBuffer) {
					t.Errorf("too few buffers: %v, want ErrShortBuffer", err)
				}
			}
			short := [][]byte{make([]byte, off+len(want[0])-1)}
			if _, err := SplitRecord(rec, short, sizes, off); !errors.Is(err, ErrShortBuffer) {
				t.Errorf("short buffer: %v, want ErrShortBuffer", err)
			}
		})
	}
}

// TestCheckRecordRefuses lists records CheckRecord must refuse: each is a
// good record with one thing wrong.
func TestCheckRecordRefuses(t *testing.T) {
	good := func() (Hdr, []byte) { return superPacket(packettest.TCP4(packettest.Pattern(3000, 1)), 1448) }
	plain := packettest.UDP6(packettest.Pattern(50, 2)).Build()
	cases := map[string][]byte{
		"empty":            nil,
		"header only":      make([]byte, HdrLen),
		"truncated header": make([]byte, HdrLen-1),
		"not IP":           record(Hdr{}, []byte{0x15, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
		"plain, one byte short": func() []byte {
			return record(Hdr{}, plain[:len(plain)-1])
		}(),
		"plain, one byte long":      record(Hdr{}, append(bytes.Clone(plain), 0)),
		"unknown flag":              record(Hdr{Flags: 4}, plain),
		"checksum in the IP header": record(Hdr{Flags: FlagNeedsCsum, CsumStart: 0, CsumOffset: 0}, plain),
		"checksum offset outside":   record(Hdr{Flags: FlagNeedsCsum, CsumStart: uint16(len(plain) - 4), CsumOffset: 6}, plain),
	}
	h, p := good()
	h.HdrLen = uint16(len(p) + 1)
	cases["header length beyond the packet"] = record(h, p)
	h, p = good()
	h.GSOSize = 0
	cases["GSO size zero"] = record(h, p)
	h, p = good()
	h.GSOType = GSOUDPL4
	cases["GSO type of another protocol"] = record(h, p)
	h, p = good()
	h.GSOType = GSOTCPv6
	cases["GSO type of another IP version"] = record(h, p)
	h, p = good()
	h.CsumStart++
	cases["checksum start not the L4 header"] = record(h, p)
	h, p = good()
	h.Flags = 0
	cases["GSO without a partial checksum"] = record(h, p)
	h, p = good()
	cases["super-packet, IP length short"] = record(h, p[:len(p)-1])

	for name, rec := range cases {
		if err := CheckRecord(rec); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: CheckRecord = %v, want ErrInvalid", name, err)
		}
		bufs := [][]byte{make([]byte, 2000), make([]byte, 2000), make([]byte, 2000)}
		if n, err := SplitRecord(rec, bufs, make([]int, 3), 0); n != 0 || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: SplitRecord = %d, %v, want ErrInvalid", name, n, err)
		}
	}
	h, p = good()
	if err := CheckRecord(record(h, p)); err != nil {
		t.Fatalf("the good record: %v", err)
	}
}

// FuzzCheckRecord feeds CheckRecord any bytes: it must not panic, must
// not change its input, and a record it accepts must split into packets
// that are each well-formed plain records.
func FuzzCheckRecord(f *testing.F) {
	for _, s := range splitSeeds() {
		f.Add(append(bytes.Clone(s[0]), s[1]...))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		orig := bytes.Clone(rec)
		err := CheckRecord(rec)
		if !bytes.Equal(rec, orig) {
			t.Fatal("CheckRecord changed its input")
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		bufs := make([][]byte, 70)
		for i := range bufs {
			bufs[i] = make([]byte, HdrLen+MaxSegment)
		}
		sizes := make([]int, len(bufs))
		n, err := SplitRecord(rec, bufs, sizes, HdrLen)
		if errors.Is(err, ErrShortBuffer) {
			return // more segments than buffers: fine
		}
		if err != nil || n == 0 {
			t.Fatalf("CheckRecord accepted a record SplitRecord refuses: %d, %v", n, err)
		}
		for i := range n {
			seg := bufs[i][:HdrLen+sizes[i]]
			clear(seg[:HdrLen])
			if err := CheckRecord(seg); err != nil {
				t.Fatalf("segment %d of an accepted record is no record: %v", i, err)
			}
		}
	})
}
