package ringtun

// Configure: addresses, routes, MTU, applied declaratively and whole, and
// its errors.

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ringtun/ringtun/netcfg"
)

// prefixes sorts and returns ps.
func prefixes(ps ...netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, netip.Prefix.Compare)
	return ps
}

// readConfig reads an interface's configuration back.
func readConfig(t testing.TB, index int) Config {
	t.Helper()
	var c Config
	withNetcfg(t, func(nc *netcfg.Conn) {
		var err error
		if c.Addresses, err = nc.Addresses(index); err != nil {
			t.Fatal(err)
		}
		routes, err := nc.Routes(index)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			c.Routes = append(c.Routes, r.Prefix)
		}
		l, err := nc.LinkByIndex(index)
		if err != nil {
			t.Fatal(err)
		}
		if !l.Up {
			t.Errorf("interface %d is down", index)
		}
		c.MTU = l.MTU
	})
	c.Addresses, c.Routes = prefixes(c.Addresses...), prefixes(c.Routes...)
	return c
}

func wantConfig(t testing.TB, a *Adapter, want Config) {
	t.Helper()
	got := readConfig(t, int(a.LUID()))
	want.Addresses, want.Routes = prefixes(want.Addresses...), prefixes(want.Routes...)
	if !slices.Equal(got.Addresses, want.Addresses) || !slices.Equal(got.Routes, want.Routes) || got.MTU != want.MTU {
		t.Fatalf("configuration read back:\n got %v\nwant %v", got, want)
	}
}

// ipState is everything ip(8) shows of the interface's addresses and
// routes, to compare before and after a Configure that should change
// nothing.
func ipState(t testing.TB, name string) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"addr", "show", "dev", name},
		{"-4", "route", "show", "table", "all", "dev", name},
		{"-6", "route", "show", "table", "all", "dev", name},
	} {
		out, err := ipCmd(args...)
		if err != nil {
			t.Fatal(err)
		}
		// Address lifetimes count down, and the kernel sets up the IPv6
		// link-local address, its routes and the multicast route in its
		// own time; the rest must not move.
		for _, line := range strings.Split(out, "\n") {
			if !strings.Contains(line, "valid_lft") && !strings.Contains(line, "fe80:") && !strings.Contains(line, "ff00::/8") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

func TestConfigure(t *testing.T) {
	ns := newNS(t)
	p := netip.MustParsePrefix
	in(t, ns, func() error {
		a := mustCreate(t, "cfg0", "Test", AdapterOptions{})
		defer mustClose(t, a)
		full := Config{
			Addresses: []netip.Prefix{p("198.18.10.1/24"), p("198.18.11.1/24"), p("198.18.12.1/32"),
				p("2001:db8:10::1/64"), p("2001:db8:11::1/64"), p("2001:db8:12::1/128")},
			Routes: []netip.Prefix{p("198.18.20.0/24"), p("198.18.21.0/24"), p("198.18.128.0/17"),
				p("2001:db8:20::/48"), p("2001:db8:21::/64")},
			MTU: 1400,
		}
		if err := a.Configure(full); err != nil {
			t.Fatal(err)
		}
		wantConfig(t, a, full)
		state := ipState(t, "cfg0")
		// Twice changes nothing.
		if err := a.Configure(full); err != nil {
			t.Fatal(err)
		}
		wantConfig(t, a, full)
		if again := ipState(t, "cfg0"); again != state {
			t.Errorf("a second Configure changed the interface:\n%s\nwas\n%s", again, state)
		}

		// Zero fields leave things as they are.
		if err := a.Configure(Config{}); err != nil {
			t.Fatal(err)
		}
		wantConfig(t, a, full)
		if err := a.Configure(Config{MTU: 1280}); err != nil {
			t.Fatal(err)
		}
		full.MTU = 1280
		wantConfig(t, a, full)

		// A smaller set removes the rest.
		small := Config{Addresses: []netip.Prefix{p("198.18.11.1/24"), p("2001:db8:10::1/64")},
			Routes: []netip.Prefix{p("198.18.21.0/24"), p("2001:db8:21::/64")}, MTU: 1500}
		if err := a.Configure(small); err != nil {
			t.Fatal(err)
		}
		wantConfig(t, a, small)
		// Routes alone; the address set alone.
		if err := a.Configure(Config{Routes: []netip.Prefix{p("198.18.22.5/24")}}); err != nil {
			t.Fatal(err)
		}
		small.Routes = []netip.Prefix{p("198.18.22.0/24")} // stored masked
		wantConfig(t, a, small)
		state = ipState(t, "cfg0")
		if err := a.Configure(Config{Routes: []netip.Prefix{p("198.18.22.5/24")}}); err != nil {
			t.Fatal(err)
		}
		if again := ipState(t, "cfg0"); again != state {
			t.Errorf("a second Configure with an unmasked route changed the interface:\n%s\nwas\n%s", again, state)
		}
		if err := a.Configure(Config{Routes: []netip.Prefix{}}); err != nil {
			t.Fatal(err)
		}
		small.Routes = nil
		wantConfig(t, a, small)
		if err := a.Configure(Config{Addresses: []netip.Prefix{}}); err != nil {
			t.Fatal(err)
		}
		small.Addresses = nil
		wantConfig(t, a, small)

		// CreateAdapterWithOptions applies its Config the same way.
		b := mustCreate(t, "cfg1", "Test", AdapterOptions{Config: &full})
		defer mustClose(t, b)
		wantConfig(t, b, full)
		return nil
	})
}

func TestConfigureSameSubnet(t *testing.T) {
	ns := newNS(t)
	p := netip.MustParsePrefix
	in(t, ns, func() error {
		a := mustCreate(t, "sub0", "Test", AdapterOptions{})
		defer mustClose(t, a)
		for _, addrs := range [][]netip.Prefix{
			{p("198.18.10.1/24"), p("198.18.10.2/24"), p("198.18.10.3/24")},
			// Dropping the primary address must keep the secondaries
			// that stay (the kernel deletes them with it).
			{p("198.18.10.2/24"), p("198.18.10.3/24")},
			{p("198.18.10.3/24"), p("198.18.10.4/24")},
			{p("198.18.10.5/24")},
			{p("198.18.10.5/25")},
			{p("198.18.10.5/24"), p("198.18.10.6/24"), p("198.18.10.7/24")},
			{p("198.18.10.7/24")},
		} {
			cfg := Config{Addresses: addrs, MTU: 1500}
			if err := a.Configure(cfg); err != nil {
				t.Fatalf("Configure %v: %v", addrs, err)
			}
			wantConfig(t, a, cfg)
		}
		return nil
	})
}

func TestConfigureErrors(t *testing.T) {
	ns := newNS(t)
	p := netip.MustParsePrefix
	in(t, ns, func() error {
		base := Config{Addresses: []netip.Prefix{p("198.18.13.1/24"), p("2001:db8:13::1/64")}, Routes: []netip.Prefix{p("198.18.23.0/24")}, MTU: 1500}
		a := mustCreate(t, "err0", "Test", AdapterOptions{Config: &base})
		defer mustClose(t, a)
		wantConfig(t, a, base)
		for _, c := range []Config{
			{MTU: 67},
			{MTU: 65536},
			{MTU: -1},
			{Addresses: []netip.Prefix{p("198.18.14.1/24"), {}}},
			{Addresses: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("198.18.14.1"), 33)}, MTU: 1400},
			{Routes: []netip.Prefix{{}}, MTU: 1400},
		} {
			wantErr(t, fmt.Sprintf("Configure(%v)", c), a.Configure(c), ErrInvalidConfig)
			wantConfig(t, a, base) // nothing applied
		}
		// Items the adapter cannot take: below an MTU of 1280 an
		// interface has no IPv6. They are refused before anything
		// changes.
		for _, c := range []struct {
			cfg  Config
			item string
		}{
			{Config{MTU: 1000, Routes: []netip.Prefix{p("198.18.24.0/24"), p("2001:db8:24::/48")}}, "route 2001:db8:24::/48"},
			{Config{MTU: 1000, Addresses: []netip.Prefix{p("198.18.13.1/24"), p("2001:db8:14::1/64")}}, "address 2001:db8:14::1/64"},
		} {
			err := a.Configure(c.cfg)
			wantErr(t, fmt.Sprintf("Configure(%v)", c.cfg), err, ErrInvalidConfig)
			if err == nil || !strings.Contains(err.Error(), c.item) || !strings.Contains(err.Error(), "err0") {
				t.Errorf("Configure(%v) = %v, want an error naming err0 and %s", c.cfg, err, c.item)
			}
			wantConfig(t, a, base)
		}
		if err := a.Configure(base); err != nil {
			t.Fatal(err)
		}
		wantConfig(t, a, base)

		// A Config that fails at creation leaves no adapter.
		for _, persistent := range []bool{false, true} {
			cfg := Config{MTU: 1000, Addresses: []netip.Prefix{p("2001:db8:15::1/64")}}
			b, err := CreateAdapterWithOptions("err1", "Test", AdapterOptions{Persistent: persistent, Config: &cfg})
			if err == nil || !strings.Contains(err.Error(), "2001:db8:15::1/64") {
				t.Errorf("CreateAdapterWithOptions(persistent %v, %v) = %v, want an error naming the address", persistent, cfg, err)
			}
			if b != nil {
				t.Fatal("CreateAdapterWithOptions returned an adapter with its error")
			}
			wantLinks(t, "err0", "lo")
		}
		return nil
	})
}
