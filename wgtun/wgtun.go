// Package wgtun is a tun.Device of golang.zx2c4.com/wireguard on a ringtun
// adapter and session, so that wireguard-go runs on ringtun unmodified:
//
//	dev, err := wgtun.CreateTUN("wg0", 1420) // as tun.CreateTUN
//	wg := device.NewDevice(dev, conn.NewDefaultBind(), logger)
//
// Reads and writes are batches of up to BatchSize packets over the
// session's rings; Events reports EventUp when the session starts, and
// EventDown, EventUp and EventMTUUpdate as the adapter's link changes
// (watched over rtnetlink). A full send ring is back-pressure: Write waits
// for room a little, then drops and counts the packet (Drops), never
// returning an error that would close the device. Unprivileged programs
// get their adapter through ringtund, as with the ringtun package.
package wgtun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringtun/ringtun"
	"golang.zx2c4.com/wireguard/tun"
)

// TunnelType is the tunnel type of the adapters CreateTUN makes.
const TunnelType = "WireGuard"

// batchSize is how many packets a Read or Write carries at most.
const batchSize = 128

// ringCapacity is the capacity of each of the session's rings.
const ringCapacity = 0x800000

// writeWait is how long Write waits for room in a full send ring before it
// drops what does not fit.
const writeWait = 10 * time.Millisecond

// Device is a tun.Device on a ringtun adapter's session.
type Device struct {
	adapter *ringtun.Adapter
	own     bool // Close closes the adapter
	session *ringtun.Session
	name    string
	mtu     atomic.Int64
	events  chan tun.Event
	watch   *linkWatch

	ctx    context.Context // done when Close starts
	cancel context.CancelFunc

	readMu sync.Mutex
	rpkts  [batchSize][]byte

	writeMu sync.Mutex
	wpkts   [batchSize][]byte
	wsizes  [batchSize]int

	drops     atomic.Uint64 // packets Write dropped: the send ring stayed full, or a buffer held no packet
	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup // the link watcher's goroutine
}

var _ tun.Device = (*Device)(nil)

// CreateTUN creates adapter name (tunnel type TunnelType) with the given
// MTU, up, and returns a device on a session of it; Close deletes the
// adapter. It mirrors tun.CreateTUN.
func CreateTUN(name string, mtu int) (tun.Device, error) {
	a, err := ringtun.CreateAdapterWithOptions(name, TunnelType, ringtun.AdapterOptions{
		Config: &ringtun.Config{MTU: mtu},
	})
	if err != nil {
		return nil, err
	}
	d, err := newDevice(a, true)
	if err != nil {
		a.Close()
		return nil, err
	}
	return d, nil
}

// CreateTUNFromAdapter returns a device on a new session of a, which the
// caller keeps: Close ends the session and leaves the adapter.
func CreateTUNFromAdapter(a *ringtun.Adapter) (tun.Device, error) {
	return newDevice(a, false)
}

func newDevice(a *ringtun.Adapter, own bool) (*Device, error) {
	// The watcher first: a change between the session's start and the
	// first event is not missed.
	w, err := watchLink(int(a.LUID()))
	if err != nil {
		return nil, fmt.Errorf("wgtun: %s: %w", a.Name(), err)
	}
	s, err := a.StartSession(ringCapacity)
	if err != nil {
		w.close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Device{
		adapter: a, own: own, session: s, name: a.Name(), watch: w,
		events: make(chan tun.Event, 16), ctx: ctx, cancel: cancel, closed: make(chan struct{}),
	}
	mtu, err := w.mtu()
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("wgtun: %s: %w", a.Name(), err)
	}
	d.mtu.Store(int64(mtu))
	d.events <- tun.EventUp
	d.wg.Add(1)
	go d.forwardEvents()
	return d, nil
}

// forwardEvents turns the link's changes into tun events until Close.
func (d *Device) forwardEvents() {
	defer d.wg.Done()
	up := true
	for {
		ch, err := d.watch.next()
		if err != nil {
			return // closed
		}
		var ev tun.Event
		switch {
		case ch.gone || !ch.up:
			if !up {
				continue
			}
			up, ev = false, tun.EventDown
		case !up:
			up, ev = true, tun.EventUp
		}
		if ch.mtu != 0 && int64(ch.mtu) != d.mtu.Load() {
			d.mtu.Store(int64(ch.mtu))
			ev |= tun.EventMTUUpdate
		}
		for _, e := range []tun.Event{tun.EventDown, tun.EventUp, tun.EventMTUUpdate} {
			if ev&e == 0 {
				continue
			}
			select {
			case d.events <- e:
			case <-d.ctx.Done():
				return
			}
		}
	}
}

// File returns nil: the device's packets are in shared rings, not a file.
func (d *Device) File() *os.File { return nil }

// Read fills bufs[i][offset:] with up to len(bufs) packets and their sizes,
// waiting for the first one. A packet longer than its buffer is dropped
// and counted in Drops.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	d.readMu.Lock()
	defer d.readMu.Unlock()
	n := min(len(bufs), len(sizes), batchSize)
	for {
		got, err := d.session.ReceivePackets(d.rpkts[:n])
		if errors.Is(err, ringtun.ErrNoMoreItems) {
			if err := d.session.Wait(d.ctx); err != nil {
				return 0, d.closedError(err)
			}
			continue
		}
		if err != nil {
			return 0, d.closedError(err)
		}
		out := 0
		for _, p := range d.rpkts[:got] {
			if len(bufs[out])-offset < len(p) {
				d.drops.Add(1)
				continue
			}
			sizes[out] = copy(bufs[out][offset:], p)
			out++
		}
		d.session.ReleaseReceivePackets(d.rpkts[:got])
		if out > 0 {
			return out, nil
		}
	}
}

// Write sends bufs[i][offset:], each one packet, and returns len(bufs).
// Packets that are not IPv4 or IPv6 are dropped and counted by the
// session (Stats().TxDropsNotIP); a full send ring is waited on for a
// while, then what does not fit is dropped and counted in Drops. The error
// is only ever os.ErrClosed, once the device is closed.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	var deadline time.Time
	for i := 0; i < len(bufs); {
		k := 0
		for ; k < batchSize && i+k < len(bufs); k++ {
			d.wsizes[k] = max(len(bufs[i+k])-offset, 0)
		}
		got, err := d.session.AllocateSendPackets(d.wsizes[:k], d.wpkts[:k])
		switch {
		case err == nil:
			for j, p := range d.wpkts[:got] {
				copy(p, bufs[i+j][offset:])
			}
			d.session.SendPackets(d.wpkts[:got])
			i += got
			deadline = time.Time{}
		case errors.Is(err, ringtun.ErrBufferOverflow):
			if deadline.IsZero() {
				deadline = time.Now().Add(writeWait)
			}
			if time.Now().After(deadline) {
				d.drops.Add(uint64(len(bufs) - i))
				return len(bufs), nil
			}
			time.Sleep(50 * time.Microsecond)
		case errors.Is(err, ringtun.ErrInvalidPacketSize):
			d.drops.Add(1) // cannot be a packet: over 64 KiB
			i++
		default:
			return i, d.closedError(err)
		}
	}
	return len(bufs), nil
}

// closedError is what Read and Write return once the session is over.
func (d *Device) closedError(err error) error {
	select {
	case <-d.closed:
		return os.ErrClosed
	default:
	}
	if errors.Is(err, ringtun.ErrSessionEnded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("wgtun: %s: %w", d.name, os.ErrClosed)
	}
	return fmt.Errorf("wgtun: %s: %w", d.name, err)
}

// MTU returns the adapter's MTU, as last seen on the link.
func (d *Device) MTU() (int, error) { return int(d.mtu.Load()), nil }

// Name returns the adapter's name.
func (d *Device) Name() (string, error) { return d.adapter.Name(), nil }

// Events returns the device's events; Close closes the channel.
func (d *Device) Events() <-chan tun.Event { return d.events }

// BatchSize returns how many packets a Read or Write carries at most.
func (d *Device) BatchSize() int { return batchSize }

// Drops returns how many packets Read and Write dropped (too long for the
// caller's buffer, or the send ring full for longer than a while).
func (d *Device) Drops() uint64 { return d.drops.Load() }

// Stats returns the session's counters.
func (d *Device) Stats() ringtun.Stats { return d.session.Stats() }

// Close ends the session, unblocking Read, deletes the adapter if
// CreateTUN made it, and closes the events channel. It is safe to call
// more than once.
func (d *Device) Close() error {
	var err error
	d.closeOnce.Do(func() {
		close(d.closed)
		d.cancel()
		d.session.End()
		d.watch.close()
		d.wg.Wait()
		close(d.events) // only the watcher's goroutine sent on it
		if d.own {
			err = d.adapter.Close()
		}
	})
	return err
}
