package tundev

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/netcfg"
)

// inNewNS runs fn inside a fresh network namespace, or skips the test with
// the reason when this machine cannot make one.
func inNewNS(t *testing.T, fn func()) {
	t.Helper()
	if err := netns.CanCreate(); err != nil {
		t.Skipf("needs root and /dev/net/tun: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("netns.New: %v", err)
	}
	defer ns.Close()
	if err := ns.Do(func() error { fn(); return nil }); err != nil && !errors.Is(err, netns.ErrGoexit) {
		t.Fatal(err)
	}
}

// upWithAddr gives the device 198.18.9.1/24 and brings it up.
func upWithAddr(t *testing.T, name string) {
	t.Helper()
	c, err := netcfg.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, err := c.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetAddresses(l.Index, []netip.Prefix{netip.MustParsePrefix("198.18.9.1/24")}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUp(l.Index); err != nil {
		t.Fatal(err)
	}
}

func TestNegotiate(t *testing.T) {
	inNewNS(t, func() {
		q, err := Create("tdneg0")
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		got, err := q.Negotiate()
		if err != nil {
			t.Fatalf("Negotiate: %v", err)
		}
		// Every kernel ringtun supports has had CSUM and TSO for years.
		if want := CSUM | TSO4 | TSO6; got&want != want {
			t.Fatalf("Negotiate = %s, want at least %s", got, want)
		}
		t.Logf("offloads: %s", got)
		if got, err := q.NegotiateFrom(CSUM | TSO4); err != nil || got != CSUM|TSO4 {
			t.Fatalf("NegotiateFrom(csum|tso4) = %s, %v", got, err)
		}
		if err := q.SetOffloads(1 << 20); err == nil {
			t.Fatal("SetOffloads with an unknown flag succeeded")
		}
		if got, err := q.NegotiateFrom(CSUM | 1<<20); err != nil || got != CSUM {
			t.Fatalf("NegotiateFrom(csum|unknown) = %s, %v; want the unknown flag stepped over", got, err)
		}
	})
}

func TestOffloadsString(t *testing.T) {
	for o, want := range map[Offloads]string{0: "none", CSUM: "csum", CSUM | TSO4 | USO6: "csum|tso4|uso6"} {
		if got := o.String(); got != want {
			t.Errorf("%#x.String() = %q, want %q", uint(o), got, want)
		}
	}
}

func TestProbeGSO(t *testing.T) {
	inNewNS(t, func() {
		q, err := Create("tdprobe0")
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		upWithAddr(t, q.Name())
		tcp, udp, err := q.ProbeGSO()
		if err != nil {
			t.Fatalf("ProbeGSO: %v", err)
		}
		// USO writes exist since Linux 6.2; TCP GSO writes for much longer.
		if !tcp {
			t.Error("the kernel refused a TCP GSO write")
		}
		t.Logf("GSO writes: tcp %v udp %v", tcp, udp)
		// A malformed super-packet is refused with EINVAL, which is what the
		// probe looks for: gso_size 0.
		bad := probePacket(6)
		bad[4] = 0
		if _, err := q.Write(bad); !errors.Is(err, unix.EINVAL) {
			t.Errorf("GSO write with gso_size 0 = %v, want EINVAL", err)
		}
		// The probe packets never reach anything: the host stack drops them
		// for their header checksum, so no IPv4 packet (an ICMP error, say)
		// comes back on the queue. IPv6 neighbour discovery may.
		buf := make([]byte, 2048)
		for {
			q.f.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := q.Read(buf)
			if err != nil {
				break
			}
			if n > VNetHdrLen && buf[VNetHdrLen]>>4 == 4 {
				t.Errorf("read an IPv4 packet of %d bytes after the probe, want nothing", n-VNetHdrLen)
			}
		}
	})
}

// TestVectoredEcho writes an ICMP echo request gathered from three buffers
// and reads the host's reply scattered over three.
func TestVectoredEcho(t *testing.T) {
	inNewNS(t, func() {
		q, err := Create("tdvec0")
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		if _, err := q.NegotiateFrom(0); err != nil {
			t.Fatal(err)
		}
		upWithAddr(t, q.Name())
		req := echoRequest(netip.MustParseAddr("198.18.9.2"), netip.MustParseAddr("198.18.9.1"), 0x4242, 300)
		var hdr [VNetHdrLen]byte
		if n, err := q.WriteVec([][]byte{hdr[:], req[:7], nil, req[7:]}); err != nil || n != VNetHdrLen+len(req) {
			t.Fatalf("WriteVec = %d, %v", n, err)
		}
		rhdr := make([]byte, VNetHdrLen)
		a, b := make([]byte, 20), make([]byte, 2048)
		deadline := time.Now().Add(10 * time.Second)
		for {
			q.f.SetReadDeadline(deadline)
			n, err := q.ReadVec([][]byte{rhdr, a, b})
			if err != nil {
				t.Fatalf("ReadVec: %v", err)
			}
			pkt := append(append([]byte(nil), a...), b[:n-VNetHdrLen-len(a)]...)
			if pkt[0]>>4 != 4 || pkt[9] != 1 || pkt[20] != 0 {
				continue // not an ICMP echo reply (the kernel may send other things)
			}
			if got := binary.BigEndian.Uint16(pkt[24:]); got != 0x4242 {
				t.Fatalf("echo reply id %#x, want 0x4242", got)
			}
			if len(pkt) != len(req) || string(pkt[28:]) != string(req[28:]) {
				t.Fatalf("echo reply of %d bytes does not carry the request's payload", len(pkt))
			}
			if rhdr[1] != 0 {
				t.Fatalf("plain reply read with gso type %d", rhdr[1])
			}
			break
		}
		if _, err := q.ReadVec(make([][]byte, maxVec+1)); err == nil {
			t.Fatal("ReadVec with too many buffers succeeded")
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := q.WriteVec([][]byte{hdr[:], req}); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("WriteVec allocates %.1f times per call, want 0", allocs)
		}
	})
}

// TestCloseUnblocksReadVec: Close ends a ReadVec blocked on an idle queue.
func TestCloseUnblocksReadVec(t *testing.T) {
	inNewNS(t, func() {
		q, err := Create("tdclose0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := q.ReadVec([][]byte{make([]byte, VNetHdrLen), make([]byte, 2048)})
			done <- err
		}()
		time.Sleep(20 * time.Millisecond)
		q.Close()
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrClosed) {
				t.Fatalf("ReadVec after Close = %v, want os.ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not unblock ReadVec")
		}
	})
}

// echoRequest builds an IPv4 ICMP echo request with a payload of n bytes.
func echoRequest(src, dst netip.Addr, id uint16, n int) []byte {
	p := make([]byte, 28+n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8], p[9] = 64, 1
	copy(p[12:16], src.AsSlice())
	copy(p[16:20], dst.AsSlice())
	binary.BigEndian.PutUint16(p[10:], ^sum(p[:20]))
	p[20] = 8
	binary.BigEndian.PutUint16(p[24:], id)
	for i := range n {
		p[28+i] = byte(i)
	}
	binary.BigEndian.PutUint16(p[22:], ^sum(p[20:]))
	return p
}

func sum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// TestFromFD: a queue's descriptor, duplicated as a descriptor received
// over a socket would be, becomes a working Queue of the same device; a
// descriptor that is not such a queue is refused with ErrNotTUN, and
// closed.
func TestFromFD(t *testing.T) {
	inNewNS(t, func() {
		keeper, err := Create("tdfd0")
		if err != nil {
			t.Fatal(err)
		}
		defer keeper.Close()
		if err := keeper.Detach(); err != nil {
			t.Fatal(err)
		}
		orig, err := Attach("tdfd0")
		if err != nil {
			t.Fatal(err)
		}
		var dup int
		if err := orig.control(func(fd int) (err error) { dup, err = unix.Dup(fd); return err }); err != nil {
			t.Fatal(err)
		}
		orig.Close()
		q, err := FromFD(dup)
		if err != nil {
			t.Fatalf("FromFD: %v", err)
		}
		defer q.Close()
		if q.Name() != "tdfd0" {
			t.Fatalf("Name() = %q, want tdfd0", q.Name())
		}
		if _, err := q.NegotiateFrom(0); err != nil {
			t.Fatal(err)
		}
		upWithAddr(t, q.Name())
		req := echoRequest(netip.MustParseAddr("198.18.9.2"), netip.MustParseAddr("198.18.9.1"), 0x4343, 100)
		var hdr [VNetHdrLen]byte
		if _, err := q.WriteVec([][]byte{hdr[:], req}); err != nil {
			t.Fatalf("write through the wrapped descriptor: %v", err)
		}
		buf := make([]byte, VNetHdrLen+2048)
		q.f.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			n, err := q.Read(buf)
			if err != nil {
				t.Fatalf("read through the wrapped descriptor: %v", err)
			}
			pkt := buf[VNetHdrLen:n]
			if len(pkt) == len(req) && pkt[9] == 1 && pkt[20] == 0 && binary.BigEndian.Uint16(pkt[24:]) == 0x4343 {
				break
			}
		}
	})

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	if _, err := FromFD(p[0]); !errors.Is(err, ErrNotTUN) {
		t.Fatalf("FromFD(pipe) = %v, want ErrNotTUN", err)
	}
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Fatalf("FromFD left the refused descriptor open (fcntl: %v)", err)
	}

	inNewNS(t, func() {
		// A single-queue device without virtio_net_hdr, as other
		// programs make them.
		fd, err := unix.Open(Path, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		ifr, _ := unix.NewIfreq("tdfd1")
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			t.Fatal(err)
		}
		if _, err := FromFD(fd); !errors.Is(err, ErrNotTUN) {
			t.Fatalf("FromFD(plain TUN) = %v, want ErrNotTUN", err)
		}
	})
}
