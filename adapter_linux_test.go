package ringtun

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtun/ringtun/netcfg"
)

// Adapter lifecycle tests: creation and its errors, metadata, lifetime,
// one session per adapter, sessions ending under their users,
// configuration, the wait event and the logger. Each test has its own
// network namespace; tests with several processes are here too, with the
// child roles in process_linux_test.go.

// lifeWait bounds every wait in these tests.
const lifeWait = 10 * time.Second

// ipCmd runs ip(8) with args in the calling thread's network namespace and
// returns its output.
func ipCmd(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ipLinkNames returns the names of the namespace's interfaces, sorted, as
// `ip -o link` lists them.
func ipLinkNames(t testing.TB) []string {
	t.Helper()
	out, err := ipCmd("-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(line, ": ", 3)
		if len(f) < 3 {
			t.Fatalf("ip -o link: unexpected line %q", line)
		}
		name, _, _ := strings.Cut(f[1], "@")
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// wantLinks checks the namespace has exactly the interfaces names.
func wantLinks(t testing.TB, names ...string) {
	t.Helper()
	slices.Sort(names)
	if got := ipLinkNames(t); !slices.Equal(got, names) {
		t.Fatalf("interfaces %q, want %q", got, names)
	}
}

// withNetcfg runs fn with an rtnetlink connection in the calling thread's
// namespace.
func withNetcfg(t testing.TB, fn func(nc *netcfg.Conn)) {
	t.Helper()
	nc, err := netcfg.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fn(nc)
}

// linkByName returns the interface name, failing the test without it.
func linkByName(t testing.TB, name string) netcfg.Link {
	t.Helper()
	var l netcfg.Link
	withNetcfg(t, func(nc *netcfg.Conn) {
		var err error
		if l, err = nc.LinkByName(name); err != nil {
			t.Fatal(err)
		}
	})
	return l
}

// waitLinkGone polls until no interface is called name.
func waitLinkGone(t testing.TB, name string) {
	t.Helper()
	withNetcfg(t, func(nc *netcfg.Conn) {
		deadline := time.Now().Add(lifeWait)
		for {
			_, err := nc.LinkByName(name)
			if errors.Is(err, netcfg.ErrNotFound) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("interface %s still there after %v", name, lifeWait)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// noIPv6 turns IPv6 off in the calling thread's namespace, so that no
// router solicitation or MLD report arrives in a session unasked.
func noIPv6(t testing.TB) {
	t.Helper()
	for _, f := range []string{"/proc/sys/net/ipv6/conf/all/disable_ipv6", "/proc/sys/net/ipv6/conf/default/disable_ipv6"} {
		if err := os.WriteFile(f, []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// adapters returns Adapters() sorted by name.
func adapters(t testing.TB) []AdapterInfo {
	t.Helper()
	list, err := Adapters()
	if err != nil {
		t.Fatal(err)
	}
	sortAdapters(list)
	return list
}

func sortAdapters(list []AdapterInfo) {
	slices.SortFunc(list, func(a, b AdapterInfo) int { return strings.Compare(a.Name, b.Name) })
}

func wantAdapters(t testing.TB, got []AdapterInfo, want ...AdapterInfo) {
	t.Helper()
	sortAdapters(got)
	sortAdapters(want)
	if !slices.Equal(got, want) {
		t.Fatalf("adapters:\n got %+v\nwant %+v", got, want)
	}
}

// infoOf is what Adapters should say of a.
func infoOf(a *Adapter, persistent, inUse bool) AdapterInfo {
	return AdapterInfo{Name: a.Name(), TunnelType: a.TunnelType(), GUID: a.GUID(), LUID: a.LUID(), Persistent: persistent, InUse: inUse}
}

// mustCreate creates an adapter and fails the test otherwise.
func mustCreate(t testing.TB, name, tunnelType string, opts AdapterOptions) *Adapter {
	t.Helper()
	a, err := CreateAdapterWithOptions(name, tunnelType, opts)
	if err != nil {
		t.Fatalf("CreateAdapterWithOptions(%q): %v", name, err)
	}
	return a
}

func mustClose(t testing.TB, a *Adapter) {
	t.Helper()
	if err := a.Close(); err != nil {
		t.Errorf("Close %s: %v", a.Name(), err)
	}
}

func mustStart(t testing.TB, a *Adapter) *Session {
	t.Helper()
	s, err := a.StartSession(RingCapacityMin)
	if err != nil {
		t.Fatalf("StartSession on %s: %v", a.Name(), err)
	}
	return s
}

// wantErr checks that err matches each of targets under errors.Is.
func wantErr(t testing.TB, what string, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", what, targets)
		return
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s: %v, want %v", what, err, target)
		}
	}
}

// waitersBlocked waits until n goroutines are asleep in Session.Wait.
func waitersBlocked(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(lifeWait)
	buf := make([]byte, 1<<20)
	for {
		got := 0
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(g, "ringtun.(*Session).Wait(") &&
				(strings.Contains(header, "[select") || strings.Contains(header, "[IO wait")) {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines asleep in Session.Wait after %v, want %d", got, lifeWait, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// receiveErr waits for one error from c.
func receiveErr(t testing.TB, what string, c <-chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(lifeWait):
		t.Fatalf("%s: nothing after %v", what, lifeWait)
		return nil
	}
}

// bounded runs fn on another goroutine and fails the test if it does not
// return within lifeWait.
func bounded(t testing.TB, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(lifeWait):
		t.Fatalf("%s did not return within %v", what, lifeWait)
	}
}

var badNames = []string{
	"", strings.Repeat("n", 16), ".", "..", "/", "a/b", ":", "eth0:1", " ", "a b", "a\tb", "a\nb",
	"a\x00b", "a\x7fb", "rt%d", // a template: the kernel would make up "rt0"
}

func TestAdapterInvalidName(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		for _, name := range badNames {
			a, err := CreateAdapter(name, "Test", nil)
			wantErr(t, fmt.Sprintf("CreateAdapter(%q)", name), err, ErrInvalidName)
			if a != nil {
				t.Errorf("CreateAdapter(%q) returned an adapter with its error", name)
				a.Close()
			}
			_, err = CreateAdapterWithOptions(name, "Test", AdapterOptions{Persistent: true})
			wantErr(t, fmt.Sprintf("CreateAdapterWithOptions(%q, persistent)", name), err, ErrInvalidName)
			_, err = OpenAdapter(name)
			wantErr(t, fmt.Sprintf("OpenAdapter(%q)", name), err, ErrInvalidName)
		}
		for _, tt := range []string{"a\nb", "a\x00b", "\xff", strings.Repeat("t", 129)} {
			_, err := CreateAdapter("ok0", tt, nil)
			wantErr(t, fmt.Sprintf("CreateAdapter with tunnel type %q", tt), err, ErrInvalidName)
		}
		for _, cfg := range []Config{{MTU: 67}, {MTU: 65536}, {Addresses: []netip.Prefix{{}}}, {Routes: []netip.Prefix{{}}}} {
			_, err := CreateAdapterWithOptions("ok0", "Test", AdapterOptions{Config: &cfg})
			wantErr(t, fmt.Sprintf("CreateAdapterWithOptions with %+v", cfg), err, ErrInvalidConfig)
		}
		wantLinks(t, "lo")
		wantAdapters(t, adapters(t))
		return nil
	})
}

func TestAdapterExists(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("198.18.1.2")
	in(t, ns, func() error {
		a := mustCreate(t, "dup0", "First", AdapterOptions{
			Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}, MTU: 1400},
		})
		defer mustClose(t, a)
		s := mustStart(t, a)
		defer s.End()
		before := linkByName(t, "dup0")
		g := a.GUID()
		for _, opts := range []AdapterOptions{{}, {Persistent: true}, {GUID: &g}, {Config: &Config{MTU: 1500}}} {
			b, err := CreateAdapterWithOptions("dup0", "Second", opts)
			wantErr(t, fmt.Sprintf("CreateAdapterWithOptions(dup0, %+v)", opts), err, ErrAdapterExists, os.ErrExist)
			if b != nil {
				t.Fatal("CreateAdapterWithOptions returned an adapter with its error")
			}
			if err != nil && !strings.Contains(err.Error(), "dup0") {
				t.Errorf("error %q does not name the adapter", err)
			}
		}
		if after := linkByName(t, "dup0"); after != before {
			t.Errorf("the existing interface changed: %+v, was %+v", after, before)
		}
		withNetcfg(t, func(nc *netcfg.Conn) {
			addrs, err := nc.Addresses(before.Index)
			if err != nil || !slices.Equal(addrs, []netip.Prefix{netip.PrefixFrom(local, 24)}) {
				t.Errorf("addresses of dup0: %v, %v", addrs, err)
			}
		})
		// Its session still works.
		if err := exchangeEcho4(s, local, peer, 1, 1, lifeWait); err != nil {
			t.Error(err)
		}
		wantAdapters(t, adapters(t), infoOf(a, false, true))

		// Interfaces that are not ringtun's: loopback, and a TUN made
		// by someone else.
		lo := linkByName(t, "lo")
		_, err := CreateAdapter("lo", "Test", nil)
		wantErr(t, "CreateAdapter(lo)", err, ErrAdapterExists, os.ErrExist)
		if after := linkByName(t, "lo"); after != lo || !after.Up {
			t.Errorf("lo changed: %+v, was %+v", after, lo)
		}
		if _, err := ipCmd("tuntap", "add", "mode", "tun", "name", "other0"); err != nil {
			t.Fatal(err)
		}
		other := linkByName(t, "other0")
		_, err = CreateAdapter("other0", "Test", nil)
		wantErr(t, "CreateAdapter(other0)", err, ErrAdapterExists, os.ErrExist)
		if after := linkByName(t, "other0"); after != other {
			t.Errorf("other0 changed: %+v, was %+v", after, other)
		}
		_, err = OpenAdapter("other0")
		wantErr(t, "OpenAdapter(other0)", err, ErrAdapterNotFound, os.ErrNotExist)
		if _, err := ipCmd("tuntap", "del", "mode", "tun", "name", "other0"); err != nil {
			t.Fatal(err)
		}
		wantLinks(t, "dup0", "lo")
		return nil
	})
}

func TestStartSessionInvalidCapacity(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		a := mustCreate(t, "cap0", "Test", AdapterOptions{})
		defer mustClose(t, a)
		for _, c := range []uint32{0, 1, RingCapacityMin / 2, RingCapacityMin - 1, RingCapacityMin + 4,
			3 * RingCapacityMin, RingCapacityMax - RingCapacityMin, RingCapacityMax + 1, RingCapacityMax * 2, 1 << 31, 0xFFFFFFFF} {
			s, err := a.StartSession(c)
			wantErr(t, fmt.Sprintf("StartSession(%#x)", c), err, ErrInvalidCapacity)
			if s != nil {
				t.Fatalf("StartSession(%#x) returned a session with its error", c)
			}
		}
		// The refused calls held nothing: the adapter is not in use and a
		// valid capacity works, at both ends of the range.
		wantAdapters(t, adapters(t), infoOf(a, false, false))
		for _, c := range []uint32{RingCapacityMin, RingCapacityMax} {
			s, err := a.StartSession(c)
			if err != nil {
				t.Fatalf("StartSession(%#x): %v", c, err)
			}
			s.End()
		}
		return nil
	})
}

func TestOpenAdapterNotFound(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		_, err := OpenAdapter("missing0")
		wantErr(t, "OpenAdapter(missing0)", err, ErrAdapterNotFound, os.ErrNotExist)
		_, err = OpenAdapter("lo")
		wantErr(t, "OpenAdapter(lo)", err, ErrAdapterNotFound, os.ErrNotExist)
		if err != nil && !strings.Contains(err.Error(), "not a ringtun adapter") {
			t.Errorf("OpenAdapter(lo): %q does not say lo is not a ringtun adapter", err)
		}
		// A name that was an adapter.
		a := mustCreate(t, "gone0", "Test", AdapterOptions{})
		mustClose(t, a)
		_, err = OpenAdapter("gone0")
		wantErr(t, "OpenAdapter(gone0) after Close", err, ErrAdapterNotFound, os.ErrNotExist)
		// Looking did not make any of them (attaching to a TUN name
		// creates it).
		wantLinks(t, "lo")
		return nil
	})
}

func TestAccessDenied(t *testing.T) {
	ns := newNS(t)
	var a *Adapter
	in(t, ns, func() error {
		a = mustCreate(t, "priv0", "Test", AdapterOptions{})
		return nil
	})
	defer in(t, ns, func() error { return a.Close() })

	c := startRoleChild(t, ns, "unpriv", "RT_NAME=unpriv0", "RT_OPEN=priv0")
	var uid int
	c.expect("uid", &uid)
	if uid != nobody {
		t.Fatalf("child runs as uid %d, want %d", uid, nobody)
	}
	for _, op := range []string{"create", "open"} {
		var r errReport
		c.expect(op, &r)
		if !r.is("ErrAccessDenied") || !r.is("os.ErrPermission") {
			t.Errorf("%s without privilege: %v, want ErrAccessDenied and os.ErrPermission", op, r)
		}
		if !strings.Contains(r.Msg, "CAP_NET_ADMIN") {
			t.Errorf("%s without privilege: %q does not say what is missing (CAP_NET_ADMIN)", op, r.Msg)
		}
	}
	var list struct {
		Adapters []AdapterInfo
		Err      errReport
	}
	c.expect("list", &list)
	c.wait()
	if list.Err.Msg != "" {
		t.Errorf("Adapters() without privilege: %v", list.Err)
	}
	in(t, ns, func() error {
		wantAdapters(t, list.Adapters, infoOf(a, false, false))
		wantLinks(t, "lo", "priv0")
		return nil
	})
}

func TestAdapterMetadata(t *testing.T) {
	ns := newNS(t)
	g0 := GUID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	g1 := GUID{0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	var a0, a1, a2 *Adapter
	var s *Session
	var want []AdapterInfo
	in(t, ns, func() error {
		a0 = mustCreate(t, "meta0", "Tunnel Type With Spaces", AdapterOptions{GUID: &g0})
		a1 = mustCreate(t, "meta1", "", AdapterOptions{GUID: &g1, Persistent: true})
		a2 = mustCreate(t, "meta2", "Plain", AdapterOptions{})
		for _, c := range []struct {
			a              *Adapter
			name, tunnel   string
			guid           GUID
			wantPersistent bool
		}{
			{a0, "meta0", "Tunnel Type With Spaces", g0, false},
			{a1, "meta1", DefaultTunnelType, g1, true},
			{a2, "meta2", "Plain", a2.GUID(), false},
		} {
			if c.a.Name() != c.name || c.a.TunnelType() != c.tunnel || c.a.GUID() != c.guid {
				t.Errorf("adapter %q, %q, %v; want %q, %q, %v", c.a.Name(), c.a.TunnelType(), c.a.GUID(), c.name, c.tunnel, c.guid)
			}
			if l := linkByName(t, c.name); c.a.LUID() != uint64(l.Index) || l.Index == 0 {
				t.Errorf("%s: LUID %d, interface index %d", c.name, c.a.LUID(), l.Index)
			}
			want = append(want, infoOf(c.a, c.wantPersistent, false))
		}
		if g := a2.GUID(); g == (GUID{}) || g[6]>>4 != 4 {
			t.Errorf("random GUID %v", g)
		}
		wantAdapters(t, adapters(t), want...)
		out, err := ipCmd("-o", "link", "show", "dev", "meta0")
		if err != nil {
			t.Fatal(err)
		}
		if alias := "alias ringtun/1 " + g0.String() + " transient Tunnel Type With Spaces"; !strings.Contains(out, alias) {
			t.Errorf("ip link show meta0: %q, want %q in it", out, alias)
		}
		out, err = ipCmd("-o", "link", "show", "dev", "meta1")
		if err != nil {
			t.Fatal(err)
		}
		if alias := "alias ringtun/1 " + g1.String() + " persistent ringtun"; !strings.Contains(out, alias) {
			t.Errorf("ip link show meta1: %q, want %q in it", out, alias)
		}
		s = mustStart(t, a0)
		want[0].InUse = true
		wantAdapters(t, adapters(t), want...)
		return nil
	})
	// Another process sees the same, in use included.
	wantAdapters(t, listInChild(t, ns), want...)
	for i, name := range []string{"meta0", "meta1"} {
		c := startRoleChild(t, ns, "open", "RT_NAME="+name)
		var got AdapterInfo
		c.expect("meta", &got)
		c.wait()
		w := want[i]
		w.InUse = false
		if got != w {
			t.Errorf("OpenAdapter(%s) in a child: %+v, want %+v", name, got, w)
		}
	}
	in(t, ns, func() error {
		s.End()
		want[0].InUse = false
		wantAdapters(t, adapters(t), want...)
		return nil
	})
	wantAdapters(t, listInChild(t, ns), want...)
	in(t, ns, func() error {
		mustClose(t, a0)
		mustClose(t, a1)
		mustClose(t, a2)
		wantAdapters(t, adapters(t), want[1])
		if err := Uninstall(); err != nil {
			t.Fatal(err)
		}
		wantLinks(t, "lo")
		return nil
	})
}

func TestAdapterClose(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		noIPv6(t) // nothing but the end wakes the Wait below
		// A second handle does not keep the adapter from its creator's
		// Close, and closing it does not delete the adapter.
		a := mustCreate(t, "life0", "Test", AdapterOptions{})
		b, err := OpenAdapter("life0")
		if err != nil {
			t.Fatal(err)
		}
		if b.GUID() != a.GUID() || b.LUID() != a.LUID() || b.TunnelType() != "Test" {
			t.Errorf("OpenAdapter: %+v, want %+v", infoOf(b, false, false), infoOf(a, false, false))
		}
		mustClose(t, b)
		wantLinks(t, "life0", "lo")
		mustClose(t, a)
		wantLinks(t, "lo")
		mustClose(t, a)
		mustClose(t, b)
		// A closed handle starts no session and makes no interface.
		_, err = a.StartSession(RingCapacityMin)
		wantErr(t, "StartSession after Close", err, ErrSessionEnded)
		wantLinks(t, "lo")

		// Close ends the handle's session.
		a = mustCreate(t, "life1", "Test", AdapterOptions{})
		s := mustStart(t, a)
		mustClose(t, a)
		wantLinks(t, "lo")
		_, err = s.ReceivePacket()
		wantErr(t, "ReceivePacket after Close", err, ErrSessionEnded, os.ErrClosed)

		// The creator's Close deletes the adapter under another handle's
		// session, which ends.
		a = mustCreate(t, "life2", "Test", AdapterOptions{})
		b, err = OpenAdapter("life2")
		if err != nil {
			t.Fatal(err)
		}
		s = mustStart(t, b)
		mustClose(t, a)
		wantLinks(t, "lo")
		ctx, cancel := context.WithTimeout(context.Background(), lifeWait)
		defer cancel()
		wantErr(t, "Wait on the other handle's session after the creator's Close", s.Wait(ctx), ErrSessionEnded)
		bounded(t, "Close of the other handle", func() { mustClose(t, b) })

		// A persistent adapter outlives its handles until Uninstall.
		a = mustCreate(t, "life3", "Test", AdapterOptions{Persistent: true})
		mustClose(t, a)
		wantLinks(t, "life3", "lo")
		b, err = OpenAdapter("life3")
		if err != nil {
			t.Fatal(err)
		}
		s = mustStart(t, b)
		s.End()
		mustClose(t, b)
		wantLinks(t, "life3", "lo")
		if err := Uninstall(); err != nil {
			t.Fatal(err)
		}
		wantLinks(t, "lo")
		return nil
	})
}

func TestAdapterDiesWithItsProcess(t *testing.T) {
	ns := newNS(t)
	for _, session := range []bool{false, true} {
		name := fmt.Sprintf("kill%d", map[bool]int{false: 0, true: 1}[session])
		env := []string{"RT_NAME=" + name, "RT_TYPE=Killed", "RT_HOLD=1"}
		if session {
			env = append(env, "RT_SESSION=1")
		}
		c := startRoleChild(t, ns, "create", env...)
		var info AdapterInfo
		c.expect("ready", &info)
		in(t, ns, func() error {
			if l := linkByName(t, name); uint64(l.Index) != info.LUID {
				t.Fatalf("%s has index %d, the child said %d", name, l.Index, info.LUID)
			}
			info.InUse = session
			wantAdapters(t, adapters(t), info)
			return nil
		})
		c.kill()
		in(t, ns, func() error {
			waitLinkGone(t, name)
			wantLinks(t, "lo")
			wantAdapters(t, adapters(t))
			return nil
		})
	}
}

func TestPersistentAdapterAcrossProcesses(t *testing.T) {
	ns := newNS(t)
	g := GUID{0x52, 0x49, 0x4e, 0x47, 0x54, 0x55, 0x4e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01}
	local, peer := netip.MustParseAddr("198.18.9.1"), netip.MustParseAddr("198.18.9.2")

	// One creator closes its handle and exits, the other is killed with a
	// session running.
	c := startRoleChild(t, ns, "create", "RT_NAME=pers0", "RT_TYPE=Persistent Test", "RT_GUID="+g.String(),
		"RT_PERSISTENT=1", "RT_ADDR="+netip.PrefixFrom(local, 24).String(), "RT_CLOSE=1")
	var info0, info1 AdapterInfo
	c.expect("ready", &info0)
	c.expect("done", nil)
	c.wait()
	c = startRoleChild(t, ns, "create", "RT_NAME=pers1", "RT_PERSISTENT=1", "RT_SESSION=1", "RT_HOLD=1")
	c.expect("ready", &info1)
	c.kill()
	if info0.GUID != g || info0.TunnelType != "Persistent Test" || !info0.Persistent || !info1.Persistent {
		t.Fatalf("created %+v, %+v", info0, info1)
	}
	in(t, ns, func() error {
		wantLinks(t, "lo", "pers0", "pers1")
		wantAdapters(t, adapters(t), info0, info1)
		withNetcfg(t, func(nc *netcfg.Conn) {
			if addrs, err := nc.Addresses(int(info0.LUID)); err != nil || !slices.Equal(addrs, []netip.Prefix{netip.PrefixFrom(local, 24)}) {
				t.Errorf("addresses of pers0: %v, %v", addrs, err)
			}
		})
		return nil
	})

	// Another process opens it and exchanges packets through a session.
	c = startRoleChild(t, ns, "open", "RT_NAME=pers0", "RT_SESSION=1", "RT_ECHO="+local.String()+","+peer.String(), "RT_HOLD=1")
	var meta AdapterInfo
	var session, echo errReport
	c.expect("meta", &meta)
	if meta != info0 {
		t.Errorf("OpenAdapter in a child: %+v, want %+v", meta, info0)
	}
	c.expect("session", &session)
	if session.Msg != "" {
		t.Fatalf("StartSession in a child: %v", session)
	}
	c.expect("echo", &echo)
	if echo.Msg != "" {
		t.Fatalf("echo in a child: %v", echo)
	}
	in(t, ns, func() error {
		inUse := info0
		inUse.InUse = true
		wantAdapters(t, adapters(t), inUse, info1)
		// Uninstall leaves the adapter in use alone.
		if err := Uninstall(); err != nil {
			t.Fatal(err)
		}
		wantLinks(t, "lo", "pers0")
		wantAdapters(t, adapters(t), inUse)
		return nil
	})
	c.goOn()
	c.wait()
	in(t, ns, func() error {
		wantAdapters(t, adapters(t), info0)
		if err := Uninstall(); err != nil {
			t.Fatal(err)
		}
		wantLinks(t, "lo")
		wantAdapters(t, adapters(t))
		return nil
	})
}

func TestUninstall(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		busy := mustCreate(t, "busy0", "Test", AdapterOptions{})
		defer mustClose(t, busy)
		s := mustStart(t, busy)
		defer s.End()
		idle := mustCreate(t, "idle0", "Test", AdapterOptions{})
		kept := mustCreate(t, "kept0", "Test", AdapterOptions{Persistent: true})
		if _, err := ipCmd("tuntap", "add", "mode", "tun", "name", "other0"); err != nil {
			t.Fatal(err)
		}
		if err := Uninstall(); err != nil {
			t.Fatal(err)
		}
		// The adapter in use and the interface that is not ringtun's
		// stay; the others go even with handles open.
		wantLinks(t, "busy0", "lo", "other0")
		wantAdapters(t, adapters(t), infoOf(busy, false, true))
		mustClose(t, idle)
		mustClose(t, kept)
		if err := Uninstall(); err != nil {
			t.Fatal(err)
		}
		wantLinks(t, "busy0", "lo", "other0")
		if _, err := ipCmd("tuntap", "del", "mode", "tun", "name", "other0"); err != nil {
			t.Fatal(err)
		}
		return nil
	})
}

func TestOneSessionPerAdapter(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("198.18.3.1"), netip.MustParseAddr("198.18.3.2")
	var a, b *Adapter
	var s *Session
	in(t, ns, func() error {
		a = mustCreate(t, "one0", "Test", AdapterOptions{Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}}})
		s = mustStart(t, a)
		s2, err := a.StartSession(RingCapacityMin)
		wantErr(t, "second StartSession on the same handle", err, ErrAlreadyInitialized)
		if s2 != nil {
			t.Fatal("StartSession returned a session with its error")
		}
		if b, err = OpenAdapter("one0"); err != nil {
			t.Fatal(err)
		}
		_, err = b.StartSession(RingCapacityMin)
		wantErr(t, "StartSession on another handle", err, ErrAlreadyInitialized)
		return nil
	})
	defer in(t, ns, func() error {
		mustClose(t, b)
		mustClose(t, a)
		return nil
	})
	c := startRoleChild(t, ns, "open", "RT_NAME=one0", "RT_SESSION=1")
	var session errReport
	c.expect("meta", nil)
	c.expect("session", &session)
	c.wait()
	if !session.is("ErrAlreadyInitialized") {
		t.Errorf("StartSession in another process: %v, want ErrAlreadyInitialized", session)
	}
	in(t, ns, func() error {
		// The refused attempts did not disturb the session.
		if err := exchangeEcho4(s, local, peer, 3, 1, lifeWait); err != nil {
			t.Fatal(err)
		}
		s.End()
		return nil
	})
	c = startRoleChild(t, ns, "open", "RT_NAME=one0", "RT_SESSION=1", "RT_HOLD=1", "RT_ECHO="+local.String()+","+peer.String())
	c.expect("meta", nil)
	c.expect("session", &session)
	if session.Msg != "" {
		t.Fatalf("StartSession in another process after End: %v", session)
	}
	var echo errReport
	c.expect("echo", &echo)
	if echo.Msg != "" {
		t.Errorf("echo in a child: %v", echo)
	}
	in(t, ns, func() error {
		_, err := a.StartSession(RingCapacityMin)
		wantErr(t, "StartSession while another process has the session", err, ErrAlreadyInitialized)
		return nil
	})
	c.goOn()
	c.wait()
	in(t, ns, func() error {
		s = mustStart(t, b)
		defer s.End()
		return exchangeEcho4(s, local, peer, 3, 2, lifeWait)
	})
}

func TestSessionAdapterDeleted(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		noIPv6(t)
		fds, goroutines := openFDs(), runtime.NumGoroutine()
		func() {
			a := mustCreate(t, "del0", "Test", AdapterOptions{})
			defer a.Close()
			s := mustStart(t, a)
			defer s.End()
			waiting := make(chan error, 1)
			go func() { waiting <- s.Wait(context.Background()) }()
			waitersBlocked(t, 1)
			if _, err := ipCmd("link", "del", "del0"); err != nil {
				t.Fatal(err)
			}
			wantErr(t, "Wait when the adapter is deleted", receiveErr(t, "Wait", waiting), ErrSessionEnded, os.ErrClosed)
			_, err := s.ReceivePacket()
			wantErr(t, "ReceivePacket", err, ErrSessionEnded, os.ErrClosed)
			_, err = s.AllocateSendPacket(40)
			wantErr(t, "AllocateSendPacket", err, ErrSessionEnded, os.ErrClosed)
			wantErr(t, "Wait after", s.Wait(context.Background()), ErrSessionEnded)
			bounded(t, "End", s.End)
			bounded(t, "Close", func() { mustClose(t, a) })
			wantLinks(t, "lo")
			wantAdapters(t, adapters(t))

			// A handle whose adapter was deleted starts no session, and
			// leaves no interface behind (attaching to a TUN name that
			// is gone makes a new interface).
			a = mustCreate(t, "del1", "Test", AdapterOptions{})
			defer a.Close()
			if _, err := ipCmd("link", "del", "del1"); err != nil {
				t.Fatal(err)
			}
			_, err = a.StartSession(RingCapacityMin)
			wantErr(t, "StartSession on a deleted adapter", err, ErrAdapterNotFound)
			wantLinks(t, "lo")
			mustClose(t, a)
		}()
		checkNoLeak(t, fds, goroutines)
		return nil
	})
}

func TestSessionEndWakesWaiters(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		noIPv6(t)
		a := mustCreate(t, "end0", "Test", AdapterOptions{})
		defer mustClose(t, a)
		s := mustStart(t, a)
		const n = 4
		waiting := make(chan error, n)
		for i := 0; i < n; i++ {
			go func() { waiting <- s.Wait(context.Background()) }()
		}
		waitersBlocked(t, n)
		s.End()
		for i := 0; i < n; i++ {
			wantErr(t, fmt.Sprintf("waiter %d", i), receiveErr(t, "Wait", waiting), ErrSessionEnded, os.ErrClosed)
		}
		wantErr(t, "Wait after End", s.Wait(context.Background()), ErrSessionEnded)
		_, err := s.ReceivePacket()
		wantErr(t, "ReceivePacket after End", err, ErrSessionEnded)
		_, err = s.AllocateSendPacket(40)
		wantErr(t, "AllocateSendPacket after End", err, ErrSessionEnded)
		s.End()
		wantAdapters(t, adapters(t), infoOf(a, false, false))
		// The adapter takes a new session.
		s = mustStart(t, a)
		wantAdapters(t, adapters(t), infoOf(a, false, true))
		s.End()
		return nil
	})
}

func TestSessionWaitContext(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("198.18.4.1"), netip.MustParseAddr("198.18.4.2")
	in(t, ns, func() error {
		noIPv6(t)
		a := mustCreate(t, "wait0", "Test", AdapterOptions{Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}}})
		defer mustClose(t, a)
		s := mustStart(t, a)
		defer s.End()

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Wait(ctx); err != context.Canceled {
			t.Errorf("Wait with a cancelled context: %v", err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		bounded(t, "Wait with a deadline", func() {
			if err := s.Wait(ctx); err != context.DeadlineExceeded {
				t.Errorf("Wait with a deadline: %v", err)
			}
		})

		// Two waiters; cancelling the first leaves the second asleep.
		ctx1, cancel1 := context.WithCancel(context.Background())
		ctx2, cancel2 := context.WithCancel(context.Background())
		defer cancel2()
		w1, w2 := make(chan error, 1), make(chan error, 1)
		go func() { w1 <- s.Wait(ctx1) }()
		waitersBlocked(t, 1)
		go func() { w2 <- s.Wait(ctx2) }()
		waitersBlocked(t, 2)
		cancel1()
		if err := receiveErr(t, "first waiter", w1); err != context.Canceled {
			t.Errorf("first waiter: %v, want context.Canceled", err)
		}
		waitersBlocked(t, 1)
		select {
		case err := <-w2:
			t.Fatalf("second waiter woke with %v when the first was cancelled", err)
		default:
		}
		// A packet wakes it.
		p, err := s.AllocateSendPacket(28)
		if err != nil {
			t.Fatal(err)
		}
		echoRequest4(p, peer, local, 4, 1, nil)
		s.SendPacket(p)
		if err := receiveErr(t, "second waiter", w2); err != nil {
			t.Errorf("second waiter: %v, want nil on a packet", err)
		}
		// The session works after all that.
		if err := exchangeEcho4(s, local, peer, 4, 2, lifeWait); err != nil {
			t.Error(err)
		}
		return nil
	})
}

// prefixes sorts and returns ps.
func prefixes(ps ...netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, netip.Prefix.Compare)
	return ps
}

// readConfig reads an interface's configuration back.
func readConfig(t testing.TB, index int) Config {
	t.Helper()
	var c Config
	withNetcfg(t, func(nc *netcfg.Conn) {
		var err error
		if c.Addresses, err = nc.Addresses(index); err != nil {
			t.Fatal(err)
		}
		routes, err := nc.Routes(index)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			c.Routes = append(c.Routes, r.Prefix)
		}
		l, err := nc.LinkByIndex(index)
		if err != nil {
			t.Fatal(err)
		}
		if !l.Up {
			t.Errorf("interface %d is down", index)
		}
		c.MTU = l.MTU
	})
	c.Addresses, c.Routes = prefixes(c.Addresses...), prefixes(c.Routes...)
	return c
}

func wantConfig(t testing.TB, a *Adapter, want Config) {
	t.Helper()
	got := readConfig(t, int(a.LUID()))
	want.Addresses, want.Routes = prefixes(want.Addresses...), prefixes(want.Routes...)
	if !slices.Equal(got.Addresses, want.Addresses) || !slices.Equal(got.Routes, want.Routes) || got.MTU != want.MTU {
		t.Fatalf("configuration read back:\n got %v\nwant %v", got, want)
	}
}

// ipState is everything ip(8) shows of the interface's addresses and
// routes, to compare before and after a Configure that should change
// nothing.
func ipState(t testing.TB, name string) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"addr", "show", "dev", name},
		{"-4", "route", "show", "table", "all", "dev", name},
		{"-6", "route", "show", "table", "all", "dev", name},
	} {
		out, err := ipCmd(args...)
		if err != nil {
			t.Fatal(err)
		}
		// Address lifetimes count down, and the kernel sets up the IPv6
		// link-local address, its routes and the multicast route in its
		// own time; the rest must not move.
		for _, line := range strings.Split(out, "\n") {
			if !strings.Contains(line, "valid_lft") && !strings.Contains(line, "fe80:") && !strings.Contains(line, "ff00::/8") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

func TestConfigure(t *testing.T) {
	ns := newNS(t)
	p := netip.MustParsePrefix
	in(t, ns, func() error {
		a := mustCreate(t, "cfg0", "Test", AdapterOptions{})
		defer mustClose(t, a)
		full := Config{
			Addresses: []netip.Prefix{p("198.18.10.1/24"), p("198.18.11.1/24"), p("198.18.12.1/32"),
				p("2001:db8:10::1/64"), p("2001:db8:11::1/64"), p("2001:db8:12::1/128")},
			Routes: []netip.Prefix{p("198.18.20.0/24"), p("198.18.21.0/24"), p("198.18.128.0/17"),
				p("2001:db8:20::/48"), p("2001:db8:21::/64")},
			MTU: 1400,
		}
		if err := a.Configure(full); err != nil {
			t.Fatal(err)
		}
		wantConfig(t, a, full)
		state := ipState(t, "cfg0")
		// Twice changes nothing.
		if err := a.Configure(full); err != nil {
			t.Fatal(err)
		}
		wantConfig(t, a, full)
		if again := ipState(t, "cfg0"); again != state {
			t.Errorf("a second Configure changed the interface:\n%s\nwas\n%s", again, state)
		}

		// Zero fields leave things as they are.
		if err := a.Configure(Config{}); err != nil {
			t.Fatal(err)
		}
		wantConfig(t, a, full)
		if err := a.Configure(Config{MTU: 1280}); err != nil {
			t.Fatal(err)
		}
		full.MTU = 1280
		wantConfig(t, a, full)

		// A smaller set removes the rest.
		small := Config{Addresses: []netip.Prefix{p("198.18.11.1/24"), p("2001:db8:10::1/64")},
			Routes: []netip.Prefix{p("198.18.21.0/24"), p("2001:db8:21::/64")}, MTU: 1500}
		if err := a.Configure(small); err != nil {
			t.Fatal(err)
		}
		wantConfig(t, a, small)
		// Routes alone; the address set alone.
		if err := a.Configure(Config{Routes: []netip.Prefix{p("198.18.22.5/24")}}); err != nil {
			t.Fatal(err)
		}
		small.Routes = []netip.Prefix{p("198.18.22.0/24")} // stored masked
		wantConfig(t, a, small)
		state = ipState(t, "cfg0")
		if err := a.Configure(Config{Routes: []netip.Prefix{p("198.18.22.5/24")}}); err != nil {
			t.Fatal(err)
		}
		if again := ipState(t, "cfg0"); again != state {
			t.Errorf("a second Configure with an unmasked route changed the interface:\n%s\nwas\n%s", again, state)
		}
		if err := a.Configure(Config{Routes: []netip.Prefix{}}); err != nil {
			t.Fatal(err)
		}
		small.Routes = nil
		wantConfig(t, a, small)
		if err := a.Configure(Config{Addresses: []netip.Prefix{}}); err != nil {
			t.Fatal(err)
		}
		small.Addresses = nil
		wantConfig(t, a, small)

		// CreateAdapterWithOptions applies its Config the same way.
		b := mustCreate(t, "cfg1", "Test", AdapterOptions{Config: &full})
		defer mustClose(t, b)
		wantConfig(t, b, full)
		return nil
	})
}

func TestConfigureSameSubnet(t *testing.T) {
	ns := newNS(t)
	p := netip.MustParsePrefix
	in(t, ns, func() error {
		a := mustCreate(t, "sub0", "Test", AdapterOptions{})
		defer mustClose(t, a)
		for _, addrs := range [][]netip.Prefix{
			{p("198.18.10.1/24"), p("198.18.10.2/24"), p("198.18.10.3/24")},
			// Dropping the primary address must keep the secondaries
			// that stay (the kernel deletes them with it).
			{p("198.18.10.2/24"), p("198.18.10.3/24")},
			{p("198.18.10.3/24"), p("198.18.10.4/24")},
			{p("198.18.10.5/24")},
			{p("198.18.10.5/25")},
			{p("198.18.10.5/24"), p("198.18.10.6/24"), p("198.18.10.7/24")},
			{p("198.18.10.7/24")},
		} {
			cfg := Config{Addresses: addrs, MTU: 1500}
			if err := a.Configure(cfg); err != nil {
				t.Fatalf("Configure %v: %v", addrs, err)
			}
			wantConfig(t, a, cfg)
		}
		return nil
	})
}

func TestConfigureErrors(t *testing.T) {
	ns := newNS(t)
	p := netip.MustParsePrefix
	in(t, ns, func() error {
		base := Config{Addresses: []netip.Prefix{p("198.18.13.1/24"), p("2001:db8:13::1/64")}, Routes: []netip.Prefix{p("198.18.23.0/24")}, MTU: 1500}
		a := mustCreate(t, "err0", "Test", AdapterOptions{Config: &base})
		defer mustClose(t, a)
		wantConfig(t, a, base)
		for _, c := range []Config{
			{MTU: 67},
			{MTU: 65536},
			{MTU: -1},
			{Addresses: []netip.Prefix{p("198.18.14.1/24"), {}}},
			{Addresses: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("198.18.14.1"), 33)}, MTU: 1400},
			{Routes: []netip.Prefix{{}}, MTU: 1400},
		} {
			wantErr(t, fmt.Sprintf("Configure(%v)", c), a.Configure(c), ErrInvalidConfig)
			wantConfig(t, a, base) // nothing applied
		}
		// Items the adapter cannot take: below an MTU of 1280 an
		// interface has no IPv6. They are refused before anything
		// changes.
		for _, c := range []struct {
			cfg  Config
			item string
		}{
			{Config{MTU: 1000, Routes: []netip.Prefix{p("198.18.24.0/24"), p("2001:db8:24::/48")}}, "route 2001:db8:24::/48"},
			{Config{MTU: 1000, Addresses: []netip.Prefix{p("198.18.13.1/24"), p("2001:db8:14::1/64")}}, "address 2001:db8:14::1/64"},
		} {
			err := a.Configure(c.cfg)
			wantErr(t, fmt.Sprintf("Configure(%v)", c.cfg), err, ErrInvalidConfig)
			if err == nil || !strings.Contains(err.Error(), c.item) || !strings.Contains(err.Error(), "err0") {
				t.Errorf("Configure(%v) = %v, want an error naming err0 and %s", c.cfg, err, c.item)
			}
			wantConfig(t, a, base)
		}
		if err := a.Configure(base); err != nil {
			t.Fatal(err)
		}
		wantConfig(t, a, base)

		// A Config that fails at creation leaves no adapter.
		for _, persistent := range []bool{false, true} {
			cfg := Config{MTU: 1000, Addresses: []netip.Prefix{p("2001:db8:15::1/64")}}
			b, err := CreateAdapterWithOptions("err1", "Test", AdapterOptions{Persistent: persistent, Config: &cfg})
			if err == nil || !strings.Contains(err.Error(), "2001:db8:15::1/64") {
				t.Errorf("CreateAdapterWithOptions(persistent %v, %v) = %v, want an error naming the address", persistent, cfg, err)
			}
			if b != nil {
				t.Fatal("CreateAdapterWithOptions returned an adapter with its error")
			}
			wantLinks(t, "err0", "lo")
		}
		return nil
	})
}

func TestReadWaitEvent(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("198.18.5.1"), netip.MustParseAddr("198.18.5.2")
	in(t, ns, func() error {
		noIPv6(t)
		a := mustCreate(t, "event0", "Test", AdapterOptions{Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}}})
		defer mustClose(t, a)
		fd := func() int {
			s := mustStart(t, a)
			fd := int(s.ReadWaitEvent())
			if again := int(s.ReadWaitEvent()); again != fd {
				t.Errorf("ReadWaitEvent returned %d, then %d", fd, again)
			}
			if target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); err != nil || target != "anon_inode:[eventfd]" {
				t.Fatalf("ReadWaitEvent() = %d: %q, %v; want an eventfd", fd, target, err)
			}
			pollFD := func(timeout int) bool {
				t.Helper()
				fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
				for {
					n, err := unix.Poll(fds, timeout)
					if err == unix.EINTR {
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					return n == 1 && fds[0].Revents&unix.POLLIN != 0
				}
			}
			readCounter := func() uint64 {
				t.Helper()
				var b [8]byte
				if n, err := unix.Read(fd, b[:]); err != nil || n != 8 {
					t.Fatalf("reading the eventfd: %d, %v", n, err)
				}
				return binary.NativeEndian.Uint64(b[:])
			}
			if _, err := s.ReceivePacket(); !errors.Is(err, ErrNoMoreItems) {
				t.Fatalf("ReceivePacket on a fresh session: %v", err)
			}
			if pollFD(0) {
				readCounter() // a wake-up left from setting up
			}
			if pollFD(0) {
				t.Fatal("the wait event is readable with nothing in the ring")
			}
			for seq := uint16(1); seq <= 3; seq++ {
				p, err := s.AllocateSendPacket(28)
				if err != nil {
					t.Fatal(err)
				}
				echoRequest4(p, peer, local, 5, seq, nil)
				s.SendPacket(p)
				if !pollFD(int(lifeWait / time.Millisecond)) {
					t.Fatalf("echo %d: the wait event is not readable after %v", seq, lifeWait)
				}
				if n := readCounter(); n == 0 {
					t.Fatalf("echo %d: counter 0", seq)
				}
				r, err := s.ReceivePacket()
				if err != nil {
					t.Fatalf("echo %d: ReceivePacket after the event: %v", seq, err)
				}
				if len(r) != 28 || r[20] != 0 || r[27] != byte(seq) {
					t.Errorf("echo %d: received % x, want the echo reply", seq, r)
				}
				s.ReleaseReceivePacket(r)
				if _, err := s.ReceivePacket(); !errors.Is(err, ErrNoMoreItems) {
					t.Fatalf("echo %d: second ReceivePacket: %v", seq, err)
				}
			}
			// End wakes a poller, and the fd stays valid while the
			// Session is reachable.
			s.End()
			if !pollFD(int(lifeWait / time.Millisecond)) {
				t.Error("the wait event is not readable after End")
			}
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
				t.Errorf("the wait event after End: %v", err)
			}
			runtime.GC()
			if target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); err != nil || target != "anon_inode:[eventfd]" {
				t.Errorf("the wait event after End and a GC with the Session live: %q, %v", target, err)
			}
			runtime.KeepAlive(s)
			return fd
		}()
		// Once the Session is garbage, the fd goes.
		mustClose(t, a)
		deadline := time.Now().Add(lifeWait)
		for {
			runtime.GC()
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == unix.EBADF {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the wait event %d is still open %v after its Session became garbage", fd, lifeWait)
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	})
}

type logEntry struct {
	level LogLevel
	t     time.Time
	msg   string
}

func TestSetLogger(t *testing.T) {
	ns := newNS(t)
	var mu sync.Mutex
	var entries []logEntry
	SetLogger(func(level LogLevel, t time.Time, msg string) {
		mu.Lock()
		defer mu.Unlock()
		entries = append(entries, logEntry{level, t, msg})
	})
	t.Cleanup(func() { SetLogger(nil) })
	mine := func(name string) []logEntry {
		mu.Lock()
		defer mu.Unlock()
		var out []logEntry
		for _, e := range entries {
			if strings.Contains(e.msg, name) {
				out = append(out, e)
			}
		}
		return out
	}
	start := time.Now()
	var guid GUID
	var index uint64
	in(t, ns, func() error {
		a := mustCreate(t, "log0", "Logged", AdapterOptions{})
		guid, index = a.GUID(), a.LUID()
		s := mustStart(t, a)
		s.End()
		mustClose(t, a)
		return nil
	})
	end := time.Now()
	got := mine("log0")
	var msgs []string
	for i, e := range got {
		msgs = append(msgs, e.msg)
		if e.level != LogInfo {
			t.Errorf("%q logged at %v, want info", e.msg, e.level)
		}
		if e.t.Before(start) || e.t.After(end) {
			t.Errorf("%q logged at %v, outside %v..%v", e.msg, e.t, start, end)
		}
		if i > 0 && e.t.Before(got[i-1].t) {
			t.Errorf("%q logged at %v, before the message ahead of it", e.msg, e.t)
		}
	}
	want := []string{
		fmt.Sprintf("created adapter log0 (Logged, %s, index %d)", guid, index),
		"log0: session started, rings of 128 KiB; offloads csum|tso4|tso6|tso_ecn|uso4|uso6, merged writes: TCP true, UDP true",
		"log0: session ended",
		"deleted adapter log0",
	}
	if !slices.Equal(msgs, want) {
		t.Errorf("log messages:\n%q\nwant\n%q", msgs, want)
	}

	SetLogger(nil)
	in(t, ns, func() error {
		a := mustCreate(t, "log1", "Logged", AdapterOptions{})
		mustClose(t, a)
		return nil
	})
	if got := mine("log1"); len(got) != 0 {
		t.Errorf("SetLogger(nil) still logs: %v", got)
	}
}

func TestInUseDoesNotTakeTheSession(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		noIPv6(t)
		a := mustCreate(t, "look0", "Test", AdapterOptions{})
		defer mustClose(t, a)
		// Adapters and OpenAdapter look at the adapter while sessions
		// start and end: looking must never make a start fail.
		stop := make(chan struct{})
		looked := make(chan error, 1)
		go func() {
			looked <- ns.Do(func() error {
				for {
					select {
					case <-stop:
						return nil
					default:
					}
					if _, err := Adapters(); err != nil {
						return err
					}
					b, err := OpenAdapter("look0")
					if err != nil {
						return err
					}
					b.Close()
				}
			})
		}()
		failed := 0
		var first error
		for i := 0; i < 500; i++ {
			s, err := a.StartSession(RingCapacityMin)
			if err != nil {
				if failed++; first == nil {
					first = err
				}
				continue
			}
			s.End()
		}
		close(stop)
		if err := receiveErr(t, "the lookers", looked); err != nil {
			t.Error(err)
		}
		if failed > 0 {
			t.Errorf("%d of 500 sessions failed to start while another goroutine looked: %v", failed, first)
		}
		return nil
	})
}

func TestReopenPersistentAdapter(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("198.18.6.1"), netip.MustParseAddr("198.18.6.2")
	in(t, ns, func() error {
		noIPv6(t)
		a := mustCreate(t, "reopen0", "Test", AdapterOptions{Persistent: true,
			Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}}})
		index := int(a.LUID())
		mustClose(t, a)
		defer Uninstall()
		withNetcfg(t, func(nc *netcfg.Conn) {
			for i := 0; i < 20; i++ {
				// With no session the carrier is off: the kernel takes
				// the adapter down and deactivates its queues
				// (LinkByIndex makes it do so now rather than in a
				// moment).
				if l, err := nc.LinkByIndex(index); err != nil || l.Running || !l.Up {
					t.Fatalf("reopen0 with no session: %+v, %v; want up and not running", l, err)
				}
				b, err := OpenAdapter("reopen0")
				if err != nil {
					t.Fatal(err)
				}
				s := mustStart(t, b)
				// StartSession returns an operational adapter, so that
				// the reply to the first packet of its session is not
				// dropped by queues the kernel has not reactivated yet.
				if l, err := nc.LinkByIndex(index); err != nil || !l.Running {
					t.Fatalf("reopening %d: StartSession returned before reopen0 was operational: %+v, %v", i, l, err)
				}
				if err := exchangeEcho4(s, local, peer, 6, uint16(i), lifeWait); err != nil {
					t.Fatalf("reopening %d: %v", i, err)
				}
				s.End()
				mustClose(t, b)
			}
		})
		return nil
	})
}
