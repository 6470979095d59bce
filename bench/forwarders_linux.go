package main

// The forwarders: each runs in its own process (this program with -role),
// gets namespace A as file descriptor 3 and namespace B as 4, makes one
// interface in each, prints "ready" on standard output, and forwards every
// packet between the two until its standard input closes or it gets
// SIGTERM/SIGINT. Its CPU time is what the harness measures.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/ringtun/ringtun"
)

// side is one end of a forwarder: the interface in one namespace.
type side struct {
	ns    *os.File
	name  string
	addr  string // own address, prefix length included
	route string // the other side's network, routed through the interface
}

func forwarderMain(o options) int {
	log.SetFlags(log.Lmicroseconds)
	log.SetPrefix(o.role + " forwarder: ")
	if o.profileFile != "" {
		stop, err := startProfile(o.profileFile)
		if err != nil {
			log.Print(err)
			return 1
		}
		// Every way out of a forwarder (stdin closed, SIGTERM, SIGINT, an
		// error) returns through here; only SIGKILL loses the profile.
		defer stop()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		io.Copy(io.Discard, os.Stdin) // the harness closes it to stop us, or dies
		stop()
	}()
	if o.role == roleDaemon {
		return daemonMain(o)
	}
	prefix := map[string]string{cRingtun: "ringtun", cBrokered: "brokered", cWireguard: "wggo", cPlain: "plain",
		cWGRingtun: "wgr", cWGTun: "wgt", cLimit: "limit", cOffload: "rto",
		cWintun1: "wt1", cWintun8: "wt8", cWintun8NoLim: "wt8n"}[o.role]
	if prefix == "" {
		log.Printf("unknown role %q", o.role)
		return 2
	}
	sides := [2]side{
		{os.NewFile(3, "netns-a"), prefix + "-a", addrA, netB},
		{os.NewFile(4, "netns-b"), prefix + "-b", addrB, netA},
	}
	var err error
	switch o.role {
	case cRingtun:
		err = forwardRingtun(ctx, sides, uint32(o.capacity), ringtun.SessionOptions{}, pumpRingtun)
	case cOffload:
		err = forwardRingtun(ctx, sides, uint32(o.capacity), ringtun.SessionOptions{Offload: true}, pumpRingtun)
	case cWintun1, cWintun8:
		err = forwardRingtun(ctx, sides, wintunCapacity[o.role], ringtun.SessionOptions{}, pumpWintun)
	case cWintun8NoLim:
		err = forwardRingtun(ctx, sides, wintunCapacity[o.role], ringtun.SessionOptions{InFlightLimit: -1}, pumpWintun)
	case cBrokered:
		err = forwardBrokered(ctx, sides, uint32(o.capacity))
	case cWireguard:
		err = forwardWireguard(ctx, sides)
	case cPlain:
		err = forwardPlain(ctx, sides)
	case cLimit:
		err = forwardLimit(ctx, sides)
	case cWGRingtun, cWGTun:
		err = runWireGuard(ctx, sides, o.role == cWGRingtun)
	}
	if err != nil {
		log.Print(err)
		return 1
	}
	return 0
}

// startProfile starts a CPU profile into file; the function it returns
// stops it and flushes and closes the file.
func startProfile(file string) (func(), error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		os.Remove(file)
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile() // writes the rest of the profile
		if err := f.Close(); err != nil {
			log.Printf("cpu profile: %v", err)
		}
	}, nil
}

// counter is a packet counter on a cache line of its own, so that the two
// directions' goroutines, on different cores, do not write to one line.
type counter struct {
	atomic.Uint64
	_ [56]byte
}

// ready tells the harness the interfaces are up and configured.
func ready() { fmt.Println("ready") }

// inNS runs fn on a thread inside the network namespace ns. The thread is
// never given back to the scheduler: it ends with fn.
func inNS(ns *os.File, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- fmt.Errorf("setns: %w", err)
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// ipRun runs ip(8) with args in the calling thread's namespace.
func ipRun(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// hostOf returns the address of a prefix such as 198.18.4.2/24.
func hostOf(prefix string) string { return strings.SplitN(prefix, "/", 2)[0] }

// ipConfigure gives an interface its address and route with ip(8), in the
// namespace of the calling thread.
func ipConfigure(sd side) error {
	for _, args := range [][]string{
		{"link", "set", sd.name, "mtu", strconv.Itoa(linkMTU), "up"},
		{"addr", "add", sd.addr, "dev", sd.name},
		{"route", "add", sd.route, "dev", sd.name},
	} {
		if err := ipRun(args...); err != nil {
			return err
		}
	}
	return nil
}

// pump moves packets from one session to the other until the session
// ends, and returns how many it moved and dropped.
type pump func(ctx context.Context, from, to *ringtun.Session) (moved, dropped uint64)

// forwardRingtun forwards between two ringtun adapters with the public
// Session API, as an application would, with sessions started with opts
// and moving packets with p.
func forwardRingtun(ctx context.Context, sides [2]side, capacity uint32, opts ringtun.SessionOptions, p pump) error {
	return forwardRingtunVia(ctx, sides, capacity, opts, p, func(i int, fn func() error) error { return inNS(sides[i].ns, fn) })
}

// contextLike is the context forwarders run under.
type contextLike = context.Context

// forwardRingtunVia is forwardRingtun with a way to act on side i's
// adapter: in its namespace, or through its daemon.
func forwardRingtunVia(ctx context.Context, sides [2]side, capacity uint32, opts ringtun.SessionOptions, p pump, at func(i int, fn func() error) error) error {
	ringtun.SetLogger(func(level ringtun.LogLevel, t time.Time, msg string) {
		log.Printf("ringtun %s: %s", level, msg)
	})
	var adapters [2]*ringtun.Adapter
	var sessions [2]*ringtun.Session
	defer func() {
		for i, a := range adapters {
			if a != nil {
				// Close deletes the interface, by netlink in its namespace.
				if err := at(i, a.Close); err != nil {
					log.Print(err)
				}
			}
		}
	}()
	for i, sd := range sides {
		err := at(i, func() error {
			a, err := ringtun.CreateAdapterWithOptions(sd.name, "bench", ringtun.AdapterOptions{
				Config: &ringtun.Config{
					Addresses: []netip.Prefix{netip.MustParsePrefix(sd.addr)},
					Routes:    []netip.Prefix{netip.MustParsePrefix(sd.route)},
					MTU:       linkMTU,
				},
			})
			if err != nil {
				return err
			}
			adapters[i] = a
			// The session's TUN queue attaches by name: in this namespace.
			sessions[i], err = a.StartSessionWithOptions(capacity, opts)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", sd.name, err)
		}
	}
	ready()
	var wg sync.WaitGroup
	var moved, dropped [2]uint64 // written once each pump has returned
	for i := range 2 {
		wg.Go(func() { moved[i], dropped[i] = p(ctx, sessions[i], sessions[1-i]) })
	}
	<-ctx.Done()
	for _, s := range sessions {
		s.End() // wakes the Waits
	}
	wg.Wait()
	for i := range 2 {
		log.Printf("%s → %s: %d packets forwarded, %d dropped (send ring full); %s stats %+v",
			sides[i].name, sides[1-i].name, moved[i], dropped[i], sides[i].name, sessions[i].Stats())
	}
	return nil
}

// pumpRingtun moves packets received on one session to the other: the
// loop of a user of the API who moves many packets, with the batch calls
// (ReceivePackets, AllocateSendPackets, SendPackets,
// ReleaseReceivePackets). It takes packets as long as there are any and
// waits only on ErrNoMoreItems. It counts in local
// variables and returns the counts when the session ends: per-packet atomic
// counters of the two directions would share a cache line between the two
// goroutines' cores.
func pumpRingtun(ctx context.Context, from, to *ringtun.Session) (moved, dropped uint64) {
	// Batches of up to 128 packets, as wireguard-go's device reads and
	// writes batches of up to 128.
	var in, out [128][]byte
	var sizes [128]int
	for {
		n, err := from.ReceivePackets(in[:])
		if err != nil {
			if errors.Is(err, ringtun.ErrNoMoreItems) {
				if err := from.Wait(ctx); err != nil {
					return moved, dropped
				}
				continue
			}
			if !errors.Is(err, ringtun.ErrSessionEnded) {
				log.Printf("ReceivePackets: %v", err)
			}
			return moved, dropped
		}
		for i, p := range in[:n] {
			sizes[i] = len(p)
		}
		m, err := to.AllocateSendPackets(sizes[:n], out[:])
		if err != nil && !errors.Is(err, ringtun.ErrBufferOverflow) {
			from.ReleaseReceivePackets(in[:n])
			if !errors.Is(err, ringtun.ErrSessionEnded) {
				log.Printf("AllocateSendPackets: %v", err)
			}
			return moved, dropped
		}
		for i := range m {
			copy(out[i], in[i])
		}
		to.SendPackets(out[:m])
		from.ReleaseReceivePackets(in[:n])
		moved += uint64(m)
		dropped += uint64(n - m) // no room on the other side: dropped, as a router would
	}
}

// pumpWintun is pumpRingtun written as Wintun programs are (Wintun's
// example.c, wireguard-go's Windows tun): one call per packet.
func pumpWintun(ctx context.Context, from, to *ringtun.Session) (moved, dropped uint64) {
	for {
		p, err := from.ReceivePacket()
		if err != nil {
			if errors.Is(err, ringtun.ErrNoMoreItems) {
				if err := from.Wait(ctx); err != nil {
					return moved, dropped
				}
				continue
			}
			if !errors.Is(err, ringtun.ErrSessionEnded) {
				log.Printf("ReceivePacket: %v", err)
			}
			return moved, dropped
		}
		q, err := to.AllocateSendPacket(len(p))
		switch {
		case err == nil:
			copy(q, p)
			to.SendPacket(q)
			moved++
		case errors.Is(err, ringtun.ErrBufferOverflow):
			dropped++ // no room on the other side: dropped, as a router would
		default:
			from.ReleaseReceivePacket(p)
			if !errors.Is(err, ringtun.ErrSessionEnded) {
				log.Printf("AllocateSendPacket: %v", err)
			}
			return moved, dropped
		}
		from.ReleaseReceivePacket(p)
	}
}

// The buffer layout wireguard-go's device package gives tun.Device: buffers
// of device.MaxMessageSize bytes, packets at device.MessageTransportOffsetContent,
// which leaves room for the virtio-net header the Linux tun writes in front.
const (
	wgMaxMessageSize = 1<<16 - 1
	wgOffset         = 16
)

// forwardWireguard forwards between two wireguard-go tun devices, with
// batched Read and Write as wireguard-go's device uses them.
func forwardWireguard(ctx context.Context, sides [2]side) error {
	var devs [2]tun.Device
	defer func() {
		for _, d := range devs {
			if d != nil {
				d.Close()
			}
		}
	}()
	for i, sd := range sides {
		err := inNS(sd.ns, func() error {
			// CreateTUN opens the device, sets its MTU and subscribes to
			// link events with sockets of the calling thread's namespace.
			d, err := tun.CreateTUN(sd.name, linkMTU)
			if err != nil {
				return err
			}
			devs[i] = d
			return ipConfigure(sd)
		})
		if err != nil {
			return fmt.Errorf("%s: %w", sd.name, err)
		}
		go func() {
			for range devs[i].Events() {
			}
		}()
	}
	log.Printf("batch sizes %d and %d", devs[0].BatchSize(), devs[1].BatchSize())
	ready()
	var wg sync.WaitGroup
	var moved, writes, errs [2]counter
	for i := range 2 {
		wg.Go(func() { pumpWireguard(ctx, devs[i], devs[1-i], &moved[i], &writes[i], &errs[i]) })
	}
	<-ctx.Done()
	for _, d := range devs {
		d.Close() // unblocks the Reads
	}
	wg.Wait()
	for i := range 2 {
		log.Printf("%s → %s: %d packets read, %d Write calls, %d errors",
			sides[i].name, sides[1-i].name, moved[i].Load(), writes[i].Load(), errs[i].Load())
	}
	return nil
}

func pumpWireguard(ctx context.Context, from, to tun.Device, moved, writes, errs *counter) {
	batch := max(from.BatchSize(), to.BatchSize(), 1)
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, wgMaxMessageSize)
	}
	sizes := make([]int, batch)
	out := make([][]byte, 0, batch)
	for {
		n, err := from.Read(bufs, sizes, wgOffset)
		if err != nil {
			if errors.Is(err, tun.ErrTooManySegments) {
				// As wireguard-go's device: the batch lost packets, go on.
				errs.Add(1)
				continue
			}
			if ctx.Err() == nil && !errors.Is(err, os.ErrClosed) {
				log.Printf("Read: %v", err)
			}
			return
		}
		out = out[:0]
		for i := range n {
			out = append(out, bufs[i][:wgOffset+sizes[i]])
		}
		moved.Add(uint64(n))
		writes.Add(1)
		if _, err := to.Write(out, wgOffset); err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return
			}
			if errs.Add(1) <= 5 {
				log.Printf("Write: %v", err)
			}
		}
	}
}

// forwardPlain forwards between two plain TUN devices (IFF_TUN|IFF_NO_PI,
// no virtio-net header, no offloads): one blocking read() and one write()
// per packet.
func forwardPlain(ctx context.Context, sides [2]side) error {
	return forwardFrames(ctx, sides, false)
}

// forwardFrames forwards every frame read from one TUN device to the
// other unchanged, one blocking read() and one write() each, on a locked
// thread per direction. With offloads the devices have the virtio-net
// header and checksum, TSO and USO offloads (see forwardLimit); without,
// neither.
func forwardFrames(ctx context.Context, sides [2]side, offloads bool) error {
	var fds [2]int
	for i, sd := range sides {
		fds[i] = -1
		err := inNS(sd.ns, func() error {
			fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			fds[i] = fd
			if err := setupTUN(fd, sd.name, offloads); err != nil {
				return err
			}
			return ipConfigure(sd)
		})
		if err != nil {
			return fmt.Errorf("%s: %w", sd.name, err)
		}
	}
	ready()
	var moved, errs [2]counter
	for i := range 2 {
		go func() {
			runtime.LockOSThread()
			from, to := fds[i], fds[1-i]
			buf := make([]byte, vnetHdrLen+1<<16)
			for {
				n, err := unix.Read(from, buf)
				if err == unix.EINTR {
					continue
				}
				if err != nil {
					log.Printf("read: %v", err)
					return
				}
				for {
					_, err = unix.Write(to, buf[:n])
					if err != unix.EINTR {
						break
					}
				}
				if err != nil {
					errs[i].Add(1)
					continue
				}
				moved[i].Add(1)
			}
		}()
	}
	<-ctx.Done()
	for i := range 2 {
		log.Printf("%s → %s: %d frames forwarded, %d write errors", sides[i].name, sides[1-i].name, moved[i].Load(), errs[i].Load())
	}
	// The blocked reads end with the process; the kernel deletes both
	// interfaces when their file descriptors close.
	return nil
}
