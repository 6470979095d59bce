package ringtun

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"testing"
)

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
	kinds := []error{os.ErrClosed, os.ErrExist, os.ErrNotExist, os.ErrPermission, errors.ErrUnsupported}
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
		{ErrRouteConflict, nil},
		{ErrNotSupported, errors.ErrUnsupported},
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
