package wgtun

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/internal/nstest"
	"github.com/ringtun/ringtun/internal/packettest"
	"golang.zx2c4.com/wireguard/tun"
)

func TestMain(m *testing.M) {
	goroutines := runtime.NumGoroutine()
	code := m.Run()
	// Every device was closed: its goroutines must be gone too.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines && code == 0 {
		buf := make([]byte, 1<<20)
		fmt.Fprintf(os.Stderr, "FAIL: %d goroutines left (had %d):\n%s\n", n, goroutines, buf[:runtime.Stack(buf, true)])
		code = 1
	}
	os.Exit(code)
}

// newNS and in are the shared helpers' (internal/nstest).
func newNS(t testing.TB) *netns.NS { return nstest.New(t) }

func in(t testing.TB, ns *netns.NS, fn func() error) { t.Helper(); nstest.In(t, ns, fn) }

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %v: %v: %s", args, err, out)
	}
	return nil
}

var (
	devAddr  = netip.MustParseAddr("198.18.20.1")
	peerAddr = netip.MustParseAddr("198.18.20.2")
)

// withDevice runs fn in a fresh namespace on a device whose adapter has
// 198.18.20.1/24; the device is closed after fn.
func withDevice(t *testing.T, name string, fn func(d *Device) error) {
	ns := newNS(t)
	in(t, ns, func() error {
		dev, err := CreateTUN(name, 1420)
		if err != nil {
			return err
		}
		d := dev.(*Device)
		defer d.Close()
		if err := ip("addr", "add", "198.18.20.1/24", "dev", name); err != nil {
			return err
		}
		return fn(d)
	})
}

// readUntil reads batches into bufs at offset until match accepts a packet,
// and returns a copy of it and the largest batch seen.
func readUntil(t *testing.T, d *Device, bufs [][]byte, offset int, match func([]byte) bool) ([]byte, int) {
	t.Helper()
	sizes := make([]int, len(bufs))
	most := 0
	timeout := time.AfterFunc(10*time.Second, func() { d.Close() })
	defer timeout.Stop()
	for {
		n, err := d.Read(bufs, sizes, offset)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if n < 1 || n > len(bufs) {
			t.Fatalf("read %d packets into %d buffers", n, len(bufs))
		}
		most = max(most, n)
		for i := range n {
			p := bufs[i][offset : offset+sizes[i]]
			if match(p) {
				return bytes.Clone(p), most
			}
		}
	}
}

func isUDPTo(port int) func([]byte) bool {
	return func(p []byte) bool {
		return len(p) >= 28 && p[0]>>4 == 4 && p[9] == 17 && int(p[22])<<8|int(p[23]) == port
	}
}

// TestRead: batches of 1 and of 128 buffers, offsets 0 and 16; the packets
// the host sends arrive whole at the offset.
func TestRead(t *testing.T) {
	withDevice(t, "wgt0", func(d *Device) error {
		if d.BatchSize() != 128 {
			t.Errorf("BatchSize %d", d.BatchSize())
		}
		c, err := net.Dial("udp", "198.18.20.2:4000")
		if err != nil {
			return err
		}
		defer c.Close()
		for _, offset := range []int{0, 16} {
			for _, nbufs := range []int{1, 128} {
				bufs := make([][]byte, nbufs)
				for i := range bufs {
					bufs[i] = make([]byte, offset+1500)
				}
				payload := fmt.Appendf(nil, "offset %d, %d buffers", offset, nbufs)
				for range 64 {
					if _, err := c.Write(payload); err != nil {
						return err
					}
				}
				// Packets of the round before may still come first.
				time.Sleep(20 * time.Millisecond)
				_, most := readUntil(t, d, bufs, offset, func(p []byte) bool {
					return isUDPTo(4000)(p) && bytes.Equal(p[28:], payload)
				})
				if nbufs == 128 && most < 2 {
					t.Errorf("128 buffers and 64 packets waiting, but each read gave %d", most)
				}
			}
		}
		return nil
	})
}

// TestWrite: packets written at offsets 0 and 16 reach the host, which
// answers; a write of buffers that are not IP packets is counted, not an
// error, and the device goes on.
func TestWrite(t *testing.T) {
	withDevice(t, "wgt1", func(d *Device) error {
		bufs := [][]byte{make([]byte, 16+1500)}
		for i, offset := range []int{0, 16} {
			pkt := make([]byte, offset+28+8)
			packettest.EchoRequest4(pkt[offset:], peerAddr, devAddr, 0x77, uint16(i), []byte("wgtun ok"))
			garbage := make([]byte, offset+40)
			garbage[offset] = 0x00 // version 0: not IP
			n, err := d.Write([][]byte{garbage, pkt, garbage}, offset)
			if n != 3 || err != nil {
				t.Fatalf("Write = %d, %v; want 3, nil", n, err)
			}
			reply, _ := readUntil(t, d, bufs, 0, func(p []byte) bool {
				return len(p) >= 28 && p[9] == 1 && p[20] == 0 && int(p[27]) == i
			})
			if !bytes.Equal(reply[28:], []byte("wgtun ok")) {
				t.Errorf("offset %d: reply payload %q", offset, reply[28:])
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for d.Stats().TxDropsNotIP < 4 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := d.Stats().TxDropsNotIP; got != 4 {
			t.Errorf("TxDropsNotIP = %d after four buffers that are not IP", got)
		}
		return nil
	})
}

// nextEvent waits for the device's next event.
func nextEvent(t *testing.T, d *Device) tun.Event {
	t.Helper()
	select {
	case e, ok := <-d.Events():
		if !ok {
			t.Fatal("the events channel closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return 0
}

// TestEvents: EventUp at the start, EventDown and EventUp with the link,
// EventMTUUpdate with the MTU.
func TestEvents(t *testing.T) {
	withDevice(t, "wgt2", func(d *Device) error {
		if e := nextEvent(t, d); e != tun.EventUp {
			t.Fatalf("first event %d, want EventUp", e)
		}
		if mtu, _ := d.MTU(); mtu != 1420 {
			t.Errorf("MTU %d, want 1420", mtu)
		}
		steps := []struct {
			cmd  []string
			want tun.Event
		}{
			{[]string{"link", "set", "wgt2", "down"}, tun.EventDown},
			{[]string{"link", "set", "wgt2", "up"}, tun.EventUp},
			{[]string{"link", "set", "wgt2", "mtu", "1300"}, tun.EventMTUUpdate},
		}
		for _, s := range steps {
			if err := ip(s.cmd...); err != nil {
				return err
			}
			if e := nextEvent(t, d); e != s.want {
				t.Errorf("after ip %v: event %d, want %d", s.cmd, e, s.want)
			}
		}
		if mtu, _ := d.MTU(); mtu != 1300 {
			t.Errorf("MTU %d after the change, want 1300", mtu)
		}
		if name, _ := d.Name(); name != "wgt2" {
			t.Errorf("Name %q", name)
		}
		return nil
	})
}

// TestCloseUnblocksRead: Close ends a Read that waits, closes the events
// channel and deletes the adapter CreateTUN made.
func TestCloseUnblocksRead(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		dev, err := CreateTUN("wgt3", 1420)
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() {
			bufs, sizes := [][]byte{make([]byte, 1500)}, []int{0}
			_, err := dev.Read(bufs, sizes, 0)
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		if err := dev.Close(); err != nil {
			return err
		}
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("Read after Close: %v, want os.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock Read")
		}
		for range dev.Events() { // the EventUp, then closed
		}
		if _, err := net.InterfaceByName("wgt3"); err == nil {
			t.Error("the adapter is still there")
		}
		if err := dev.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		return nil
	})
}
