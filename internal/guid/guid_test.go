package guid

import (
	"strings"
	"testing"
)

func TestGUIDString(t *testing.T) {
	g := GUID{0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x00, 0x11, 0x22, 0xff}
	const want = "{deadbeef-0123-4567-89ab-cdef001122ff}"
	if s := g.String(); s != want {
		t.Fatalf("String() = %q, want %q", s, want)
	}
	if s := (GUID{}).String(); s != "{00000000-0000-0000-0000-000000000000}" {
		t.Fatalf("zero GUID String() = %q", s)
	}
}

func TestParse(t *testing.T) {
	want := GUID{0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x00, 0x11, 0x22, 0xff}
	for _, s := range []string{
		"{deadbeef-0123-4567-89ab-cdef001122ff}",
		"deadbeef-0123-4567-89ab-cdef001122ff",
		"{DEADBEEF-0123-4567-89AB-CDEF001122FF}",
		"DeadBeef-0123-4567-89aB-CdEf001122Ff",
	} {
		g, err := Parse(s)
		if err != nil {
			t.Errorf("Parse(%q): %v", s, err)
			continue
		}
		if g != want {
			t.Errorf("Parse(%q) = %v, want %v", s, g, want)
		}
	}
}

func TestParseRoundTrip(t *testing.T) {
	for i := 0; i < 100; i++ {
		g := New()
		if g[6]>>4 != 4 || g[8]>>6 != 2 {
			t.Fatalf("New() = %v: not a version 4, variant 1 GUID", g)
		}
		back, err := Parse(g.String())
		if err != nil {
			t.Fatalf("Parse(%q): %v", g.String(), err)
		}
		if back != g {
			t.Fatalf("round trip of %v gave %v", g, back)
		}
	}
	if New() == New() {
		t.Fatal("two NewGUID calls returned the same GUID")
	}
}

func TestParseBad(t *testing.T) {
	for _, s := range []string{
		"",
		"{}",
		"{deadbeef-0123-4567-89ab-cdef001122ff", // one brace
		"deadbeef-0123-4567-89ab-cdef001122ff}", // the other
		"{{deadbeef-0123-4567-89ab-cdef001122ff}}", // two each
		"deadbeef-0123-4567-89ab-cdef001122f",      // short
		"deadbeef-0123-4567-89ab-cdef001122ff0",    // long
		"deadbeef0123-4567-89ab-cdef001122ff0",     // dash moved
		"deadbeef-01234567-89ab-cdef001122ff-",     // dashes moved
		"deadbeef_0123_4567_89ab_cdef001122ff",     // not dashes
		"deadbeeg-0123-4567-89ab-cdef001122ff",     // not hex
		"deadbeef-0123-4567-89ab-cdef001122f ",     // space
		"deadbeef-+123-4567-89ab-cdef001122ff",     // sign
		"deadbeef-0123-4567-89ab-cdef001122\u00ff", // non-ASCII, 36 bytes
		strings.Repeat("0", 32),                    // no dashes at all
	} {
		if g, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", s, g)
		} else if !strings.Contains(err.Error(), "invalid GUID") {
			t.Errorf("Parse(%q) error %q does not say invalid GUID", s, err)
		}
	}
}

// TestWindowsLayout pins the one conversion between ringtun's GUID and
// the Windows GUID struct that wintun.h uses: Data1 0xdeadbabe, Data2
// 0xcafe, Data3 0xbeef, each little-endian, then Data4 in order.
func TestWindowsLayout(t *testing.T) {
	g, err := Parse("{deadbabe-cafe-beef-0123-456789abcdef}")
	if err != nil {
		t.Fatal(err)
	}
	want := [16]byte{0xbe, 0xba, 0xad, 0xde, 0xfe, 0xca, 0xef, 0xbe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	if got := g.Windows(); got != want {
		t.Fatalf("Windows() = % x, want % x", got, want)
	}
	if back := FromWindows(want); back != g {
		t.Fatalf("FromWindows(% x) = %v, want %v", want, back, g)
	}
	for i := 0; i < 100; i++ {
		g := New()
		if FromWindows(g.Windows()) != g {
			t.Fatalf("round trip of %v through the Windows layout changed it", g)
		}
	}
}
