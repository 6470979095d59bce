// Package nstest has the test helpers every module's integration tests
// share: a throw-away network namespace, running a function there, and a
// ringtund for unprivileged clients. It is for tests only.
package nstest

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/netns"
)

// New gives the test a fresh network namespace, or skips it with the
// reason when it cannot have one. The namespace goes when the test ends.
func New(t testing.TB) *netns.NS {
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

// In runs fn inside ns and fails the test on its error. fn may call
// t.Fatal: the test then stops here, on its own goroutine.
func In(t testing.TB, ns *netns.NS, fn func() error) {
	t.Helper()
	if err := ns.Do(fn); errors.Is(err, netns.ErrGoexit) {
		t.FailNow()
	} else if err != nil {
		t.Fatal(err)
	}
}

// Nobody is the uid (and gid) unprivileged test programs run as.
const Nobody = 65534

// SharedDir returns a new directory that Nobody can reach (a test's
// TempDir is under a private one), removed when the test ends.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ringtun-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Daemon builds ringtund into dir (a SharedDir) and starts it on a
// thread in ns with the given policy (TOML) and extra flags; it returns the
// socket once the daemon listens. The daemon stops when the test ends.
func Daemon(t testing.TB, ns *netns.NS, dir, policy string, flags ...string) string {
	t.Helper()
	bin := filepath.Join(dir, "ringtund")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ringtun/ringtun/cmd/ringtund").CombinedOutput(); err != nil {
		t.Fatalf("go build ringtund: %v: %s", err, out)
	}
	policyFile, sock := filepath.Join(dir, "policy.toml"), filepath.Join(dir, "ringtund.sock")
	if err := os.WriteFile(policyFile, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	d := exec.Command(bin, append([]string{"-socket", sock, "-policy", policyFile, "-state", filepath.Join(dir, "state.json")}, flags...)...)
	In(t, ns, d.Start) // started on a thread in ns, the daemon is born there
	t.Cleanup(func() { d.Process.Signal(syscall.SIGTERM); d.Wait() })
	for i := 0; i < 250; i++ {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("ringtund did not listen")
	return ""
}

// AsNobody makes cmd run as Nobody.
func AsNobody(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: Nobody, Gid: Nobody}}
}

// CopyExecutable copies the running test binary into dir (a SharedDir),
// for a child that runs as Nobody, and returns its path.
func CopyExecutable(t testing.TB, dir string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(dir, filepath.Base(exe))
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return to
}

// Transfer sends size random bytes over TCP from namespace from to a
// listener at addr (port 5001) in namespace to, fails the test unless they
// arrive intact (SHA-256), and returns how long it took.
func Transfer(t testing.TB, from, to *netns.NS, addr string, size int) time.Duration {
	t.Helper()
	var ln net.Listener
	In(t, to, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(addr, "5001"))
		return err
	})
	defer ln.Close()
	got := make(chan [32]byte, 1)
	go func() {
		var sum [32]byte
		defer func() { got <- sum }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		h := sha256.New()
		if n, _ := io.Copy(h, c); int(n) == size {
			copy(sum[:], h.Sum(nil))
		}
	}()
	data := make([]byte, size)
	rand.Read(data)
	start := time.Now()
	In(t, from, func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "5001"), 10*time.Second)
		if err != nil {
			return err
		}
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		if _, err := c.Write(data); err != nil {
			c.Close()
			return err
		}
		return c.Close()
	})
	select {
	case sum := <-got:
		if sum != sha256.Sum256(data) {
			t.Fatalf("to %s: %d bytes did not arrive intact", addr, size)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("to %s: the transfer did not finish", addr)
	}
	return time.Since(start)
}
