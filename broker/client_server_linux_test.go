package broker

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtun/ringtun/internal/errs"
)

// TestClientReplyTimeout: a daemon that takes a request and never answers
// gives the client an error, not a hang.
func TestClientReplyTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mute.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	old := replyTimeout
	replyTimeout = 200 * time.Millisecond
	defer func() { replyTimeout = old }()
	start := time.Now()
	_, err = NewClient(path).Version()
	if !errors.Is(err, errs.SessionEnded) || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("Version from a mute daemon: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
	(<-accepted).Close()
}

// TestServeSurvivesEMFILE: a failed accept (out of descriptors) does not
// stop the server: the clients that waited meanwhile are served once
// descriptors are back.
func TestServeSurvivesEMFILE(t *testing.T) {
	s, err := NewServer(ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "d.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	defer func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	var socks [3]int
	for i := range socks {
		if socks[i], err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			t.Fatal(err)
		}
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	saved := lim
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	lim.Cur = uint64(len(ents) - 1) // no descriptor to spare
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	for _, fd := range socks {
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
			unix.Setrlimit(unix.RLIMIT_NOFILE, &saved)
			t.Fatal(err)
		}
	}
	time.Sleep(3 * acceptBackoff) // the server fails to accept, more than once
	err = unix.Setrlimit(unix.RLIMIT_NOFILE, &saved)
	select {
	case e := <-served:
		served <- nil // for the deferred wait
		t.Fatalf("Serve stopped when out of descriptors: %v", e)
	default:
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range socks {
		f := os.NewFile(uintptr(fd), "client")
		fc, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		c := newConn(fc.(*net.UnixConn))
		if err := c.write(uint16(OpVersion), 1, nil, -1); err != nil {
			t.Fatal(err)
		}
		fc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if h, _, _, err := c.read(); err != nil || h.op != uint16(OpVersion)|respFlag {
			t.Fatalf("a client that waited: %+v, %v", h, err)
		}
		c.close()
	}
}
