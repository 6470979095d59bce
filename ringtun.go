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
package ringtun

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

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
const Version = 0<<16 | 1

// RunningVersion returns the version of the ringtun driver in use,
// (major<<16)|minor. In-process, that is this package's Version.
func RunningVersion() (uint32, error) { return Version, nil }

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

// maxNameLen is the longest interface name Linux takes (IFNAMSIZ-1).
const maxNameLen = 15

// maxTunnelTypeLen keeps the alias under the kernel's 255 bytes.
const maxTunnelTypeLen = 128

// checkName applies the kernel's rules for interface names
// (dev_valid_name): 1 to 15 bytes, not "." or "..", no '/', ':' or white
// space, where the kernel's white space includes byte 0xA0 (no-break
// space in Latin-1, and so the second byte of "à" and others in UTF-8);
// ringtun also refuses control characters. It refuses '%' too: the kernel
// takes a name with '%' as a template such as "tun%d" and makes up another
// name from it, so the adapter would not get the name asked for.
func checkName(name string) error {
	if name == "" || len(name) > maxNameLen || name == "." || name == ".." {
		return fmt.Errorf("%w: %q must be 1 to %d bytes and not . or ..", ErrInvalidName, name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '/' || c == ':' || c <= ' ' || c == 0x7f || c == 0xa0:
			return fmt.Errorf("%w: %q has a byte the kernel refuses (%#02x)", ErrInvalidName, name, c)
		case c == '%':
			return fmt.Errorf("%w: %q has a %%, which the kernel takes as a name template", ErrInvalidName, name)
		}
	}
	return nil
}

// checkTunnelType refuses tunnel types that do not fit the alias or that
// would break its parsing.
func checkTunnelType(t string) error {
	if len(t) > maxTunnelTypeLen || !utf8.ValidString(t) || strings.ContainsFunc(t, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: tunnel type %q must be at most %d bytes of printable UTF-8", ErrInvalidName, t, maxTunnelTypeLen)
	}
	return nil
}

// aliasPrefix starts the interface alias of every ringtun adapter.
const aliasPrefix = "ringtun/1 "

// adapterMeta is what ringtun keeps in an interface alias:
// "ringtun/1 {guid} persistent|transient tunnel type".
type adapterMeta struct {
	guid       GUID
	persistent bool
	tunnelType string
}

func (m adapterMeta) alias() string {
	life := "transient"
	if m.persistent {
		life = "persistent"
	}
	return aliasPrefix + m.guid.String() + " " + life + " " + m.tunnelType
}

// parseAlias reads an alias written by alias, and reports false for any
// other interface.
func parseAlias(s string) (adapterMeta, bool) {
	var m adapterMeta
	rest, ok := strings.CutPrefix(s, aliasPrefix)
	if !ok {
		return m, false
	}
	guid, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return m, false
	}
	life, tunnelType, ok := strings.Cut(rest, " ")
	if !ok || (life != "persistent" && life != "transient") {
		return m, false
	}
	g, err := ParseGUID(guid)
	if err != nil {
		return m, false
	}
	return adapterMeta{guid: g, persistent: life == "persistent", tunnelType: tunnelType}, true
}
