package ringtun

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/internal/tundev"
	"github.com/ringtun/ringtun/netcfg"
)

// The rules an adapter lives by on Linux, which every function here
// applies:
//
//   - What an adapter is: a multi-queue TUN interface with a virtio-net
//     header and no packet information (the flags tundev opens devices
//     with) whose alias carries ringtun's metadata. Any other interface is
//     not an adapter, whatever its alias says (isAdapter).
//   - Which namespace a call acts in: CreateAdapter, OpenAdapter,
//     Adapters and Uninstall act in the network namespace of the calling
//     goroutine's thread, as ip(8) would. A handle remembers that
//     namespace, and its methods act there whichever thread calls them.
//   - Which interface a handle is: the interface at the handle's index in
//     its namespace, if it is an adapter with the handle's GUID (find). A
//     handle follows a rename; an adapter deleted or moved to another
//     namespace is not found (ErrAdapterNotFound), and nothing is ever
//     done to whatever took its name or index.
//   - When an adapter has a session: when the kernel says its TUN device
//     has an attached queue. A session is the one attached queue of its
//     adapter (attachSession); every other queue ringtun holds, the
//     creator's keeper, is detached and gets no packets. The rule follows
//     the device into any namespace and across processes, and only a
//     process that may attach queues (CAP_NET_ADMIN) can take part.
//   - Who may delete an adapter: its creator's Close, for a non-persistent
//     adapter, wherever it is; Uninstall, for an adapter with no session.

// Adapter is a handle to a ringtun adapter. The handle that created a
// non-persistent adapter keeps it alive with a detached TUN queue (the
// kernel deletes the interface when the queue closes, even if the process
// is killed); handles from OpenAdapter hold no queue.
type Adapter struct {
	tunnelType string
	guid       GUID
	persistent bool
	index      int
	created    bool      // this handle created the interface
	ns         *netns.NS // where the handle acts; closed by Close
	name       atomic.Pointer[string]

	mu      sync.Mutex // serializes the handle's calls with Close
	closed  bool
	keeper  *tundev.Queue // the creator's detached queue; nil for opened handles
	session *Session
}

// isAdapter reports whether l is a ringtun adapter, and its metadata.
func isAdapter(l netcfg.Link) (adapterMeta, bool) {
	t := l.TUN
	if l.Kind != "tun" || t.TAP || t.PI || !t.VNetHdr || !t.MultiQueue {
		return adapterMeta{}, false
	}
	return parseAlias(l.Alias)
}

// inNS runs fn with an rtnetlink connection in ns, on a thread there
// so that fn may also open TUN queues there.
func inNS(ns *netns.NS, fn func(nc *netcfg.Conn) error) error {
	return ns.Run(func() error {
		nc, err := netcfg.Dial()
		if err != nil {
			return err
		}
		defer nc.Close()
		return fn(nc)
	})
}

// inCurrentNS is inNS in the calling thread's namespace.
func inCurrentNS(fn func(nc *netcfg.Conn) error) error {
	ns, err := netns.Current()
	if err != nil {
		return err
	}
	defer ns.Close()
	return inNS(ns, fn)
}

// CreateAdapter creates an adapter with a random GUID unless requestedGUID
// is given. It is CreateAdapterWithOptions with default options.
func CreateAdapter(name, tunnelType string, requestedGUID *GUID) (*Adapter, error) {
	return CreateAdapterWithOptions(name, tunnelType, AdapterOptions{GUID: requestedGUID})
}

// CreateAdapterWithOptions creates an adapter named name (at most 15 bytes,
// the Linux interface name) in the given tunnel type (DefaultTunnelType if
// empty), in the network namespace of the calling goroutine's thread,
// brings it up, and applies opts.Config. It needs CAP_NET_ADMIN. It fails
// with ErrAdapterExists if any interface has that name or an adapter has
// that GUID.
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
	ns, err := netns.Current()
	if err != nil {
		return nil, fmt.Errorf("ringtun: create %s: %w", name, err)
	}
	a := &Adapter{tunnelType: tunnelType, guid: guid, persistent: opts.Persistent, created: true, ns: ns}
	a.name.Store(&name)
	if err := inNS(ns, func(nc *netcfg.Conn) error { return a.create(nc, opts.Config) }); err != nil {
		ns.Close()
		return nil, err
	}
	logf(LogInfo, "created adapter %s (%s, %s, index %d)", name, tunnelType, guid, a.index)
	return a, nil
}

// create makes the interface, marks it as a's adapter and configures it.
func (a *Adapter) create(nc *netcfg.Conn, cfg *Config) (err error) {
	name := a.Name()
	if err := a.guidFree(nc); err != nil {
		return err
	}
	q, err := tundev.Create(name)
	if err != nil {
		return mapTunError(name, err, true)
	}
	a.keeper = q
	defer func() {
		if err != nil {
			a.destroy(nc)
		}
	}()
	if a.persistent {
		if err := q.SetPersist(true); err != nil {
			return fmt.Errorf("ringtun: create %s: %w", name, err)
		}
	}
	if err := q.Detach(); err != nil {
		return fmt.Errorf("ringtun: create %s: %w", name, err)
	}
	link, err := nc.LinkByName(name)
	if err != nil {
		return fmt.Errorf("ringtun: create %s: %w", name, err)
	}
	a.index = link.Index
	meta := adapterMeta{guid: a.guid, persistent: a.persistent, tunnelType: a.tunnelType}
	if err := nc.SetAlias(a.index, meta.alias()); err != nil {
		return fmt.Errorf("ringtun: create %s: %w", name, err)
	}
	// Another process may have given the same GUID to an adapter made at
	// the same time: look again now that this one carries it.
	if err := a.guidFree(nc); err != nil {
		return err
	}
	if link, err = a.find(nc); err != nil {
		return err
	}
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	return a.configure(nc, link, c)
}

// guidFree fails with ErrAdapterExists if an adapter other than a has a's
// GUID.
func (a *Adapter) guidFree(nc *netcfg.Conn) error {
	links, err := nc.Links()
	if err != nil {
		return fmt.Errorf("ringtun: create %s: %w", a.Name(), err)
	}
	for _, l := range links {
		if meta, ok := isAdapter(l); ok && meta.guid == a.guid && l.Index != a.index {
			return fmt.Errorf("%w: GUID %s is adapter %s's", ErrAdapterExists, a.guid, l.Name)
		}
	}
	return nil
}

// destroy deletes a half-made adapter.
func (a *Adapter) destroy(nc *netcfg.Conn) {
	if a.persistent {
		a.keeper.SetPersist(false)
	}
	a.keeper.Close()
	a.keeper = nil
	if a.index == 0 {
		return
	}
	// Without persistence and its only queue, the kernel has deleted it
	// already, unless another process attached a queue meanwhile.
	if l, err := nc.LinkByIndex(a.index); err == nil && l.Kind == "tun" && l.Name == a.Name() {
		if meta, ok := isAdapter(l); !ok || meta.guid == a.guid {
			nc.Delete(a.index)
		}
	}
}

// mapTunError turns tundev's errors into this package's. creating says
// whether the call was to make a new interface, where EINVAL can only be
// the kernel refusing the name.
func mapTunError(name string, err error, creating bool) error {
	switch {
	case errors.Is(err, tundev.ErrExists):
		return fmt.Errorf("%w: %s", ErrAdapterExists, name)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %s: the process lacks CAP_NET_ADMIN (%v)", ErrAccessDenied, name, err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("ringtun: %s: the kernel has no TUN support (load the tun module): %w", name, err)
	case creating && errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%w: the kernel refused the name %q (%v)", ErrInvalidName, name, err)
	}
	return fmt.Errorf("ringtun: %s: %w", name, err)
}

// haveNetAdmin reports whether the process has CAP_NET_ADMIN in its
// effective set. When it cannot tell, it says yes and lets the kernel
// decide.
func haveNetAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true
	}
	return data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) != 0
}

// OpenAdapter opens an existing adapter, created by this or another
// process, in the network namespace of the calling goroutine's thread. It
// needs CAP_NET_ADMIN. The handle does not keep the adapter alive: a
// non-persistent adapter still goes with its creator, as in Wintun, and
// closing this handle never deletes it.
func OpenAdapter(name string) (*Adapter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if !haveNetAdmin() {
		return nil, fmt.Errorf("%w: open %s: the process lacks CAP_NET_ADMIN", ErrAccessDenied, name)
	}
	ns, err := netns.Current()
	if err != nil {
		return nil, fmt.Errorf("ringtun: open %s: %w", name, err)
	}
	a := &Adapter{ns: ns}
	err = inNS(ns, func(nc *netcfg.Conn) error {
		link, meta, err := findAdapter(nc, name)
		if err != nil {
			return err
		}
		a.index, a.guid, a.tunnelType, a.persistent = link.Index, meta.guid, meta.tunnelType, meta.persistent
		a.name.Store(&link.Name)
		return nil
	})
	if err != nil {
		ns.Close()
		return nil, err
	}
	return a, nil
}

// findAdapter looks up a ringtun adapter by name.
func findAdapter(nc *netcfg.Conn, name string) (netcfg.Link, adapterMeta, error) {
	link, err := nc.LinkByName(name)
	if errors.Is(err, netcfg.ErrNotFound) {
		return link, adapterMeta{}, fmt.Errorf("%w: %s", ErrAdapterNotFound, name)
	}
	if err != nil {
		return link, adapterMeta{}, fmt.Errorf("ringtun: open %s: %w", name, err)
	}
	meta, ok := isAdapter(link)
	if !ok {
		return link, meta, fmt.Errorf("%w: %s exists but is not a ringtun adapter", ErrAdapterNotFound, name)
	}
	return link, meta, nil
}

// find returns the handle's interface: the one at its index in its
// namespace, if that is still an adapter with its GUID. It notes a new
// name. It fails with ErrAdapterNotFound otherwise.
func (a *Adapter) find(nc *netcfg.Conn) (netcfg.Link, error) { return a.findAt(nc, a.index) }

// findAt is find at another index.
func (a *Adapter) findAt(nc *netcfg.Conn, index int) (netcfg.Link, error) {
	l, err := nc.LinkByIndex(index)
	if err != nil && !errors.Is(err, netcfg.ErrNotFound) {
		return l, fmt.Errorf("ringtun: %s: %w", a.Name(), err)
	}
	if meta, ok := isAdapter(l); err != nil || !ok || meta.guid != a.guid {
		return l, fmt.Errorf("%w: %s is no longer in the network namespace its handle was made in (deleted, or moved to another)",
			ErrAdapterNotFound, a.Name())
	}
	if l.Name != a.Name() {
		a.name.Store(&l.Name)
	}
	return l, nil
}

// use runs fn with the handle's interface, in its namespace, unless the
// handle is closed. The handle's lock is held throughout.
func (a *Adapter) use(what string, fn func(nc *netcfg.Conn, l netcfg.Link) error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return fmt.Errorf("ringtun: %s %s: adapter handle closed: %w", what, a.Name(), ErrSessionEnded)
	}
	return inNS(a.ns, func(nc *netcfg.Conn) error {
		l, err := a.find(nc)
		if err != nil {
			return err
		}
		return fn(nc, l)
	})
}

// Adapters lists every ringtun adapter in the network namespace of the
// calling goroutine's thread, whichever process created it. It needs no
// privilege.
func Adapters() ([]AdapterInfo, error) {
	var out []AdapterInfo
	err := inCurrentNS(func(nc *netcfg.Conn) error {
		links, err := nc.Links()
		if err != nil {
			return err
		}
		for _, l := range links {
			if meta, ok := isAdapter(l); ok {
				out = append(out, AdapterInfo{Name: l.Name, TunnelType: meta.tunnelType, GUID: meta.guid,
					LUID: uint64(l.Index), Persistent: meta.persistent, InUse: l.TUN.Queues > 0})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ringtun: list adapters: %w", err)
	}
	return out, nil
}

// Uninstall deletes every ringtun adapter without a session in the network
// namespace of the calling goroutine's thread, persistent or not, as
// Wintun's DeleteDriver removes its adapters. Adapters in use are left
// alone: Uninstall takes each adapter's session before it deletes it, so
// a session starting at the same moment is never deleted under its user.
func Uninstall() error {
	var errs []error
	err := inCurrentNS(func(nc *netcfg.Conn) error {
		links, err := nc.Links()
		if err != nil {
			return err
		}
		for _, l := range links {
			meta, ok := isAdapter(l)
			if !ok {
				continue
			}
			q, _, err := attachSession(nc, l, meta.guid)
			if err != nil {
				continue // in use, or gone
			}
			if err := nc.Delete(l.Index); err != nil && !errors.Is(err, netcfg.ErrNotFound) {
				errs = append(errs, fmt.Errorf("ringtun: uninstall %s: %w", l.Name, err))
			} else {
				logf(LogInfo, "deleted adapter %s", l.Name)
			}
			q.Close()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ringtun: uninstall: %w", err)
	}
	return errors.Join(errs...)
}

// Session attempts: a queue that finds another attached beside it backs
// off and tries again, since the other may be a moment's (Uninstall's, or
// a StartSession that lost the same race).
const (
	sessionAttempts = 4
	sessionBackoff  = 200 * time.Microsecond
)

// attachSession attaches a queue to adapter interface l, in the calling
// thread's namespace, as its session's queue: the one attached queue of
// the device. It fails with ErrAlreadyInitialized when the adapter has a
// session, in any process, and with ErrAdapterNotFound when l is no
// longer the adapter; it never leaves a queue attached to anything else.
// It returns the queue and the interface as it is with the queue.
func attachSession(nc *netcfg.Conn, l netcfg.Link, guid GUID) (*tundev.Queue, netcfg.Link, error) {
	index := l.Index
	for attempt := 1; ; attempt++ {
		if l.TUN.Queues > 0 {
			return nil, l, fmt.Errorf("ringtun: %s: %w", l.Name, ErrAlreadyInitialized)
		}
		q, err := tundev.Attach(l.Name)
		if err != nil {
			return nil, l, mapTunError(l.Name, err, false)
		}
		// By name, the attach found the interface at index, unless the
		// adapter was renamed or deleted in between and it found another
		// interface or made one, which closing q deletes.
		now, err := nc.LinkByIndex(index)
		if meta, ok := isAdapter(now); err != nil || !ok || meta.guid != guid || now.Name != l.Name {
			q.Close()
			return nil, l, fmt.Errorf("%w: %s was deleted or renamed while its session started", ErrAdapterNotFound, l.Name)
		}
		if now.TUN.Queues == 1 {
			return q, now, nil
		}
		q.Close()
		if attempt == sessionAttempts {
			return nil, now, fmt.Errorf("ringtun: %s: %w", l.Name, ErrAlreadyInitialized)
		}
		time.Sleep(rand.N(sessionBackoff << attempt))
		if l, err = nc.LinkByIndex(index); err != nil {
			return nil, l, fmt.Errorf("%w: %s", ErrAdapterNotFound, now.Name)
		}
	}
}

// Close ends the handle's session, if any, and closes the handle. If this
// handle created the adapter and it is not persistent, the adapter is
// deleted, wherever it is now. Close is safe to call more than once.
func (a *Adapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	s, q := a.session, a.keeper
	a.session, a.keeper = nil, nil
	a.mu.Unlock()
	if s != nil {
		s.End()
	}
	var err error
	if a.created && !a.persistent {
		if err = a.delete(q); err != nil {
			err = fmt.Errorf("ringtun: close %s: %w", a.Name(), err)
		} else {
			logf(LogInfo, "deleted adapter %s", a.Name())
		}
	}
	if q != nil {
		q.Close()
	}
	a.ns.Close()
	return err
}

// delete deletes the adapter a created, even under another process's
// session: in the handle's namespace, or wherever the device moved to,
// which its keeper queue knows.
func (a *Adapter) delete(keeper *tundev.Queue) error {
	err := inNS(a.ns, func(nc *netcfg.Conn) error {
		l, err := a.find(nc)
		if err != nil {
			return err
		}
		return nc.Delete(l.Index)
	})
	if !errors.Is(err, ErrAdapterNotFound) || keeper == nil {
		return ignoreNotFound(err)
	}
	fd, kerr := keeper.DeviceNetNS()
	if kerr != nil {
		// The device is gone (the keeper is the last queue and closing
		// it deletes the device in any case), or the kernel is older
		// than 5.2.
		return nil
	}
	there, kerr := netns.FromFD(fd)
	if kerr != nil {
		return kerr
	}
	defer there.Close()
	return ignoreNotFound(inNS(there, func(nc *netcfg.Conn) error {
		name, err := keeper.DeviceName()
		if err != nil {
			return nil
		}
		l, err := nc.LinkByName(name)
		if err != nil {
			return err
		}
		if l, err = a.findAt(nc, l.Index); err != nil {
			return err
		}
		return nc.Delete(l.Index)
	}))
}

// ignoreNotFound treats an adapter that is gone as deleted.
func ignoreNotFound(err error) error {
	if errors.Is(err, netcfg.ErrNotFound) || errors.Is(err, ErrAdapterNotFound) {
		return nil
	}
	return err
}

// Name returns the adapter's interface name, as of the handle's last
// call that looked at the interface: the handle follows a rename.
func (a *Adapter) Name() string { return *a.name.Load() }

// TunnelType returns the adapter's tunnel type.
func (a *Adapter) TunnelType() string { return a.tunnelType }

// GUID returns the adapter's GUID.
func (a *Adapter) GUID() GUID { return a.guid }

// LUID returns the adapter's locally unique identifier: on Linux, its
// interface index in the handle's network namespace.
func (a *Adapter) LUID() uint64 { return uint64(a.index) }

// Configure applies cfg declaratively (see Config) and brings the adapter
// up, in the network namespace the handle acts in. Running it twice with
// the same cfg changes nothing. A cfg the adapter cannot take is refused
// before anything changes; if the kernel refuses an item anyway, what was
// changed is put back. The error names the item and the cause.
func (a *Adapter) Configure(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	return a.use("configure", func(nc *netcfg.Conn, l netcfg.Link) error {
		return a.configure(nc, l, cfg)
	})
}
