package ringtun

// TestMain: the role dispatch for child processes, and the check that no
// test leaves an adapter, namespace or goroutine behind.

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/control"
	"github.com/ringtun/ringtun/netcfg"
)

// childRoleEnv, when set, makes the test binary run a child role (see
// childRoles in process_linux_test.go) instead of the tests.
const childRoleEnv = "RINGTUN_TEST_CHILD_ROLE"

// leakSettle bounds how long the end-of-run check waits for goroutines to
// end and for the cleanups that free session memory and eventfds to run.
const leakSettle = 10 * time.Second

// TestMain runs a child role when asked to, and otherwise runs the tests
// and then fails the run if a goroutine, a file descriptor or a ringtun
// adapter in the test process's own network namespace outlived them.
func TestMain(m *testing.M) {
	if role := os.Getenv(childRoleEnv); role != "" {
		os.Exit(runChildRole(role))
	}
	// The runtime's poller opens its epoll fd and eventfd on first use:
	// make that happen before the snapshot.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	fds := openFDs()
	goroutines := runtime.NumGoroutine()
	adapters := hostAdapters()

	code := m.Run()

	var problems []string
	if err := waitNoLeak(fds, goroutines, leakSettle); err != nil {
		problems = append(problems, err.Error())
	}
	if extra := slices.DeleteFunc(hostAdapters(), func(n string) bool { return slices.Contains(adapters, n) }); len(extra) > 0 {
		problems = append(problems, fmt.Sprintf("ringtun adapters left in the test process's network namespace: %q", extra))
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: leak check after the whole run:\n%s\n", strings.Join(problems, "\n"))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// openFDs returns the process's open file descriptors and what they are.
func openFDs() map[int]string {
	fds := map[int]string{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fds
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own fd, closed by now
		}
		fds[fd] = target
	}
	return fds
}

// newFDs returns the descriptors open now that were not in before.
func newFDs(before map[int]string) []string {
	var out []string
	for fd, target := range openFDs() {
		if before[fd] != target {
			out = append(out, fmt.Sprintf("%d -> %s", fd, target))
		}
	}
	slices.Sort(out)
	return out
}

// waitNoLeak waits up to limit, collecting garbage so that runtime
// cleanups run, until no descriptor is open that was not in fds and no
// more than goroutines goroutines run. It returns what leaked otherwise.
func waitNoLeak(fds map[int]string, goroutines int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		for i := 0; i < 3; i++ {
			runtime.GC()
		}
		extraFDs := newFDs(fds)
		n := runtime.NumGoroutine()
		if len(extraFDs) == 0 && n <= goroutines {
			return nil
		}
		if time.Now().After(deadline) {
			var msg []string
			if len(extraFDs) > 0 {
				msg = append(msg, fmt.Sprintf("file descriptors leaked after %v: %s", limit, strings.Join(extraFDs, ", ")))
			}
			if n > goroutines {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				msg = append(msg, fmt.Sprintf("goroutines leaked after %v: %d, was %d:\n%s", limit, n, goroutines, buf))
			}
			return fmt.Errorf("%s", strings.Join(msg, "\n"))
		}
		time.Sleep(delay)
	}
}

// hostAdapters lists the ringtun adapters in the test process's own
// network namespace, where no test may create one.
func hostAdapters() []string {
	if os.Geteuid() != 0 {
		return nil
	}
	nc, err := netcfg.Dial()
	if err != nil {
		return nil
	}
	defer nc.Close()
	links, err := nc.Links()
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range links {
		if _, ok := control.ParseAlias(l.Alias); ok {
			out = append(out, l.Name)
		}
	}
	return out
}

// checkNoLeak is waitNoLeak for one test.
func checkNoLeak(t testing.TB, fds map[int]string, goroutines int) {
	t.Helper()
	if err := waitNoLeak(fds, goroutines, leakSettle); err != nil {
		t.Error(err)
	}
}
