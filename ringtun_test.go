package ringtun

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, name := range []string{"a", "wg0", "Demo", "ringtun-test_01", strings.Repeat("x", 15), "tun.0", "é"} {
		if err := checkName(name); err != nil {
			t.Errorf("checkName(%q) = %v, want nil", name, err)
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
		err := checkName(name)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("checkName(%q) = %v, want ErrInvalidName", name, err)
		} else if !strings.Contains(err.Error(), "ringtun: invalid adapter name") {
			t.Errorf("checkName(%q) error %q", name, err)
		}
	}
}

func TestCheckTunnelType(t *testing.T) {
	for _, tt := range []string{"", "WireGuard", "Tunnel Type With Spaces", "ünïcode ✓", strings.Repeat("t", maxTunnelTypeLen)} {
		if err := checkTunnelType(tt); err != nil {
			t.Errorf("checkTunnelType(%q) = %v, want nil", tt, err)
		}
	}
	for _, tt := range []string{
		strings.Repeat("t", maxTunnelTypeLen+1),
		"a\nb",
		"a\tb",
		"a\x00b",
		"a\x7fb",
		"\xff\xfe", // not UTF-8
	} {
		if err := checkTunnelType(tt); !errors.Is(err, ErrInvalidName) {
			t.Errorf("checkTunnelType(%q) = %v, want ErrInvalidName", tt, err)
		}
	}
}

func TestAliasRoundTrip(t *testing.T) {
	g := GUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, m := range []adapterMeta{
		{guid: g, persistent: true, tunnelType: "WireGuard"},
		{guid: g, persistent: false, tunnelType: "Tunnel Type With  Spaces "},
		{guid: NewGUID(), persistent: false, tunnelType: DefaultTunnelType},
		{guid: NewGUID(), persistent: true, tunnelType: strings.Repeat("ü", maxTunnelTypeLen/2)},
	} {
		s := m.alias()
		if len(s) > 255 {
			t.Errorf("alias %q is %d bytes, over the kernel's 255", s, len(s))
		}
		back, ok := parseAlias(s)
		if !ok {
			t.Errorf("parseAlias(%q) refused its own alias", s)
			continue
		}
		if back != m {
			t.Errorf("parseAlias(%q) = %+v, want %+v", s, back, m)
		}
	}
	m := adapterMeta{guid: g, persistent: true, tunnelType: "Example"}
	if s, want := m.alias(), "ringtun/1 {01020304-0506-0708-090a-0b0c0d0e0f10} persistent Example"; s != want {
		t.Errorf("alias() = %q, want %q", s, want)
	}
	m.persistent = false
	if s, want := m.alias(), "ringtun/1 {01020304-0506-0708-090a-0b0c0d0e0f10} transient Example"; s != want {
		t.Errorf("alias() = %q, want %q", s, want)
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
		if m, ok := parseAlias(s); ok {
			t.Errorf("parseAlias(%q) = %+v, true; want false", s, m)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	p := netip.MustParsePrefix
	good := []Config{
		{},
		{Addresses: []netip.Prefix{}, Routes: []netip.Prefix{}},
		{Addresses: []netip.Prefix{p("198.18.7.7/24"), p("198.18.8.1/32"), p("2001:db8::1/64"), p("2001:db8:1::1/128")}},
		{Routes: []netip.Prefix{p("198.18.0.0/15"), p("2001:db8::/32"), p("198.18.9.9/24"), p("0.0.0.0/0"), p("::/0")}},
		{MTU: 68},
		{MTU: 1280},
		{MTU: 65535},
	}
	for _, c := range good {
		if err := c.validate(); err != nil {
			t.Errorf("%+v: validate() = %v, want nil", c, err)
		}
	}
	bad := []struct {
		c    Config
		item string
	}{
		{Config{MTU: 67}, "MTU 67"},
		{Config{MTU: 65536}, "MTU 65536"},
		{Config{MTU: -1}, "MTU -1"},
		{Config{Addresses: []netip.Prefix{p("198.18.7.7/24"), {}}}, "address invalid Prefix"},
		{Config{Addresses: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("198.18.7.7"), 33)}}, "address invalid Prefix"},
		{Config{Addresses: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("2001:db8::1"), 129)}}, "address invalid Prefix"},
		{Config{Routes: []netip.Prefix{p("198.18.0.0/15"), {}}}, "route invalid Prefix"},
		{Config{Routes: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("198.18.0.0"), -1)}}, "route invalid Prefix"},
		{Config{Addresses: []netip.Prefix{p("::ffff:198.18.7.7/120")}}, "address ::ffff:198.18.7.7/120"},
		{Config{Routes: []netip.Prefix{p("::ffff:198.18.0.0/111")}}, "route ::ffff:198.18.0.0/111"},
	}
	for _, b := range bad {
		err := b.c.validate()
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: validate() = %v, want ErrInvalidConfig", b.c, err)
			continue
		}
		if !strings.Contains(err.Error(), b.item) {
			t.Errorf("%+v: validate() = %q, does not name %q", b.c, err, b.item)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	kinds := []error{os.ErrClosed, os.ErrExist, os.ErrNotExist, os.ErrPermission}
	for _, c := range []struct {
		err  error
		kind error // nil: none of kinds
	}{
		{ErrSessionEnded, fs.ErrClosed},
		{ErrAdapterExists, fs.ErrExist},
		{ErrAdapterNotFound, fs.ErrNotExist},
		{ErrAccessDenied, fs.ErrPermission},
		{ErrNoMoreItems, nil},
		{ErrBufferOverflow, nil},
		{ErrInvalidData, nil},
		{ErrAlreadyInitialized, nil},
		{ErrInvalidCapacity, nil},
		{ErrInvalidPacketSize, nil},
		{ErrInvalidName, nil},
		{ErrInvalidConfig, nil},
	} {
		for _, k := range kinds {
			if got, want := errors.Is(c.err, k), k == c.kind; got != want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", c.err, k, got, want)
			}
			// The same through the wrapping the package does.
			wrapped := errors.Join(errors.New("context"), c.err)
			if got, want := errors.Is(wrapped, k), k == c.kind; got != want {
				t.Errorf("errors.Is(wrapped %v, %v) = %v, want %v", c.err, k, got, want)
			}
		}
		if !strings.HasPrefix(c.err.Error(), "ringtun: ") {
			t.Errorf("%q does not start with ringtun:", c.err)
		}
	}
	// Each error is its own: none matches another.
	all := []error{ErrNoMoreItems, ErrBufferOverflow, ErrInvalidData, ErrSessionEnded, ErrAlreadyInitialized,
		ErrInvalidCapacity, ErrInvalidPacketSize, ErrInvalidName, ErrAdapterExists, ErrAdapterNotFound,
		ErrAccessDenied, ErrInvalidConfig}
	for i, a := range all {
		for j, b := range all {
			if i != j && errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = true", a, b)
			}
		}
	}
}

func TestLogLevelString(t *testing.T) {
	for l, want := range map[LogLevel]string{LogInfo: "info", LogWarn: "warn", LogErr: "error", 7: "LogLevel(7)"} {
		if s := l.String(); s != want {
			t.Errorf("LogLevel(%d).String() = %q, want %q", int(l), s, want)
		}
	}
}

func TestRunningVersion(t *testing.T) {
	v, err := RunningVersion()
	if err != nil || v != Version {
		t.Fatalf("RunningVersion() = %#x, %v; want %#x, nil", v, err, Version)
	}
}
