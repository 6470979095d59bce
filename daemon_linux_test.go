package ringtun

// ringtund: unprivileged clients through the daemon (issue 10). Each test
// runs its daemons as child processes in namespaces of its own, and its
// clients as children that drop to an unprivileged uid and find the daemon
// through RINGTUN_DAEMON.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringtun/ringtun/broker"
	"github.com/ringtun/ringtun/broker/policy"
	"github.com/ringtun/ringtun/internal/netns"
	"golang.org/x/sys/unix"
)

// testPolicy allows uid nobody and uid nobody-1 adapters of tunnel type
// MyVPN named vpn…, in the test ranges.
const testPolicy = `
[[rule]]
users = ["65534", "65533"]
tunnel_types = ["MyVPN"]
name_prefix = "vpn"
max_adapters = 2
addresses = ["198.18.0.0/16"]
routes = ["198.18.0.0/16"]
max_mtu = 9000
max_ring_capacity = 0x400000
persistent = false
`

// daemonProc is a ringtund child.
type daemonProc struct {
	*roleChild
	socket, state string
	ns            *netns.NS
}

// startDaemon runs a daemon with policy text pol in ns, its socket and
// state in a directory of its own that unprivileged clients can reach.
func startDaemon(t testing.TB, ns *netns.NS, pol string) *daemonProc {
	t.Helper()
	dir, err := os.MkdirTemp("", "ringtund-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	d := &daemonProc{socket: filepath.Join(dir, "ringtund.sock"), state: filepath.Join(dir, "state.json"), ns: ns}
	if err := os.WriteFile(filepath.Join(dir, "policy.toml"), []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	d.roleChild = d.restart(t)
	return d
}

// restart starts the daemon again on the same socket, policy and state.
func (d *daemonProc) restart(t testing.TB) *roleChild {
	t.Helper()
	c := startRoleChild(t, d.ns, "daemon", "RT_SOCKET="+d.socket, "RT_POLICY="+filepath.Join(filepath.Dir(d.socket), "policy.toml"), "RT_STATE="+d.state)
	c.expect("listening", nil)
	return c
}

// roleDaemon runs ringtund's server until its parent closes stdin.
func roleDaemon() error {
	pol, err := policy.Load(os.Getenv("RT_POLICY"))
	if err != nil {
		return err
	}
	srv, err := broker.NewServer(broker.ServerOptions{Policy: pol, StateFile: os.Getenv("RT_STATE")})
	if err != nil {
		return err
	}
	l, err := broker.Listen(os.Getenv("RT_SOCKET"))
	if err != nil {
		return err
	}
	go func() {
		awaitParent()
		srv.Close()
	}()
	say("listening", nil)
	return srv.Serve(l)
}

// client starts a child running role as uid (0: root), asking the daemon
// at socket.
func client(t *testing.T, ns *netns.NS, uid int, socket, role string, env ...string) *roleChild {
	t.Helper()
	return startRoleChild(t, ns, role, append(env, "RT_UID="+strconv.Itoa(uid), DaemonEnv+"="+socket)...)
}

// tunLinks lists the TUN interfaces in ns.
func tunLinks(t *testing.T, ns *netns.NS) []string {
	t.Helper()
	var names []string
	in(t, ns, func() error {
		out, err := ipCmd("-o", "link", "show", "type", "tun")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(line); len(f) > 1 {
				names = append(names, strings.TrimSuffix(f[1], ":"))
			}
		}
		return err
	})
	return names
}

// waitNoTUN waits up to limit until ns has no TUN interface left.
func waitNoTUN(t *testing.T, ns *netns.NS, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		left := tunLinks(t, ns)
		if len(left) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("TUN interfaces left after %v: %v", limit, left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rolePair is a brokered forwarder: as its unprivileged uid it creates
// adapter vpnA (198.18.1.1/24, route to 198.18.2.0/24) through the daemon
// at RT_SOCK_A and vpnB (the mirror) through RT_SOCK_B, checks an ICMP
// echo through A, forwards between them until its parent says go on, then
// starts a second session on each and closes both adapters.
func rolePair() error {
	mk := func(sock, name string, addr, route string) (*Adapter, *Session, error) {
		os.Setenv(DaemonEnv, sock)
		a, err := CreateAdapterWithOptions(name, "MyVPN", AdapterOptions{Config: &Config{
			Addresses: []netip.Prefix{netip.MustParsePrefix(addr)}, Routes: []netip.Prefix{netip.MustParsePrefix(route)}}})
		if err != nil {
			return nil, nil, err
		}
		s, err := a.StartSession(0x400000)
		return a, s, err
	}
	a, sa, err := mk(os.Getenv("RT_SOCK_A"), "vpnA", "198.18.1.1/24", "198.18.2.0/24")
	if err != nil {
		return err
	}
	b, sb, err := mk(os.Getenv("RT_SOCK_B"), "vpnB", "198.18.2.1/24", "198.18.1.0/24")
	if err != nil {
		return err
	}
	say("echo", reportErr(exchangeEcho4(sa, fwdAddrA, netip.MustParseAddr("198.18.1.9"), 0x4444, 1, childWait/2)))
	f := startForwarder(sa, sb, true)
	say("forwarding", nil)
	awaitParent()
	if err := f.stop(); err != nil {
		return err
	}
	sa.End()
	sb.End()
	for _, ad := range []*Adapter{a, b} {
		s, err := ad.StartSession(RingCapacityMin)
		if err != nil {
			return fmt.Errorf("second session on %s: %w", ad.Name(), err)
		}
		s.End()
	}
	say("closed", reportErr(errors.Join(a.Close(), b.Close())))
	return nil
}

// startPair makes two namespaces with a daemon each, and starts an
// unprivileged "pair" client of both.
func startPair(t *testing.T) (nsA, nsB *netns.NS, dA, dB *daemonProc, c *roleChild) {
	t.Helper()
	needIP(t)
	nsA, nsB = newNS(t), newNS(t)
	for _, ns := range []*netns.NS{nsA, nsB} {
		in(t, ns, disableIPv6)
	}
	dA, dB = startDaemon(t, nsA, testPolicy), startDaemon(t, nsB, testPolicy)
	c = client(t, nsA, nobody, dA.socket, "pair", "RT_SOCK_A="+dA.socket, "RT_SOCK_B="+dB.socket)
	return nsA, nsB, dA, dB, c
}

// TestDaemonSession: an unprivileged program gets two adapters through two
// daemons (one per namespace), exchanges an ICMP echo, carries a 20 MiB
// TCP transfer between the namespaces (content checked), starts second
// sessions, and leaves nothing behind.
func TestDaemonSession(t *testing.T) {
	nsA, nsB, dA, dB, c := startPair(t)
	var echo errReport
	c.expect("echo", &echo)
	if echo.Msg != "" {
		c.fail("echo: %v", echo)
	}
	c.expect("forwarding", nil)
	wakes := daemonWakeups(t, dA.cmd.Process.Pid) + daemonWakeups(t, dB.cmd.Process.Pid)
	res := tcpTransfer(t, nsB, nsA, fwdAddrB, transferSize(20<<20), transferLimit)
	wakes = daemonWakeups(t, dA.cmd.Process.Pid) + daemonWakeups(t, dB.cmd.Process.Pid) - wakes
	t.Logf("brokered TCP: %v; the daemons woke %d times meanwhile", res, wakes)
	// Packets never cross the daemons, nor wake them: a daemon that
	// watched the session's queue in its poller woke thousands of times
	// in this transfer, and cost 15% of the throughput.
	if wakes > daemonWakeLimit {
		t.Errorf("the daemons woke %d times during the transfer, more than %d: they watch the data path", wakes, daemonWakeLimit)
	}
	c.goOn()
	var closed errReport
	c.expect("closed", &closed)
	if closed.Msg != "" {
		c.fail("close: %v", closed)
	}
	c.wait()
	waitNoTUN(t, nsA, time.Second)
	waitNoTUN(t, nsB, time.Second)
}

// daemonWakeLimit bounds how often two idle daemons may wake during a
// transfer (timers, the Go runtime's background work).
const daemonWakeLimit = 200

// daemonWakeups sums the context switches of every thread of process pid.
func daemonWakeups(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				x, _ := strconv.Atoi(strings.TrimSpace(v))
				n += x
			}
		}
	}
	return n
}

// TestDaemonKilledDuringTransfer: sessions outlive their daemons: both are
// killed with SIGKILL during a transfer, which completes; when the client
// exits nothing is left.
func TestDaemonKilledDuringTransfer(t *testing.T) {
	nsA, nsB, dA, dB, c := startPair(t)
	c.expect("echo", nil)
	c.expect("forwarding", nil)
	go func() {
		time.Sleep(200 * time.Millisecond)
		dA.cmd.Process.Kill()
		dB.cmd.Process.Kill()
	}()
	res := tcpTransfer(t, nsB, nsA, fwdAddrB, transferSize(20<<20), transferLimit)
	t.Logf("TCP with the daemons killed after 200 ms: %v", res)
	<-dA.exited
	<-dB.exited
	c.goOn() // its second sessions and Close now fail: the daemons are gone
	c.cmd.Process.Kill()
	<-c.exited
	waitNoTUN(t, nsA, time.Second)
	waitNoTUN(t, nsB, time.Second)
}

// TestDaemonClientKilled: the non-persistent adapter of a client killed
// with SIGKILL is gone within a second.
func TestDaemonClientKilled(t *testing.T) {
	ns := newNS(t)
	d := startDaemon(t, ns, testPolicy)
	c := client(t, ns, nobody, d.socket, "create", "RT_NAME=vpn0", "RT_TYPE=MyVPN", "RT_SESSION=1", "RT_HOLD=1")
	c.expect("ready", nil)
	if got := tunLinks(t, ns); len(got) != 1 || got[0] != "vpn0" {
		t.Fatalf("TUN interfaces %v, want vpn0", got)
	}
	// A brokered session and an in-process one by root exclude each other.
	t.Setenv(DaemonEnv, "off")
	in(t, ns, func() error {
		a, err := OpenAdapter("vpn0")
		if err != nil {
			return err
		}
		defer a.Close()
		if s, err := a.StartSession(RingCapacityMin); !errors.Is(err, ErrAlreadyInitialized) {
			if s != nil {
				s.End()
			}
			return fmt.Errorf("root's in-process StartSession beside a brokered session: %v", err)
		}
		return nil
	})
	c.kill()
	t.Logf("adapter gone %v after SIGKILL", waitNoTUN(t, ns, time.Second))
}

// roleRefusals tries, as its uid, everything testPolicy refuses, and says
// "results" with each attempt's error and the adapters there are after.
func roleRefusals() error {
	type result struct {
		Case string
		Err  errReport
	}
	var out []result
	try := func(name string, fn func() error) { out = append(out, result{name, reportErr(fn())}) }
	create := func(name, typ string, opts AdapterOptions) func() error {
		return func() error {
			a, err := CreateAdapterWithOptions(name, typ, opts)
			if err == nil {
				a.Close()
			}
			return err
		}
	}
	cfg := func(addr, route string, mtu int) *Config {
		c := &Config{MTU: mtu}
		if addr != "" {
			c.Addresses = []netip.Prefix{netip.MustParsePrefix(addr)}
		}
		if route != "" {
			c.Routes = []netip.Prefix{netip.MustParsePrefix(route)}
		}
		return c
	}
	try("tunnel type", create("vpn1", "Other", AdapterOptions{}))
	try("name prefix", create("wg1", "MyVPN", AdapterOptions{}))
	try("address", create("vpn1", "MyVPN", AdapterOptions{Config: cfg("198.19.0.1/24", "", 0)}))
	try("route", create("vpn1", "MyVPN", AdapterOptions{Config: cfg("", "198.19.0.0/24", 0)}))
	try("default route", create("vpn1", "MyVPN", AdapterOptions{Config: cfg("", "0.0.0.0/0", 0)}))
	try("MTU", create("vpn1", "MyVPN", AdapterOptions{Config: cfg("", "", 9001)}))
	try("persistent", create("vpn1", "MyVPN", AdapterOptions{Persistent: true}))
	a, err := CreateAdapter("vpn1", "MyVPN", nil)
	if err != nil {
		return err
	}
	defer a.Close()
	try("ring capacity", func() error {
		s, err := a.StartSession(0x800000)
		if err == nil {
			s.End()
		}
		return err
	})
	try("configure", func() error { return a.Configure(*cfg("198.19.0.1/24", "", 0)) })
	b, err := CreateAdapter("vpn2", "MyVPN", nil)
	if err != nil {
		return err
	}
	defer b.Close()
	try("max adapters", create("vpn3", "MyVPN", AdapterOptions{}))
	list, err := Adapters()
	if err != nil {
		return err
	}
	var names []string
	for _, i := range list {
		names = append(names, i.Name)
	}
	say("results", struct {
		Results  []result
		Adapters []string
	}{out, names})
	awaitParent()
	return nil
}

// TestDaemonRefusals: everything outside the policy is ErrAccessDenied,
// names the rule and the value, and creates nothing.
func TestDaemonRefusals(t *testing.T) {
	ns := newNS(t)
	d := startDaemon(t, ns, testPolicy)
	c := client(t, ns, nobody, d.socket, "refusals")
	var got struct {
		Results []struct {
			Case string
			Err  errReport
		}
		Adapters []string
	}
	c.expect("results", &got)
	says := map[string]string{"tunnel type": `tunnel type "Other"`, "name prefix": `name "wg1"`, "address": "address 198.19.0.1/24",
		"route": "route 198.19.0.0/24", "default route": "route 0.0.0.0/0", "MTU": "MTU 9001", "persistent": "persistent",
		"ring capacity": "ring capacity 0x800000", "configure": "address 198.19.0.1/24", "max adapters": "max_adapters is 2"}
	if len(got.Results) != len(says) {
		t.Fatalf("%d results, want %d: %+v", len(got.Results), len(says), got.Results)
	}
	for _, r := range got.Results {
		if !r.Err.is("ErrAccessDenied") || !r.Err.is("os.ErrPermission") || !strings.Contains(r.Err.Msg, says[r.Case]) || !strings.Contains(r.Err.Msg, "rule 1 of") {
			t.Errorf("%s: %v, want ErrAccessDenied naming rule 1 and %q", r.Case, r.Err, says[r.Case])
		}
	}
	if strings.Join(got.Adapters, ",") != "vpn1,vpn2" {
		t.Errorf("adapters %v after the refusals, want vpn1,vpn2 only", got.Adapters)
	}
	c.goOn()
	c.wait()
	waitNoTUN(t, ns, time.Second)

	// A uid in no rule gets nothing.
	none := client(t, ns, 4242, d.socket, "create", "RT_NAME=vpn9", "RT_TYPE=MyVPN")
	var e errReport
	none.expect("error", &e)
	if !e.is("ErrAccessDenied") || !strings.Contains(e.Msg, "uid 4242") || !strings.Contains(e.Msg, "in no rule") {
		t.Errorf("uid in no rule: %v", e)
	}
	<-none.exited
	if left := tunLinks(t, ns); len(left) != 0 {
		t.Errorf("refusals left %v", left)
	}
}

// TestDaemonOwnership: a client may open only the adapters its uid
// created; root may open any; Adapters lists all of them.
func TestDaemonOwnership(t *testing.T) {
	ns := newNS(t)
	d := startDaemon(t, ns, testPolicy)
	owner := client(t, ns, nobody, d.socket, "create", "RT_NAME=vpn0", "RT_TYPE=MyVPN", "RT_ADDR=198.18.5.1/24", "RT_HOLD=1")
	owner.expect("ready", nil)

	other := client(t, ns, nobody-1, d.socket, "open", "RT_NAME=vpn0")
	var e errReport
	other.expect("meta", &e)
	if !e.is("ErrAccessDenied") || !strings.Contains(e.Msg, "not created by uid 65533") {
		t.Errorf("another uid opened the adapter: %v", e)
	}
	other.wait()

	same := client(t, ns, nobody, d.socket, "open", "RT_NAME=vpn0", "RT_SESSION=1", "RT_ECHO=198.18.5.1,198.18.5.2")
	same.expect("meta", nil)
	var s errReport
	same.expect("session", &s)
	if s.Msg != "" {
		t.Errorf("the owner's uid could not start a session: %v", s)
	}
	same.expect("echo", &s)
	if s.Msg != "" {
		t.Errorf("echo through the owner's second handle: %v", s)
	}
	same.wait()

	root := client(t, ns, 0, d.socket, "open", "RT_NAME=vpn0")
	var m AdapterInfo
	root.expect("meta", &m)
	if m.Name != "vpn0" || m.TunnelType != "MyVPN" {
		t.Errorf("root through the daemon: %+v", m)
	}
	root.wait()

	lister := client(t, ns, nobody-1, d.socket, "list")
	var list []AdapterInfo
	lister.expect("adapters", &list)
	if len(list) != 1 || list[0].Name != "vpn0" {
		t.Errorf("Adapters through the daemon for another uid: %+v", list)
	}
	lister.wait()
	owner.goOn()
	owner.expect("done", nil)
	owner.wait()
	waitNoTUN(t, ns, time.Second)
}

// TestDaemonRestartCleansUp: a restarted daemon deletes the
// non-persistent adapters its state file gives to clients that are gone
// (here one the client made persistent behind the daemon's back, as
// TUNSETPERSIST on its queue would), and keeps a live client's.
func TestDaemonRestartCleansUp(t *testing.T) {
	ns := newNS(t)
	var gone, alive *Adapter
	in(t, ns, func() (err error) {
		if gone, err = CreateAdapterWithOptions("vpnGone", "MyVPN", AdapterOptions{Persistent: true}); err != nil {
			return err
		}
		alive, err = CreateAdapterWithOptions("vpnLive", "MyVPN", AdapterOptions{Persistent: true})
		return err
	})
	t.Cleanup(func() { ns.Do(Uninstall) })
	self := uint32(os.Getpid())
	records := []map[string]any{
		{"name": "vpnGone", "guid": gone.GUID(), "uid": nobody, "pid": 1 << 22, "pid_start": 1, "persistent": false},
		{"name": "vpnLive", "guid": alive.GUID(), "uid": nobody, "pid": self, "pid_start": processStartForTest(self), "persistent": false},
	}
	gone.Close()
	alive.Close()
	d := startDaemon(t, ns, testPolicy)
	d.stdin.Close()
	<-d.exited
	data, _ := json.Marshal(records)
	if err := os.WriteFile(d.state, data, 0o600); err != nil {
		t.Fatal(err)
	}
	d.restart(t)
	if got := tunLinks(t, ns); len(got) != 1 || got[0] != "vpnLive" {
		t.Fatalf("after the restart: %v, want vpnLive only", got)
	}
	// The live client's uid still owns it.
	c := client(t, ns, nobody, d.socket, "open", "RT_NAME=vpnLive")
	var m AdapterInfo
	c.expect("meta", &m)
	if m.Name != "vpnLive" {
		t.Errorf("the owner could not open its adapter after the restart: %+v", m)
	}
	c.wait()
}

// processStartForTest reads a process's start time as the daemon does.
func processStartForTest(pid uint32) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

// TestDaemonVersion: RunningVersion reports the daemon's version through
// it.
func TestDaemonVersion(t *testing.T) {
	ns := newNS(t)
	d := startDaemon(t, ns, testPolicy)
	v, err := broker.NewClient(d.socket).Version()
	if err != nil || v != broker.Version {
		t.Fatalf("Version = %#x, %v", v, err)
	}
	t.Setenv(DaemonEnv, d.socket)
	if v, err := RunningVersion(); err != nil || v != broker.Version {
		t.Fatalf("RunningVersion through the daemon = %#x, %v", v, err)
	}
	t.Setenv(DaemonEnv, filepath.Join(t.TempDir(), "none.sock"))
	if _, err := CreateAdapter("vpnX", "MyVPN", nil); !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "no ringtund at") {
		t.Fatalf("CreateAdapter with no daemon at RINGTUN_DAEMON: %v", err)
	}
	_ = context.Background
}

// fdCount counts a process's open descriptors.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestDaemonHostileClients: malformed messages, silence, descriptors sent
// unasked and a thousand connections opened and dropped end only the
// connections they came on: the daemon stays up, leaks no descriptor and
// serves the next client correctly.
func TestDaemonHostileClients(t *testing.T) {
	ns := newNS(t)
	d := startDaemon(t, ns, testPolicy)
	pid := d.cmd.Process.Pid
	dial := func() *net.UnixConn {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: d.socket, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// A well-formed request, to check the daemon still answers.
	version := func() {
		t.Helper()
		cl := broker.NewClient(d.socket)
		if v, err := cl.Version(); err != nil || v != broker.Version {
			t.Fatalf("Version after the hostile clients: %#x, %v", v, err)
		}
	}
	// Counted before any client came: a client's connection stays in the
	// count until the daemon has read its end.
	before := fdCount(t, pid)
	version()
	hdr := func(version, op uint16, length uint32) []byte {
		b := []byte("RTUN")
		b = binary.LittleEndian.AppendUint16(b, version)
		b = binary.LittleEndian.AppendUint16(b, op)
		b = binary.LittleEndian.AppendUint32(b, 7)
		return binary.LittleEndian.AppendUint32(b, length)
	}
	inputs := map[string][]byte{
		"garbage":           []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"truncated header":  hdr(1, 1, 0)[:9],
		"wrong version":     hdr(2, 1, 0),
		"oversized":         hdr(1, 2, 1<<30),
		"truncated body":    append(hdr(1, 3, 100), 1, 2, 3),
		"unknown op":        hdr(1, 99, 0),
		"a response":        hdr(1, 0x8001, 0),
		"field past body":   append(hdr(1, 3, 2), 0xff, 0x00),
		"bytes left over":   append(hdr(1, 1, 3), 1, 2, 3),
		"bad prefix family": append(hdr(1, 6, 4+1+2+2+18), append([]byte{1, 0, 0, 0, 1, 1, 2, 0}, make([]byte, 18)...)...),
	}
	for name, in := range inputs {
		c := dial()
		c.Write(in)
		c.CloseWrite()
		c.SetReadDeadline(time.Now().Add(childWait))
		buf := make([]byte, 64)
		if n, err := c.Read(buf); err == nil {
			t.Errorf("%s: the daemon answered %q instead of closing", name, buf[:n])
		}
		c.Close()
	}
	// Descriptors the client was not asked for, with a valid request.
	r, w, _ := os.Pipe()
	c := dial()
	c.WriteMsgUnix(hdr(1, 1, 0), unix.UnixRights(int(r.Fd()), int(w.Fd())), nil)
	c.SetReadDeadline(time.Now().Add(childWait))
	if _, err := c.Read(make([]byte, 64)); err != nil {
		t.Errorf("a version request that came with descriptors: %v", err)
	}
	c.Close()
	r.Close()
	w.Close()
	// A client that connects and says nothing, while a thousand come and go.
	silent := dial()
	for range 1000 {
		dial().Close()
	}
	version()
	silent.Close()
	deadline := time.Now().Add(childWait)
	for {
		after := fdCount(t, pid)
		if after == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon has %d descriptors, %d before the hostile clients", after, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And it still serves a real client.
	ok := client(t, ns, nobody, d.socket, "create", "RT_NAME=vpn0", "RT_TYPE=MyVPN", "RT_SESSION=1", "RT_CLOSE=1")
	ok.expect("ready", nil)
	ok.expect("done", nil)
	ok.wait()
}

// roleEcho creates adapter vpn0 (198.18.6.1/24), starts a session,
// exchanges an ICMP echo through it, says "echo" with the result and the
// process's pointer size, and closes the adapter.
func roleEcho() error {
	a, err := CreateAdapterWithOptions("vpn0", "MyVPN", AdapterOptions{Config: &Config{
		Addresses: []netip.Prefix{netip.MustParsePrefix("198.18.6.1/24")}}})
	if err != nil {
		return err
	}
	defer a.Close()
	s, err := a.StartSession(RingCapacityMin)
	if err != nil {
		return err
	}
	err = exchangeEcho4(s, netip.MustParseAddr("198.18.6.1"), netip.MustParseAddr("198.18.6.2"), 0x3232, 1, childWait/2)
	say("echo", struct {
		Err  errReport
		Bits int
	}{reportErr(err), strconv.IntSize})
	return nil
}

// TestDaemon32BitClient: a linux/386 build of this test binary, run as an
// unprivileged client, gets an adapter from the 64-bit daemon and
// exchanges an ICMP echo through it.
func TestDaemon32BitClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a linux/386 test binary")
	}
	ns := newNS(t)
	exe := filepath.Join(t.TempDir(), "ringtun386.test")
	os.Chmod(filepath.Dir(exe), 0o755)
	build := exec.Command("go", "test", "-c", "-o", exe, ".")
	build.Env = append(os.Environ(), "GOARCH=386", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the linux/386 test binary: %v\n%s", err, out)
	}
	if err := exec.Command(exe, "-test.run=^$").Run(); err != nil {
		t.Skipf("this kernel does not run 32-bit x86 programs: %v", err)
	}
	d := startDaemon(t, ns, testPolicy)
	c := startRoleChildOf(t, ns, exe, "echo", "RT_UID="+strconv.Itoa(nobody), DaemonEnv+"="+d.socket)
	var got struct {
		Err  errReport
		Bits int
	}
	c.expect("echo", &got)
	if got.Err.Msg != "" || got.Bits != 32 {
		t.Fatalf("32-bit client: %v (a %d-bit process)", got.Err, got.Bits)
	}
	c.wait()
	waitNoTUN(t, ns, time.Second)
}

// BenchmarkCreateStartSession: creating an adapter, starting its session
// and closing it, in-process and through the daemon (a root client, so
// that the policy is not asked; the cost is the daemon's round trips).
func BenchmarkCreateStartSession(b *testing.B) {
	ns := newNS(b)
	d := startDaemon(b, ns, testPolicy)
	for _, mode := range []struct{ name, env string }{{"in-process", "off"}, {"brokered", d.socket}} {
		b.Run(mode.name, func(b *testing.B) {
			b.Setenv(DaemonEnv, mode.env)
			in(b, ns, func() error {
				for b.Loop() {
					a, err := CreateAdapter("vpn0", "MyVPN", nil)
					if err != nil {
						return err
					}
					s, err := a.StartSession(RingCapacityMin)
					if err != nil {
						return err
					}
					s.End()
					if err := a.Close(); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
}

// buildRingtund builds cmd/ringtund into a directory of the test's.
func buildRingtund(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "ringtund")
	if out, err := exec.Command("go", "build", "-o", exe, "./cmd/ringtund").CombinedOutput(); err != nil {
		t.Fatalf("building ringtund: %v\n%s", err, out)
	}
	return exe
}

// TestRingtundCommand: the daemon as shipped. Started with the socket
// systemd would pass (LISTEN_PID, LISTEN_FDS, fd 3), it serves on it; a
// SIGHUP with a policy that does not parse keeps the old policy, and one
// with a good policy replaces it.
func TestRingtundCommand(t *testing.T) {
	ns := newNS(t)
	exe := buildRingtund(t)
	dir, err := os.MkdirTemp("", "ringtund-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	sock, pol := filepath.Join(dir, "s.sock"), filepath.Join(dir, "policy.toml")
	os.WriteFile(pol, []byte(testPolicy), 0o644)
	var l *net.UnixListener
	in(t, ns, func() (err error) {
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		return err
	})
	os.Chmod(sock, 0o666)
	lf, _ := l.File()
	l.SetUnlinkOnClose(false)
	l.Close()
	var logs syncBuffer
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"`, "sh", exe,
		"--socket", filepath.Join(dir, "unused.sock"), "--policy", pol, "--state", filepath.Join(dir, "state.json"))
	cmd.ExtraFiles = []*os.File{lf}
	cmd.Stderr = &logs
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitLog := func(what string) {
		t.Helper()
		deadline := time.Now().Add(childWait)
		for !strings.Contains(logs.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("ringtund did not log %q:\n%s", what, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLog("listening")
	try := func(name string) errReport {
		c := client(t, ns, nobody, sock, "create", "RT_NAME="+name, "RT_TYPE=MyVPN", "RT_CLOSE=1")
		var e errReport
		var line string
		select {
		case line = <-c.lines:
		case <-time.After(childWait):
			c.fail("said nothing")
		}
		k, v, _ := strings.Cut(line, " ")
		if k == "error" {
			json.Unmarshal([]byte(v), &e)
		}
		c.cmd.Process.Kill()
		<-c.exited
		return e
	}
	if e := try("vpn0"); e.Msg != "" {
		t.Fatalf("through the socket systemd passed: %v", e)
	}
	if _, err := os.Stat(filepath.Join(dir, "unused.sock")); err == nil {
		t.Fatal("ringtund listened on --socket too")
	}
	os.WriteFile(pol, []byte("[[rule]"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog("policy reload refused")
	if e := try("vpn1"); e.Msg != "" {
		t.Fatalf("a bad policy replaced the good one: %v", e)
	}
	os.WriteFile(pol, []byte(strings.Replace(testPolicy, `name_prefix = "vpn"`, `name_prefix = "wg"`, 1)), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog("policy reloaded")
	if e := try("vpn2"); !e.is("ErrAccessDenied") || !strings.Contains(e.Msg, `name_prefix "wg"`) {
		t.Fatalf("after the reload: %v", e)
	}
	if !strings.Contains(logs.String(), "uid=65534") {
		t.Errorf("the log does not say who acted:\n%s", logs.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	waitNoTUN(t, ns, time.Second)
}

// roleUninstall says "uninstall" with what Uninstall returns.
func roleUninstall() error {
	say("uninstall", reportErr(Uninstall()))
	return nil
}

// TestDaemonUninstall: through the daemon, Uninstall deletes the adapters
// without a session that the caller's uid created, and no one else's.
func TestDaemonUninstall(t *testing.T) {
	ns := newNS(t)
	d := startDaemon(t, ns, testPolicy)
	mine := client(t, ns, nobody, d.socket, "create", "RT_NAME=vpn0", "RT_TYPE=MyVPN", "RT_HOLD=1")
	mine.expect("ready", nil)
	theirs := client(t, ns, nobody-1, d.socket, "create", "RT_NAME=vpn1", "RT_TYPE=MyVPN", "RT_HOLD=1")
	theirs.expect("ready", nil)
	u := client(t, ns, nobody, d.socket, "uninstall")
	var e errReport
	u.expect("uninstall", &e)
	if e.Msg != "" {
		t.Fatalf("Uninstall: %v", e)
	}
	u.wait()
	if got := tunLinks(t, ns); len(got) != 1 || got[0] != "vpn1" {
		t.Fatalf("after uid %d's Uninstall: %v, want vpn1 only", nobody, got)
	}
	mine.goOn()
	theirs.goOn()
}
