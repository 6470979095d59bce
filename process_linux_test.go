package ringtun

// Child processes for the tests that need another process: roles run by
// re-executing the test binary, with or without privilege.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/internal/packettest"
)

// Child processes: the test binary run again with childRoleEnv set, in the
// network namespace of the test that starts it. A child reads its
// parameters from RT_* variables, writes "key json" lines on stdout, reads
// "go on" lines on stdin where a role waits for its parent, and exits by
// itself after childLifetime, or when its stdin closes.

const childLifetime = 30 * time.Second

// childWait bounds how long a parent waits for one line or for the exit of
// a child.
const childWait = 20 * time.Second

// nobody is the unprivileged user a child drops to.
const nobody = 65534

var childRoles = map[string]func() error{
	"create": roleCreate,
	"open":   roleOpen,
	"list":   roleList,
	"unpriv": roleUnprivileged,
	"squat":  roleSquat,
	// daemon_linux_test.go
	"daemon":    roleDaemon,
	"pair":      rolePair,
	"refusals":  roleRefusals,
	"echo":      roleEcho,
	"uninstall": roleUninstall,
}

// runChildRole is TestMain's entry for a child.
func runChildRole(role string) int {
	fn := childRoles[role]
	if fn == nil {
		fmt.Fprintf(os.Stderr, "child: unknown role %q\n", role)
		return 2
	}
	if s := os.Getenv("RT_UID"); s != "" && s != "0" {
		uid, err := strconv.Atoi(s)
		if err == nil {
			err = errors.Join(syscall.Setgroups(nil), syscall.Setgid(uid), syscall.Setuid(uid))
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "child: dropping to uid %s: %v\n", s, err)
			return 2
		}
	}
	time.AfterFunc(childLifetime, func() {
		fmt.Fprintf(os.Stderr, "child %s: still running after %v, exiting\n", role, childLifetime)
		os.Exit(3)
	})
	if err := fn(); err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
		return 1
	}
	return 0
}

// errReport is an error as a child reports it: its text and the package
// errors and standard kinds it matches under errors.Is.
type errReport struct {
	Msg string   `json:",omitempty"`
	Is  []string `json:",omitempty"`
}

var namedErrors = []struct {
	name string
	err  error
}{
	{"ErrNoMoreItems", ErrNoMoreItems}, {"ErrBufferOverflow", ErrBufferOverflow},
	{"ErrInvalidData", ErrInvalidData}, {"ErrSessionEnded", ErrSessionEnded},
	{"ErrAlreadyInitialized", ErrAlreadyInitialized}, {"ErrInvalidCapacity", ErrInvalidCapacity},
	{"ErrInvalidPacketSize", ErrInvalidPacketSize}, {"ErrInvalidName", ErrInvalidName},
	{"ErrAdapterExists", ErrAdapterExists}, {"ErrAdapterNotFound", ErrAdapterNotFound},
	{"ErrAccessDenied", ErrAccessDenied}, {"ErrInvalidConfig", ErrInvalidConfig},
	{"os.ErrClosed", os.ErrClosed}, {"os.ErrExist", os.ErrExist},
	{"os.ErrNotExist", os.ErrNotExist}, {"os.ErrPermission", os.ErrPermission},
}

func reportErr(err error) errReport {
	if err == nil {
		return errReport{}
	}
	r := errReport{Msg: err.Error()}
	for _, e := range namedErrors {
		if errors.Is(err, e.err) {
			r.Is = append(r.Is, e.name)
		}
	}
	return r
}

// is reports whether the error matched the named error.
func (r errReport) is(name string) bool {
	for _, n := range r.Is {
		if n == name {
			return true
		}
	}
	return false
}

func (r errReport) String() string {
	if r.Msg == "" {
		return "no error"
	}
	return fmt.Sprintf("%q (is %s)", r.Msg, strings.Join(r.Is, ", "))
}

// say writes one "key json" line for the parent.
func say(key string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s %s\n", key, b)
}

var stdinLines = sync.OnceValue(func() *bufio.Scanner { return bufio.NewScanner(os.Stdin) })

// awaitParent blocks until the parent writes a line or closes stdin.
func awaitParent() {
	stdinLines().Scan()
}

// metaOf is what a child reports of an adapter handle.
func metaOf(a *Adapter) AdapterInfo {
	return AdapterInfo{Name: a.Name(), TunnelType: a.TunnelType(), GUID: a.GUID(), LUID: a.LUID(), Persistent: a.c.Meta().Persistent}
}

// roleCreate creates adapter RT_NAME (tunnel type RT_TYPE, GUID RT_GUID,
// persistent if RT_PERSISTENT=1, address RT_ADDR), starts a session if
// RT_SESSION=1, says "ready" with the adapter's metadata, waits for its
// parent if RT_HOLD=1, and closes the adapter if RT_CLOSE=1 (otherwise it
// just exits).
func roleCreate() error {
	opts := AdapterOptions{Persistent: os.Getenv("RT_PERSISTENT") == "1"}
	if s := os.Getenv("RT_GUID"); s != "" {
		g, err := ParseGUID(s)
		if err != nil {
			return err
		}
		opts.GUID = &g
	}
	if s := os.Getenv("RT_ADDR"); s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return err
		}
		opts.Config = &Config{Addresses: []netip.Prefix{p}}
	}
	a, err := CreateAdapterWithOptions(os.Getenv("RT_NAME"), os.Getenv("RT_TYPE"), opts)
	if err != nil {
		say("error", reportErr(err))
		return err
	}
	if os.Getenv("RT_SESSION") == "1" {
		if _, err := a.StartSession(RingCapacityMin); err != nil {
			say("error", reportErr(err))
			return err
		}
	}
	say("ready", metaOf(a))
	if os.Getenv("RT_HOLD") == "1" {
		awaitParent()
	}
	if os.Getenv("RT_CLOSE") == "1" {
		if err := a.Close(); err != nil {
			return err
		}
	}
	say("done", nil)
	return nil
}

// roleOpen opens adapter RT_NAME and says "meta"; with RT_SESSION=1 it
// starts a session and says "session" with the error, if any; with
// RT_ECHO=local,peer it then exchanges an ICMP echo through the session
// and says "echo"; with RT_HOLD=1 it waits for its parent before ending
// the session and closing the adapter.
func roleOpen() error {
	a, err := OpenAdapter(os.Getenv("RT_NAME"))
	if err != nil {
		say("meta", reportErr(err))
		return nil
	}
	defer a.Close()
	say("meta", metaOf(a))
	if os.Getenv("RT_SESSION") != "1" {
		return nil
	}
	s, err := a.StartSession(RingCapacityMin)
	say("session", reportErr(err))
	if err != nil {
		return nil
	}
	defer s.End()
	if e := os.Getenv("RT_ECHO"); e != "" {
		l, p, _ := strings.Cut(e, ",")
		local, err1 := netip.ParseAddr(l)
		peer, err2 := netip.ParseAddr(p)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		say("echo", reportErr(exchangeEcho4(s, local, peer, 0x7777, 1, childWait/2)))
	}
	if os.Getenv("RT_HOLD") == "1" {
		awaitParent()
	}
	return nil
}

// roleList says "adapters" with what Adapters returns.
func roleList() error {
	list, err := Adapters()
	if err != nil {
		return err
	}
	say("adapters", list)
	return nil
}

// roleUnprivileged drops to user nobody, with no capability left, and
// says what CreateAdapter(RT_NAME), OpenAdapter(RT_OPEN) and Adapters()
// return.
func roleUnprivileged() error {
	if err := dropPrivileges(); err != nil {
		return err
	}
	say("uid", os.Geteuid())
	a, err := CreateAdapter(os.Getenv("RT_NAME"), "Unprivileged", nil)
	if err == nil {
		a.Close()
	}
	say("create", reportErr(err))
	a, err = OpenAdapter(os.Getenv("RT_OPEN"))
	if err == nil {
		a.Close()
	}
	say("open", reportErr(err))
	list, err := Adapters()
	say("list", struct {
		Adapters []AdapterInfo
		Err      errReport
	}{list, reportErr(err)})
	return nil
}

// dropPrivileges makes the process user and group nobody, with no
// supplementary groups and so no capability left.
func dropPrivileges() error {
	if err := errors.Join(syscall.Setgroups(nil), syscall.Setgid(nobody), syscall.Setuid(nobody)); err != nil {
		return fmt.Errorf("dropping privileges: %w", err)
	}
	return nil
}

// roleSquat drops to user nobody, binds the abstract Unix socket name
// RT_SOCKNAME (an older ringtun's session lock), says "bound" with the
// error, if any, and holds the name until its parent says go on.
func roleSquat() error {
	if err := dropPrivileges(); err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	err = syscall.Bind(fd, &syscall.SockaddrUnix{Name: os.Getenv("RT_SOCKNAME")})
	say("bound", reportErr(err))
	awaitParent()
	return nil
}

// exchangeEcho4 injects an IPv4 ICMP echo request from peer to local
// through s and waits up to limit for the reply, which it checks.
func exchangeEcho4(s *Session, local, peer netip.Addr, id, seq uint16, limit time.Duration) error {
	return exchangeEcho4Payload(s, local, peer, id, seq, []byte("ringtun lifecycle echo"), limit)
}

// exchangeEcho4Payload is exchangeEcho4 with the request's payload.
func exchangeEcho4Payload(s *Session, local, peer netip.Addr, id, seq uint16, payload []byte, limit time.Duration) error {
	p, err := s.AllocateSendPacket(28 + len(payload))
	if err != nil {
		return fmt.Errorf("allocate: %w", err)
	}
	packettest.EchoRequest4(p, peer, local, id, seq, payload)
	s.SendPacket(p)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		r, err := s.ReceivePacket()
		if errors.Is(err, ErrNoMoreItems) {
			if err := s.Wait(ctx); err != nil {
				out, _ := exec.Command("sh", "-c", "ip -s link; ip addr; ip route show table all").CombinedOutput()
				return fmt.Errorf("waiting for the echo reply: %w (session %+v)\n%s", err, s.Stats(), out)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		ok := len(r) == 28+len(payload) && r[0] == 0x45 && r[9] == 1 && r[20] == 0 &&
			binary.BigEndian.Uint16(r[24:]) == id && binary.BigEndian.Uint16(r[26:]) == seq
		var check error
		if ok {
			switch {
			case !bytes.Equal(r[12:16], local.AsSlice()) || !bytes.Equal(r[16:20], peer.AsSlice()):
				check = fmt.Errorf("echo reply from %v to %v", r[12:16], r[16:20])
			case packettest.Sum(r[:20]) != 0xffff || packettest.Sum(r[20:]) != 0xffff:
				check = errors.New("echo reply with a bad checksum")
			case !bytes.Equal(r[28:], payload):
				check = fmt.Errorf("echo reply payload %q", r[28:])
			}
		}
		s.ReleaseReceivePacket(r)
		if ok {
			return check
		}
	}
}

// roleChild is a running child process.
type roleChild struct {
	t      testing.TB
	role   string
	cmd    *exec.Cmd
	stdin  *os.File
	lines  chan string
	stderr syncBuffer
	exited chan struct{}
	once   sync.Once
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startRoleChild starts a child running role in ns, with env added to its
// environment. The child is killed, if still running, when the test ends.
func startRoleChild(t testing.TB, ns *netns.NS, role string, env ...string) *roleChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return startRoleChildOf(t, ns, exe, role, env...)
}

// startRoleChildOf is startRoleChild with another build of the test
// binary, exe (a 32-bit one, say).
func startRoleChildOf(t testing.TB, ns *netns.NS, exe, role string, env ...string) *roleChild {
	t.Helper()
	c := &roleChild{t: t, role: role, lines: make(chan string, 16), exited: make(chan struct{})}
	c.cmd = exec.Command(exe, "-test.run=^"+t.Name()+"$", "-test.count=1")
	// The race detector's runtime sleeps a second at exit unless told
	// not to.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	c.cmd.Env = append(append(os.Environ(), childRoleEnv+"="+role, "GORACE="+gorace), env...)
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdin = stdinW
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = stdinR, outW, &c.stderr
	// Started on a thread inside ns, the child is born in the namespace.
	err = ns.Do(c.cmd.Start)
	stdinR.Close()
	outW.Close()
	if err != nil {
		stdinW.Close()
		outR.Close()
		t.Fatalf("starting child %s: %v", role, err)
	}
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		outR.Close()
	}()
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.stdin.Close()
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Kill()
			<-c.exited
		}
		for range c.lines {
		}
	})
	return c
}

// fail stops the test with the child's stderr.
func (c *roleChild) fail(format string, args ...any) {
	c.t.Helper()
	c.cmd.Process.Kill()
	<-c.exited
	c.t.Fatalf("child %s: %s\nchild stderr:\n%s", c.role, fmt.Sprintf(format, args...), c.stderr.String())
}

// expect waits for the child's next "key json" line, which must have that
// key, and decodes its value into v (if not nil).
func (c *roleChild) expect(key string, v any) {
	c.t.Helper()
	timer := time.NewTimer(childWait)
	defer timer.Stop()
	select {
	case line, ok := <-c.lines:
		if !ok {
			<-c.exited
			c.fail("exited (%v) before saying %q", c.cmd.ProcessState, key)
		}
		k, val, _ := strings.Cut(line, " ")
		if k != key {
			c.fail("said %q, want %q", line, key)
		}
		if v != nil {
			// Decode into a zero value: fields the line leaves out
			// must not keep what an earlier line said.
			reflect.ValueOf(v).Elem().SetZero()
			if err := json.Unmarshal([]byte(val), v); err != nil {
				c.fail("said %q: %v", line, err)
			}
		}
	case <-timer.C:
		c.fail("said nothing for %v, want %q", childWait, key)
	}
}

// goOn lets a child that waits for its parent go on.
func (c *roleChild) goOn() {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, "go on\n"); err != nil {
		c.fail("writing to its stdin: %v", err)
	}
}

// wait waits for the child to exit and checks it exited with status 0.
func (c *roleChild) wait() {
	c.t.Helper()
	select {
	case <-c.exited:
	case <-time.After(childWait):
		c.fail("still running after %v", childWait)
	}
	if line, ok := <-c.lines; ok {
		c.t.Errorf("child %s: unexpected output %q", c.role, line)
	}
	if !c.cmd.ProcessState.Success() {
		c.t.Fatalf("child %s: %v\nchild stderr:\n%s", c.role, c.cmd.ProcessState, c.stderr.String())
	}
}

// kill kills the child with SIGKILL and waits for it.
func (c *roleChild) kill() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatalf("child %s: kill: %v", c.role, err)
	}
	select {
	case <-c.exited:
	case <-time.After(childWait):
		c.t.Fatalf("child %s: still running %v after SIGKILL", c.role, childWait)
	}
}

// listInChild returns what Adapters says in another process in ns.
func listInChild(t *testing.T, ns *netns.NS) []AdapterInfo {
	t.Helper()
	c := startRoleChild(t, ns, "list")
	var list []AdapterInfo
	c.expect("adapters", &list)
	c.wait()
	return list
}
