package ringtun

import "testing"

// TestGUIDPublicForms checks the exported GUID functions against fixed
// values; internal/guid tests the parsing rules in depth.
func TestGUIDPublicForms(t *testing.T) {
	const text = "{deadbabe-cafe-beef-0123-456789abcdef}"
	g, err := ParseGUID("DEADBABE-CAFE-BEEF-0123-456789ABCDEF")
	if err != nil {
		t.Fatal(err)
	}
	if g != (GUID{0xde, 0xad, 0xba, 0xbe, 0xca, 0xfe, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}) {
		t.Fatalf("ParseGUID gave % x", g)
	}
	if s := g.String(); s != text {
		t.Fatalf("String() = %q, want %q", s, text)
	}
	win := [16]byte{0xbe, 0xba, 0xad, 0xde, 0xfe, 0xca, 0xef, 0xbe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	if got := g.WindowsLayout(); got != win {
		t.Fatalf("WindowsLayout() = % x, want % x", got, win)
	}
	if back := GUIDFromWindowsLayout(win); back != g {
		t.Fatalf("GUIDFromWindowsLayout = %v, want %v", back, g)
	}
	if _, err := ParseGUID("{deadbabe-cafe-beef-0123-456789abcdeg}"); err == nil {
		t.Fatal("ParseGUID took a non-hex digit")
	}
	if a, b := NewGUID(), NewGUID(); a == b || a[6]>>4 != 4 {
		t.Fatalf("NewGUID gave %v and %v", a, b)
	}
}
