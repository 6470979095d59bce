package netns

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if err := CanCreate(); err != nil {
		t.Skip("integration test:", err)
	}
}

// threadNS returns a handle to the calling thread's namespace, which the
// caller must have locked.
func threadNS(t *testing.T) *NS {
	t.Helper()
	f, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	n, err := fromFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRun: fn runs in the namespace asked for, on the caller's goroutine
// when its thread is there already, and on another thread otherwise; the
// caller's thread is where it was after.
func TestRun(t *testing.T) {
	needRoot(t)
	host, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	other, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if host.Same(other) {
		t.Fatal("a new namespace is the same as the host's")
	}
	for _, target := range []*NS{host, other} {
		var inside *NS
		var tid int
		runtime.LockOSThread()
		caller := unix.Gettid()
		err := target.Run(func() error {
			inside, tid = threadNS(t), unix.Gettid()
			return nil
		})
		after := threadNS(t)
		runtime.UnlockOSThread()
		if err != nil {
			t.Fatal(err)
		}
		if !inside.Same(target) {
			t.Error("fn did not run in the namespace asked for")
		}
		if !after.Same(host) {
			t.Error("the caller's thread changed namespace")
		}
		if want := target == host; (tid == caller) != want {
			t.Errorf("fn ran on the caller's thread: %v, want %v", tid == caller, want)
		}
		inside.Close()
		after.Close()
	}
	// An error from fn comes back.
	want := errors.New("from fn")
	if err := other.Run(func() error { return want }); err != want {
		t.Errorf("Run = %v, want fn's error", err)
	}
}

func TestOpen(t *testing.T) {
	needRoot(t)
	// Not /proc/self: a goroutine that ends locked to the main thread
	// (as New's may) leaves that thread parked in another namespace.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n, err := Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	cur, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if !n.Same(cur) {
		t.Error("Open(/proc/thread-self/ns/net) is not the current namespace")
	}
	if _, err := Open("/proc/self/status"); err == nil {
		t.Error("Open took a file that is not a namespace")
	}
	if _, err := Open("/nonexistent/netns"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing path: %v, want os.ErrNotExist", err)
	}
}
