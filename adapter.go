package ringtun

import (
	"fmt"
	"sync"

	"github.com/ringtun/ringtun/internal/control"
	"github.com/ringtun/ringtun/internal/guid"
)

// Adapter is a handle to a ringtun adapter. Its methods are safe for
// concurrent use.
//
// On Linux an adapter is a TUN interface; the package documentation
// gives the rules it lives by. The handle that created a non-persistent
// adapter keeps it alive (the kernel deletes the interface when the
// handle's process ends, even if it is killed); handles from OpenAdapter
// do not.
type Adapter struct {
	c control.Adapter

	mu      sync.Mutex // orders StartSession with Close
	closed  bool
	session sessionHandle // the session this handle started, if any
}

// sessionHandle is what an Adapter needs of the session it started: a
// Session, or on Linux a SharedSession.
type sessionHandle interface {
	End()
	ended() bool
}

// CreateAdapter creates an adapter with a random GUID unless requestedGUID
// is given. It is CreateAdapterWithOptions with default options.
func CreateAdapter(name, tunnelType string, requestedGUID *GUID) (*Adapter, error) {
	return CreateAdapterWithOptions(name, tunnelType, AdapterOptions{GUID: requestedGUID})
}

// CreateAdapterWithOptions creates an adapter named name in the given
// tunnel type (DefaultTunnelType if empty), brings it up, and applies
// opts.Config. It fails with ErrAdapterExists if any interface has that
// name or an adapter has that GUID.
//
// On Linux the name is the interface name (at most 15 bytes, see
// ErrInvalidName), the adapter is made in the network namespace of the
// calling goroutine's thread, and the call needs CAP_NET_ADMIN.
func CreateAdapterWithOptions(name, tunnelType string, opts AdapterOptions) (*Adapter, error) {
	if tunnelType == "" {
		tunnelType = DefaultTunnelType
	}
	var cfg *control.Config
	if opts.Config != nil {
		if err := opts.Config.validate(); err != nil {
			return nil, err
		}
		c := opts.Config.control()
		cfg = &c
	}
	meta := control.Meta{GUID: guid.New(), Persistent: opts.Persistent, TunnelType: tunnelType}
	if opts.GUID != nil {
		meta.GUID = guid.GUID(*opts.GUID)
	}
	var c control.Adapter
	err := inNamespace("create "+name, opts.NetNS, func(m control.Manager) (err error) {
		c, err = m.Create(name, meta, cfg)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Adapter{c: c}, nil
}

// inNamespace runs fn with the process's control plane in the network
// namespace at path, or the calling thread's when path is empty.
func inNamespace(what, path string, fn func(m control.Manager) error) error {
	m, err := manager()
	if err != nil {
		return err
	}
	if path == "" {
		return fn(m)
	}
	r, ok := m.(control.NamespaceRunner)
	if !ok {
		return fmt.Errorf("ringtun: %s in %s: %w: through ringtund, adapters live in the daemon's network namespace", what, path, ErrNotSupported)
	}
	return r.RunIn(path, func() error { return fn(m) })
}

// OpenAdapter opens an existing adapter, created by this or another
// process. The handle does not keep the adapter alive: a non-persistent
// adapter still goes with its creator, as in Wintun, and closing this
// handle never deletes it.
//
// On Linux it looks in the network namespace of the calling goroutine's
// thread and needs CAP_NET_ADMIN.
func OpenAdapter(name string) (*Adapter, error) { return OpenAdapterIn("", name) }

// OpenAdapterIn is OpenAdapter in the network namespace at netns (a path
// such as /var/run/netns/NAME; empty: the calling thread's), from a
// program that stays in its own; the handle acts there. See
// AdapterOptions.NetNS for what it needs.
func OpenAdapterIn(netns, name string) (*Adapter, error) {
	var c control.Adapter
	err := inNamespace("open "+name, netns, func(m control.Manager) (err error) {
		c, err = m.Open(name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Adapter{c: c}, nil
}

// Adapters lists every ringtun adapter, whichever process created it. On
// Linux it lists those in the network namespace of the calling
// goroutine's thread, and needs no privilege.
func Adapters() ([]AdapterInfo, error) { return AdaptersIn("") }

// AdaptersIn is Adapters in the network namespace at netns (empty: the
// calling thread's); see OpenAdapterIn.
func AdaptersIn(netns string) ([]AdapterInfo, error) {
	var list []control.Info
	err := inNamespace("list adapters", netns, func(m control.Manager) (err error) {
		list, err = m.List()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]AdapterInfo, len(list))
	for i, a := range list {
		out[i] = AdapterInfo{Name: a.Name, TunnelType: a.Meta.TunnelType, GUID: GUID(a.Meta.GUID),
			LUID: uint64(a.Index), Persistent: a.Meta.Persistent, InUse: a.InUse}
	}
	return out, nil
}

// Uninstall deletes every ringtun adapter without a session, persistent or
// not, as Wintun's DeleteDriver removes its adapters. Adapters in use are
// left alone: Uninstall takes each adapter's session before it deletes it,
// so a session starting at the same moment is never deleted under its
// user. On Linux it acts in the network namespace of the calling
// goroutine's thread.
func Uninstall() error { return UninstallIn("") }

// UninstallIn is Uninstall in the network namespace at netns (empty: the
// calling thread's); see OpenAdapterIn.
func UninstallIn(netns string) error {
	return inNamespace("uninstall", netns, func(m control.Manager) error { return m.Uninstall() })
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
	s := a.session
	a.session = nil
	a.mu.Unlock()
	if s != nil {
		s.End()
	}
	return a.c.Close()
}

// Delete deletes the adapter now, persistent or not, whoever created it,
// and closes the handle; this handle's session ends first. It fails with
// ErrAlreadyInitialized while another session runs on the adapter. Through
// ringtund only the uid that created the adapter (or root) may delete it.
func (a *Adapter) Delete() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return fmt.Errorf("ringtun: delete %s: adapter handle closed: %w", a.Name(), ErrSessionEnded)
	}
	a.closed = true
	s := a.session
	a.session = nil
	a.mu.Unlock()
	if s != nil {
		s.End()
	}
	return a.c.Delete()
}

// Name returns the adapter's interface name, as of the handle's last
// call that looked at the interface: the handle follows a rename.
func (a *Adapter) Name() string { return a.c.Name() }

// TunnelType returns the adapter's tunnel type.
func (a *Adapter) TunnelType() string { return a.c.Meta().TunnelType }

// GUID returns the adapter's GUID.
func (a *Adapter) GUID() GUID { return GUID(a.c.Meta().GUID) }

// LUID returns the adapter's locally unique identifier: on Linux, its
// interface index in the handle's network namespace; on Windows, its
// NET_LUID.
func (a *Adapter) LUID() uint64 { return a.c.LUID() }

// Configure applies cfg declaratively (see Config) and brings the adapter
// up. Running it twice with the same cfg changes nothing. A cfg the
// adapter cannot take is refused before anything changes; if the system
// refuses an item anyway, what was changed is put back. The error names
// the item and the cause. On Linux it acts in the network namespace the
// handle was made in.
func (a *Adapter) Configure(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	return a.c.Configure(cfg.control())
}

// StartSession starts the adapter's session with two rings of capacity
// bytes each (a power of two from RingCapacityMin to RingCapacityMax),
// each holding at most DefaultInFlightLimit bytes of packets at a time:
// a capacity above that runs at the limit's size (see
// SessionOptions.InFlightLimit to change it). It
// fails with ErrAlreadyInitialized if the adapter has a session in any
// process, wherever its interface is, and with ErrAdapterNotFound if the
// adapter is no longer where the handle acts. An adapter that is down
// takes a session too; StartSession does not bring it up.
func (a *Adapter) StartSession(capacity uint32) (*Session, error) {
	return startWith(a, capacity, SessionOptions{}, assembleSession)
}

// StartSessionWithOptions starts the adapter's session as StartSession
// does, with the options opts (see SessionOptions: offload-aware rings, the
// bound on the bytes in flight). StartSession(c) is
// StartSessionWithOptions(c, SessionOptions{}).
func (a *Adapter) StartSessionWithOptions(capacity uint32, opts SessionOptions) (*Session, error) {
	return startWith(a, capacity, opts, assembleSession)
}

// startWith starts a session of the adapter with assemble, which builds
// it on the attached queue: the one path of StartSession,
// StartSessionWithOptions and StartSharedSession.
func startWith[S sessionHandle](a *Adapter, capacity uint32, opts SessionOptions, assemble func(*control.Attached, uint32, SessionOptions) (S, error)) (S, error) {
	var none S
	if err := checkCapacity(capacity); err != nil {
		return none, err
	}
	if err := opts.validate(); err != nil {
		return none, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return none, fmt.Errorf("ringtun: start session on %s: adapter handle closed: %w", a.Name(), ErrSessionEnded)
	}
	if a.session != nil && !a.session.ended() {
		return none, fmt.Errorf("ringtun: %s: %w", a.Name(), ErrAlreadyInitialized)
	}
	att, err := a.c.AttachSession(capacity)
	if err != nil {
		return none, err
	}
	s, err := assemble(att, capacity, opts)
	if err != nil {
		return none, err
	}
	a.session = s
	return s, nil
}
