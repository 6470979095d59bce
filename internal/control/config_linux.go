package control

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ringtun/ringtun/internal/errs"
	"github.com/ringtun/ringtun/netcfg"
)

// ipv6MinMTU is the smallest MTU IPv6 works with: below it the kernel
// drops the interface's IPv6 addresses and routes and refuses new ones.
const ipv6MinMTU = 1280

// linkState is the part of an interface that Configure may change, as it
// was before, to put back if the kernel refuses part of a Config.
type linkState struct {
	mtu       int
	up        bool
	addresses []netip.Prefix
	routes    []netcfg.Route
}

func readState(nc *netcfg.Conn, l netcfg.Link) (linkState, error) {
	st := linkState{mtu: l.MTU, up: l.Up}
	var err error
	if st.addresses, err = nc.Addresses(l.Index); err != nil {
		return st, err
	}
	st.routes, err = nc.Routes(l.Index)
	return st, err
}

// configure applies cfg to the adapter's interface l, whole or not at
// all, and brings it up.
func (a *localAdapter) configure(nc *netcfg.Conn, l netcfg.Link, cfg Config) error {
	before, err := readState(nc, l)
	if err != nil {
		return fmt.Errorf("ringtun: configure %s: %w", l.Name, err)
	}
	if err := checkFits(l, before, cfg); err != nil {
		return fmt.Errorf("ringtun: configure %s: %w", l.Name, err)
	}
	if err := apply(nc, l, cfg); err != nil {
		err = explain(l, err)
		if rerr := restore(nc, l.Index, before); rerr != nil {
			a.m.logf(LevelErr, "%s: putting back the configuration after a failed Configure: %v", l.Name, rerr)
			err = fmt.Errorf("%w (and putting back what was there failed: %v)", err, rerr)
		}
		return fmt.Errorf("ringtun: configure %s: %w", l.Name, err)
	}
	return nil
}

// checkFits refuses, before anything changes, a Config that the adapter
// could not take whole as it is: IPv6 with an MTU below 1280 (including a
// lower MTU on an adapter that keeps IPv6 addresses or routes), or IPv6 on
// an adapter where it is disabled.
func checkFits(l netcfg.Link, before linkState, cfg Config) error {
	mtu := l.MTU
	if cfg.MTU != 0 {
		mtu = cfg.MTU
	}
	var v6 []string
	if cfg.Addresses != nil {
		v6 = appendIPv6(v6, "address", cfg.Addresses)
	} else {
		v6 = appendIPv6(v6, "address", before.addresses)
	}
	if cfg.Routes != nil {
		v6 = appendIPv6(v6, "route", cfg.Routes)
	} else {
		for _, r := range before.routes {
			v6 = appendIPv6(v6, "route", []netip.Prefix{r.Prefix})
		}
	}
	if len(v6) == 0 {
		return nil
	}
	items := strings.Join(v6, ", ")
	switch {
	case mtu < ipv6MinMTU:
		return fmt.Errorf("%w: IPv6 needs an MTU of at least %d, and the MTU would be %d with %s", errs.InvalidConfig, ipv6MinMTU, mtu, items)
	case l.IPv6Disabled:
		return fmt.Errorf("%w: IPv6 is disabled on %s (net.ipv6.conf.%s.disable_ipv6 = 1), so it cannot take %s", errs.InvalidConfig, l.Name, l.Name, items)
	case !l.IPv6 && l.MTU >= ipv6MinMTU:
		return fmt.Errorf("%w: the kernel has no IPv6 on %s (is IPv6 turned off?), so it cannot take %s", errs.InvalidConfig, l.Name, items)
	}
	return nil
}

func appendIPv6(out []string, what string, ps []netip.Prefix) []string {
	for _, p := range ps {
		if p.Addr().Is6() {
			out = append(out, what+" "+p.String())
		}
	}
	return out
}

// apply makes the changes, in an order that works from any state: the MTU
// first (IPv6 comes and goes with it), then the link up (IPv4 routes need
// it), then addresses, then routes.
func apply(nc *netcfg.Conn, l netcfg.Link, cfg Config) error {
	if cfg.MTU != 0 && cfg.MTU != l.MTU {
		if err := nc.SetMTU(l.Index, cfg.MTU); err != nil {
			return err
		}
	}
	if !l.Up {
		if err := nc.SetUp(l.Index); err != nil {
			return err
		}
	}
	if cfg.Addresses != nil {
		if err := nc.SetAddresses(l.Index, cfg.Addresses); err != nil {
			return err
		}
	}
	if cfg.Routes != nil {
		routes := make([]netcfg.Route, len(cfg.Routes))
		for i, p := range cfg.Routes {
			routes[i] = netcfg.RouteFor(p, cfg.RouteMetric)
		}
		if err := nc.SetRoutes(l.Index, routes); err != nil {
			return err
		}
	}
	return nil
}

// restore puts the interface back as it was before a Configure failed.
func restore(nc *netcfg.Conn, index int, st linkState) error {
	now, err := nc.LinkByIndex(index)
	if err != nil {
		return err
	}
	if now.MTU != st.mtu {
		if err := nc.SetMTU(index, st.mtu); err != nil {
			return err
		}
	}
	if !now.Up {
		if err := nc.SetUp(index); err != nil {
			return err
		}
	}
	if err := nc.SetAddresses(index, st.addresses); err != nil {
		return err
	}
	if err := nc.SetRoutes(index, st.routes); err != nil {
		return err
	}
	if !st.up {
		return nc.SetDown(index)
	}
	return nil
}

// explain turns a kernel refusal into this package's error, with the
// cause and what to do.
func explain(l netcfg.Link, err error) error {
	var conflict *netcfg.RouteConflictError
	switch {
	case errors.As(err, &conflict):
		p := conflict.Route.Prefix
		split := ""
		if p.Bits() < p.Addr().BitLen() {
			lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
			hi := netip.PrefixFrom(lastHalf(p), p.Bits()+1)
			split = fmt.Sprintf(", or route %v and %v instead, which are more specific", lo, hi)
		}
		return fmt.Errorf("%w: route %v (metric %d) is already in the main table through another interface: %s; give Config.RouteMetric another value%s",
			errs.RouteConflict, p, conflict.Route.Metric, conflict.Other, split)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w: %v", errs.AccessDenied, err)
	case errors.Is(err, unix.EACCES):
		// What the kernel says for IPv6 on an interface where it is
		// disabled; not a matter of privilege.
		return fmt.Errorf("%w: %s refused it (%v), which the kernel does when IPv6 is disabled there", errs.InvalidConfig, l.Name, err)
	}
	return err
}

// lastHalf returns the first address of the upper half of p.
func lastHalf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bit := p.Bits()
	b[bit/8] |= 0x80 >> (bit % 8)
	a, _ := netip.AddrFromSlice(b)
	return a
}
