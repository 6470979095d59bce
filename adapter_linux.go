package ringtun

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtun/ringtun/internal/tundev"
	"github.com/ringtun/ringtun/netcfg"
)

// Adapter is a handle to a ringtun adapter: on Linux, a TUN interface whose
// alias carries ringtun's metadata. The handle keeps the interface alive
// with a detached TUN queue that receives no packets.
type Adapter struct {
	name       string
	tunnelType string
	guid       GUID
	persistent bool
	index      int
	created    bool // this handle created the interface

	mu      sync.Mutex
	keeper  *tundev.Queue // nil once closed
	session *Session
}

// CreateAdapter creates an adapter with a random GUID unless requestedGUID
// is given. It is CreateAdapterWithOptions with default options.
func CreateAdapter(name, tunnelType string, requestedGUID *GUID) (*Adapter, error) {
	return CreateAdapterWithOptions(name, tunnelType, AdapterOptions{GUID: requestedGUID})
}

// CreateAdapterWithOptions creates an adapter named name (at most 15 bytes,
// the Linux interface name) in the given tunnel type (DefaultTunnelType if
// empty), brings it up, and applies opts.Config. It needs CAP_NET_ADMIN.
// It fails with ErrAdapterExists if any interface has that name.
func CreateAdapterWithOptions(name, tunnelType string, opts AdapterOptions) (*Adapter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if tunnelType == "" {
		tunnelType = DefaultTunnelType
	}
	if err := checkTunnelType(tunnelType); err != nil {
		return nil, err
	}
	if opts.Config != nil {
		if err := opts.Config.validate(); err != nil {
			return nil, err
		}
	}
	guid := NewGUID()
	if opts.GUID != nil {
		guid = *opts.GUID
	}
	q, err := tundev.Create(name)
	if err != nil {
		return nil, mapTunError(name, err)
	}
	a := &Adapter{name: name, tunnelType: tunnelType, guid: guid, persistent: opts.Persistent,
		created: true, keeper: q}
	if err := a.setUp(opts); err != nil {
		a.destroy()
		return nil, err
	}
	logf(LogInfo, "created adapter %s (%s, %s, index %d)", name, tunnelType, guid, a.index)
	return a, nil
}

// setUp finishes a new adapter: persistence, metadata, configuration.
func (a *Adapter) setUp(opts AdapterOptions) error {
	if opts.Persistent {
		if err := a.keeper.SetPersist(true); err != nil {
			return fmt.Errorf("ringtun: create %s: %w", a.name, err)
		}
	}
	if err := a.keeper.Detach(); err != nil {
		return fmt.Errorf("ringtun: create %s: %w", a.name, err)
	}
	nc, err := netcfg.Dial()
	if err != nil {
		return fmt.Errorf("ringtun: create %s: %w", a.name, err)
	}
	defer nc.Close()
	link, err := nc.LinkByName(a.name)
	if err != nil {
		return fmt.Errorf("ringtun: create %s: %w", a.name, err)
	}
	a.index = link.Index
	meta := adapterMeta{guid: a.guid, persistent: a.persistent, tunnelType: a.tunnelType}
	if err := nc.SetAlias(a.index, meta.alias()); err != nil {
		return fmt.Errorf("ringtun: create %s: %w", a.name, err)
	}
	cfg := Config{}
	if opts.Config != nil {
		cfg = *opts.Config
	}
	return a.configure(nc, cfg)
}

// destroy deletes a half-made adapter.
func (a *Adapter) destroy() {
	if a.persistent {
		a.keeper.SetPersist(false)
	}
	a.keeper.Close()
	a.keeper = nil
	if a.index != 0 {
		if nc, err := netcfg.Dial(); err == nil {
			a.deleteIfOurs(nc)
			nc.Close()
		}
	}
}

// mapTunError turns tundev's errors into this package's.
func mapTunError(name string, err error) error {
	switch {
	case errors.Is(err, tundev.ErrExists):
		return fmt.Errorf("%w: %s", ErrAdapterExists, name)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %s: the process lacks CAP_NET_ADMIN (%v)", ErrAccessDenied, name, err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("ringtun: %s: the kernel has no TUN support (load the tun module): %w", name, err)
	}
	return fmt.Errorf("ringtun: %s: %w", name, err)
}

// OpenAdapter opens an existing adapter, created by this or another
// process. The handle keeps the adapter alive until it is closed, but
// closing it never deletes the adapter.
func OpenAdapter(name string) (*Adapter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	nc, err := netcfg.Dial()
	if err != nil {
		return nil, fmt.Errorf("ringtun: open %s: %w", name, err)
	}
	defer nc.Close()
	link, meta, err := findAdapter(nc, name)
	if err != nil {
		return nil, err
	}
	q, err := tundev.Attach(name)
	if err != nil {
		if errors.Is(err, tundev.ErrNotTUN) {
			return nil, fmt.Errorf("%w: %s is not a TUN interface", ErrAdapterNotFound, name)
		}
		return nil, mapTunError(name, err)
	}
	// The interface could have been deleted (and, by TUNSETIFF, made anew)
	// between the look-up and the attach: check it is still the same one.
	if again, err := nc.LinkByName(name); err != nil || again.Index != link.Index {
		q.Close()
		return nil, fmt.Errorf("%w: %s was deleted while being opened", ErrAdapterNotFound, name)
	}
	if err := q.Detach(); err != nil {
		q.Close()
		return nil, fmt.Errorf("ringtun: open %s: %w", name, err)
	}
	waitRunning(nc, link.Index, name)
	return &Adapter{name: name, tunnelType: meta.tunnelType, guid: meta.guid,
		persistent: meta.persistent, index: link.Index, keeper: q}, nil
}

// runningWait bounds how long OpenAdapter waits for an adapter to become
// operational.
const runningWait = 2 * time.Second

// waitRunning waits until the interface, if it is administratively up, is
// operational. A persistent adapter that no process holds has its carrier
// off and its transmit queues deactivated. The first queue that attaches
// turns the carrier on, but the kernel reactivates the queues from its
// link-watch work, a moment later, and until then drops what the host
// sends through the adapter, such as the reply to the first packet of a
// new session. Getting the link makes the kernel run that work at once;
// kernels that do not are polled until the link is running, and a no-op
// change of the link, which waits for the RTNL lock that link-watch holds
// while it reactivates the queues, orders the return after it.
func waitRunning(nc *netcfg.Conn, index int, name string) {
	deadline := time.Now().Add(runningWait)
	for polled := false; ; polled = true {
		l, err := nc.LinkNow(index)
		if err != nil || !l.Up {
			return
		}
		if l.Running {
			if polled {
				nc.SetUp(index)
			}
			return
		}
		if time.Now().After(deadline) {
			logf(LogWarn, "%s: not operational %v after it was opened", name, runningWait)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// findAdapter looks up a ringtun adapter by name.
func findAdapter(nc *netcfg.Conn, name string) (netcfg.Link, adapterMeta, error) {
	link, err := nc.LinkByName(name)
	if err != nil {
		return link, adapterMeta{}, fmt.Errorf("%w: %s", ErrAdapterNotFound, name)
	}
	meta, ok := parseAlias(link.Alias)
	if !ok {
		return link, meta, fmt.Errorf("%w: %s exists but is not a ringtun adapter", ErrAdapterNotFound, name)
	}
	return link, meta, nil
}

// Adapters lists every ringtun adapter in the network namespace, whichever
// process created it.
func Adapters() ([]AdapterInfo, error) {
	nc, err := netcfg.Dial()
	if err != nil {
		return nil, fmt.Errorf("ringtun: list adapters: %w", err)
	}
	defer nc.Close()
	links, err := nc.Links()
	if err != nil {
		return nil, fmt.Errorf("ringtun: list adapters: %w", err)
	}
	var out []AdapterInfo
	for _, l := range links {
		meta, ok := parseAlias(l.Alias)
		if !ok {
			continue
		}
		out = append(out, AdapterInfo{Name: l.Name, TunnelType: meta.tunnelType, GUID: meta.guid,
			LUID: uint64(l.Index), Persistent: meta.persistent, InUse: sessionRunning(meta.guid)})
	}
	return out, nil
}

// Uninstall deletes every ringtun adapter that has no session, persistent
// or not, as Wintun's DeleteDriver removes its adapters. Adapters in use
// are left alone.
func Uninstall() error {
	nc, err := netcfg.Dial()
	if err != nil {
		return fmt.Errorf("ringtun: uninstall: %w", err)
	}
	defer nc.Close()
	links, err := nc.Links()
	if err != nil {
		return fmt.Errorf("ringtun: uninstall: %w", err)
	}
	var errs []error
	for _, l := range links {
		meta, ok := parseAlias(l.Alias)
		if !ok {
			continue
		}
		lock, err := lockSession(meta.guid)
		if err != nil {
			continue // in use
		}
		if err := nc.Delete(l.Index); err != nil && !errors.Is(err, netcfg.ErrNotFound) {
			errs = append(errs, fmt.Errorf("ringtun: uninstall %s: %w", l.Name, err))
		} else {
			logf(LogInfo, "deleted adapter %s", l.Name)
		}
		lock.release()
	}
	return errors.Join(errs...)
}

// Close ends the handle's session, if any, and closes the handle. If this
// handle created the adapter and it is not persistent, the adapter is
// deleted. Close is safe to call more than once.
func (a *Adapter) Close() error {
	a.mu.Lock()
	s, q := a.session, a.keeper
	a.session, a.keeper = nil, nil
	a.mu.Unlock()
	if q == nil {
		return nil
	}
	if s != nil {
		s.End()
	}
	q.Close()
	if !a.created || a.persistent {
		return nil
	}
	nc, err := netcfg.Dial()
	if err != nil {
		return fmt.Errorf("ringtun: close %s: %w", a.name, err)
	}
	defer nc.Close()
	if err := a.deleteIfOurs(nc); err != nil {
		return fmt.Errorf("ringtun: close %s: %w", a.name, err)
	}
	logf(LogInfo, "deleted adapter %s", a.name)
	return nil
}

// deleteIfOurs deletes the interface at a's index if it still carries a's
// GUID, even if a session in another process still holds it.
func (a *Adapter) deleteIfOurs(nc *netcfg.Conn) error {
	link, err := nc.LinkByIndex(a.index)
	if errors.Is(err, netcfg.ErrNotFound) {
		return nil // the kernel already removed it with its last queue
	}
	if err != nil {
		return err
	}
	if meta, ok := parseAlias(link.Alias); ok && meta.guid != a.guid {
		return nil
	} else if !ok && link.Name != a.name {
		return nil
	}
	err = nc.Delete(a.index)
	if errors.Is(err, netcfg.ErrNotFound) {
		return nil
	}
	return err
}

// stillThere checks that the interface is still the adapter's: attaching a
// queue to a deleted name makes a new interface.
func (a *Adapter) stillThere() error {
	_, err := a.link()
	return err
}

// link returns the adapter's interface, or ErrAdapterNotFound if it is gone
// (or another interface took its name).
func (a *Adapter) link() (netcfg.Link, error) {
	nc, err := netcfg.Dial()
	if err != nil {
		return netcfg.Link{}, fmt.Errorf("ringtun: %s: %w", a.name, err)
	}
	defer nc.Close()
	link, err := nc.LinkByName(a.name)
	if err != nil || link.Index != a.index {
		return netcfg.Link{}, fmt.Errorf("%w: %s was deleted", ErrAdapterNotFound, a.name)
	}
	return link, nil
}

// Name returns the adapter's interface name.
func (a *Adapter) Name() string { return a.name }

// TunnelType returns the adapter's tunnel type.
func (a *Adapter) TunnelType() string { return a.tunnelType }

// GUID returns the adapter's GUID.
func (a *Adapter) GUID() GUID { return a.guid }

// LUID returns the adapter's locally unique identifier: on Linux, its
// interface index.
func (a *Adapter) LUID() uint64 { return uint64(a.index) }

// Configure applies cfg declaratively (see Config) and brings the adapter
// up. Running it twice with the same cfg changes nothing. The error names
// the item that failed.
func (a *Adapter) Configure(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	nc, err := netcfg.Dial()
	if err != nil {
		return fmt.Errorf("ringtun: configure %s: %w", a.name, err)
	}
	defer nc.Close()
	return a.configure(nc, cfg)
}

func (a *Adapter) configure(nc *netcfg.Conn, cfg Config) error {
	wrap := func(err error) error {
		if errors.Is(err, unix.EPERM) {
			err = fmt.Errorf("%w: %v", ErrAccessDenied, err)
		}
		return fmt.Errorf("ringtun: configure %s: %w", a.name, err)
	}
	if cfg.MTU != 0 {
		if err := nc.SetMTU(a.index, cfg.MTU); err != nil {
			return wrap(err)
		}
	}
	if err := nc.SetUp(a.index); err != nil {
		return wrap(err)
	}
	if cfg.Addresses != nil {
		if err := nc.SetAddresses(a.index, cfg.Addresses); err != nil {
			return wrap(err)
		}
	}
	if cfg.Routes != nil {
		if err := nc.SetRoutes(a.index, cfg.Routes); err != nil {
			return wrap(err)
		}
	}
	return nil
}
