package ringtun

// Helpers the root package's Linux tests share: namespaces, ip(8),
// adapters and sessions that clean up after themselves, error checks.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/internal/nstest"
	"github.com/ringtun/ringtun/netcfg"
)

// newNS gives the test a fresh network namespace, or skips it with the
// reason when it cannot have one. The namespace goes when the test ends.
func newNS(t testing.TB) *netns.NS { return nstest.New(t) }

// in runs fn inside ns and fails the test on its error. fn may call
// t.Fatal: the test then stops here, on its own goroutine.
func in(t testing.TB, ns *netns.NS, fn func() error) { t.Helper(); nstest.In(t, ns, fn) }

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
