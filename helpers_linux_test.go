package ringtun

// Helpers the root package's Linux tests share: namespaces, ip(8),
// adapters and sessions that clean up after themselves, error checks.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/netcfg"
)

// newNS gives the test a fresh network namespace, or skips it with the
// reason when it cannot have one. The namespace goes when the test ends.
func newNS(t testing.TB) *netns.NS {
	t.Helper()
	if err := netns.CanCreate(); err != nil {
		t.Skip("integration test:", err)
	}
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// in runs fn inside ns and fails the test on its error. fn may call
// t.Fatal: the test then stops here, on its own goroutine.
func in(t testing.TB, ns *netns.NS, fn func() error) {
	t.Helper()
	if err := ns.Do(fn); errors.Is(err, netns.ErrGoexit) {
		t.FailNow()
	} else if err != nil {
		t.Fatal(err)
	}
}

// inetChecksum is the Internet checksum of b, folded, starting from sum.
func inetChecksum(sum uint32, b []byte) uint16 {
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// pseudoSum6 is the IPv6 pseudo-header sum for an upper-layer packet.
func pseudoSum6(src, dst netip.Addr, proto uint8, length int) uint32 {
	var sum uint32
	s, d := src.As16(), dst.As16()
	for i := 0; i < 16; i += 2 {
		sum += uint32(s[i])<<8 | uint32(s[i+1])
		sum += uint32(d[i])<<8 | uint32(d[i+1])
	}
	return sum + uint32(length) + uint32(proto)
}

// echoRequest4 writes an IPv4 ICMP echo request with payload into b, which
// must be 28+len(payload) bytes.
func echoRequest4(b []byte, src, dst netip.Addr, id, seq uint16, payload []byte) {
	clear(b)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8], b[9] = 64, 1
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[10:], inetChecksum(0, b[:20]))
	b[20] = 8
	binary.BigEndian.PutUint16(b[24:], id)
	binary.BigEndian.PutUint16(b[26:], seq)
	copy(b[28:], payload)
	binary.BigEndian.PutUint16(b[22:], inetChecksum(0, b[20:]))
}

// echoRequest6 writes an IPv6 ICMPv6 echo request with payload into b,
// which must be 48+len(payload) bytes.
func echoRequest6(b []byte, src, dst netip.Addr, id, seq uint16, payload []byte) {
	clear(b)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40))
	b[6], b[7] = 58, 64
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	b[40] = 128
	binary.BigEndian.PutUint16(b[44:], id)
	binary.BigEndian.PutUint16(b[46:], seq)
	copy(b[48:], payload)
	binary.BigEndian.PutUint16(b[42:], inetChecksum(pseudoSum6(src, dst, 58, len(b)-40), b[40:]))
}

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
