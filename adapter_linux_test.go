package ringtun

// Adapter life cycle: names, GUIDs, create/open/close, persistence across
// processes, Adapters, Uninstall, access without privilege, the logger.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringtun/ringtun/netcfg"
)

// Adapter lifecycle tests: creation and its errors, metadata, lifetime,
// one session per adapter, sessions ending under their users,
// configuration, the wait event and the logger. Each test has its own
// network namespace; tests with several processes are here too, with the
// child roles in process_linux_test.go.

// lifeWait bounds every wait in these tests.
const lifeWait = 10 * time.Second

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

func TestRunningVersion(t *testing.T) {
	v, err := RunningVersion()
	if err != nil || v != Version {
		t.Fatalf("RunningVersion() = %#x, %v; want %#x, nil", v, err, Version)
	}
}
