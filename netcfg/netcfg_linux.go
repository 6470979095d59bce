package netcfg

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

// ErrNotFound means no interface has the name or index asked for.
var ErrNotFound = errors.New("netcfg: interface not found")

// Link is what netcfg reads of an interface.
type Link struct {
	Index int
	Name  string
	Alias string
	MTU   int
	Up    bool // administratively up (IFF_UP)
	// Running: operational (IFF_RUNNING), as the kernel's link-watch
	// work last set it from the carrier.
	Running bool
}

// Conn is an rtnetlink connection in the caller's network namespace.
type Conn struct {
	c *rtnetlink.Conn
}

// Dial opens an rtnetlink connection.
func Dial() (*Conn, error) {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("netcfg: rtnetlink: %w", err)
	}
	return &Conn{c: c}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

func linkFrom(m rtnetlink.LinkMessage) Link {
	l := Link{Index: int(m.Index), Up: m.Flags&unix.IFF_UP != 0, Running: m.Flags&unix.IFF_RUNNING != 0}
	if a := m.Attributes; a != nil {
		l.Name, l.MTU = a.Name, int(a.MTU)
		if a.Alias != nil {
			l.Alias = *a.Alias
		}
	}
	return l
}

// Links lists every interface.
func (c *Conn) Links() ([]Link, error) {
	msgs, err := c.c.Link.List()
	if err != nil {
		return nil, fmt.Errorf("netcfg: list links: %w", err)
	}
	links := make([]Link, 0, len(msgs))
	for _, m := range msgs {
		links = append(links, linkFrom(m))
	}
	return links, nil
}

// LinkByIndex returns the interface with that index, or ErrNotFound.
func (c *Conn) LinkByIndex(index int) (Link, error) {
	// A dump rather than a get: rtnetlink's get of a missing index does
	// not report ENODEV consistently.
	links, err := c.Links()
	if err != nil {
		return Link{}, err
	}
	for _, l := range links {
		if l.Index == index {
			return l, nil
		}
	}
	return Link{}, fmt.Errorf("%w: index %d", ErrNotFound, index)
}

// LinkNow returns the interface with that index as the kernel acts on it.
// Unlike LinkByIndex, it gets the one interface rather than listing them
// all, and for a get the kernel (Linux 6.x) first finishes the link-watch
// work pending for the interface: after a carrier change, an interface
// transmits nothing until that work has run, which is otherwise done a
// moment later.
func (c *Conn) LinkNow(index int) (Link, error) {
	m, err := c.c.Link.Get(uint32(index))
	if err != nil {
		return Link{}, fmt.Errorf("netcfg: get interface %d: %w", index, err)
	}
	return linkFrom(m), nil
}

// LinkByName returns the interface with that name, or ErrNotFound.
func (c *Conn) LinkByName(name string) (Link, error) {
	links, err := c.Links()
	if err != nil {
		return Link{}, err
	}
	for _, l := range links {
		if l.Name == name {
			return l, nil
		}
	}
	return Link{}, fmt.Errorf("%w: %s", ErrNotFound, name)
}

func (c *Conn) set(index int, what string, flags, change uint32, attrs *rtnetlink.LinkAttributes) error {
	err := c.c.Link.Set(&rtnetlink.LinkMessage{
		Family:     unix.AF_UNSPEC,
		Index:      uint32(index),
		Flags:      flags,
		Change:     change,
		Attributes: attrs,
	})
	if err != nil {
		return fmt.Errorf("netcfg: set %s of interface %d: %w", what, index, err)
	}
	return nil
}

// SetAlias sets the interface alias (IFLA_IFALIAS, at most 255 bytes).
func (c *Conn) SetAlias(index int, alias string) error {
	return c.set(index, "alias", 0, 0, &rtnetlink.LinkAttributes{Alias: &alias})
}

// SetMTU sets the MTU.
func (c *Conn) SetMTU(index, mtu int) error {
	if mtu <= 0 || mtu > 0xFFFF {
		return fmt.Errorf("netcfg: MTU %d out of range", mtu)
	}
	return c.set(index, fmt.Sprintf("MTU %d", mtu), 0, 0, &rtnetlink.LinkAttributes{MTU: uint32(mtu)})
}

// SetUp brings the link up.
func (c *Conn) SetUp(index int) error {
	return c.set(index, "state up", unix.IFF_UP, unix.IFF_UP, nil)
}

// Delete deletes the interface.
func (c *Conn) Delete(index int) error {
	if err := c.c.Link.Delete(uint32(index)); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("%w: index %d", ErrNotFound, index)
		}
		return fmt.Errorf("netcfg: delete interface %d: %w", index, err)
	}
	return nil
}

func prefixFrom(ip net.IP, bits uint8) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a.Unmap(), int(bits)), true
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// Addresses returns the addresses on the interface, as address/prefix-length,
// leaving out IPv6 link-local addresses, which the kernel manages.
func (c *Conn) Addresses(index int) ([]netip.Prefix, error) {
	msgs, err := c.c.Address.List()
	if err != nil {
		return nil, fmt.Errorf("netcfg: list addresses: %w", err)
	}
	var out []netip.Prefix
	for _, m := range msgs {
		if int(m.Index) != index || m.Attributes == nil {
			continue
		}
		ip := m.Attributes.Local
		if ip == nil {
			ip = m.Attributes.Address
		}
		p, ok := prefixFrom(ip, m.PrefixLength)
		if !ok || p.Addr().IsLinkLocalUnicast() && p.Addr().Is6() {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func addressMessage(index int, p netip.Prefix) *rtnetlink.AddressMessage {
	ip := net.IP(p.Addr().AsSlice())
	attrs := &rtnetlink.AddressAttributes{Address: ip, Local: ip}
	if p.Addr().Is4() && p.Bits() < 31 {
		// The broadcast address, as `ip addr add ... brd +` sets it.
		last := p.Masked().Addr().As4()
		for i := p.Bits(); i < 32; i++ {
			last[i/8] |= 0x80 >> (i % 8)
		}
		attrs.Broadcast = net.IP(last[:])
	}
	return &rtnetlink.AddressMessage{
		Family:       family(p.Addr()),
		PrefixLength: uint8(p.Bits()),
		Index:        uint32(index),
		Attributes:   attrs,
	}
}

// SetAddresses makes want the interface's addresses (IPv6 link-local ones
// aside): it adds the missing ones and deletes the others. IPv6 addresses
// are added without duplicate address detection, so they are usable at
// once.
func (c *Conn) SetAddresses(index int, want []netip.Prefix) error {
	for _, p := range want {
		if !p.IsValid() {
			return fmt.Errorf("netcfg: invalid address %v", p)
		}
	}
	have, err := c.Addresses(index)
	if err != nil {
		return err
	}
	deleted := false
	for _, p := range have {
		if !slices.Contains(want, p) {
			// EADDRNOTAVAIL: the kernel already deleted it with the
			// primary address of its subnet.
			if err := c.c.Address.Delete(addressMessage(index, p)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("netcfg: delete address %s from interface %d: %w", p, index, err)
			}
			deleted = true
		}
	}
	if deleted {
		// Deleting the primary IPv4 address of a subnet deletes its
		// secondary addresses too (unless promote_secondaries is set),
		// wanted ones included: look again before adding.
		if have, err = c.Addresses(index); err != nil {
			return err
		}
	}
	for _, p := range want {
		if slices.Contains(have, p) {
			continue
		}
		m := addressMessage(index, p)
		if p.Addr().Is6() {
			m.Flags = unix.IFA_F_NODAD
			m.Attributes.Flags = unix.IFA_F_NODAD
		}
		if err := c.c.Address.New(m); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("netcfg: add address %s to interface %d: %w", p, index, err)
		}
	}
	return c.waitNotTentative(index)
}

// tentativeWait bounds how long SetAddresses waits for the kernel to finish
// setting up IPv6 addresses.
const tentativeWait = 3 * time.Second

// waitNotTentative waits until no IPv6 address of the interface is
// tentative. Even without duplicate address detection, the kernel clears
// the tentative flag from a work queue a moment after the address is
// added, and until then it drops packets sent to the address.
func (c *Conn) waitNotTentative(index int) error {
	deadline := time.Now().Add(tentativeWait)
	for {
		msgs, err := c.c.Address.List()
		if err != nil {
			return fmt.Errorf("netcfg: list addresses: %w", err)
		}
		tentative := ""
		for _, m := range msgs {
			flags := uint32(m.Flags)
			if m.Attributes != nil {
				flags |= m.Attributes.Flags
			}
			if int(m.Index) == index && m.Family == unix.AF_INET6 && flags&unix.IFA_F_TENTATIVE != 0 && flags&unix.IFA_F_DADFAILED == 0 {
				tentative = m.Attributes.Address.String()
			}
		}
		if tentative == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netcfg: address %s on interface %d still tentative after %v (is the link up?)", tentative, index, tentativeWait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Routes returns the routes through the interface that SetRoutes manages:
// unicast routes in the main table with protocol static and no gateway.
func (c *Conn) Routes(index int) ([]netip.Prefix, error) {
	msgs, err := c.c.Route.List()
	if err != nil {
		return nil, fmt.Errorf("netcfg: list routes: %w", err)
	}
	var out []netip.Prefix
	for _, m := range msgs {
		if int(m.Attributes.OutIface) != index || m.Table != unix.RT_TABLE_MAIN ||
			m.Protocol != unix.RTPROT_STATIC || m.Type != unix.RTN_UNICAST ||
			m.Attributes.Gateway != nil {
			continue
		}
		dst := m.Attributes.Dst
		if dst == nil {
			if m.Family == unix.AF_INET {
				dst = net.IPv4zero.To4()
			} else {
				dst = net.IPv6zero
			}
		}
		if p, ok := prefixFrom(dst, m.DstLength); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func routeMessage(index int, p netip.Prefix) *rtnetlink.RouteMessage {
	p = p.Masked()
	return &rtnetlink.RouteMessage{
		Family:    family(p.Addr()),
		DstLength: uint8(p.Bits()),
		Table:     unix.RT_TABLE_MAIN,
		Protocol:  unix.RTPROT_STATIC,
		Scope:     unix.RT_SCOPE_LINK,
		Type:      unix.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{
			Dst:      net.IP(p.Addr().AsSlice()),
			OutIface: uint32(index),
		},
	}
}

// SetRoutes makes want the interface's static routes: it adds the missing
// ones and deletes the other routes that Routes reports. Routes the kernel
// adds for the interface's own addresses are left alone.
func (c *Conn) SetRoutes(index int, want []netip.Prefix) error {
	masked := make([]netip.Prefix, len(want))
	for i, p := range want {
		if !p.IsValid() {
			return fmt.Errorf("netcfg: invalid route %v", p)
		}
		masked[i] = p.Masked()
	}
	want = masked
	have, err := c.Routes(index)
	if err != nil {
		return err
	}
	for _, p := range have {
		if !slices.Contains(want, p) {
			if err := c.c.Route.Delete(routeMessage(index, p)); err != nil {
				return fmt.Errorf("netcfg: delete route %s from interface %d: %w", p, index, err)
			}
		}
	}
	for _, p := range want {
		if slices.Contains(have, p) {
			continue
		}
		if err := c.c.Route.Add(routeMessage(index, p)); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("netcfg: add route %s to interface %d: %w", p, index, err)
		}
	}
	return nil
}
