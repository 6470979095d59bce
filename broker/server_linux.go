package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtun/ringtun/internal/control"
	"github.com/ringtun/ringtun/internal/errs"
	"github.com/ringtun/ringtun/internal/guid"
	"github.com/ringtun/ringtun/internal/tundev"
	"github.com/ringtun/ringtun/ring"
)

// Version is the daemon's version, as RunningVersion reports it through
// the daemon: (major<<16)|minor.
const Version = 0<<16 | 1

// ServerOptions configure a Server. The zero value serves nobody but root.
type ServerOptions struct {
	// Policy decides for clients that are not root; nil refuses them
	// everything privileged.
	Policy Checker
	// Log receives a line for every privileged action (who, what,
	// result); nil discards them.
	Log *slog.Logger
	// StateFile, if not empty, is where the server records which client
	// created which adapter, so that a restarted daemon knows whose
	// adapters are there and removes those of clients that are gone.
	StateFile string
}

// Server serves ringtund's protocol with a control.Local in the network
// namespace the server runs in.
type Server struct {
	policy  atomic.Pointer[Checker]
	log     *slog.Logger
	local   *control.Local
	state   *stateFile
	metrics metrics

	mu       sync.Mutex
	owners   map[guid.GUID]owner // adapters created through the server
	conns    map[*serverConn]struct{}
	listener *net.UnixListener
	closed   bool
	wg       sync.WaitGroup
}

// owner records who created an adapter through the server.
type owner struct {
	Name       string    `json:"name"`
	GUID       guid.GUID `json:"guid"`
	UID        uint32    `json:"uid"`
	PID        uint32    `json:"pid"`
	PIDStart   uint64    `json:"pid_start"` // the process's start time, to tell a reused pid
	Persistent bool      `json:"persistent"`
}

// NewServer returns a server. With a StateFile it first removes what
// clients that are gone left behind.
func NewServer(opts ServerOptions) (*Server, error) {
	s := &Server{log: opts.Log, owners: map[guid.GUID]owner{}, conns: map[*serverConn]struct{}{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.local = control.NewLocal(func(level control.Level, msg string) {
		// control's levels are 0, 1, 2; slog's info, warn and error 0, 4, 8.
		s.log.Log(context.Background(), slog.Level(int(level)*4), msg)
	})
	s.SetPolicy(opts.Policy)
	if opts.StateFile != "" {
		s.state = &stateFile{path: opts.StateFile}
		if err := s.recover(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// SetPolicy replaces the policy; requests after it see the new one.
func (s *Server) SetPolicy(p Checker) { s.policy.Store(&p) }

// Listen listens on a Unix socket at path, mode 0666 (the policy decides
// who may do what, not the socket's mode). A socket left by a daemon that
// is gone is replaced; one that a running daemon answers on is not.
func Listen(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("ringtund: a daemon already listens on %s", path)
	} else if errors.Is(err, syscall.ECONNREFUSED) {
		os.Remove(path) // stale: nobody listens
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// ListenSystemd returns the socket systemd passed (socket activation:
// LISTEN_PID and LISTEN_FDS), or nil if there is none.
func ListenSystemd() (*net.UnixListener, error) {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 1 {
		return nil, nil
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	unix.CloseOnExec(3)
	fl, err := net.FileListener(os.NewFile(3, "systemd socket"))
	if err != nil {
		return nil, fmt.Errorf("ringtund: the socket systemd passed: %w", err)
	}
	l, ok := fl.(*net.UnixListener)
	if !ok {
		fl.Close()
		return nil, errors.New("ringtund: systemd passed a socket that is not a Unix stream socket")
	}
	return l, nil
}

// acceptBackoff is how long Serve waits after a failed accept.
const acceptBackoff = 50 * time.Millisecond

// Serve accepts clients on l until Close. It returns nil after Close.
func (s *Server) Serve(l *net.UnixListener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("ringtund: server closed")
	}
	s.listener = l
	s.mu.Unlock()
	for {
		uc, err := l.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors or memory, say: wait and go on, rather
			// than stop serving everyone.
			s.log.Warn("accept failed", "err", err)
			time.Sleep(acceptBackoff)
			continue
		}
		c, err := s.newConn(uc)
		if err != nil {
			s.log.Warn("refused a connection", "err", err)
			uc.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			uc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// Close stops accepting, ends every client's connection (their
// non-persistent adapters go, their sessions are detached) and waits for
// that to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	l := s.listener
	for c := range s.conns {
		c.c.close()
	}
	s.mu.Unlock()
	if l != nil {
		l.Close()
	}
	s.wg.Wait()
	return nil
}

// Conns returns how many clients are connected.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// serverConn is one client's connection and its handles.
type serverConn struct {
	s       *Server
	c       *conn
	peer    Peer
	start   uint64 // the peer process's start time
	handles map[uint32]*handle
	next    uint32
}

// handle is a client's adapter handle and its session, if any.
type handle struct {
	a       control.Adapter
	created bool
	// session is the daemon's descriptor of the session's queue, or -1.
	// It is a plain descriptor, not a Queue: a Queue is in the Go
	// poller, which would wake the daemon for every packet the client
	// reads.
	session int
}

func (s *Server) newConn(uc *net.UnixConn) (*serverConn, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var gids []uint32
	var cerr error
	rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if cerr == nil {
			gids, _ = peerGroups(int(fd))
		}
	})
	if cerr != nil {
		return nil, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	p := Peer{UID: cred.Uid, PID: uint32(cred.Pid), GIDs: append([]uint32{cred.Gid}, gids...)}
	return &serverConn{s: s, c: newConn(uc), peer: p, start: processStart(p.PID), handles: map[uint32]*handle{}}, nil
}

// serve answers c's requests until it goes or sends a malformed message,
// then ends its sessions and closes its handles.
func (c *serverConn) serve() {
	defer c.s.wg.Done()
	defer c.cleanup()
	for {
		h, body, fds, err := c.c.read()
		closeAll(fds) // clients never send descriptors
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.s.log.Warn("dropped a client", "uid", c.peer.UID, "pid", c.peer.PID, "err", err)
			}
			return
		}
		op := Op(h.op)
		req, err := decodeRequest(op, body)
		if err != nil || h.op&respFlag != 0 {
			c.s.log.Warn("dropped a client for a malformed request", "uid", c.peer.UID, "pid", c.peer.PID, "op", op, "err", err)
			return
		}
		resp, fd, err := c.handle(op, req)
		if err := c.reply(h, resp, fd, err); err != nil {
			return
		}
	}
}

// reply sends the response: status, message, body and descriptor.
func (c *serverConn) reply(h header, resp []byte, fd int, rerr error) error {
	if fd >= 0 {
		defer unix.Close(fd)
	}
	var e enc
	if rerr != nil {
		e.u32(uint32(codeOf(rerr)))
		msg := rerr.Error()
		if len(msg) > 4096 {
			msg = msg[:4096]
		}
		e.str(msg)
		fd = -1
	} else {
		e.u32(uint32(codeOK))
		e.str("")
		e.b = append(e.b, resp...)
	}
	return c.c.write(h.op|respFlag, h.id, e.b, fd)
}

// handle carries out one request. It returns the response body, a
// descriptor to pass (or -1) and the error to report.
func (c *serverConn) handle(op Op, req any) ([]byte, int, error) {
	var e enc
	var err error
	fd := -1
	switch r := req.(type) {
	case nil:
		switch op {
		case OpVersion:
			e.u32(Version)
		case OpList:
			err = c.list(&e)
		case OpUninstall:
			err = c.uninstall()
		}
	case *createReq:
		err = c.create(r, &e)
	case *nameReq:
		err = c.open(r.name, &e)
	case *handleReq:
		switch op {
		case OpClose:
			err = c.closeHandle(r.handle)
		case OpDelete:
			err = c.deleteAdapter(r.handle)
		case OpEndSession:
			err = c.endSession(r.handle)
		}
	case *configureReq:
		err = c.configure(r)
	case *startReq:
		fd, err = c.startSession(r, &e)
	}
	if op != OpVersion && op != OpList {
		c.logResult(op, req, err)
	}
	c.s.metrics.count(op, err)
	return e.b, fd, err
}

func (c *serverConn) logResult(op Op, req any, err error) {
	args := []any{"uid", c.peer.UID, "pid", c.peer.PID, "op", op.String()}
	switch r := req.(type) {
	case *createReq:
		args = append(args, "adapter", r.name, "tunnel_type", r.tunnelType, "persistent", r.persistent)
	case *nameReq:
		args = append(args, "adapter", r.name)
	}
	if err != nil {
		c.s.log.Warn("refused", append(args, "err", err)...)
	} else {
		c.s.log.Info("done", args...)
	}
}

// check asks the policy, for a client that is not root.
func (c *serverConn) check(a Action) error {
	if c.peer.UID == 0 {
		return nil
	}
	p := *c.s.policy.Load()
	if p == nil {
		return fmt.Errorf("%w: %s %s: the daemon has no policy, so only root may", errs.AccessDenied, a.What, a.Name)
	}
	return p.Check(c.peer, a)
}

func (c *serverConn) add(h *handle, e *enc) {
	c.next++
	c.handles[c.next] = h
	e.u32(c.next)
	e.info(control.Info{Name: h.a.Name(), Index: h.a.Index(), Meta: h.a.Meta()})
}

func (c *serverConn) get(id uint32) (*handle, error) {
	h, ok := c.handles[id]
	if !ok {
		return nil, fmt.Errorf("ringtund: no handle %d on this connection: %w", id, errs.SessionEnded)
	}
	return h, nil
}

func (c *serverConn) create(r *createReq, e *enc) error {
	s := c.s
	// One creation at a time, so that max_adapters holds.
	s.mu.Lock()
	defer s.mu.Unlock()
	a := Action{What: "create", Name: r.name, TunnelType: r.tunnelType, Persistent: r.persistent, Owned: s.ownedBy(c.peer.UID)}
	if r.config != nil {
		a.Addresses, a.Routes, a.MTU = r.config.Addresses, r.config.Routes, r.config.MTU
	}
	if err := c.check(a); err != nil {
		return err
	}
	ad, err := s.local.Create(r.name, control.Meta{GUID: r.guid, Persistent: r.persistent, TunnelType: r.tunnelType}, r.config)
	if err != nil {
		return err
	}
	s.owners[r.guid] = owner{Name: r.name, GUID: r.guid, UID: c.peer.UID, PID: c.peer.PID, PIDStart: c.start, Persistent: r.persistent}
	s.saveLocked()
	c.add(&handle{a: ad, created: true, session: -1}, e)
	return nil
}

// mayUse fails unless the client may act on the adapter with GUID g: it
// created it, or it is root.
func (c *serverConn) mayUse(name string, g guid.GUID) error {
	if c.peer.UID == 0 {
		return nil
	}
	c.s.mu.Lock()
	o, ok := c.s.owners[g]
	c.s.mu.Unlock()
	if !ok || o.UID != c.peer.UID {
		return fmt.Errorf("%w: adapter %s was not created by uid %d", errs.AccessDenied, name, c.peer.UID)
	}
	return nil
}

func (c *serverConn) open(name string, e *enc) error {
	ad, err := c.s.local.Open(name)
	if err != nil {
		return err
	}
	if err := c.mayUse(name, ad.Meta().GUID); err != nil {
		ad.Close()
		return err
	}
	c.add(&handle{a: ad, session: -1}, e)
	return nil
}

func (c *serverConn) list(e *enc) error {
	list, err := c.s.local.List()
	if err != nil {
		return err
	}
	e.u32(uint32(len(list)))
	for _, i := range list {
		e.info(i)
	}
	return nil
}

func (c *serverConn) configure(r *configureReq) error {
	h, err := c.get(r.handle)
	if err != nil {
		return err
	}
	m := h.a.Meta()
	a := Action{What: "configure", Name: h.a.Name(), TunnelType: m.TunnelType, Owned: -1,
		Addresses: r.config.Addresses, Routes: r.config.Routes, MTU: r.config.MTU}
	if err := c.check(a); err != nil {
		return err
	}
	return h.a.Configure(r.config)
}

func (c *serverConn) startSession(r *startReq, e *enc) (int, error) {
	h, err := c.get(r.handle)
	if err != nil {
		return -1, err
	}
	if err := ring.CheckCapacity(r.capacity); err != nil {
		return -1, fmt.Errorf("%w: %v", errs.InvalidCapacity, err)
	}
	if h.session >= 0 {
		return -1, fmt.Errorf("ringtun: %s: %w", h.a.Name(), errs.AlreadyInitialized)
	}
	m := h.a.Meta()
	if err := c.check(Action{What: "start a session on", Name: h.a.Name(), TunnelType: m.TunnelType, Owned: -1, Capacity: r.capacity}); err != nil {
		return -1, err
	}
	att, err := h.a.AttachSession(r.capacity)
	if err != nil {
		return -1, err
	}
	fd, err := att.Queue.Dup()
	keep, kerr := att.Queue.Dup()
	att.Queue.Close()
	if err = errors.Join(err, kerr); err != nil {
		closeAll([]int{fd, keep})
		return -1, err
	}
	h.session = keep
	e.str(att.Name)
	e.u32(uint32(att.MTU))
	return fd, nil
}

// endSession detaches the session's queue, which the client's copy
// shares, so that the adapter is free for a new session whatever the
// client still holds, and closes the daemon's copy.
func (c *serverConn) endSession(id uint32) error {
	h, err := c.get(id)
	if err != nil {
		return err
	}
	h.endSession()
	return nil
}

func (h *handle) endSession() {
	if h.session >= 0 {
		tundev.DetachFD(h.session)
		unix.Close(h.session)
		h.session = -1
	}
}

func (c *serverConn) closeHandle(id uint32) error {
	h, err := c.get(id)
	if err != nil {
		return err
	}
	delete(c.handles, id)
	return c.release(h)
}

// release ends h's session and closes it, forgetting the adapter's owner
// if that deleted it.
func (c *serverConn) release(h *handle) error {
	h.endSession()
	m := h.a.Meta()
	err := h.a.Close()
	if h.created && !m.Persistent {
		c.s.forget(m.GUID)
	}
	return err
}

func (c *serverConn) deleteAdapter(id uint32) error {
	h, err := c.get(id)
	if err != nil {
		return err
	}
	if h.session >= 0 {
		return fmt.Errorf("ringtun: delete %s: %w", h.a.Name(), errs.AlreadyInitialized)
	}
	m := h.a.Meta()
	if err := h.a.Delete(); err != nil {
		return err
	}
	delete(c.handles, id)
	c.s.forget(m.GUID)
	return nil
}

// uninstall deletes every adapter without a session; a client that is not
// root only those it created.
func (c *serverConn) uninstall() error {
	if c.peer.UID == 0 {
		err := c.s.local.Uninstall()
		c.s.prune()
		return err
	}
	c.s.mu.Lock()
	var mine []owner
	for _, o := range c.s.owners {
		if o.UID == c.peer.UID {
			mine = append(mine, o)
		}
	}
	c.s.mu.Unlock()
	for _, o := range mine {
		ad, err := c.s.local.Open(o.Name)
		if err != nil || ad.Meta().GUID != o.GUID {
			if ad != nil {
				ad.Close()
			}
			continue
		}
		if ad.Delete() == nil {
			c.s.forget(o.GUID)
		}
	}
	return nil
}

// cleanup ends the client's sessions and closes its handles: its
// non-persistent adapters go.
func (c *serverConn) cleanup() {
	for id, h := range c.handles {
		c.release(h)
		delete(c.handles, id)
	}
	c.c.close()
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
}

// ownedBy counts the live adapters uid created. s.mu is held.
func (s *Server) ownedBy(uid uint32) int {
	n := 0
	for _, o := range s.owners {
		if o.UID == uid {
			n++
		}
	}
	return n
}

func (s *Server) forget(g guid.GUID) {
	s.mu.Lock()
	delete(s.owners, g)
	s.saveLocked()
	s.mu.Unlock()
}

// prune forgets the owners of adapters that no longer exist.
func (s *Server) prune() {
	list, err := s.local.List()
	if err != nil {
		return
	}
	live := map[guid.GUID]bool{}
	for _, i := range list {
		live[i.Meta.GUID] = true
	}
	s.mu.Lock()
	for g := range s.owners {
		if !live[g] {
			delete(s.owners, g)
		}
	}
	s.saveLocked()
	s.mu.Unlock()
}
