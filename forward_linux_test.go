package ringtun

// Data path between two network namespaces: a TCP connection and a UDP
// exchange through two ringtun adapters joined by a forwarder written on
// the public API, the same TCP transfer over a veth pair for comparison,
// and the receive ring's full policy (Wait or Drop) measured under TCP.
//
//	namespace A                                             namespace B
//	fwdA 198.18.1.1/24 ── session A ⇄ forwarder ⇄ session B ── fwdB 198.18.2.1/24
//	route 198.18.2.0/24 via fwdA                            route 198.18.1.0/24 via fwdB
//
//	namespace C                 namespace D
//	vethC 198.18.3.1/24 ─────── vethD 198.18.3.2/24

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtun/ringtun/internal/driver"
	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/internal/tundev"
)

var (
	fwdAddrA  = netip.MustParseAddr("198.18.1.1")
	fwdAddrB  = netip.MustParseAddr("198.18.2.1")
	vethAddrC = netip.MustParseAddr("198.18.3.1")
	vethAddrD = netip.MustParseAddr("198.18.3.2")
)

const (
	// forwardBytes is what each TCP transfer of the tests moves.
	forwardBytes = 100 << 20
	// transferLimit bounds every TCP transfer.
	transferLimit = 60 * time.Second
	// forwardCapacity is the ring capacity of the forwarder's sessions, as
	// in Wintun's example.
	forwardCapacity = 0x400000
)

// raceBuild reports whether the test binary was built with -race, which
// slows the Go side of the data path several times: the figures say so.
var raceBuild = func() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}()

// transferSize scales n down under -short; other runs, with or without
// the race detector, move n.
func transferSize(n int64) int64 {
	if testing.Short() {
		return n / 4
	}
	return n
}

// needIP skips the test when iproute2 is missing; the namespaces and the
// veth pair are configured with it.
func needIP(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("integration test: needs iproute2 (ip) to configure network namespaces:", err)
	}
}

// runCmd runs a command in the calling thread's network namespace.
func runCmd(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%q: %v: %s", args, err, bytes.TrimSpace(out))
	}
	return nil
}

// disableIPv6 turns IPv6 off in the calling thread's namespace so that no
// router solicitation or MLD report travels with the test's traffic. The
// sysctls act on the namespace of the thread that opens them.
func disableIPv6() error {
	for _, f := range []string{"/proc/sys/net/ipv6/conf/all/disable_ipv6", "/proc/sys/net/ipv6/conf/default/disable_ipv6"} {
		if err := os.WriteFile(f, []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// withFullPolicy runs fn with the driver's receive-ring-full policy set to
// p, for the sessions fn starts.
func withFullPolicy(p driver.FullPolicy, fn func()) {
	old := fullPolicy
	fullPolicy = p
	defer func() { fullPolicy = old }()
	fn()
}

// adapterIn creates an adapter in ns with addr/24 and routes, starts its
// session, and arranges for both to go when the test ends.
func adapterIn(tb testing.TB, ns *netns.NS, name string, addr netip.Addr, capacity uint32, routes ...netip.Prefix) (*Adapter, *Session) {
	tb.Helper()
	return adapterInWith(tb, ns, name, addr, capacity, SessionOptions{}, routes...)
}

// adapterInWith is adapterIn with a session started with opts.
func adapterInWith(tb testing.TB, ns *netns.NS, name string, addr netip.Addr, capacity uint32, opts SessionOptions, routes ...netip.Prefix) (*Adapter, *Session) {
	tb.Helper()
	var a *Adapter
	var s *Session
	in(tb, ns, func() (err error) {
		if err := disableIPv6(); err != nil {
			return err
		}
		a, err = CreateAdapterWithOptions(name, "Test", AdapterOptions{Config: &Config{
			Addresses: []netip.Prefix{netip.PrefixFrom(addr, 24)},
			Routes:    routes,
		}})
		if err != nil {
			return err
		}
		tb.Cleanup(func() {
			if err := ns.Do(a.Close); err != nil {
				tb.Errorf("close %s: %v", name, err)
			}
		})
		s, err = a.StartSessionWithOptions(capacity, opts)
		return err
	})
	return a, s
}

// forwarder joins two sessions the way a program on the public API would:
// one goroutine per direction receives on one session and re-sends each
// packet on the other, waits when there is nothing to receive, and drops
// a packet when the other send ring is full.
type forwarder struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	packets [2]atomic.Uint64 // forwarded, A→B and B→A
	drops   [2]atomic.Uint64 // dropped on ErrBufferOverflow
	errs    [2]error
}

func startForwarder(a, b *Session, batch bool) *forwarder {
	ctx, cancel := context.WithCancel(context.Background())
	f := &forwarder{cancel: cancel}
	fwd := f.forward
	if batch {
		fwd = f.forwardBatch
	}
	f.wg.Add(2)
	go func() { defer f.wg.Done(); f.errs[0] = fwd(ctx, a, b, 0) }()
	go func() { defer f.wg.Done(); f.errs[1] = fwd(ctx, b, a, 1) }()
	return f
}

// forwardBatch is forward with the batch calls: it takes every packet
// waiting (up to 64), allocates room for all of them on the other side at
// once, copies, sends and releases them together.
func (f *forwarder) forwardBatch(ctx context.Context, from, to *Session, dir int) error {
	var in, out [64][]byte
	var sizes [64]int
	for {
		n, err := from.ReceivePackets(in[:])
		if errors.Is(err, ErrNoMoreItems) {
			if done, err := waitMore(ctx, from); done {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		for i, p := range in[:n] {
			sizes[i] = len(p)
		}
		m, err := to.AllocateSendPackets(sizes[:n], out[:])
		if err != nil && !errors.Is(err, ErrBufferOverflow) {
			from.ReleaseReceivePackets(in[:n])
			return err
		}
		for i := range m {
			copy(out[i], in[i])
		}
		to.SendPackets(out[:m])
		from.ReleaseReceivePackets(in[:n])
		f.packets[dir].Add(uint64(m))
		f.drops[dir].Add(uint64(n - m))
	}
}

// waitMore waits for packets on an empty session; done says the forwarder
// must stop, with err nil when it was asked to.
func waitMore(ctx context.Context, s *Session) (done bool, err error) {
	if err := s.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return true, nil
		}
		return true, err
	}
	return false, nil
}

func (f *forwarder) forward(ctx context.Context, from, to *Session, dir int) error {
	for {
		p, err := from.ReceivePacket()
		if errors.Is(err, ErrNoMoreItems) {
			if done, err := waitMore(ctx, from); done {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		q, err := to.AllocateSendPacket(len(p))
		switch {
		case err == nil:
			copy(q, p)
			to.SendPacket(q)
			f.packets[dir].Add(1)
		case errors.Is(err, ErrBufferOverflow):
			f.drops[dir].Add(1)
		default:
			from.ReleaseReceivePacket(p)
			return err
		}
		from.ReleaseReceivePacket(p)
	}
}

// stop stops both goroutines, waits for them and returns their errors.
func (f *forwarder) stop() error {
	f.cancel()
	f.wg.Wait()
	return errors.Join(f.errs[0], f.errs[1])
}

func (f *forwarder) String() string {
	return fmt.Sprintf("forwarded A→B %d B→A %d, dropped on a full send ring A→B %d B→A %d",
		f.packets[0].Load(), f.packets[1].Load(), f.drops[0].Load(), f.drops[1].Load())
}

// fwdPair is two namespaces joined by ringtun adapters and a forwarder.
type fwdPair struct {
	nsA, nsB *netns.NS
	sa, sb   *Session
	fwd      *forwarder
}

// newFwdPair sets up the forwarder's layout with sessions of the given
// capacities and receive-ring-full policy. Everything goes when the test
// ends.
func newFwdPair(tb testing.TB, capA, capB uint32, policy driver.FullPolicy) *fwdPair {
	return newFwdPairWith(tb, capA, capB, policy, false)
}

// newFwdPairWith is newFwdPair with a forwarder that uses the batch calls
// if batch is set.
func newFwdPairWith(tb testing.TB, capA, capB uint32, policy driver.FullPolicy, batch bool) *fwdPair {
	tb.Helper()
	return newFwdPairOpts(tb, capA, capB, policy, batch, SessionOptions{})
}

// newFwdPairOpts is newFwdPairWith with sessions started with opts.
func newFwdPairOpts(tb testing.TB, capA, capB uint32, policy driver.FullPolicy, batch bool, opts SessionOptions) *fwdPair {
	tb.Helper()
	needIP(tb)
	p := &fwdPair{nsA: newNS(tb), nsB: newNS(tb)}
	withFullPolicy(policy, func() {
		_, p.sa = adapterInWith(tb, p.nsA, "fwdA", fwdAddrA, capA, opts, netip.MustParsePrefix("198.18.2.0/24"))
		_, p.sb = adapterInWith(tb, p.nsB, "fwdB", fwdAddrB, capB, opts, netip.MustParsePrefix("198.18.1.0/24"))
	})
	p.fwd = startForwarder(p.sa, p.sb, batch)
	tb.Cleanup(func() {
		if err := p.fwd.stop(); err != nil {
			tb.Errorf("forwarder: %v", err)
		}
	})
	return p
}

// kernelTxDrops is how many packets the kernel dropped on its way out
// through the interface name in ns: for a TUN device, packets that found
// the device's queue full because the driver reader did not read them in
// time. It returns -1 when it cannot tell.
func kernelTxDrops(tb testing.TB, ns *netns.NS, name string) int64 {
	return netDevCounter(ns, name, 11)
}

// netDevCounter returns field i of the interface name's line in ns's
// /proc/net/dev (0: bytes received, 1: packets received, ... 11: transmit
// drops), or -1 when it cannot tell. For a TUN device, "received" is what
// the driver wrote to the host.
func netDevCounter(ns *netns.NS, name string, i int) int64 {
	var v int64 = -1
	ns.Do(func() error {
		// /proc/net follows the process's main thread; thread-self follows
		// this one, which is in ns.
		b, err := os.ReadFile("/proc/thread-self/net/dev")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			dev, counters, ok := strings.Cut(line, ":")
			if !ok || strings.TrimSpace(dev) != name {
				continue
			}
			// receive: bytes packets errs drop fifo frame compressed
			// multicast; transmit: bytes packets errs drop ...
			if f := strings.Fields(counters); len(f) > i {
				v, _ = strconv.ParseInt(f[i], 10, 64)
			}
		}
		return nil
	})
	return v
}

// newVethPair makes two namespaces joined by a veth pair.
func newVethPair(tb testing.TB) (nsC, nsD *netns.NS) {
	tb.Helper()
	needIP(tb)
	nsC, nsD = newNS(tb), newNS(tb)
	in(tb, nsC, func() error {
		if err := disableIPv6(); err != nil {
			return err
		}
		return errors.Join(
			runCmd("ip", "link", "add", "vethC", "type", "veth", "peer", "name", "vethD", "netns", nsD.Path()),
			runCmd("ip", "addr", "add", vethAddrC.String()+"/24", "dev", "vethC"),
			runCmd("ip", "link", "set", "vethC", "up"))
	})
	in(tb, nsD, func() error {
		if err := disableIPv6(); err != nil {
			return err
		}
		return errors.Join(
			runCmd("ip", "addr", "add", vethAddrD.String()+"/24", "dev", "vethD"),
			runCmd("ip", "link", "set", "vethD", "up"))
	})
	return nsC, nsD
}

// tcpResult is the outcome of one TCP transfer.
type tcpResult struct {
	bytes   int64
	elapsed time.Duration
	retrans uint32 // segments the client retransmitted (TCP_INFO)
}

func (x tcpResult) mbps() float64 { return float64(x.bytes) / 1e6 / x.elapsed.Seconds() }

func (x tcpResult) String() string {
	return fmt.Sprintf("%d MiB in %v: %.0f MB/s, %d retransmitted segments",
		x.bytes>>20, x.elapsed.Round(time.Millisecond), x.mbps(), x.retrans)
}

// tcpStream is the content of every TCP transfer, repeated when a transfer
// is longer: pseudo-random bytes made once, so that neither end spends
// the transfer's time making or hashing them (SHA-256 runs at about
// 300 MB/s here, slower than veth).
var tcpStream = sync.OnceValue(func() []byte {
	b := make([]byte, forwardBytes)
	rand.NewChaCha8([32]byte{'r', 'i', 'n', 'g', 't', 'u', 'n'}).Read(b)
	return b
})

// streamCRC is the CRC-32C of the first n bytes of the stream.
func streamCRC(n int64) uint32 {
	s, crc := tcpStream(), uint32(0)
	for ; n > 0; n -= int64(len(s)) {
		crc = crc32.Update(crc, crc32c, s[:min(n, int64(len(s)))])
	}
	return crc
}

// tcpServer accepts one connection, checks every byte it carries against
// the stream, and answers with the CRC-32C of what it received and its
// length.
func tcpServer(ln net.Listener, limit time.Duration) error {
	c, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("server: accept: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(limit))
	want := tcpStream()
	buf := make([]byte, 256<<10)
	var n int64
	var crc uint32
	for {
		m, err := c.Read(buf)
		for got := buf[:m]; len(got) > 0; {
			off := int(n % int64(len(want)))
			k := min(len(got), len(want)-off)
			if exp := want[off : off+k]; !bytes.Equal(got[:k], exp) {
				i := 0
				for got[i] == exp[i] {
					i++
				}
				return fmt.Errorf("server: byte %d of the stream is %#x, want %#x", n+int64(i), got[i], exp[i])
			}
			crc = crc32.Update(crc, crc32c, got[:k])
			n += int64(k)
			got = got[k:]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("server: read after %d bytes: %w", n, err)
		}
	}
	var reply [12]byte
	binary.BigEndian.PutUint32(reply[:], crc)
	binary.BigEndian.PutUint64(reply[4:], uint64(n))
	if _, err := c.Write(reply[:]); err != nil {
		return fmt.Errorf("server: write checksum: %w", err)
	}
	return nil
}

// tcpTransfer sends size bytes of the stream from a client in cliNS to a
// server on srv in srvNS, within limit. The server checks every byte
// against the stream and answers with the CRC-32C and length of what it
// got, which the client checks against what it sent. The time runs from
// the connection to the answer.
func tcpTransfer(tb testing.TB, srvNS, cliNS *netns.NS, srv netip.Addr, size int64, limit time.Duration) tcpResult {
	tb.Helper()
	data, wantCRC := tcpStream(), streamCRC(size)
	var ln net.Listener
	in(tb, srvNS, func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(srv, 0).String())
		return err
	})
	srvErr := make(chan error, 1)
	go func() { srvErr <- tcpServer(ln, limit) }()
	defer func() {
		ln.Close()
		if err := <-srvErr; err != nil {
			tb.Error(err)
		}
	}()

	var c *net.TCPConn
	start := time.Now()
	in(tb, cliNS, func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		conn, err := d.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		c = conn.(*net.TCPConn)
		return nil
	})
	defer c.Close()
	c.SetDeadline(time.Now().Add(limit))
	for sent := int64(0); sent < size; {
		off := int(sent % int64(len(data)))
		chunk := data[off : off+int(min(256<<10, int64(len(data)-off), size-sent))]
		if _, err := c.Write(chunk); err != nil {
			tb.Fatalf("client: write after %d bytes: %v", sent, err)
		}
		sent += int64(len(chunk))
	}
	if err := c.CloseWrite(); err != nil {
		tb.Fatal(err)
	}
	var reply [12]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		tb.Fatalf("client: read the server's checksum: %v", err)
	}
	x := tcpResult{bytes: size, elapsed: time.Since(start)}
	if n := int64(binary.BigEndian.Uint64(reply[4:])); n != size {
		tb.Errorf("server got %d bytes, client sent %d", n, size)
	}
	if got := binary.BigEndian.Uint32(reply[:]); got != wantCRC {
		tb.Errorf("server's CRC-32C %#08x, client's %#08x", got, wantCRC)
	}
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				x.retrans = info.Total_retrans
			}
		})
	}
	return x
}

// UDP datagrams of the exchange: sequence number, length, CRC-32C of the
// payload, then a payload made from the sequence number.
const udpHeader = 10

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// udpSize is the size of datagram seq: from 10 bytes to 4 KiB, so that
// some are fragmented by the 1500-byte MTU of the path.
func udpSize(seq uint32) int {
	switch seq % 16 {
	case 0:
		return 1473 + int(seq%2600) // fragmented
	case 1:
		return udpHeader
	default:
		return udpHeader + int(seq*7919%1462)
	}
}

func udpDatagram(b []byte, seq uint32) []byte {
	b = b[:udpSize(seq)]
	binary.BigEndian.PutUint32(b, seq)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	rng := rand.NewPCG(uint64(seq), 0x9e3779b97f4a7c15)
	for i := udpHeader; i < len(b); i += 8 {
		var v [8]byte
		binary.LittleEndian.PutUint64(v[:], rng.Uint64())
		copy(b[i:], v[:])
	}
	binary.BigEndian.PutUint32(b[6:], crc32.Checksum(b[udpHeader:], crc32c))
	return b
}

// udpCheck reports what is wrong with datagram b, or "".
func udpCheck(b []byte) string {
	if len(b) < udpHeader {
		return fmt.Sprintf("%d-byte datagram", len(b))
	}
	if n := int(binary.BigEndian.Uint16(b[4:])); n != len(b) {
		return fmt.Sprintf("datagram of %d bytes says %d", len(b), n)
	}
	if crc32.Checksum(b[udpHeader:], crc32c) != binary.BigEndian.Uint32(b[6:]) {
		return "bad CRC-32C"
	}
	return ""
}

// udpEcho answers every datagram with itself, after checking it, until
// the connection is closed. It returns how many it got and how many were
// corrupt.
func udpEcho(c *net.UDPConn) (got, bad int) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return got, bad
		}
		got++
		if udpCheck(buf[:n]) != "" {
			bad++
		}
		c.WriteToUDPAddrPort(buf[:n], from)
	}
}

// udpExchange sends count datagrams from a client in cliNS to an echo
// server on srv in srvNS, with at most window of them waiting for their
// answer, checks every answer byte by byte, and returns how many were
// lost (request or answer).
func udpExchange(tb testing.TB, srvNS, cliNS *netns.NS, srv netip.Addr, count, window int) (lost int) {
	tb.Helper()
	var sc, cc *net.UDPConn
	in(tb, srvNS, func() (err error) {
		sc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(srv, 0)))
		return err
	})
	type result struct{ got, bad int }
	done := make(chan result, 1)
	go func() {
		got, bad := udpEcho(sc)
		done <- result{got, bad}
	}()
	var r result
	stopServer := sync.OnceFunc(func() {
		sc.Close()
		r = <-done
	})
	defer stopServer()
	in(tb, cliNS, func() (err error) {
		cc, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(sc.LocalAddr().(*net.UDPAddr).AddrPort()))
		return err
	})
	defer cc.Close()

	deadline := time.Now().Add(transferLimit)
	out, ans := make([]byte, 65536), make([]byte, 65536)
	pending, given := make(map[uint32]bool), make(map[uint32]bool) // waiting; given up for lost
	next, answered, late := uint32(0), 0, 0
	for (int(next) < count || len(pending) > 0) && time.Now().Before(deadline) {
		for int(next) < count && len(pending) < window {
			if _, err := cc.Write(udpDatagram(out, next)); err != nil {
				tb.Fatalf("client: send datagram %d: %v", next, err)
			}
			pending[next] = true
			next++
		}
		cc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := cc.Read(ans)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// No answer for 300 ms: count those waiting as lost.
			for seq := range pending {
				given[seq] = true
			}
			clear(pending)
			continue
		}
		if err != nil {
			tb.Fatalf("client: receive: %v", err)
		}
		if what := udpCheck(ans[:n]); what != "" {
			tb.Fatalf("client: answer: %s", what)
		}
		seq := binary.BigEndian.Uint32(ans)
		if !bytes.Equal(ans[:n], udpDatagram(out, seq)) {
			tb.Fatalf("client: answer to datagram %d differs from it", seq)
		}
		switch {
		case pending[seq]:
			delete(pending, seq)
			answered++
		case given[seq]:
			delete(given, seq)
			late++
		default:
			tb.Fatalf("client: a second answer to datagram %d", seq)
		}
	}
	if int(next) < count || len(pending) > 0 {
		tb.Fatalf("UDP exchange not done within %v: %d of %d sent, %d answered", transferLimit, next, count, answered)
	}
	stopServer()
	if r.bad > 0 {
		tb.Errorf("server: %d of %d datagrams corrupt", r.bad, r.got)
	}
	lost = len(given)
	tb.Logf("UDP: %d datagrams of 10 to 4072 bytes, %d answered, %d answered late (after 300 ms), %d lost (server got %d)",
		count, answered, late, lost, r.got)
	return lost
}

// TestForward moves a real TCP connection and a UDP exchange between two
// namespaces through two ringtun adapters and a forwarder on the public
// API, then the same TCP transfer over a veth pair, and logs both
// throughputs and their ratio.
func TestForward(t *testing.T) {
	p := newFwdPair(t, forwardCapacity, forwardCapacity, driver.Wait)
	size := transferSize(forwardBytes)

	var ringtunX, vethX tcpResult
	t.Run("TCP", func(t *testing.T) {
		a0, b0 := p.sa.Stats(), p.sb.Stats()
		ringtunX = tcpTransfer(t, p.nsB, p.nsA, fwdAddrB, size, transferLimit)
		t.Logf("ringtun TCP A→B: %v; the kernel dropped %d packets on fwdA's full TUN queue", ringtunX, kernelTxDrops(t, p.nsA, "fwdA"))
		t.Logf("%v; session A %+v; session B %+v", p.fwd, p.sa.Stats(), p.sb.Stats())
		checkOffloadPath(t, p, a0, b0, tundev.TSO4)
		checkBatches(t, p.sa, a0)
	})
	t.Run("UDPGSO", func(t *testing.T) {
		a0, b0 := p.sa.Stats(), p.sb.Stats()
		udpGSOTransfer(t, p.nsB, p.nsA, fwdAddrB, 200)
		t.Logf("%v; session A %+v; session B %+v", p.fwd, p.sa.Stats(), p.sb.Stats())
		checkOffloadPath(t, p, a0, b0, tundev.USO4)
	})
	t.Run("UDP", func(t *testing.T) {
		const count = 20000
		lost := udpExchange(t, p.nsB, p.nsA, fwdAddrB, count, 32)
		if lost > count/100 {
			t.Errorf("%d of %d datagrams lost, over 1%%", lost, count)
		}
		t.Logf("%v; session A %+v; session B %+v", p.fwd, p.sa.Stats(), p.sb.Stats())
	})
	t.Run("veth", func(t *testing.T) {
		nsC, nsD := newVethPair(t)
		vethX = tcpTransfer(t, nsD, nsC, vethAddrD, size, transferLimit)
		t.Logf("veth TCP C→D: %v", vethX)
	})
	if ringtunX.bytes > 0 && vethX.bytes > 0 {
		t.Logf("TCP, %d MiB: ringtun %.0f MB/s, veth %.0f MB/s, ratio ringtun/veth %.2f (race detector: %v)",
			size>>20, ringtunX.mbps(), vethX.mbps(), ringtunX.mbps()/vethX.mbps(), raceBuild)
	}
}

// checkBatches checks that a busy session still works in batches although
// a waiting application reads the device itself (WaitDirect): since the
// counters a0, the application slept once for many packets, and most
// packets were not read by it but by the driver's reader.
func checkBatches(t *testing.T, s *Session, a0 Stats) {
	t.Helper()
	a := s.Stats()
	packets, sleeps, direct := a.RxPackets-a0.RxPackets, a.RxWakeups-a0.RxWakeups, a.RxDirectReads-a0.RxDirectReads
	t.Logf("%d packets received, %d sleeps of the application (%.0f packets each), %d reads made by the application",
		packets, sleeps, float64(packets)/float64(max(sleeps, 1)), direct)
	if packets < 16*sleeps || direct > packets/2 {
		t.Errorf("%d packets, %d sleeps, %d direct reads: want at least 16 packets per sleep and most packets read by the driver", packets, sleeps, direct)
	}
}

// checkOffloadPath checks, when the sessions negotiated the offload
// want, that the traffic since the counters a0 (session A) and b0 (session
// B) went through the offload path: A's driver split super-packets from
// the host and B's driver merged runs of packets into super-packets.
func checkOffloadPath(t *testing.T, p *fwdPair, a0, b0 Stats, want tundev.Offloads) {
	t.Helper()
	if p.sa.off.kernel&want == 0 {
		t.Logf("the kernel did not agree to %s: the plain path was used", want)
		return
	}
	a, b := p.sa.Stats(), p.sb.Stats()
	if a.RxSuperPackets == a0.RxSuperPackets || a.RxSegments-a0.RxSegments <= a.RxSuperPackets-a0.RxSuperPackets {
		t.Errorf("session A split %d super-packets into %d packets, want some super-packets of several",
			a.RxSuperPackets-a0.RxSuperPackets, a.RxSegments-a0.RxSegments)
	}
	if want&(tundev.TSO4) != 0 && !p.sb.off.tcp || want&(tundev.USO4) != 0 && !p.sb.off.udp {
		t.Logf("the kernel refuses merged writes: none expected")
		return
	}
	if b.TxCoalescedWrites == b0.TxCoalescedWrites || b.TxCoalescedPackets-b0.TxCoalescedPackets <= b.TxCoalescedWrites-b0.TxCoalescedWrites {
		t.Errorf("session B merged %d packets into %d writes, want runs merged",
			b.TxCoalescedPackets-b0.TxCoalescedPackets, b.TxCoalescedWrites-b0.TxCoalescedWrites)
	}
	if a.RxDropsInvalid != 0 || b.TxErrors != 0 {
		t.Errorf("session A dropped %d invalid packets, session B's device refused %d", a.RxDropsInvalid, b.TxErrors)
	}
}

// udpGSOTransfer sends rounds UDP super-packets from a client in cliNS to a
// server on srv in srvNS, each one sendmsg with UDP_SEGMENT that the host
// cuts into datagrams of 1200 bytes (the last shorter), and checks that the
// server gets every datagram whole, in order, and nothing else.
func udpGSOTransfer(tb testing.TB, srvNS, cliNS *netns.NS, srv netip.Addr, rounds int) {
	tb.Helper()
	const seg, perSend = 1200, 12
	var sc, cc *net.UDPConn
	in(tb, srvNS, func() (err error) {
		sc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(srv, 0)))
		if err == nil {
			err = sc.SetReadBuffer(4 << 20)
		}
		return err
	})
	defer sc.Close()
	in(tb, cliNS, func() (err error) {
		cc, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(sc.LocalAddr().(*net.UDPAddr).AddrPort()))
		return err
	})
	defer cc.Close()
	rc, err := cc.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, seg) }); err != nil || serr != nil {
		tb.Skipf("UDP_SEGMENT not available: %v %v", err, serr)
	}
	// datagram returns datagram i of round r: its index, then bytes made
	// from both; the last of each send is 500 bytes.
	datagram := func(r, i int) []byte {
		n := seg
		if i == perSend-1 {
			n = 500
		}
		b := make([]byte, n)
		binary.BigEndian.PutUint32(b, uint32(r*perSend+i))
		for k := 4; k < n; k++ {
			b[k] = byte(r*31 + i*7 + k)
		}
		return b
	}
	buf := make([]byte, 65536)
	for r := range rounds {
		var send []byte
		for i := range perSend {
			send = append(send, datagram(r, i)...)
		}
		if _, err := cc.Write(send); err != nil {
			tb.Fatalf("send %d: %v", r, err)
		}
		for i := range perSend {
			sc.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := sc.Read(buf)
			if err != nil {
				tb.Fatalf("server: datagram %d of send %d: %v", i, r, err)
			}
			if want := datagram(r, i); !bytes.Equal(buf[:n], want) {
				tb.Fatalf("server: datagram %d of send %d is %d bytes starting %x, want %d starting %x",
					i, r, n, buf[:min(n, 8)], len(want), want[:8])
			}
		}
	}
}

// TestForwardBatch is TestForward's TCP and UDP traffic through a
// forwarder that uses the batch calls.
func TestForwardBatch(t *testing.T) {
	p := newFwdPairWith(t, forwardCapacity, forwardCapacity, driver.Wait, true)
	a0, b0 := p.sa.Stats(), p.sb.Stats()
	x := tcpTransfer(t, p.nsB, p.nsA, fwdAddrB, transferSize(forwardBytes), transferLimit)
	t.Logf("ringtun TCP A→B, batch forwarder: %v; %v", x, p.fwd)
	checkOffloadPath(t, p, a0, b0, tundev.TSO4)
	const count = 5000
	if lost := udpExchange(t, p.nsB, p.nsA, fwdAddrB, count, 32); lost > count/100 {
		t.Errorf("%d of %d datagrams lost, over 1%%", lost, count)
	}
}

// TestForwardNoOffloads moves the TCP transfer through sessions that asked
// the kernel for no offloads: every packet is read and written on its own,
// the path for kernels that refuse offloads and for merged writes refused.
func TestForwardNoOffloads(t *testing.T) {
	old := useOffloads
	useOffloads = 0
	p := newFwdPair(t, forwardCapacity, forwardCapacity, driver.Wait)
	useOffloads = old
	if p.sa.off != (offloads{}) || p.sb.off != (offloads{}) {
		t.Fatalf("sessions use %+v and %+v, want nothing", p.sa.off, p.sb.off)
	}
	x := tcpTransfer(t, p.nsB, p.nsA, fwdAddrB, transferSize(forwardBytes)/4, transferLimit)
	a, b := p.sa.Stats(), p.sb.Stats()
	t.Logf("TCP A→B without offloads: %v; session A %+v; session B %+v", x, a, b)
	if a.RxSuperPackets != 0 || b.TxCoalescedWrites != 0 || b.TxWrites != b.TxPackets {
		t.Errorf("without offloads: %d super-packets split, %d merged writes, %d writes for %d packets",
			a.RxSuperPackets, b.TxCoalescedWrites, b.TxWrites, b.TxPackets)
	}
}

// TestForwardFullPolicy measures TCP from A to B through the forwarder
// under the driver's two policies for a full receive ring: Wait
// (back-pressure, the default) and Drop. Session A has the smallest rings,
// so that its receive ring, which carries the data, fills; session B has
// large ones, so that the forwarder does not drop on B's send ring and
// the policy is the only difference. It checks the content and the
// counters and logs the figures; it asserts no timing.
func TestForwardFullPolicy(t *testing.T) {
	size := transferSize(forwardBytes)
	for _, pol := range []struct {
		name   string
		policy driver.FullPolicy
	}{{"Wait", driver.Wait}, {"Drop", driver.Drop}} {
		t.Run(pol.name, func(t *testing.T) {
			p := newFwdPair(t, RingCapacityMin, forwardCapacity, pol.policy)
			x := tcpTransfer(t, p.nsB, p.nsA, fwdAddrB, size, transferLimit)
			sa := p.sa.Stats()
			t.Logf("policy %s, A's rings of %d KiB: %v; A's receive ring was full %d times (waits), dropped %d packets; the kernel dropped %d on fwdA's TUN queue; %v",
				pol.name, RingCapacityMin>>10, x, sa.RxFullWaits, sa.RxDropsFull, kernelTxDrops(t, p.nsA, "fwdA"), p.fwd)
			if pol.policy == driver.Wait && sa.RxDropsFull != 0 {
				t.Errorf("Wait policy dropped %d packets", sa.RxDropsFull)
			}
			if pol.policy == driver.Drop && sa.RxFullWaits != 0 {
				t.Errorf("Drop policy waited %d times", sa.RxFullWaits)
			}
		})
	}
}

// benchBytes is what one iteration of the TCP benchmarks moves; set it
// with RINGTUN_BENCH_BYTES.
func benchBytes(b *testing.B) int64 {
	if s := os.Getenv("RINGTUN_BENCH_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("RINGTUN_BENCH_BYTES=%q", s)
		}
		return n
	}
	return forwardBytes
}

// BenchmarkForwardTCP is TCP throughput through two ringtun adapters and
// the forwarder: go test -run '^$' -bench Forward -benchtime 1x .
func BenchmarkForwardTCP(b *testing.B) {
	p := newFwdPair(b, forwardCapacity, forwardCapacity, driver.Wait)
	size := benchBytes(b)
	b.SetBytes(size)
	tcpStream() // made once, outside the timed loop
	var retrans uint32
	for b.Loop() {
		retrans += tcpTransfer(b, p.nsB, p.nsA, fwdAddrB, size, 10*transferLimit).retrans
	}
	b.ReportMetric(float64(retrans)/float64(b.N), "retrans/op")
}

// BenchmarkVethTCP is the same transfer over a veth pair.
func BenchmarkVethTCP(b *testing.B) {
	nsC, nsD := newVethPair(b)
	size := benchBytes(b)
	b.SetBytes(size)
	tcpStream() // made once, outside the timed loop
	var retrans uint32
	for b.Loop() {
		retrans += tcpTransfer(b, nsD, nsC, vethAddrD, size, 10*transferLimit).retrans
	}
	b.ReportMetric(float64(retrans)/float64(b.N), "retrans/op")
}
