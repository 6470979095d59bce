package broker

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListen: the socket is 0666; a stale socket (nobody listening) is
// replaced; a socket a live daemon listens on is not.
func TestListen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ringtund.sock")
	// A stale socket: bound, then its listener gone without unlinking it.
	os.MkdirAll(filepath.Dir(path), 0o755)
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	l, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer l.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket mode %v, %v; want 0666", fi.Mode(), err)
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "already listens") {
		t.Fatalf("Listen over a live daemon's socket: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the live daemon's socket was removed: %v", err)
	}
}
