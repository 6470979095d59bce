package main

// The WireGuard scenario (issue 12): iperf3 and ping through a WireGuard
// tunnel between the two namespaces, wireguard-go on ringtun (wgtun)
// against wireguard-go on its own Linux tun. One child process runs both
// ends, as the forwarder does for the other contenders, so that its CPU
// time is the tunnel's; the UDP underlay is the veth pair.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/ringtun/ringtun/wgtun"
	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// The tunnel's addresses, and its MTU (WireGuard's default: 1500 of the
// veth less 80 for the outer headers).
const (
	wgAddrA  = "198.18.6.1/24"
	wgAddrB  = "198.18.6.2/24"
	targetWG = "198.18.6.2"
	wgMTU    = 1420
	wgPort   = 51820
)

// nsBind opens wireguard-go's sockets in a namespace whichever goroutine
// asks: wireguard-go reopens them from its own goroutines.
type nsBind struct {
	conn.Bind
	ns *os.File
}

func (b *nsBind) Open(port uint16) (fns []conn.ReceiveFunc, actual uint16, err error) {
	nerr := inNS(b.ns, func() error {
		fns, actual, err = b.Bind.Open(port)
		return nil
	})
	return fns, actual, errors.Join(err, nerr)
}

func wgKeys() (priv, pub [32]byte, err error) {
	if _, err = rand.Read(priv[:]); err != nil {
		return
	}
	priv[0] &= 248
	priv[31] = priv[31]&127 | 64
	p, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	copy(pub[:], p)
	return
}

// runWireGuard runs the two ends of a WireGuard tunnel, on wgtun or on
// wireguard-go's tun, until ctx ends.
func runWireGuard(ctx context.Context, sides [2]side, onRingtun bool) error {
	type end struct {
		priv, pub [32]byte
		underlay  string
		addr      string
		wg        *device.Device
	}
	ends := [2]*end{{underlay: vethAddrA, addr: wgAddrA}, {underlay: vethAddrB, addr: wgAddrB}}
	for _, e := range ends {
		var err error
		if e.priv, e.pub, err = wgKeys(); err != nil {
			return err
		}
	}
	defer func() {
		for _, e := range ends {
			if e.wg != nil {
				e.wg.Close() // closes the device, which deletes a ringtun adapter
			}
		}
	}()
	for i, sd := range sides {
		e, peer := ends[i], ends[1-i]
		err := inNS(sd.ns, func() error {
			var dev tun.Device
			var err error
			if onRingtun {
				dev, err = wgtun.CreateTUN(sd.name, wgMTU)
			} else {
				dev, err = tun.CreateTUN(sd.name, wgMTU)
			}
			if err != nil {
				return err
			}
			// Errors to the log (stderr): stdout carries "ready" to the harness.
			logger := &device.Logger{Verbosef: device.DiscardLogf, Errorf: func(f string, args ...any) { log.Printf(sd.name+": "+f, args...) }}
			e.wg = device.NewDevice(dev, &nsBind{Bind: conn.NewDefaultBind(), ns: sd.ns}, logger)
			cfg := fmt.Sprintf("private_key=%s\nlisten_port=%d\npublic_key=%s\nendpoint=%s:%d\nallowed_ip=0.0.0.0/0\n",
				hex.EncodeToString(e.priv[:]), wgPort, hex.EncodeToString(peer.pub[:]), hostOf(peer.underlay), wgPort)
			if err := e.wg.IpcSet(cfg); err != nil {
				return fmt.Errorf("IpcSet: %w", err)
			}
			if err := e.wg.Up(); err != nil {
				return err
			}
			if err := ipRun("addr", "add", e.addr, "dev", sd.name); err != nil {
				return err
			}
			// wgtun's adapters are up already; wireguard-go's tun is
			// brought up by wg-quick as a rule, here by hand.
			return ipRun("link", "set", sd.name, "up")
		})
		if err != nil {
			return fmt.Errorf("%s: %w", sd.name, err)
		}
	}
	ready()
	<-ctx.Done()
	log.Print("stopping")
	return nil
}
