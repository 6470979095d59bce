package ringtun

// Regression tests for adapters on a busy host (issue 8): other
// processes, namespaces, renames, foreign interfaces and routes.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"

	"github.com/ringtun/ringtun/internal/control"
	"github.com/ringtun/ringtun/internal/guid"
	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/internal/packettest"
	"github.com/ringtun/ringtun/netcfg"
)

// Tests of adapters on a busy host: other interfaces and their routes,
// interfaces that move between network namespaces or are renamed, other
// users, observers, and sessions that end under their callers. Each pins
// a rule an earlier version broke (issue 8 lists them); the comment on
// each test says which.

// moveLink moves the interface name from the calling thread's namespace
// into to.
func moveLink(t testing.TB, name string, to *netns.NS) {
	t.Helper()
	if _, err := ipCmd("link", "set", "dev", name, "netns", to.Path()); err != nil {
		t.Fatal(err)
	}
}

// linkAttrs returns what rtnetlink says of the interface name in the
// calling thread's namespace.
func linkAttrs(t testing.TB, name string) *rtnetlink.LinkAttributes {
	t.Helper()
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	links, err := c.Link.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Attributes != nil && l.Attributes.Name == name {
			return l.Attributes
		}
	}
	t.Fatalf("no interface %s", name)
	return nil
}

// watchNewLinks reports the interfaces created in the calling thread's
// namespace from now until the returned function is called, which
// returns their names.
func watchNewLinks(t testing.TB) func() []string {
	t.Helper()
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.JoinGroup(unix.RTNLGRP_LINK); err != nil {
		c.Close()
		t.Fatal(err)
	}
	links, err := c.Link.List()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	known := map[uint32]bool{}
	for _, l := range links {
		known[l.Index] = true
	}
	return func() []string {
		defer c.Close()
		var created []string
		for {
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			msgs, _, err := c.Receive()
			if err != nil {
				return created // the deadline: nothing more queued
			}
			for _, m := range msgs {
				if l, ok := m.(*rtnetlink.LinkMessage); ok && !known[l.Index] {
					known[l.Index] = true
					name := fmt.Sprint(l.Index)
					if l.Attributes != nil {
						name = l.Attributes.Name
					}
					created = append(created, name)
				}
			}
		}
	}
}

// TestRouteConflict: a route that the kernel cannot install on the
// adapter because another interface has the same prefix with the same
// metric (a default route, above all) fails Configure with an error that
// names both and says what to do; Configure applies all of a Config or
// nothing; RouteMetric and split routes are the ways out. (Configure used
// to return nil with every route still pointing at the other interface.)
func TestRouteConflict(t *testing.T) {
	ns := newNS(t)
	p := netip.MustParsePrefix
	in(t, ns, func() error {
		// A veth pair stands for the host's uplink, with default routes
		// of both families and one specific route.
		for _, args := range [][]string{
			{"link", "add", "up0", "type", "veth", "peer", "name", "up1"},
			{"link", "set", "up0", "up"}, {"link", "set", "up1", "up"},
			{"addr", "add", "198.18.40.1/24", "dev", "up0"},
			{"-6", "addr", "add", "2001:db8:40::1/64", "dev", "up0", "nodad"},
			{"route", "add", "default", "via", "198.18.40.254", "dev", "up0"},
			{"-6", "route", "add", "default", "via", "2001:db8:40::fe", "dev", "up0"},
			{"route", "add", "198.18.42.0/24", "via", "198.18.40.254", "dev", "up0", "proto", "static"},
		} {
			if _, err := ipCmd(args...); err != nil {
				t.Fatal(err)
			}
		}
		uplink := ipState(t, "up0")
		base := Config{Addresses: []netip.Prefix{p("198.18.41.1/24"), p("2001:db8:41::1/64")},
			Routes: []netip.Prefix{p("198.18.43.0/24")}, MTU: 1500}
		a := mustCreate(t, "rc0", "Test", AdapterOptions{Config: &base})
		defer mustClose(t, a)
		for _, route := range []netip.Prefix{p("0.0.0.0/0"), p("::/0"), p("198.18.42.0/24")} {
			// The route after a good one: the good one must not stay
			// either, and the one that was there must not go.
			cfg := Config{Routes: []netip.Prefix{p("198.18.44.0/24"), route}}
			err := a.Configure(cfg)
			wantErr(t, fmt.Sprintf("Configure(%v)", cfg.Routes), err, ErrRouteConflict)
			if err != nil {
				for _, want := range []string{"rc0", route.String(), "up0", "RouteMetric", "/1"} {
					if want == "/1" && route.Bits() > 0 {
						continue // the split of a default route
					}
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Configure(%v): %q does not say %q", cfg.Routes, err, want)
					}
				}
			}
			wantConfig(t, a, base)
		}
		if now := ipState(t, "up0"); now != uplink {
			t.Errorf("the uplink's routes changed:\n%s\nwas\n%s", now, uplink)
		}
		// The kernel's own route for an address of the adapter is
		// already on the adapter: asking for it is no conflict.
		own := Config{Routes: []netip.Prefix{p("198.18.41.0/24"), p("198.18.43.0/24")}}
		if err := a.Configure(own); err != nil {
			t.Fatalf("Configure(%v): %v", own.Routes, err)
		}

		// Another metric installs the routes beside the uplink's.
		cfg := Config{Routes: []netip.Prefix{p("0.0.0.0/0"), p("::/0")}, RouteMetric: 50}
		if err := a.Configure(cfg); err != nil {
			t.Fatalf("Configure(%v, metric 50): %v", cfg.Routes, err)
		}
		for _, args := range [][]string{{"-4", "route", "show", "default"}, {"-6", "route", "show", "default"}} {
			out, err := ipCmd(args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "dev rc0") || !strings.Contains(out, "metric 50") || !strings.Contains(out, "dev up0") {
				t.Errorf("ip %v:\n%s\nwant the default route on rc0 with metric 50 beside up0's", args, out)
			}
		}
		// The same routes again change nothing; a new metric replaces
		// them.
		state := ipState(t, "rc0")
		if err := a.Configure(cfg); err != nil {
			t.Fatal(err)
		}
		if again := ipState(t, "rc0"); again != state {
			t.Errorf("the same Configure twice changed rc0:\n%s\nwas\n%s", again, state)
		}
		cfg.RouteMetric = 60
		if err := a.Configure(cfg); err != nil {
			t.Fatal(err)
		}
		if out, _ := ipCmd("route", "show", "dev", "rc0"); !strings.Contains(out, "metric 60") || strings.Contains(out, "metric 50") {
			t.Errorf("after RouteMetric 60, rc0's routes:\n%s", out)
		}

		// Split routes, as WireGuard's tools make them, are more specific
		// than the default routes and need no metric.
		split := Config{Routes: []netip.Prefix{p("0.0.0.0/1"), p("128.0.0.0/1"), p("::/1"), p("8000::/1")}}
		if err := a.Configure(split); err != nil {
			t.Fatalf("Configure(%v): %v", split.Routes, err)
		}
		for dst, dev := range map[string]string{"198.18.99.1": "rc0", "2001:db8:99::1": "rc0", "198.18.40.7": "up0"} {
			if out, err := ipCmd("route", "get", dst); err != nil || !strings.Contains(out, "dev "+dev) {
				t.Errorf("ip route get %s: %q, %v; want dev %s", dst, out, err, dev)
			}
		}
		return nil
	})
}

// TestAdapterMovedToAnotherNamespace: one session per adapter holds
// wherever its interface is, and a running session goes on working when
// its interface moves. (The session lock lived in the creator's
// namespace: after a move, Adapters() in the new one said "not in use", a
// second session started there and the kernel split the flows between the
// two, and Uninstall() there deleted the adapter under its session.)
func TestAdapterMovedToAnotherNamespace(t *testing.T) {
	nsA, nsB := newNS(t), newNS(t)
	local, peer := netip.MustParseAddr("198.18.44.1"), netip.MustParseAddr("198.18.44.2")
	var a *Adapter
	var s *Session
	in(t, nsA, func() error {
		noIPv6(t)
		a = mustCreate(t, "mv0", "Test", AdapterOptions{})
		s = mustStart(t, a)
		moveLink(t, "mv0", nsB)
		wantLinks(t, "lo")
		return nil
	})
	defer in(t, nsA, func() error {
		mustClose(t, a)
		return nil
	})
	in(t, nsB, func() error {
		noIPv6(t)
		// It arrives down, as every interface moved into a namespace.
		for _, args := range [][]string{{"link", "set", "mv0", "up"}, {"addr", "add", netip.PrefixFrom(local, 24).String(), "dev", "mv0"}} {
			if _, err := ipCmd(args...); err != nil {
				t.Fatal(err)
			}
		}
		list := adapters(t)
		if len(list) != 1 || list[0].Name != "mv0" || list[0].GUID != a.GUID() || !list[0].InUse {
			t.Fatalf("Adapters() in the new namespace: %+v, want mv0 in use", list)
		}
		b, err := OpenAdapter("mv0")
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.StartSession(RingCapacityMin)
		wantErr(t, "StartSession in the new namespace", err, ErrAlreadyInitialized)
		mustClose(t, b)
		if err := Uninstall(); err != nil {
			t.Fatal(err)
		}
		wantLinks(t, "lo", "mv0")
		// The session, started in the old namespace, serves the
		// interface in the new one.
		if err := exchangeEcho4(s, local, peer, 44, 1, lifeWait); err != nil {
			t.Fatal(err)
		}
		return nil
	})
	in(t, nsA, func() error {
		// The handle belongs to the namespace it was made in, where the
		// adapter is no more.
		wantErr(t, "Configure after the move", a.Configure(Config{MTU: 1400}), ErrAdapterNotFound)
		s.End()
		_, err := a.StartSession(RingCapacityMin)
		wantErr(t, "StartSession after the move", err, ErrAdapterNotFound)
		wantLinks(t, "lo")
		return nil
	})
	in(t, nsB, func() error {
		if l := linkByName(t, "mv0"); l.MTU != 1500 {
			t.Errorf("mv0's MTU is %d, want 1500 untouched", l.MTU)
		}
		return nil
	})
	// Its creator's Close deletes it wherever it is.
	in(t, nsA, func() error {
		mustClose(t, a)
		return nil
	})
	in(t, nsB, func() error {
		waitLinkGone(t, "mv0")
		return nil
	})
}

// TestConfigureActsOnItsAdapter: Configure changes the adapter and
// nothing else, whichever thread calls it and whatever took the adapter's
// index. (It used to act on the adapter's index in the calling thread's
// namespace: from a thread switched to another namespace, or after the
// adapter moved out and a bridge moved in with the same index, it
// rewrote the bridge.)
func TestConfigureActsOnItsAdapter(t *testing.T) {
	p := netip.MustParsePrefix
	cfg := Config{Addresses: []netip.Prefix{p("198.18.45.7/24")}, Routes: []netip.Prefix{p("198.18.47.0/24")}, MTU: 1400}
	// bridgeIn makes bridge name in ns, with an address and a static
	// route, and returns its index and state.
	bridgeIn := func(ns *netns.NS, name string) (index int, state string) {
		in(t, ns, func() error {
			for _, args := range [][]string{
				{"link", "add", name, "type", "bridge"}, {"link", "set", name, "up"},
				{"addr", "add", "198.18.46.1/24", "dev", name},
				{"route", "add", "198.18.48.0/24", "dev", name, "proto", "static"},
			} {
				if _, err := ipCmd(args...); err != nil {
					t.Fatal(err)
				}
			}
			index, state = linkByName(t, name).Index, ipState(t, name)+linkSettings(t, name)
			return nil
		})
		return index, state
	}
	// checkBridge checks that interface name in ns is as it was.
	checkBridge := func(ns *netns.NS, name, want string) {
		t.Helper()
		in(t, ns, func() error {
			if got := ipState(t, name) + linkSettings(t, name); got != want {
				t.Errorf("Configure changed bridge %s:\n%s\nwas\n%s", name, got, want)
			}
			return nil
		})
	}

	// From a thread in another namespace, where a bridge has the
	// adapter's index.
	nsA, nsB := newNS(t), newNS(t)
	var a *Adapter
	in(t, nsA, func() error {
		a = mustCreate(t, "cf0", "Test", AdapterOptions{})
		return nil
	})
	defer in(t, nsA, func() error { return a.Close() })
	index, state := bridgeIn(nsB, "br0")
	if uint64(index) != a.LUID() {
		t.Fatalf("bridge index %d, adapter index %d: the test needs them equal", index, a.LUID())
	}
	in(t, nsB, func() error {
		if err := a.Configure(cfg); err != nil {
			t.Fatal(err)
		}
		return nil
	})
	checkBridge(nsB, "br0", state)
	in(t, nsA, func() error {
		wantConfig(t, a, cfg)
		return nil
	})

	// After the adapter moved out and another interface moved in with its
	// index (a veth: bridges cannot change namespace).
	nsC, nsD := newNS(t), newNS(t)
	in(t, nsA, func() error {
		moveLink(t, "cf0", nsC)
		return nil
	})
	in(t, nsD, func() error {
		if _, err := ipCmd("link", "add", "vm1", "type", "veth", "peer", "name", "vm0"); err != nil {
			t.Fatal(err)
		}
		moveLink(t, "vm0", nsA) // the end with the index the adapter had: the first after lo's
		return nil
	})
	in(t, nsA, func() error {
		if l := linkByName(t, "vm0"); uint64(l.Index) != a.LUID() {
			t.Fatalf("veth index %d in the adapter's namespace, adapter index %d: the test needs them equal", l.Index, a.LUID())
		}
		for _, args := range [][]string{
			{"link", "set", "vm0", "up"}, {"addr", "add", "198.18.46.1/24", "dev", "vm0"},
			{"route", "add", "198.18.48.0/24", "dev", "vm0", "proto", "static"},
		} {
			if _, err := ipCmd(args...); err != nil {
				t.Fatal(err)
			}
		}
		state = ipState(t, "vm0") + linkSettings(t, "vm0")
		wantErr(t, "Configure of an adapter moved out", a.Configure(Config{MTU: 1300, Addresses: []netip.Prefix{}}), ErrAdapterNotFound)
		return nil
	})
	checkBridge(nsA, "vm0", state)
}

// TestStartSessionOnADownAdapter: an adapter that is down takes a
// session, which works once the adapter is up. StartSession never brings
// it up itself. (Its GSO probe's write got EIO, so persistent adapters
// left down and adapters just moved into a namespace could not start a
// session.)
func TestStartSessionOnADownAdapter(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("198.18.49.1"), netip.MustParseAddr("198.18.49.2")
	in(t, ns, func() error {
		noIPv6(t)
		for _, persistent := range []bool{false, true} {
			a := mustCreate(t, "dn0", "Test", AdapterOptions{Persistent: persistent,
				Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}}})
			if persistent {
				mustClose(t, a)
				var err error
				if a, err = OpenAdapter("dn0"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := ipCmd("link", "set", "dn0", "down"); err != nil {
				t.Fatal(err)
			}
			s, err := a.StartSession(RingCapacityMin)
			if err != nil {
				t.Fatalf("StartSession on a down adapter (persistent %v): %v", persistent, err)
			}
			if linkByName(t, "dn0").Up {
				t.Error("StartSession brought the adapter up")
			}
			if _, err := ipCmd("link", "set", "dn0", "up"); err != nil {
				t.Fatal(err)
			}
			if err := exchangeEcho4(s, local, peer, 49, 1, lifeWait); err != nil {
				t.Errorf("persistent %v: %v", persistent, err)
			}
			s.End()
			mustClose(t, a)
			if persistent {
				if err := Uninstall(); err != nil {
					t.Fatal(err)
				}
			}
			wantLinks(t, "lo")
		}
		return nil
	})
}

// TestSessionThroughLinkChanges: a running session outlives its adapter
// going down and up, and takes packets larger than the MTU it started
// with once the MTU is raised, as README's "What happens when…" says.
func TestSessionThroughLinkChanges(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("198.18.57.1"), netip.MustParseAddr("198.18.57.2")
	in(t, ns, func() error {
		noIPv6(t)
		a := mustCreate(t, "chg0", "Test", AdapterOptions{Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}, MTU: 1400}})
		defer mustClose(t, a)
		s := mustStart(t, a)
		defer s.End()
		if _, err := ipCmd("link", "set", "chg0", "down"); err != nil {
			t.Fatal(err)
		}
		// The kernel refuses what the application sends to a down
		// interface: counted, not fatal.
		before := s.Stats().TxErrors
		p, err := s.AllocateSendPacket(28)
		if err != nil {
			t.Fatal(err)
		}
		packettest.EchoRequest4(p, peer, local, 57, 1, nil)
		s.SendPacket(p)
		if st := settled(s, func(st Stats) bool { return st.TxErrors > before }); st.TxErrors == before {
			t.Fatalf("a packet sent to the down adapter was not counted as refused: %+v", st)
		}
		if _, err := ipCmd("link", "set", "chg0", "up"); err != nil {
			t.Fatal(err)
		}
		if err := exchangeEcho4(s, local, peer, 57, 2, lifeWait); err != nil {
			t.Fatalf("after down and up: %v", err)
		}
		if _, err := ipCmd("link", "set", "chg0", "mtu", "9000"); err != nil {
			t.Fatal(err)
		}
		big := make([]byte, 6000)
		for i := range big {
			big[i] = byte(i * 13)
		}
		if err := exchangeEcho4Payload(s, local, peer, 57, 3, big, lifeWait); err != nil {
			t.Fatalf("a 6 KB echo after the MTU went from 1400 to 9000: %v", err)
		}
		return nil
	})
}

// TestSessionRuleCannotBeSquatted: nothing an unprivileged user can do
// decides whether an adapter has a session. (The session lock was an
// abstract socket named after the GUID, which every user can read and
// bind: a process of user nobody blocked StartSession, made Adapters()
// report the adapter in use, and Uninstall() skip it.)
func TestSessionRuleCannotBeSquatted(t *testing.T) {
	ns := newNS(t)
	g := NewGUID()
	var a *Adapter
	in(t, ns, func() error {
		noIPv6(t)
		a = mustCreate(t, "sq0", "Test", AdapterOptions{GUID: &g, Persistent: true})
		return nil
	})
	defer in(t, ns, func() error {
		mustClose(t, a)
		return Uninstall()
	})
	c := startRoleChild(t, ns, "squat", "RT_SOCKNAME=@ringtun/session/"+g.String())
	var bound errReport
	c.expect("bound", &bound)
	if bound.Msg != "" {
		t.Fatalf("the unprivileged child could not bind: %v", bound)
	}
	in(t, ns, func() error {
		wantAdapters(t, adapters(t), infoOf(a, true, false))
		s := mustStart(t, a)
		wantAdapters(t, adapters(t), infoOf(a, true, true))
		s.End()
		if err := Uninstall(); err != nil {
			t.Fatal(err)
		}
		wantLinks(t, "lo")
		return nil
	})
	c.goOn()
	c.wait()
}

// TestObserversCostNoPacket: opening, closing, configuring and listing an
// adapter while its session carries a stream loses none of the stream's
// packets. (OpenAdapter attached a queue and only then detached it; the
// kernel steered flows to it meanwhile and purged them on detach: 300
// OpenAdapter+Close calls lost thousands of 20,000 packets.)
func TestObserversCostNoPacket(t *testing.T) {
	ns := newNS(t)
	local, remote := netip.MustParseAddr("198.18.50.1"), netip.MustParseAddr("198.18.50.2")
	const (
		packets = 20000 // datagrams at least
		flows   = 64
		minOps  = 300 // OpenAdapter+Configure+Close calls at least, during the stream
		quiet   = 20 * time.Millisecond
	)
	cfg := Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}}
	in(t, ns, func() error {
		noIPv6(t)
		a := mustCreate(t, "obs0", "Test", AdapterOptions{Config: &cfg})
		defer mustClose(t, a)
		s, err := a.StartSession(0x100000)
		if err != nil {
			t.Fatal(err)
		}
		defer s.End()

		// The application counts the stream's datagrams.
		var received atomic.Int64
		recvDone := make(chan error, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			for {
				p, err := s.ReceivePacket()
				if errors.Is(err, ErrNoMoreItems) {
					if err := s.Wait(ctx); err != nil {
						recvDone <- nil
						return
					}
					continue
				}
				if err != nil {
					recvDone <- err
					return
				}
				if len(p) == 28+8 && p[0] == 0x45 && p[9] == 17 && binary.BigEndian.Uint32(p[28:]) == 0x0b5e4e40 {
					received.Add(1)
				}
				s.ReleaseReceivePacket(p)
			}
		}()

		// Observers, on another goroutine, until the stream ends.
		var ops atomic.Int64
		stop := make(chan struct{})
		obsDone := make(chan error, 1)
		go func() {
			obsDone <- ns.Do(func() error {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return nil
					default:
					}
					b, err := OpenAdapter("obs0")
					if err != nil {
						return err
					}
					if err := b.Configure(cfg); err != nil {
						b.Close()
						return err
					}
					if err := b.Close(); err != nil {
						return err
					}
					if i%8 == 0 {
						if _, err := Adapters(); err != nil {
							return err
						}
					}
					ops.Add(1)
				}
			})
		}()

		// The stream: one datagram per flow at a time, paced so that the
		// kernel's queue never overflows.
		conns := make([]*net.UDPConn, flows)
		for i := range conns {
			c, err := net.DialUDP("udp4", &net.UDPAddr{IP: local.AsSlice(), Port: 20000 + i}, &net.UDPAddr{IP: remote.AsSlice(), Port: 9})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns[i] = c
		}
		deadline := time.Now().Add(2 * time.Minute)
		sent := 0
		msg := make([]byte, 8)
		binary.BigEndian.PutUint32(msg, 0x0b5e4e40)
		for sent < packets || ops.Load() < minOps {
			if time.Now().After(deadline) {
				t.Fatalf("stream and observers not done after 2 minutes: %d sent, %d observer calls", sent, ops.Load())
			}
			for i := 0; i < flows; i++ {
				binary.BigEndian.PutUint32(msg[4:], uint32(sent))
				if _, err := conns[i].Write(msg); err != nil {
					t.Fatal(err)
				}
				sent++
			}
			// Wait for the window, or until nothing arrives for a while
			// (a packet lost for good).
			last, lastChange := received.Load(), time.Now()
			for received.Load() < int64(sent) && time.Since(lastChange) < quiet {
				if n := received.Load(); n != last {
					last, lastChange = n, time.Now()
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		close(stop)
		if err := receiveErr(t, "observers", obsDone); err != nil {
			t.Fatal(err)
		}
		// Late packets still count.
		for last, lastChange := received.Load(), time.Now(); received.Load() < int64(sent) && time.Since(lastChange) < time.Second; {
			if n := received.Load(); n != last {
				last, lastChange = n, time.Now()
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := receiveErr(t, "receiver", recvDone); err != nil {
			t.Fatal(err)
		}
		lost := int64(sent) - received.Load()
		t.Logf("%d datagrams in %d flows, %d observer calls (OpenAdapter, Configure, Close): %d lost", sent, flows, ops.Load(), lost)
		if lost != 0 {
			t.Errorf("%d of %d datagrams lost while observers opened, configured and closed the adapter %d times", lost, sent, ops.Load())
		}
		return nil
	})
}

// TestForeignInterfacesAreNotAdapters: only TUN interfaces made the way
// ringtun makes them are adapters; another interface with a copied alias
// is not listed, opened or deleted. (Uninstall deleted a bridge and a veth
// pair that had been given a ringtun alias.)
func TestForeignInterfacesAreNotAdapters(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		real := mustCreate(t, "real0", "Test", AdapterOptions{})
		defer mustClose(t, real)
		alias := control.Meta{GUID: guid.New(), TunnelType: "Fake"}.Alias()
		for _, args := range [][]string{
			{"link", "add", "fb0", "type", "bridge"},
			{"link", "add", "fv0", "type", "veth", "peer", "name", "fv1"},
			{"tuntap", "add", "mode", "tun", "name", "ft0"},                            // one queue, no virtio_net_hdr
			{"tuntap", "add", "mode", "tap", "multi_queue", "vnet_hdr", "name", "fp0"}, // a TAP
		} {
			if _, err := ipCmd(args...); err != nil {
				t.Fatal(err)
			}
		}
		foreign := []string{"fb0", "fv0", "fv1", "ft0", "fp0"}
		for _, name := range foreign {
			if _, err := ipCmd("link", "set", name, "alias", alias); err != nil {
				t.Fatal(err)
			}
		}
		wantAdapters(t, adapters(t), infoOf(real, false, false))
		for _, name := range foreign {
			b, err := OpenAdapter(name)
			wantErr(t, "OpenAdapter("+name+")", err, ErrAdapterNotFound)
			if b != nil {
				b.Close()
			}
		}
		if err := Uninstall(); err != nil {
			t.Fatal(err)
		}
		wantLinks(t, append(foreign, "lo")...)
		for _, name := range []string{"fb0", "fv0", "ft0", "fp0"} {
			if _, err := ipCmd("link", "del", name); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
}

// TestDuplicateGUID: a GUID names one adapter. (Two adapters could be
// given the same GUID and then blocked each other's sessions.)
func TestDuplicateGUID(t *testing.T) {
	ns := newNS(t)
	g := NewGUID()
	in(t, ns, func() error {
		a := mustCreate(t, "dup0", "Test", AdapterOptions{GUID: &g})
		b, err := CreateAdapter("dup1", "Test", &g)
		wantErr(t, "CreateAdapter with a GUID in use", err, ErrAdapterExists, os.ErrExist)
		if err != nil && !strings.Contains(err.Error(), "dup0") {
			t.Errorf("%q does not name the adapter that has the GUID", err)
		}
		if b != nil {
			b.Close()
		}
		wantLinks(t, "dup0", "lo")
		mustClose(t, a)
		b = mustCreate(t, "dup1", "Test", AdapterOptions{GUID: &g})
		mustClose(t, b)
		return nil
	})
}

// TestStaleHandle: a handle follows its adapter through a rename, and
// once the adapter is gone it starts no session, attaches to nothing and
// creates nothing, even when another TUN interface took the adapter's
// name. (StartSession attached by the name the handle remembered, which
// made a stray interface after a rename or deletion and could attach to
// another TUN that had taken the name.)
func TestStaleHandle(t *testing.T) {
	ns := newNS(t)
	local, peer := netip.MustParseAddr("198.18.51.1"), netip.MustParseAddr("198.18.51.2")
	in(t, ns, func() error {
		noIPv6(t)
		a := mustCreate(t, "st0", "Test", AdapterOptions{Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}}})
		defer mustClose(t, a)
		for _, args := range [][]string{{"link", "set", "st0", "down"}, {"link", "set", "st0", "name", "st9"}, {"link", "set", "st9", "up"}} {
			if _, err := ipCmd(args...); err != nil {
				t.Fatal(err)
			}
		}
		created := watchNewLinks(t)
		s, err := a.StartSession(RingCapacityMin)
		if names := created(); len(names) != 0 {
			t.Errorf("StartSession after a rename created interfaces %q", names)
		}
		if err != nil {
			t.Fatalf("StartSession after a rename: %v", err)
		}
		if a.Name() != "st9" {
			t.Errorf("Name() = %q after the rename, want st9", a.Name())
		}
		if err := exchangeEcho4(s, local, peer, 51, 1, lifeWait); err != nil {
			t.Error(err)
		}
		s.End()

		// Deleted, and another TUN interface made with ringtun's flags
		// takes the name.
		b := mustCreate(t, "st1", "Test", AdapterOptions{})
		defer mustClose(t, b)
		for _, args := range [][]string{{"link", "del", "st1"}, {"tuntap", "add", "mode", "tun", "multi_queue", "vnet_hdr", "name", "st1"}} {
			if _, err := ipCmd(args...); err != nil {
				t.Fatal(err)
			}
		}
		defer ipCmd("tuntap", "del", "mode", "tun", "multi_queue", "name", "st1")
		carrier := *linkAttrs(t, "st1").CarrierChanges
		created = watchNewLinks(t)
		_, err = b.StartSession(RingCapacityMin)
		wantErr(t, "StartSession on a deleted adapter whose name was taken", err, ErrAdapterNotFound)
		if names := created(); len(names) != 0 {
			t.Errorf("StartSession on a deleted adapter created interfaces %q", names)
		}
		// A queue attached to the other TUN would have turned its
		// carrier on and off.
		if now := *linkAttrs(t, "st1").CarrierChanges; now != carrier {
			t.Errorf("StartSession on a deleted adapter attached to the TUN that took its name (carrier changes %d, were %d)", now, carrier)
		}
		return nil
	})
}

// TestValidationNamesTheCause: what the kernel would refuse is refused up
// front with this package's error and the cause, and a Config that cannot
// be applied whole changes nothing. (A name with byte 0xA0 got a bare
// EINVAL; an MTU below 1280 with an IPv6 address was half applied; an
// IPv6 address on an adapter with IPv6 disabled failed with EACCES, which
// errors.Is took for os.ErrPermission, after the IPv4 part was applied.)
func TestValidationNamesTheCause(t *testing.T) {
	ns := newNS(t)
	p := netip.MustParsePrefix
	in(t, ns, func() error {
		// The kernel's isspace takes 0xA0 (no-break space in Latin-1)
		// for white space, also as the second byte of "à" in UTF-8.
		for _, name := range []string{"vpn\xa0x", "vpn\u00e0", "\xa0"} {
			a, err := CreateAdapter(name, "Test", nil)
			wantErr(t, fmt.Sprintf("CreateAdapter(%q)", name), err, ErrInvalidName)
			if a != nil {
				a.Close()
			}
		}
		wantLinks(t, "lo")

		base := Config{Addresses: []netip.Prefix{p("198.18.52.1/24"), p("2001:db8:52::1/64")},
			Routes: []netip.Prefix{p("2001:db8:53::/48")}, MTU: 1500}
		a := mustCreate(t, "val0", "Test", AdapterOptions{Config: &base})
		defer mustClose(t, a)
		for _, c := range []struct {
			cfg  Config
			item string
		}{
			{Config{MTU: 1000, Addresses: []netip.Prefix{p("198.18.52.1/24"), p("2001:db8:54::1/64")}}, "2001:db8:54::1/64"},
			{Config{MTU: 1000, Addresses: []netip.Prefix{p("198.18.52.1/24")}, Routes: []netip.Prefix{p("2001:db8:55::/48")}}, "2001:db8:55::/48"},
			// The kernel would drop the IPv6 addresses and routes there
			// are with the MTU.
			{Config{MTU: 1000}, "2001:db8:52::1/64"},
		} {
			err := a.Configure(c.cfg)
			wantErr(t, fmt.Sprintf("Configure(%v)", c.cfg), err, ErrInvalidConfig)
			if err != nil && (!strings.Contains(err.Error(), c.item) || !strings.Contains(err.Error(), "1280")) {
				t.Errorf("Configure(%v): %q does not name %s and the minimum MTU", c.cfg, err, c.item)
			}
			wantConfig(t, a, base)
		}

		b := mustCreate(t, "val1", "Test", AdapterOptions{})
		defer mustClose(t, b)
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/val1/disable_ipv6", []byte("1"), 0); err != nil {
			t.Fatal(err)
		}
		cfg := Config{Addresses: []netip.Prefix{p("198.18.56.1/24"), p("2001:db8:56::1/64")}}
		err := b.Configure(cfg)
		if err == nil || errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "disable_ipv6") {
			t.Errorf("Configure(%v) with IPv6 disabled: %v; want an error that says IPv6 is disabled and is not os.ErrPermission", cfg.Addresses, err)
		}
		wantErr(t, "Configure with IPv6 disabled", err, ErrInvalidConfig)
		wantConfig(t, b, Config{MTU: 1500})
		// The IPv4 part alone is fine.
		cfg.Addresses = cfg.Addresses[:1]
		if err := b.Configure(cfg); err != nil {
			t.Fatal(err)
		}
		return nil
	})
}

// TestSessionMemoryOutlivesCalls: the ring memory stays mapped while a
// call is in progress, even when the program's last reference to the
// Session is gone and the garbage collector runs, and is unmapped when the
// last call returns. (The memory was unmapped by a cleanup attached to
// the Session, which could run while a Wait was still inside.)
func TestSessionMemoryOutlivesCalls(t *testing.T) {
	ns := newNS(t)
	mapped := func() bool {
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(maps), "/memfd:ringtun-mem0 ")
	}
	in(t, ns, func() error {
		noIPv6(t)
		a := mustCreate(t, "mem0", "Test", AdapterOptions{})
		woke, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		testHookWaitReturned = func() { once.Do(func() { close(woke); <-release }) }
		defer func() { testHookWaitReturned = nil }()
		waited := make(chan error, 1)
		func() {
			s := mustStart(t, a)
			go func() { waited <- s.Wait(context.Background()) }()
			waitersBlocked(t, 1)
		}()
		// Close ends the session and drops the adapter's reference to
		// it; the Wait wakes and stops in the hook, inside the call.
		mustClose(t, a)
		<-woke
		for i := 0; i < 5; i++ {
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
		if !mapped() {
			t.Error("the ring memory was unmapped while a Wait was in progress")
		}
		close(release)
		wantErr(t, "Wait", receiveErr(t, "Wait", waited), ErrSessionEnded)
		if mapped() {
			t.Error("the ring memory is still mapped after the session ended and its last call returned")
		}
		return nil
	})
}

// linkSettings prints what rtnetlink says of interface name, but for its
// traffic counters: an interface that is up may send packets of its own
// (IPv6 router solicitations, say) while a test watches its settings.
func linkSettings(t testing.TB, name string) string {
	l := linkByName(t, name)
	l.Stats = netcfg.LinkStats{}
	return fmt.Sprint(l)
}
