package netcfg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
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
	// Kind is the interface's driver as rtnetlink names it ("tun",
	// "bridge", "veth"…), empty for the ones that have none, such as lo.
	Kind string
	// TUN describes a TUN or TAP interface (Kind "tun"); it is zero for
	// others.
	TUN TUNInfo
	// IPv6 says whether IPv6 can be configured on the interface now, and
	// IPv6Disabled whether net.ipv6.conf.NAME.disable_ipv6 is set. Only
	// LinkByIndex fills them in.
	IPv6, IPv6Disabled bool
	// Stats are the kernel's packet counters of the interface: received
	// is from the wire (for a TUN, what the program wrote), sent is to it.
	Stats LinkStats
}

// LinkStats are an interface's packet counters (IFLA_STATS64).
type LinkStats struct {
	RxPackets, RxBytes, TxPackets, TxBytes uint64
}

// TUNInfo is what the kernel tells of a TUN or TAP device.
type TUNInfo struct {
	TAP        bool // a TAP (layer 2) device, not TUN
	PI         bool // packet information headers (no IFF_NO_PI)
	VNetHdr    bool // IFF_VNET_HDR
	MultiQueue bool // IFF_MULTI_QUEUE
	Persist    bool // outlives its last queue
	// Queues is the number of attached queues, the ones the kernel
	// steers packets to; DisabledQueues the number of detached ones
	// (TUNSETQUEUE IFF_DETACH_QUEUE), which hold the device but get no
	// packets.
	Queues, DisabledQueues int
}

// Conn is an rtnetlink connection in the network namespace of the thread
// that dialled it. Its methods must not be called concurrently.
type Conn struct {
	c *rtnetlink.Conn
}

// Dial opens an rtnetlink connection in the calling thread's network
// namespace.
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
	a := m.Attributes
	if a == nil {
		return l
	}
	l.Name, l.MTU = a.Name, int(a.MTU)
	if a.Alias != nil {
		l.Alias = *a.Alias
	}
	if st := a.Stats64; st != nil {
		l.Stats = LinkStats{RxPackets: st.RXPackets, RxBytes: st.RXBytes, TxPackets: st.TXPackets, TxBytes: st.TXBytes}
	}
	if a.Info != nil {
		l.Kind = a.Info.Kind
		if d, ok := a.Info.Data.(*rtnetlink.LinkData); ok && l.Kind == "tun" {
			l.TUN = decodeTUN(d.Data)
		}
	}
	return l
}

// decodeTUN reads the IFLA_INFO_DATA of a "tun" link (IFLA_TUN_*).
func decodeTUN(b []byte) TUNInfo {
	var t TUNInfo
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return t
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_TUN_TYPE:
			t.TAP = ad.Uint8() == unix.IFF_TAP
		case unix.IFLA_TUN_PI:
			t.PI = ad.Uint8() != 0
		case unix.IFLA_TUN_VNET_HDR:
			t.VNetHdr = ad.Uint8() != 0
		case unix.IFLA_TUN_MULTI_QUEUE:
			t.MultiQueue = ad.Uint8() != 0
		case unix.IFLA_TUN_PERSIST:
			t.Persist = ad.Uint8() != 0
		case unix.IFLA_TUN_NUM_QUEUES:
			t.Queues = int(ad.Uint32())
		case unix.IFLA_TUN_NUM_DISABLED_QUEUES:
			t.DisabledQueues = int(ad.Uint32())
		}
	}
	if ad.Err() != nil {
		return TUNInfo{}
	}
	return t
}

// devconfDisableIPv6 is DEVCONF_DISABLE_IPV6, the index of disable_ipv6 in
// IFLA_INET6_CONF (include/uapi/linux/ipv6.h).
const devconfDisableIPv6 = 26

// decodeIPv6 reads an interface's IPv6 state from the attributes of a
// link message: whether it has IPv6 at all (the kernel drops it below an
// MTU of 1280, or when IPv6 is off) and whether disable_ipv6 is set.
func decodeIPv6(attrs []byte) (usable, disabled bool) {
	ad, err := netlink.NewAttributeDecoder(attrs)
	if err != nil {
		return false, false
	}
	present := false
	for ad.Next() {
		if ad.Type() != unix.IFLA_AF_SPEC {
			continue
		}
		ad.Nested(func(fam *netlink.AttributeDecoder) error {
			for fam.Next() {
				if fam.Type() != unix.AF_INET6 {
					continue
				}
				present = true
				fam.Nested(func(v6 *netlink.AttributeDecoder) error {
					for v6.Next() {
						if b := v6.Bytes(); v6.Type() == unix.IFLA_INET6_CONF && len(b) >= 4*(devconfDisableIPv6+1) {
							disabled = binary.NativeEndian.Uint32(b[4*devconfDisableIPv6:]) != 0
						}
					}
					return nil
				})
			}
			return nil
		})
	}
	return present && !disabled, disabled
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

// LinkByIndex returns the interface with that index, or ErrNotFound. It
// gets the one interface from the kernel, and for a get the kernel (Linux
// 6.x) first finishes the link-watch work pending for it: after a carrier
// change, an interface transmits nothing until that work has run, which
// is otherwise done a moment later.
func (c *Conn) LinkByIndex(index int) (Link, error) {
	req := &rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(index)}
	if _, err := c.c.Send(req, unix.RTM_GETLINK, netlink.Request); err != nil {
		return Link{}, fmt.Errorf("netcfg: get interface %d: %w", index, err)
	}
	_, msgs, err := c.c.Receive()
	if errors.Is(err, unix.ENODEV) {
		return Link{}, fmt.Errorf("%w: index %d", ErrNotFound, index)
	}
	if err != nil {
		return Link{}, fmt.Errorf("netcfg: get interface %d: %w", index, err)
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		var lm rtnetlink.LinkMessage
		if err := lm.UnmarshalBinary(m.Data); err != nil {
			return Link{}, fmt.Errorf("netcfg: get interface %d: %w", index, err)
		}
		if int(lm.Index) != index {
			continue
		}
		l := linkFrom(lm)
		l.IPv6, l.IPv6Disabled = decodeIPv6(m.Data[unix.SizeofIfInfomsg:])
		return l, nil
	}
	return Link{}, fmt.Errorf("%w: index %d", ErrNotFound, index)
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
	if errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("%w: index %d", ErrNotFound, index)
	}
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

// SetDown takes the link down.
func (c *Conn) SetDown(index int) error {
	return c.set(index, "state down", 0, unix.IFF_UP, nil)
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

// Route is a route through an interface: a destination and a metric (the
// route's priority; lower wins).
type Route struct {
	Prefix netip.Prefix
	Metric uint32
}

// IPv6DefaultMetric is the metric the kernel gives an IPv6 route added
// without one (IP6_RT_PRIO_USER); IPv4 routes get 0.
const IPv6DefaultMetric = 1024

// RouteFor returns the route to p with metric, or with the kernel's
// default metric for p's family when metric is 0, as the kernel stores
// it.
func RouteFor(p netip.Prefix, metric uint32) Route {
	if metric == 0 && p.Addr().Is6() {
		metric = IPv6DefaultMetric
	}
	return Route{Prefix: p.Masked(), Metric: metric}
}

func (r Route) String() string { return fmt.Sprintf("%v metric %d", r.Prefix, r.Metric) }

// mainUnicast reports whether m is a unicast route in the main table,
// and returns its destination.
func mainUnicast(m rtnetlink.RouteMessage) (netip.Prefix, bool) {
	if m.Table != unix.RT_TABLE_MAIN || m.Type != unix.RTN_UNICAST {
		return netip.Prefix{}, false
	}
	dst := m.Attributes.Dst
	if dst == nil {
		if m.Family == unix.AF_INET {
			dst = net.IPv4zero.To4()
		} else {
			dst = net.IPv6zero
		}
	}
	return prefixFrom(dst, m.DstLength)
}

// Routes returns the routes through the interface that SetRoutes manages:
// unicast routes in the main table with protocol static and no gateway.
func (c *Conn) Routes(index int) ([]Route, error) {
	msgs, err := c.c.Route.List()
	if err != nil {
		return nil, fmt.Errorf("netcfg: list routes: %w", err)
	}
	var out []Route
	for _, m := range msgs {
		if int(m.Attributes.OutIface) != index || m.Protocol != unix.RTPROT_STATIC || m.Attributes.Gateway != nil {
			continue
		}
		if p, ok := mainUnicast(m); ok {
			out = append(out, Route{Prefix: p, Metric: m.Attributes.Priority})
		}
	}
	return out, nil
}

func routeMessage(index int, r Route) *rtnetlink.RouteMessage {
	p := r.Prefix.Masked()
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
			Priority: r.Metric,
		},
	}
}

// RouteConflictError is the error of SetRoutes for a route the kernel
// would not add because the main table has a route with the same
// destination and metric through another interface: the kernel keeps one
// route per destination and metric, and a second one would either fail
// or share the traffic unpredictably.
type RouteConflictError struct {
	Route Route  // the route asked for
	Other string // the route in the way, as ip-route(8) shows it
}

func (e *RouteConflictError) Error() string {
	return fmt.Sprintf("netcfg: route %v: the main table has %s", e.Route, e.Other)
}

// SetRoutes makes want the interface's static routes: it adds the missing
// ones and deletes the other routes that Routes reports. Routes the kernel
// adds for the interface's own addresses are left alone, and a wanted
// route that is one of them counts as there. A route that another
// interface has with the same destination and metric is not added: the
// error is a *RouteConflictError.
func (c *Conn) SetRoutes(index int, want []Route) error {
	masked := make([]Route, len(want))
	for i, r := range want {
		if !r.Prefix.IsValid() {
			return fmt.Errorf("netcfg: invalid route %v", r.Prefix)
		}
		masked[i] = Route{Prefix: r.Prefix.Masked(), Metric: r.Metric}
	}
	want = masked
	have, err := c.Routes(index)
	if err != nil {
		return err
	}
	for _, r := range have {
		if !slices.Contains(want, r) {
			if err := c.c.Route.Delete(routeMessage(index, r)); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("netcfg: delete route %v from interface %d: %w", r, index, err)
			}
		}
	}
	for _, r := range want {
		if slices.Contains(have, r) {
			continue
		}
		err := c.c.Route.Add(routeMessage(index, r))
		if errors.Is(err, unix.EEXIST) {
			err = c.conflict(index, r)
		}
		if err != nil {
			return fmt.Errorf("netcfg: add route %v to interface %d: %w", r, index, err)
		}
	}
	return nil
}

// conflict looks for the route that made the kernel refuse r with
// EEXIST. It returns nil when that route goes through the interface
// itself (such as the kernel's route for the subnet of one of its
// addresses): r is there, in effect.
func (c *Conn) conflict(index int, r Route) error {
	msgs, err := c.c.Route.List()
	if err != nil {
		return fmt.Errorf("netcfg: list routes: %w", err)
	}
	var others []string
	for _, m := range msgs {
		if p, ok := mainUnicast(m); !ok || p != r.Prefix || m.Attributes.Priority != r.Metric {
			continue
		}
		if int(m.Attributes.OutIface) == index {
			return nil
		}
		others = append(others, c.describe(m, r.Prefix))
	}
	if len(others) == 0 {
		others = append(others, "a route to the same destination with the same metric")
	}
	return &RouteConflictError{Route: r, Other: strings.Join(others, "; ")}
}

// describe says what route m is, as `ip route` would.
func (c *Conn) describe(m rtnetlink.RouteMessage, dst netip.Prefix) string {
	var b strings.Builder
	if dst.Bits() == 0 {
		b.WriteString("default")
	} else {
		b.WriteString(dst.String())
	}
	if gw := m.Attributes.Gateway; gw != nil {
		fmt.Fprintf(&b, " via %v", gw)
	}
	dev := fmt.Sprintf("index %d", m.Attributes.OutIface)
	if l, err := c.LinkByIndex(int(m.Attributes.OutIface)); err == nil {
		dev = l.Name
	}
	fmt.Fprintf(&b, " dev %s metric %d", dev, m.Attributes.Priority)
	return b.String()
}
