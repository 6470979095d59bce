package control

import (
	"errors"
	"strings"
	"testing"

	"github.com/ringtun/ringtun/internal/errs"
	"github.com/ringtun/ringtun/internal/guid"
)

func TestCheckName(t *testing.T) {
	for _, name := range []string{"a", "wg0", "Demo", "ringtun-test_01", strings.Repeat("x", 15), "tun.0", "é"} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{
		"",                      // empty
		strings.Repeat("x", 16), // 16 bytes: over IFNAMSIZ-1
		"ééééééééé",             // 9 runes, 18 bytes
		".",
		"..",
		"/",
		"a/b",
		":",
		"eth0:1", // the kernel's alias syntax
		" ",
		"a b",
		"a\tb",
		"a\nb",
		"a\rb",
		"a\vb",
		"a\fb",
		"a\x00b",
		"a\x7fb",
		"tun%d", // a template: the kernel would pick another name
		"%",
	} {
		err := CheckName(name)
		if !errors.Is(err, errs.InvalidName) {
			t.Errorf("CheckName(%q) = %v, want errs.InvalidName", name, err)
		} else if !strings.Contains(err.Error(), "ringtun: invalid adapter name") {
			t.Errorf("CheckName(%q) error %q", name, err)
		}
	}
}

func TestCheckTunnelType(t *testing.T) {
	for _, tt := range []string{"", "WireGuard", "Tunnel Type With Spaces", "ünïcode ✓", strings.Repeat("t", MaxTunnelTypeLen)} {
		if err := CheckTunnelType(tt); err != nil {
			t.Errorf("CheckTunnelType(%q) = %v, want nil", tt, err)
		}
	}
	for _, tt := range []string{
		strings.Repeat("t", MaxTunnelTypeLen+1),
		"a\nb",
		"a\tb",
		"a\x00b",
		"a\x7fb",
		"\xff\xfe", // not UTF-8
	} {
		if err := CheckTunnelType(tt); !errors.Is(err, errs.InvalidName) {
			t.Errorf("CheckTunnelType(%q) = %v, want errs.InvalidName", tt, err)
		}
	}
}

func TestAliasRoundTrip(t *testing.T) {
	g := guid.GUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, m := range []Meta{
		{GUID: g, Persistent: true, TunnelType: "WireGuard"},
		{GUID: g, Persistent: false, TunnelType: "Tunnel Type With  Spaces "},
		{GUID: guid.New(), Persistent: false, TunnelType: "ringtun"},
		{GUID: guid.New(), Persistent: true, TunnelType: strings.Repeat("ü", MaxTunnelTypeLen/2)},
	} {
		s := m.Alias()
		if len(s) > 255 {
			t.Errorf("Alias %q is %d bytes, over the kernel's 255", s, len(s))
		}
		back, ok := ParseAlias(s)
		if !ok {
			t.Errorf("ParseAlias(%q) refused its own alias", s)
			continue
		}
		if back != m {
			t.Errorf("ParseAlias(%q) = %+v, want %+v", s, back, m)
		}
	}
	m := Meta{GUID: g, Persistent: true, TunnelType: "Example"}
	if s, want := m.Alias(), "ringtun/1 {01020304-0506-0708-090a-0b0c0d0e0f10} persistent Example"; s != want {
		t.Errorf("Alias() = %q, want %q", s, want)
	}
	m.Persistent = false
	if s, want := m.Alias(), "ringtun/1 {01020304-0506-0708-090a-0b0c0d0e0f10} transient Example"; s != want {
		t.Errorf("Alias() = %q, want %q", s, want)
	}
}

func TestParseAliasForeign(t *testing.T) {
	for _, s := range []string{
		"",
		"my uplink",
		"ringtun",
		"ringtun/1",
		"ringtun/1 ",
		"ringtun/2 {01020304-0506-0708-090a-0b0c0d0e0f10} persistent Example",
		"Ringtun/1 {01020304-0506-0708-090a-0b0c0d0e0f10} persistent Example",
		" ringtun/1 {01020304-0506-0708-090a-0b0c0d0e0f10} persistent Example",
		"ringtun/1 {01020304-0506-0708-090a-0b0c0d0e0f10}",
		"ringtun/1 {01020304-0506-0708-090a-0b0c0d0e0f10} persistent",
		"ringtun/1 {01020304-0506-0708-090a-0b0c0d0e0f10} forever Example",
		"ringtun/1 {01020304-0506-0708-090a-0b0c0d0e0f1} persistent Example",
		"ringtun/1 not-a-guid persistent Example",
		"ringtun/1  {01020304-0506-0708-090a-0b0c0d0e0f10} persistent Example",
	} {
		if m, ok := ParseAlias(s); ok {
			t.Errorf("ParseAlias(%q) = %+v, true; want false", s, m)
		}
	}
}
