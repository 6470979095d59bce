// Package ringtun gives Go programs layer-3 tunnel adapters with the
// programming model of WireGuard's Wintun: adapters created by name in a
// tunnel type, one session per adapter, and two shared ring buffers that
// carry IP packets between the host network stack and the program with no
// system call per packet.
//
// On Linux an adapter is a kernel TUN interface and a Go driver loop moves
// packets between it and the session's rings. The names and signatures
// follow golang.zx2c4.com/wintun, so code written against it ports by
// changing the import path.
//
// A program creates an adapter, starts a session, and then receives the
// packets the host sends through the adapter with ReceivePacket /
// ReleaseReceivePacket, and injects packets into the host with
// AllocateSendPacket / SendPacket.
//
// # Adapters on Linux
//
// An adapter is a multi-queue TUN interface with a virtio-net header whose
// alias holds ringtun's metadata (tunnel type, GUID, persistence); any
// other interface is not an adapter, whatever its alias says.
// CreateAdapter, OpenAdapter, Adapters and Uninstall act in the network
// namespace of the calling goroutine's thread, as ip(8) would; a handle
// remembers that namespace and acts there, on its own interface only
// (known by index and GUID: it follows a rename, and an adapter deleted or
// moved away is ErrAdapterNotFound). An adapter has a session when the
// kernel counts an attached queue on its device, so the one-session rule
// holds across processes and namespaces. The creator's Close deletes a
// non-persistent adapter wherever it is; Uninstall deletes adapters that
// have no session.
//
// # Without privilege: ringtund
//
// A process without CAP_NET_ADMIN gets its adapters from the ringtund
// daemon (cmd/ringtund, package broker) when one listens at
// /run/ringtun/ringtund.sock; RINGTUN_DAEMON (DaemonEnv) can force a
// socket, or "off" to force in-process. The daemon checks its policy,
// manages the adapters and passes the process the session's TUN queue:
// packets never cross the daemon, and every call works as in-process.
//
// # From C and other languages
//
// libringtun (directory capi) is Wintun's C API, wintun.h, over this
// package: its packet calls run in C on a SharedSession's rings, whose
// driver half runs here.
//
// # Windows
//
// On Windows the same API runs over the signed Wintun driver through
// golang.zx2c4.com/wintun (wintun.dll next to the program). What Wintun
// has no call for fails with ErrNotSupported: Adapters, persistent
// adapters, Configure and AdapterOptions.Config (set addresses and routes
// with iphlpapi, for instance golang.zx2c4.com/wireguard/windows/tunnel/
// winipcfg, on Adapter.LUID). Names and tunnel types may be up to 127
// UTF-16 units; an opened adapter's TunnelType and GUID are unknown
// (empty); Session.Stats is zero.
//
// On other platforms the package builds, and every constructor fails with
// ErrNotSupported.
package ringtun

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/ringtun/ringtun/internal/control"
	"github.com/ringtun/ringtun/ring"
)

// Limits, identical to Wintun's.
const (
	// PacketSizeMax is the largest packet a ring carries.
	PacketSizeMax = ring.PacketSizeMax
	// RingCapacityMin is the smallest session ring capacity, 128 KiB.
	RingCapacityMin = ring.CapacityMin
	// RingCapacityMax is the largest session ring capacity, 64 MiB.
	RingCapacityMax = ring.CapacityMax
)

// Version is the version RunningVersion reports: (major<<16)|minor.
const Version = control.Version

// DefaultTunnelType is the tunnel type of an adapter created with an empty
// one.
const DefaultTunnelType = "ringtun"

// Config is an adapter's network configuration. Configure applies it
// declaratively: a nil slice or zero MTU leaves that part as it is; a
// non-nil slice, even empty, makes it exactly the adapter's set. A Config
// is applied whole or not at all.
type Config struct {
	// Addresses are the adapter's own addresses with their prefix length,
	// such as 198.18.7.7/24 (IPv6 link-local addresses are the kernel's
	// and are left alone).
	Addresses []netip.Prefix
	// Routes are destinations routed through the adapter (in the main
	// table, without gateway). A route that another interface has with
	// the same destination and metric, such as the host's default route,
	// is refused with ErrRouteConflict: choose another RouteMetric, or
	// split it into more specific routes (0.0.0.0/1 and 128.0.0.0/1 for
	// 0.0.0.0/0, as WireGuard's tools do).
	Routes []netip.Prefix
	// RouteMetric is the metric (priority; lower wins) of Routes. 0 is
	// the kernel's default: 0 for IPv4 routes, 1024 for IPv6 ones. It is
	// used only with a non-nil Routes.
	RouteMetric uint32
	// MTU, from 68 to 65535; 0 leaves it. IPv6 needs 1280 or more.
	MTU int
}

// control converts c for the control plane.
func (c *Config) control() control.Config {
	return control.Config{Addresses: c.Addresses, Routes: c.Routes, RouteMetric: c.RouteMetric, MTU: c.MTU}
}

// checkCapacity refuses a ring capacity that is not a power of two from
// RingCapacityMin to RingCapacityMax.
func checkCapacity(capacity uint32) error {
	if err := ring.CheckCapacity(capacity); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidCapacity, err)
	}
	return nil
}

func (c *Config) validate() error {
	for _, p := range c.Addresses {
		if err := checkPrefix("address", p); err != nil {
			return err
		}
	}
	for _, p := range c.Routes {
		if err := checkPrefix("route", p); err != nil {
			return err
		}
	}
	if c.MTU != 0 && (c.MTU < 68 || c.MTU > PacketSizeMax) {
		return fmt.Errorf("%w: MTU %d not in 68..65535", ErrInvalidConfig, c.MTU)
	}
	return nil
}

// checkPrefix refuses invalid prefixes, and IPv4-mapped IPv6 ones, which
// the kernel refuses only after the items before them are applied.
func checkPrefix(what string, p netip.Prefix) error {
	if !p.IsValid() || p.Addr().Zone() != "" {
		return fmt.Errorf("%w: %s %v", ErrInvalidConfig, what, p)
	}
	if p.Addr().Is4In6() {
		return fmt.Errorf("%w: %s %v is an IPv4-mapped IPv6 prefix; give IPv4 ones in IPv4 form", ErrInvalidConfig, what, p)
	}
	return nil
}

// AdapterOptions are the options of CreateAdapterWithOptions. The zero
// value is the default.
type AdapterOptions struct {
	// GUID identifies the adapter; nil picks a random one.
	GUID *GUID
	// Persistent adapters outlive the process that created them until
	// they are deleted (Close does not delete them). By default an
	// adapter dies with its creator's handle or process, even on SIGKILL.
	Persistent bool
	// Config, if not nil, is applied before CreateAdapterWithOptions
	// returns. The adapter is up either way.
	Config *Config
	// NetNS, if not empty, is the network namespace to create the adapter
	// in, as a path such as /var/run/netns/NAME or /proc/PID/ns/net; the
	// program stays in its own, and the handle acts in that one (the
	// pattern WireGuard documents for a tunnel inside a container). Empty
	// is the calling thread's namespace. It needs CAP_SYS_ADMIN to enter
	// the namespace besides CAP_NET_ADMIN in it, and is not available
	// through ringtund (ErrNotSupported).
	NetNS string
}

// AdapterInfo describes an adapter, as Adapters lists it.
type AdapterInfo struct {
	Name       string
	TunnelType string
	GUID       GUID
	LUID       uint64 // Linux: the interface index
	Persistent bool
	InUse      bool // a session is running on it, in any process
}

// LogLevel is the severity of a log message.
type LogLevel int

// Log levels, as in Wintun.
const (
	LogInfo LogLevel = iota
	LogWarn
	LogErr
)

func (l LogLevel) String() string {
	switch l {
	case LogInfo:
		return "info"
	case LogWarn:
		return "warn"
	case LogErr:
		return "error"
	}
	return fmt.Sprintf("LogLevel(%d)", int(l))
}

type logFunc = func(level LogLevel, t time.Time, msg string)

var logger atomic.Pointer[logFunc]

// SetLogger sets the function that receives ringtun's log messages; nil
// silences them. It is safe to call at any time.
func SetLogger(f func(level LogLevel, t time.Time, msg string)) {
	if f == nil {
		logger.Store(nil)
		return
	}
	logger.Store(&f)
}

func logf(level LogLevel, format string, args ...any) {
	if f := logger.Load(); f != nil {
		(*f)(level, time.Now(), fmt.Sprintf(format, args...))
	}
}
