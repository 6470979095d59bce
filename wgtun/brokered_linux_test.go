package wgtun

import (
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringtun/ringtun"
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
	// A directory uid 65534 can reach, with this test binary and ringtund.
	dir, err := os.MkdirTemp("", "wgtun-brokered-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(dir, "wgtun.test")
	if err := copyFile(exe, self); err != nil {
		t.Fatal(err)
	}
	daemon := filepath.Join(dir, "ringtund")
	if out, err := exec.Command("go", "build", "-o", daemon, "github.com/ringtun/ringtun/cmd/ringtund").CombinedOutput(); err != nil {
		t.Fatalf("go build ringtund: %v: %s", err, out)
	}
	policy := filepath.Join(dir, "policy.toml")
	os.WriteFile(policy, []byte("[[rule]]\nusers = [\"65534\"]\ntunnel_types = [\"WireGuard\"]\nname_prefix = \"vpnw\"\naddresses = [\"198.18.0.0/15\"]\n"), 0o644)
	sock := filepath.Join(dir, "ringtund.sock")
	in(t, ns, func() error {
		d := exec.Command(daemon, "-socket", sock, "-policy", policy, "-state", filepath.Join(dir, "state.json"))
		if err := d.Start(); err != nil {
			return err
		}
		defer func() { d.Process.Signal(syscall.SIGTERM); d.Wait() }()
		for i := 0; i < 100; i++ {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		c := exec.Command(self, "-test.run=^TestBrokered$", "-test.count=1", "-test.v")
		c.Env = append(os.Environ(), childEnv+"=brokered", ringtun.DaemonEnv+"="+sock, "GORACE=atexit_sleep_ms=0")
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := c.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestBrokered") {
			t.Errorf("the unprivileged child: %v:\n%s", err, out)
		}
		return nil
	})
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
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
