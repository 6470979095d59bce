package control

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtun/ringtun/internal/errs"
	"github.com/ringtun/ringtun/internal/guid"
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
//   - Which namespace a call acts in: a Local manager's calls act in the
//     network namespace of the calling goroutine's thread, as ip(8) would.
//     A handle remembers that namespace, and its methods act there
//     whichever thread calls them.
//   - Which interface a handle is: the interface at the handle's index in
//     its namespace, if it is an adapter with the handle's GUID (find). A
//     handle follows a rename; an adapter deleted or moved to another
//     namespace is not found (errs.AdapterNotFound), and nothing is ever
//     done to whatever took its name or index.
//   - When an adapter has a session: when the kernel says its TUN device
//     has an attached queue. A session is the one attached queue of its
//     adapter (attachSession); every other queue ringtun holds, the
//     creator's keeper, is detached and gets no packets. The rule follows
//     the device into any namespace and across processes, and only a
//     process that may attach queues (CAP_NET_ADMIN) can take part.
//   - Who may delete an adapter: its creator's Close, for a non-persistent
//     adapter, wherever it is; Uninstall, for an adapter with no session.

// Local manages adapters in the process, with rtnetlink and /dev/net/tun,
// in the network namespace of the calling goroutine's thread. It needs
// CAP_NET_ADMIN there for everything but List.
type Local struct {
	log Logger
}

// NewLocal returns a Local manager that logs to log (nil: nowhere).
func NewLocal(log Logger) *Local {
	if log == nil {
		log = func(Level, string) {}
	}
	return &Local{log: log}
}

func (m *Local) logf(level Level, format string, args ...any) {
	m.log(level, fmt.Sprintf(format, args...))
}

// localAdapter is a Local manager's handle. The handle that created a
// non-persistent adapter keeps it alive with a detached TUN queue (the
// kernel deletes the interface when the queue closes, even if the process
// is killed); opened handles hold no queue.
type localAdapter struct {
	m       *Local
	meta    Meta
	index   int
	created bool      // this handle created the interface
	ns      *netns.NS // where the handle acts; closed by Close
	name    atomic.Pointer[string]

	mu     sync.Mutex // serializes the handle's calls with Close
	closed bool
	keeper *tundev.Queue // the creator's detached queue; nil for opened handles
}

// isAdapter reports whether l is a ringtun adapter, and its metadata.
func isAdapter(l netcfg.Link) (Meta, bool) {
	t := l.TUN
	if l.Kind != "tun" || t.TAP || t.PI || !t.VNetHdr || !t.MultiQueue {
		return Meta{}, false
	}
	return ParseAlias(l.Alias)
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

// RunIn implements NamespaceRunner: fn runs on a thread in the network
// namespace at path (such as /var/run/netns/NAME or /proc/PID/ns/net),
// which needs CAP_SYS_ADMIN unless the calling thread is there already.
func (m *Local) RunIn(path string, fn func() error) error {
	ns, err := netns.Open(path)
	if err != nil {
		return fmt.Errorf("ringtun: network namespace %s: %w", path, err)
	}
	defer ns.Close()
	return ns.Run(fn)
}

// Version is this package's Version: Local manages adapters in-process.
func (m *Local) Version() (uint32, error) { return Version, nil }

// Create makes the adapter in the calling thread's namespace.
func (m *Local) Create(name string, meta Meta, cfg *Config) (Adapter, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := CheckTunnelType(meta.TunnelType); err != nil {
		return nil, err
	}
	ns, err := netns.Current()
	if err != nil {
		return nil, fmt.Errorf("ringtun: create %s: %w", name, err)
	}
	a := &localAdapter{m: m, meta: meta, created: true, ns: ns}
	a.name.Store(&name)
	if err := inNS(ns, func(nc *netcfg.Conn) error { return a.create(nc, cfg) }); err != nil {
		ns.Close()
		return nil, err
	}
	m.logf(LevelInfo, "created adapter %s (%s, %s, index %d)", name, meta.TunnelType, meta.GUID, a.index)
	return a, nil
}

// create makes the interface, marks it as a's adapter and configures it.
func (a *localAdapter) create(nc *netcfg.Conn, cfg *Config) (err error) {
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
	if a.meta.Persistent {
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
	if err := nc.SetAlias(a.index, a.meta.Alias()); err != nil {
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

// guidFree fails with errs.AdapterExists if an adapter other than a has
// a's GUID.
func (a *localAdapter) guidFree(nc *netcfg.Conn) error {
	links, err := nc.Links()
	if err != nil {
		return fmt.Errorf("ringtun: create %s: %w", a.Name(), err)
	}
	for _, l := range links {
		if meta, ok := isAdapter(l); ok && meta.GUID == a.meta.GUID && l.Index != a.index {
			return fmt.Errorf("%w: GUID %s is adapter %s's", errs.AdapterExists, a.meta.GUID, l.Name)
		}
	}
	return nil
}

// destroy deletes a half-made adapter.
func (a *localAdapter) destroy(nc *netcfg.Conn) {
	if a.meta.Persistent {
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
		if meta, ok := isAdapter(l); !ok || meta.GUID == a.meta.GUID {
			nc.Delete(a.index)
		}
	}
}

// mapTunError turns tundev's errors into errs values. creating says
// whether the call was to make a new interface, where EINVAL can only be
// the kernel refusing the name.
func mapTunError(name string, err error, creating bool) error {
	switch {
	case errors.Is(err, tundev.ErrExists):
		return fmt.Errorf("%w: %s", errs.AdapterExists, name)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %s: the process lacks CAP_NET_ADMIN (%v); run it with CAP_NET_ADMIN, or run ringtund so that it asks the daemon", errs.AccessDenied, name, err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("ringtun: %s: the kernel has no TUN support (load the tun module): %w", name, err)
	case creating && errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%w: the kernel refused the name %q (%v)", errs.InvalidName, name, err)
	}
	return fmt.Errorf("ringtun: %s: %w", name, err)
}

// HaveNetAdmin reports whether the process has CAP_NET_ADMIN in its
// effective set. When it cannot tell, it says yes and lets the kernel
// decide.
func HaveNetAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true
	}
	return data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) != 0
}

// Open opens an existing adapter in the calling thread's namespace. It
// needs CAP_NET_ADMIN. The handle does not keep the adapter alive.
func (m *Local) Open(name string) (Adapter, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if !HaveNetAdmin() {
		return nil, fmt.Errorf("%w: open %s: the process lacks CAP_NET_ADMIN; run it with CAP_NET_ADMIN, or run ringtund so that it asks the daemon", errs.AccessDenied, name)
	}
	ns, err := netns.Current()
	if err != nil {
		return nil, fmt.Errorf("ringtun: open %s: %w", name, err)
	}
	a := &localAdapter{m: m, ns: ns}
	err = inNS(ns, func(nc *netcfg.Conn) error {
		link, meta, err := findAdapter(nc, name)
		if err != nil {
			return err
		}
		a.index, a.meta = link.Index, meta
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
func findAdapter(nc *netcfg.Conn, name string) (netcfg.Link, Meta, error) {
	link, err := nc.LinkByName(name)
	if errors.Is(err, netcfg.ErrNotFound) {
		return link, Meta{}, fmt.Errorf("%w: %s", errs.AdapterNotFound, name)
	}
	if err != nil {
		return link, Meta{}, fmt.Errorf("ringtun: open %s: %w", name, err)
	}
	meta, ok := isAdapter(link)
	if !ok {
		return link, meta, fmt.Errorf("%w: %s exists but is not a ringtun adapter", errs.AdapterNotFound, name)
	}
	return link, meta, nil
}

// find returns the handle's interface: the one at its index in its
// namespace, if that is still an adapter with its GUID. It notes a new
// name. It fails with errs.AdapterNotFound otherwise.
func (a *localAdapter) find(nc *netcfg.Conn) (netcfg.Link, error) { return a.findAt(nc, a.index) }

// findAt is find at another index.
func (a *localAdapter) findAt(nc *netcfg.Conn, index int) (netcfg.Link, error) {
	l, err := nc.LinkByIndex(index)
	if err != nil && !errors.Is(err, netcfg.ErrNotFound) {
		return l, fmt.Errorf("ringtun: %s: %w", a.Name(), err)
	}
	if meta, ok := isAdapter(l); err != nil || !ok || meta.GUID != a.meta.GUID {
		return l, fmt.Errorf("%w: %s is no longer in the network namespace its handle was made in (deleted, or moved to another)",
			errs.AdapterNotFound, a.Name())
	}
	if l.Name != a.Name() {
		a.name.Store(&l.Name)
	}
	return l, nil
}

// use runs fn with the handle's interface, in its namespace, unless the
// handle is closed. The handle's lock is held throughout.
func (a *localAdapter) use(what string, fn func(nc *netcfg.Conn, l netcfg.Link) error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return fmt.Errorf("ringtun: %s %s: adapter handle closed: %w", what, a.Name(), errs.SessionEnded)
	}
	return inNS(a.ns, func(nc *netcfg.Conn) error {
		l, err := a.find(nc)
		if err != nil {
			return err
		}
		return fn(nc, l)
	})
}

// List lists the adapters in the calling thread's namespace. It needs no
// privilege.
func (m *Local) List() ([]Info, error) {
	var out []Info
	err := inCurrentNS(func(nc *netcfg.Conn) error {
		links, err := nc.Links()
		if err != nil {
			return err
		}
		for _, l := range links {
			if meta, ok := isAdapter(l); ok {
				out = append(out, Info{Name: l.Name, Index: l.Index, Meta: meta, InUse: l.TUN.Queues > 0})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ringtun: list adapters: %w", err)
	}
	return out, nil
}

// Uninstall deletes every adapter without a session in the calling
// thread's namespace, persistent or not. It takes each adapter's session
// before it deletes it, so a session starting at the same moment is never
// deleted under its user.
func (m *Local) Uninstall() error {
	var errList []error
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
			q, _, err := attachSession(nc, l, meta.GUID)
			if err != nil {
				continue // in use, or gone
			}
			if err := nc.Delete(l.Index); err != nil && !errors.Is(err, netcfg.ErrNotFound) {
				errList = append(errList, fmt.Errorf("ringtun: uninstall %s: %w", l.Name, err))
			} else {
				m.logf(LevelInfo, "deleted adapter %s", l.Name)
			}
			q.Close()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ringtun: uninstall: %w", err)
	}
	return errors.Join(errList...)
}

// Session attempts: a queue that finds another attached beside it backs
// off and tries again, since the other may be a moment's (Uninstall's, or
// an AttachSession that lost the same race).
const (
	sessionAttempts = 4
	sessionBackoff  = 200 * time.Microsecond
)

// attachSession attaches a queue to adapter interface l, in the calling
// thread's namespace, as its session's queue: the one attached queue of
// the device. It fails with errs.AlreadyInitialized when the adapter has a
// session, in any process, and with errs.AdapterNotFound when l is no
// longer the adapter; it never leaves a queue attached to anything else.
// It returns the queue and the interface as it is with the queue.
func attachSession(nc *netcfg.Conn, l netcfg.Link, id guid.GUID) (*tundev.Queue, netcfg.Link, error) {
	index := l.Index
	for attempt := 1; ; attempt++ {
		if l.TUN.Queues > 0 {
			return nil, l, fmt.Errorf("ringtun: %s: %w", l.Name, errs.AlreadyInitialized)
		}
		q, err := tundev.Attach(l.Name)
		if err != nil {
			return nil, l, mapTunError(l.Name, err, false)
		}
		// By name, the attach found the interface at index, unless the
		// adapter was renamed or deleted in between and it found another
		// interface or made one, which closing q deletes.
		now, err := nc.LinkByIndex(index)
		if meta, ok := isAdapter(now); err != nil || !ok || meta.GUID != id || now.Name != l.Name {
			q.Close()
			return nil, l, fmt.Errorf("%w: %s was deleted or renamed while its session started", errs.AdapterNotFound, l.Name)
		}
		if now.TUN.Queues == 1 {
			return q, now, nil
		}
		q.Close()
		if attempt == sessionAttempts {
			return nil, now, fmt.Errorf("ringtun: %s: %w", l.Name, errs.AlreadyInitialized)
		}
		time.Sleep(rand.N(sessionBackoff << attempt))
		if l, err = nc.LinkByIndex(index); err != nil {
			return nil, l, fmt.Errorf("%w: %s", errs.AdapterNotFound, now.Name)
		}
	}
}

// AttachSession attaches the session's queue and waits until the adapter,
// if up, is operational. The capacity is the caller's business.
func (a *localAdapter) AttachSession(uint32) (*Attached, error) {
	var att *Attached
	err := a.use("start session on", func(nc *netcfg.Conn, l netcfg.Link) error {
		q, l, err := attachSession(nc, l, a.meta.GUID)
		if err != nil {
			return err
		}
		a.waitRunning(nc, l)
		att = &Attached{Queue: q, Name: l.Name, MTU: l.MTU}
		return nil
	})
	return att, err
}

// runningWait bounds how long AttachSession waits for an adapter to become
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
func (a *localAdapter) waitRunning(nc *netcfg.Conn, l netcfg.Link) {
	deadline := time.Now().Add(runningWait)
	for polled := false; ; polled = true {
		now, err := nc.LinkByIndex(l.Index)
		if err != nil || !now.Up {
			return
		}
		if now.Running {
			if polled {
				nc.SetUp(l.Index)
			}
			return
		}
		if time.Now().After(deadline) {
			a.m.logf(LevelWarn, "%s: not operational %v after its session started", l.Name, runningWait)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Close closes the handle. If it created the adapter and the adapter is
// not persistent, the adapter is deleted, wherever it is now. Close is
// safe to call more than once.
func (a *localAdapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	q := a.keeper
	a.keeper = nil
	a.mu.Unlock()
	var err error
	if a.created && !a.meta.Persistent {
		if err = a.delete(q); err != nil {
			err = fmt.Errorf("ringtun: close %s: %w", a.Name(), err)
		} else {
			a.m.logf(LevelInfo, "deleted adapter %s", a.Name())
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
func (a *localAdapter) delete(keeper *tundev.Queue) error {
	err := inNS(a.ns, func(nc *netcfg.Conn) error {
		l, err := a.find(nc)
		if err != nil {
			return err
		}
		return nc.Delete(l.Index)
	})
	if !errors.Is(err, errs.AdapterNotFound) || keeper == nil {
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
	if errors.Is(err, netcfg.ErrNotFound) || errors.Is(err, errs.AdapterNotFound) {
		return nil
	}
	return err
}

// Delete deletes the adapter unless it has a session, which it takes
// first, as Uninstall does; then it closes the handle.
func (a *localAdapter) Delete() error {
	err := a.use("delete", func(nc *netcfg.Conn, l netcfg.Link) error {
		q, _, err := attachSession(nc, l, a.meta.GUID)
		if err != nil {
			return err
		}
		defer q.Close()
		if err := nc.Delete(l.Index); err != nil && !errors.Is(err, netcfg.ErrNotFound) {
			return fmt.Errorf("ringtun: delete %s: %w", l.Name, err)
		}
		a.m.logf(LevelInfo, "deleted adapter %s", l.Name)
		return nil
	})
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	return err
}

// Name is the adapter's interface name, as of the handle's last call that
// looked at the interface: the handle follows a rename.
func (a *localAdapter) Name() string { return *a.name.Load() }

// Index is the adapter's interface index in the handle's namespace.
func (a *localAdapter) Index() int { return a.index }

func (a *localAdapter) LUID() uint64 { return uint64(a.Index()) }

// Meta is the adapter's metadata.
func (a *localAdapter) Meta() Meta { return a.meta }

// Configure applies cfg in the handle's namespace.
func (a *localAdapter) Configure(cfg Config) error {
	return a.use("configure", func(nc *netcfg.Conn, l netcfg.Link) error {
		return a.configure(nc, l, cfg)
	})
}
