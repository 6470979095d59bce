package broker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtun/ringtun/internal/control"
	"github.com/ringtun/ringtun/internal/errs"
	"github.com/ringtun/ringtun/internal/tundev"
)

// Client is the daemon's client: a control.Manager whose adapters the
// daemon manages. It keeps one connection while it has adapter handles
// open (made at the first request that needs it, closed when the last
// handle is): the daemon ties each handle, and the adapters it created
// that are not persistent, to the connection that made them. Its methods
// are safe for concurrent use; requests take turns.
type Client struct {
	path string

	mu      sync.Mutex // one request at a time, and the fields below
	c       *conn
	gen     int // counts connections, so that handles know theirs
	next    uint32
	handles int // open handles on c
}

// NewClient returns a client of the daemon listening at path.
func NewClient(path string) *Client { return &Client{path: path} }

// Path is the daemon's socket.
func (cl *Client) Path() string { return cl.path }

// call sends a request and waits for its response. gen, if not zero, is
// the connection the request belongs to (a handle's): if that connection
// is gone, so is what the request is about.
func (cl *Client) call(op Op, req any, gen int) (*dec, int, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	d, fd, err := cl.callLocked(op, req, gen)
	switch {
	case err == nil && (op == OpCreate || op == OpOpen):
		cl.handles++
	case (err == nil || errors.Is(err, errs.SessionEnded)) && (op == OpClose || op == OpDelete) && gen == cl.gen:
		cl.handles--
	}
	if cl.c == nil || cl.handles <= 0 {
		if cl.c != nil {
			cl.c.close()
		}
		cl.c, cl.handles = nil, 0
	}
	return d, fd, err
}

func (cl *Client) callLocked(op Op, req any, gen int) (*dec, int, error) {
	if cl.c == nil {
		if gen != 0 {
			return nil, -1, fmt.Errorf("ringtun: %v: the connection to ringtund at %s is gone: %w", op, cl.path, errs.SessionEnded)
		}
		uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: cl.path, Net: "unix"})
		if err != nil {
			return nil, -1, fmt.Errorf("ringtun: no ringtund at %s (%v): run it (see the README), or run the program with CAP_NET_ADMIN: %w",
				cl.path, err, errs.AccessDenied)
		}
		cl.c = newConn(uc)
		cl.gen++
	}
	if gen != 0 && gen != cl.gen {
		return nil, -1, fmt.Errorf("ringtun: %v: the connection to ringtund that made this handle is gone: %w", op, errs.SessionEnded)
	}
	cl.next++
	id := cl.next
	h, body, fds, err := cl.roundTrip(op, id, encodeRequest(req))
	if err != nil {
		closeAll(fds)
		cl.c.close()
		cl.c = nil
		return nil, -1, fmt.Errorf("ringtun: %v through ringtund at %s: %v: %w", op, cl.path, err, errs.SessionEnded)
	}
	d := &dec{b: body}
	code, msg := errorCode(d.u32()), d.str()
	fd := -1
	if code == codeOK && op == OpStartSession && len(fds) == 1 {
		fd, fds = fds[0], nil
	}
	closeAll(fds)
	if d.err != nil || h.op != uint16(op)|respFlag || h.id != id {
		if fd >= 0 {
			unix.Close(fd)
		}
		cl.c.close()
		cl.c = nil
		return nil, -1, fmt.Errorf("ringtun: %v: a malformed response from ringtund: %w", op, errs.SessionEnded)
	}
	if code != codeOK {
		return nil, -1, errorFrom(code, msg)
	}
	return d, fd, nil
}

// replyTimeout bounds how long a request waits for the daemon's answer:
// a daemon that hangs must give its clients an error, not hang them too.
var replyTimeout = time.Minute

func (cl *Client) roundTrip(op Op, id uint32, body []byte) (header, []byte, []int, error) {
	if err := cl.c.write(uint16(op), id, body, -1); err != nil {
		return header{}, nil, nil, err
	}
	cl.c.uc.SetReadDeadline(time.Now().Add(replyTimeout))
	h, b, fds, err := cl.c.read()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("no answer within %v", replyTimeout)
	}
	return h, b, fds, err
}

// Version asks the daemon for its version.
func (cl *Client) Version() (uint32, error) {
	d, _, err := cl.call(OpVersion, nil, 0)
	if err != nil {
		return 0, err
	}
	v := d.u32()
	return v, d.end()
}

// Create asks the daemon for a new adapter.
func (cl *Client) Create(name string, meta control.Meta, cfg *control.Config) (control.Adapter, error) {
	return cl.adapter(OpCreate, &createReq{name: name, tunnelType: meta.TunnelType, guid: meta.GUID, persistent: meta.Persistent, config: cfg})
}

// Open asks the daemon for a handle to an adapter the process's user
// created.
func (cl *Client) Open(name string) (control.Adapter, error) {
	return cl.adapter(OpOpen, &nameReq{name: name})
}

func (cl *Client) adapter(op Op, req any) (control.Adapter, error) {
	d, _, err := cl.call(op, req, 0)
	if err != nil {
		return nil, err
	}
	id, info := d.u32(), d.info()
	if err := d.end(); err != nil {
		return nil, err
	}
	cl.mu.Lock()
	gen := cl.gen
	cl.mu.Unlock()
	a := &clientAdapter{cl: cl, id: id, gen: gen, info: info}
	a.name.Store(&info.Name)
	return a, nil
}

// List lists every adapter in the daemon's network namespace.
func (cl *Client) List() ([]control.Info, error) {
	d, _, err := cl.call(OpList, nil, 0)
	if err != nil {
		return nil, err
	}
	n := d.u32()
	if n > MaxBody {
		return nil, protoErr("%d adapters", n)
	}
	out := make([]control.Info, 0, n)
	for range n {
		out = append(out, d.info())
	}
	return out, d.end()
}

// Uninstall asks the daemon to delete the adapters without a session that
// the process's user created (every one, for root).
func (cl *Client) Uninstall() error {
	_, _, err := cl.call(OpUninstall, nil, 0)
	return err
}

// clientAdapter is a handle the daemon keeps for the client.
type clientAdapter struct {
	cl     *Client
	id     uint32
	gen    int
	info   control.Info
	name   atomic.Pointer[string]
	mu     sync.Mutex
	closed bool
}

func (a *clientAdapter) Name() string       { return *a.name.Load() }
func (a *clientAdapter) Index() int         { return a.info.Index }
func (a *clientAdapter) LUID() uint64       { return uint64(a.info.Index) }
func (a *clientAdapter) Meta() control.Meta { return a.info.Meta }

func (a *clientAdapter) call(op Op, req any) (*dec, int, error) {
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed {
		return nil, -1, fmt.Errorf("ringtun: %v %s: adapter handle closed: %w", op, a.Name(), errs.SessionEnded)
	}
	return a.cl.call(op, req, a.gen)
}

func (a *clientAdapter) Configure(cfg control.Config) error {
	_, _, err := a.call(OpConfigure, &configureReq{handle: a.id, config: cfg})
	return err
}

// AttachSession asks the daemon to attach the session's queue and pass it.
// The daemon's policy may bound capacity.
func (a *clientAdapter) AttachSession(capacity uint32) (*control.Attached, error) {
	d, fd, err := a.call(OpStartSession, &startReq{handle: a.id, capacity: capacity})
	if err != nil {
		return nil, err
	}
	name, mtu := d.str(), d.u32()
	if err := d.end(); err != nil || fd < 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("ringtun: start session on %s: ringtund sent no queue: %w", a.Name(), errs.SessionEnded)
	}
	q, err := tundev.FromFD(fd)
	if err != nil {
		a.call(OpEndSession, &handleReq{handle: a.id})
		return nil, fmt.Errorf("ringtun: start session on %s: %w", a.Name(), err)
	}
	a.name.Store(&name)
	return &control.Attached{Queue: q, Name: name, MTU: int(mtu), Release: func() {
		a.call(OpEndSession, &handleReq{handle: a.id})
	}}, nil
}

func (a *clientAdapter) Delete() error {
	_, _, err := a.call(OpDelete, &handleReq{handle: a.id})
	if err == nil {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
	}
	return err
}

func (a *clientAdapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	_, _, err := a.cl.call(OpClose, &handleReq{handle: a.id}, a.gen)
	if errors.Is(err, errs.SessionEnded) {
		return nil // the connection went, and the handle with it
	}
	return err
}
