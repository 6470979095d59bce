package wgtun

// WireGuard end to end: two wireguard-go devices on wgtun in two network
// namespaces, their UDP sockets joined by a veth pair, configured through
// the UAPI (IpcSet).

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/internal/nstest"
	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
)

type peerSide struct {
	ns        *netns.NS
	priv, pub [32]byte
	underlay  string // its veth address
	tunnel    string // its address in the tunnel
	wg        *device.Device
}

func newKeys(t *testing.T) (priv, pub [32]byte) {
	if _, err := rand.Read(priv[:]); err != nil {
		t.Fatal(err)
	}
	priv[0] &= 248
	priv[31] = priv[31]&127 | 64
	p, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	copy(pub[:], p)
	return priv, pub
}

// nsBind opens its sockets in ns whichever goroutine asks: wireguard-go
// reopens them from its own goroutines (on EventUp, for one), whose threads
// are not in the test's namespace. A program in one namespace needs none
// of this.
type nsBind struct {
	conn.Bind
	ns *netns.NS
}

func (b *nsBind) Open(port uint16) (fns []conn.ReceiveFunc, actual uint16, err error) {
	derr := b.ns.Do(func() error {
		fns, actual, err = b.Bind.Open(port)
		return nil
	})
	return fns, actual, errors.Join(err, derr)
}

// up starts side's wireguard-go device on wgtun with other as its peer.
func (side *peerSide) up(t *testing.T, other *peerSide) {
	in(t, side.ns, func() error {
		dev, err := CreateTUN("wg0", 1420)
		if err != nil {
			return err
		}
		bind := &nsBind{Bind: conn.NewDefaultBind(), ns: side.ns}
		side.wg = device.NewDevice(dev, bind, device.NewLogger(device.LogLevelError, side.tunnel+": "))
		t.Cleanup(side.wg.Close)
		cfg := fmt.Sprintf("private_key=%s\nlisten_port=51820\npublic_key=%s\nendpoint=%s:51820\nallowed_ip=%s/32\n",
			hex.EncodeToString(side.priv[:]), hex.EncodeToString(other.pub[:]), other.underlay, other.tunnel)
		if err := side.wg.IpcSet(cfg); err != nil {
			return fmt.Errorf("IpcSet: %w", err)
		}
		if err := side.wg.Up(); err != nil {
			return err
		}
		return ip("addr", "add", side.tunnel+"/24", "dev", "wg0")
	})
}

func TestWireGuard(t *testing.T) {
	a := &peerSide{ns: newNS(t), underlay: "198.18.30.1", tunnel: "198.18.31.1"}
	b := &peerSide{ns: newNS(t), underlay: "198.18.30.2", tunnel: "198.18.31.2"}
	a.priv, a.pub = newKeys(t)
	b.priv, b.pub = newKeys(t)
	in(t, a.ns, func() error {
		if err := ip("link", "add", "vA", "type", "veth", "peer", "name", "vB", "netns", b.ns.Path()); err != nil {
			return err
		}
		if err := ip("addr", "add", a.underlay+"/24", "dev", "vA"); err != nil {
			return err
		}
		return ip("link", "set", "vA", "up")
	})
	in(t, b.ns, func() error {
		if err := ip("addr", "add", b.underlay+"/24", "dev", "vB"); err != nil {
			return err
		}
		return ip("link", "set", "vB", "up")
	})
	a.up(t, b)
	b.up(t, a)

	in(t, a.ns, func() error {
		out, err := exec.Command("ping", "-c", "3", "-i", "0.2", "-W", "5", b.tunnel).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ping through the tunnel: %v: %s", err, out)
		}
		return nil
	})
	for _, side := range []*peerSide{a, b} {
		state, err := side.wg.IpcGet()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(state, "last_handshake_time_sec=") || strings.Contains(state, "last_handshake_time_sec=0\n") {
			t.Errorf("%s: no handshake:\n%s", side.tunnel, state)
		}
	}
	for _, dir := range [][2]*peerSide{{a, b}, {b, a}} {
		took := nstest.Transfer(t, dir[0].ns, dir[1].ns, dir[1].tunnel, 50<<20)
		t.Logf("%s → %s: 50 MiB in %v", dir[0].tunnel, dir[1].tunnel, took.Round(time.Millisecond))
	}
}
