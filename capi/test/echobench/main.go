//go:build linux

// Command echobench is capi_bench (capi/test/capi_bench.c) with the Go
// API's per-packet calls: one goroutine allocates and sends ICMP echo
// requests of -size bytes to the adapter's address, another receives and
// releases the replies, at most 256 in flight. Root, in a network
// namespace of its own:
//
//	unshare --net go run ./capi/test/echobench -size 64 -seconds 3
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringtun/ringtun"
	"github.com/ringtun/ringtun/internal/packettest"
	"golang.org/x/sys/unix"
)

const windowSize = 256

func main() {
	size := flag.Int("size", 64, "packet size in bytes (28..1500)")
	seconds := flag.Float64("seconds", 3, "how long to measure")
	event := flag.Bool("event", false, "wait on ReadWaitEvent with poll(2), as a Wintun program (and capi_bench) does, instead of Session.Wait")
	flag.Parse()
	if err := run(*size, time.Duration(*seconds*float64(time.Second)), *event); err != nil {
		fmt.Fprintln(os.Stderr, "echobench:", err)
		os.Exit(1)
	}
}

func run(size int, d time.Duration, event bool) error {
	if size < 28 || size > 1500 {
		return fmt.Errorf("size %d outside 28..1500", size)
	}
	a, err := ringtun.CreateAdapterWithOptions("rtb0", "Bench", ringtun.AdapterOptions{
		Config: &ringtun.Config{Addresses: []netip.Prefix{netip.MustParsePrefix("198.18.7.7/24")}},
	})
	if err != nil {
		return err
	}
	defer a.Close()
	s, err := a.StartSession(0x400000)
	if err != nil {
		return err
	}
	// An echo request from 198.18.7.8 to the adapter's 198.18.7.7.
	tmpl := make([]byte, size)
	packettest.EchoRequest4(tmpl, netip.MustParseAddr("198.18.7.8"), netip.MustParseAddr("198.18.7.7"), 0x1234, 0, make([]byte, size-28))
	var sent, received atomic.Int64
	var sendNs, recvNs, recvCalls atomic.Int64 // time inside the calls
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	// The sender, when windowSize requests are in flight, waits on a
	// condition the receiver signals once half of them have come back, as
	// capi_bench does; the receiver waits with Session.Wait.
	var mu sync.Mutex
	window := sync.NewCond(&mu)
	var waiting atomic.Bool
	opened := func() {
		if waiting.Load() && sent.Load()-received.Load() <= windowSize/2 {
			mu.Lock()
			window.Signal()
			mu.Unlock()
		}
	}
	go func() { // sender
		defer wg.Done()
		for ctx.Err() == nil {
			if sent.Load()-received.Load() >= windowSize {
				mu.Lock()
				waiting.Store(true)
				for ctx.Err() == nil && sent.Load()-received.Load() > windowSize/2 {
					window.Wait()
				}
				waiting.Store(false)
				mu.Unlock()
				continue
			}
			t0 := time.Now()
			p, err := s.AllocateSendPacket(size)
			if err != nil {
				runtime.Gosched() // the ring is full: cannot happen with this window
				continue
			}
			copy(p, tmpl)
			s.SendPacket(p)
			sendNs.Add(int64(time.Since(t0)))
			sent.Add(1)
		}
	}()
	wait := func() { s.Wait(ctx) }
	if event {
		wait = eventWaiter(s)
	}
	go func() { // receiver
		defer wg.Done()
		for ctx.Err() == nil {
			t0 := time.Now()
			p, err := s.ReceivePacket()
			if err != nil {
				wait()
				continue
			}
			echo := len(p) == size && p[9] == 1 && p[20] == 0
			s.ReleaseReceivePacket(p)
			recvNs.Add(int64(time.Since(t0)))
			recvCalls.Add(1)
			if echo {
				received.Add(1)
				opened()
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	r0, s0, sn0, rn0, rc0, t0 := received.Load(), sent.Load(), sendNs.Load(), recvNs.Load(), recvCalls.Load(), time.Now()
	time.Sleep(d)
	r1, s1, sn1, rn1, rc1, t1 := received.Load(), sent.Load(), sendNs.Load(), recvNs.Load(), recvCalls.Load(), time.Now()
	cancel()
	mu.Lock()
	window.Broadcast()
	mu.Unlock()
	wg.Wait()
	s.End()
	name := "Go"
	if event {
		name = "Go-event"
	}
	fmt.Printf("%s %4d B: %.0f records/s each way; in the calls: allocate+send %.0f ns, receive+release %.0f ns\n",
		name, size, float64(r1-r0)/t1.Sub(t0).Seconds(), float64(sn1-sn0)/float64(s1-s0), float64(rn1-rn0)/float64(rc1-rc0))
	return nil
}

// eventWaiter waits as capi_bench's receiver does: a few more looks at
// the ring, then poll(2) on the read-wait event for up to 10 ms, and a
// read to reset it.
func eventWaiter(s *ringtun.Session) func() {
	fd := int(s.ReadWaitEvent())
	empty := 0
	return func() {
		if empty++; empty < 16 {
			return
		}
		empty = 0
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(pfd, 10); n == 1 {
			var b [8]byte
			unix.Read(fd, b[:])
		}
	}
}
