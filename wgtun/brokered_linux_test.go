package wgtun

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ringtun/ringtun"
	"github.com/ringtun/ringtun/internal/nstest"
	"github.com/ringtun/ringtun/internal/packettest"
	"golang.zx2c4.com/wireguard/tun"
)

const childEnv = "WGTUN_TEST_CHILD"

// TestBrokered: an unprivileged program (uid 65534) runs a wgtun device on
// an adapter it gets through ringtund: events, MTU, and an echo through
// the host.
func TestBrokered(t *testing.T) {
	if os.Getenv(childEnv) == "brokered" {
		brokeredChild(t)
		return
	}
	ns := newNS(t)
	dir := nstest.SharedDir(t)
	self := nstest.CopyExecutable(t, dir)
	sock := nstest.Daemon(t, ns, dir, "[[rule]]\nusers = [\"65534\"]\ntunnel_types = [\"WireGuard\"]\nname_prefix = \"vpnw\"\naddresses = [\"198.18.0.0/15\"]\n")
	in(t, ns, func() error {
		c := exec.Command(self, "-test.run=^TestBrokered$", "-test.count=1", "-test.v")
		c.Env = append(os.Environ(), childEnv+"=brokered", ringtun.DaemonEnv+"="+sock, "GORACE=atexit_sleep_ms=0")
		nstest.AsNobody(c)
		out, err := c.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestBrokered") {
			t.Errorf("the unprivileged child: %v:\n%s", err, out)
		}
		return nil
	})
}

// brokeredChild runs as uid 65534 in the daemon's namespace.
func brokeredChild(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Fatal("the child runs as root")
	}
	local, peer := netip.MustParseAddr("198.18.60.1"), netip.MustParseAddr("198.18.60.2")
	a, err := ringtun.CreateAdapterWithOptions("vpnw0", TunnelType, ringtun.AdapterOptions{
		Config: &ringtun.Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}, MTU: 1420},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	dev, err := CreateTUNFromAdapter(a)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	d := dev.(*Device)
	if e := nextEvent(t, d); e != tun.EventUp {
		t.Errorf("first event %d", e)
	}
	if mtu, _ := d.MTU(); mtu != 1420 {
		t.Errorf("MTU %d", mtu)
	}
	pkt := make([]byte, 16+28+4)
	packettest.EchoRequest4(pkt[16:], peer, local, 0x99, 3, []byte("brok"))
	if n, err := d.Write([][]byte{pkt}, 16); n != 1 || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}
	reply, _ := readUntil(t, d, [][]byte{make([]byte, 16+1500)}, 16, func(p []byte) bool {
		return len(p) >= 28 && p[9] == 1 && p[20] == 0 && p[27] == 3
	})
	if string(reply[28:]) != "brok" {
		t.Errorf("reply payload %q", reply[28:])
	}
}
