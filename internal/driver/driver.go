// Package driver is ringtun's driver loop, the part that plays wintun.sys:
// a reader moves packets from a TUN queue into a session's receive ring,
// and a writer moves the packets the application commits to the send ring
// into the TUN queue. It touches the rings only through package ring, so
// the same loop runs inside the application or inside a daemon that shares
// the ring memory with it.
package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringtun/ringtun/ring"
)

// Device is one queue of a TUN device. Read and Write move one IP packet
// each and block until done; Close unblocks them. Once the device is gone,
// Read and Write return an error wrapping os.ErrClosed; any other Write
// error rejects only that packet.
type Device interface {
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
	Close() error
}

// FullPolicy says what the reader does with a packet when the receive ring
// has no room for it.
type FullPolicy int

const (
	// Wait holds the packet until the application releases enough
	// records, so that the kernel's queue fills and the host stack sees
	// the congestion (the default).
	Wait FullPolicy = iota
	// Drop drops the packet and counts it.
	Drop
)

// Config sets up a Loop.
type Config struct {
	// Device is the TUN queue; the Loop closes it when it stops.
	Device Device
	// Receive is the driver's side of the receive ring (host to app).
	Receive *ring.Producer
	// Send is the driver's side of the send ring (app to host).
	Send *ring.Consumer
	// Full is the policy for a full receive ring.
	Full FullPolicy
	// Space, if not nil, receives a value when the application releases
	// receive records, so that a waiting reader looks again at once.
	// Without it the reader looks again every SpacePoll.
	Space <-chan struct{}
	// SpacePoll is how often a reader waiting for room looks again when
	// no Space signal comes; 0 means 1 ms.
	SpacePoll time.Duration
	// Log, if not nil, receives the loop's log messages.
	Log func(warn bool, msg string)
	// OnStop, if not nil, is called once, from the loop's goroutine, when
	// the loop stops by itself (the device is gone or a ring ended or was
	// corrupted), with the reason.
	OnStop func(err error)
}

// Stats are the loop's counters.
type Stats struct {
	RxPackets    uint64 // packets put in the receive ring
	RxBytes      uint64
	RxDropsFull  uint64 // packets dropped because the receive ring was full (Drop policy)
	RxFullWaits  uint64 // times the reader waited for room (Wait policy)
	TxPackets    uint64 // packets written to the device
	TxBytes      uint64
	TxDropsNotIP uint64 // packets from the app that were not IPv4 or IPv6
	TxErrors     uint64 // packets the device refused
}

type counters struct {
	rxPackets, rxBytes, rxDropsFull, rxFullWaits atomic.Uint64
	txPackets, txBytes, txDropsNotIP, txErrors   atomic.Uint64
}

// Loop is a running driver loop.
type Loop struct {
	cfg      Config
	c        counters
	stop     chan struct{}
	stopOnce sync.Once
	stopped  sync.WaitGroup
	reason   atomic.Pointer[error]
}

// batch is how many records the writer takes from the send ring at once.
const batch = 64

// Start starts the reader and writer goroutines.
func Start(cfg Config) *Loop {
	if cfg.SpacePoll == 0 {
		cfg.SpacePoll = time.Millisecond
	}
	l := &Loop{cfg: cfg, stop: make(chan struct{})}
	l.stopped.Add(2)
	go l.reader()
	go l.writer()
	return l
}

// Stats returns a snapshot of the counters.
func (l *Loop) Stats() Stats {
	c := &l.c
	return Stats{
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(),
		RxDropsFull: c.rxDropsFull.Load(), RxFullWaits: c.rxFullWaits.Load(),
		TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(),
		TxDropsNotIP: c.txDropsNotIP.Load(), TxErrors: c.txErrors.Load(),
	}
}

// Stop ends both rings from the driver's side, closes the device and waits
// for the loop's goroutines. It returns the reason the loop had stopped by
// itself, if it had. It is safe to call more than once and concurrently.
func (l *Loop) Stop() error {
	l.shutdown(nil)
	l.stopped.Wait()
	if p := l.reason.Load(); p != nil {
		return *p
	}
	return nil
}

// shutdown stops the loop once; err is the reason when it stops by itself.
func (l *Loop) shutdown(err error) {
	l.stopOnce.Do(func() {
		if err != nil {
			l.reason.Store(&err)
		}
		close(l.stop)
		l.cfg.Receive.Terminate()
		l.cfg.Send.Terminate()
		l.cfg.Device.Close()
		if err != nil && l.cfg.OnStop != nil {
			go l.cfg.OnStop(err)
		}
	})
}

func (l *Loop) stopping() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *Loop) logf(warn bool, format string, args ...any) {
	if l.cfg.Log != nil {
		l.cfg.Log(warn, fmt.Sprintf(format, args...))
	}
}

// reader moves packets from the device into the receive ring.
func (l *Loop) reader() {
	defer l.stopped.Done()
	buf := make([]byte, ring.PacketSizeMax)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		n, err := l.cfg.Device.Read(buf)
		if err != nil {
			if !l.stopping() {
				l.shutdown(fmt.Errorf("driver: device read: %w", err))
			}
			return
		}
		for {
			pkt, err := l.cfg.Receive.Allocate(n)
			if err == nil {
				copy(pkt, buf[:n])
				l.cfg.Receive.Commit(pkt)
				l.c.rxPackets.Add(1)
				l.c.rxBytes.Add(uint64(n))
				break
			}
			if !errors.Is(err, ring.ErrFull) {
				if !l.stopping() {
					l.shutdown(fmt.Errorf("driver: receive ring: %w", err))
				}
				return
			}
			if l.cfg.Full == Drop {
				l.c.rxDropsFull.Add(1)
				break
			}
			l.c.rxFullWaits.Add(1)
			timer.Reset(l.cfg.SpacePoll)
			select {
			case <-l.cfg.Space:
			case <-timer.C:
			case <-l.stop:
				return
			}
			timer.Stop()
		}
	}
}

// isIP reports whether p can be an IPv4 or IPv6 packet: the version nibble
// and the minimum header length. The kernel checks the rest.
func isIP(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch p[0] >> 4 {
	case 4:
		return len(p) >= 20
	case 6:
		return len(p) >= 40
	}
	return false
}

// writer moves packets the application committed to the send ring into the
// device.
func (l *Loop) writer() {
	defer l.stopped.Done()
	var pkts [batch][]byte
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	send := l.cfg.Send
	for {
		n, err := send.ReceiveBatch(pkts[:])
		if errors.Is(err, ring.ErrEmpty) {
			if err := send.Wait(ctx); err != nil && !errors.Is(err, ring.ErrTerminated) && !l.stopping() {
				l.shutdown(fmt.Errorf("driver: send ring: %w", err))
				return
			}
			if l.stopping() {
				return
			}
			continue
		}
		if err != nil {
			if !l.stopping() {
				l.shutdown(fmt.Errorf("driver: send ring: %w", err))
			}
			return
		}
		for _, p := range pkts[:n] {
			if !isIP(p) {
				l.c.txDropsNotIP.Add(1)
				continue
			}
			if _, err := l.cfg.Device.Write(p); err != nil {
				if errors.Is(err, os.ErrClosed) {
					send.ReleaseBatch(pkts[:n])
					if !l.stopping() {
						l.shutdown(fmt.Errorf("driver: device write: %w", err))
					}
					return
				}
				if l.c.txErrors.Add(1) == 1 {
					l.logf(true, "device refused a packet (logged once): %v", err)
				}
				continue
			}
			l.c.txPackets.Add(1)
			l.c.txBytes.Add(uint64(len(p)))
		}
		send.ReleaseBatch(pkts[:n])
	}
}
