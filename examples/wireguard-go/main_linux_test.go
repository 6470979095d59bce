package main

// The example configured by the standard wg(8) tool: two instances in two
// network namespaces joined by a veth pair, keys and peers set with
// `wg set`, a ping through the tunnel, `wg show` reporting the handshake.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/internal/nstest"
)

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// openNS opens the named network namespace for the test.
func openNS(t *testing.T, name string) *netns.NS {
	t.Helper()
	ns, err := netns.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// scrape reads the example's metrics, served in network namespace ns.
func scrape(t *testing.T, ns string) map[string]float64 {
	t.Helper()
	var body []byte
	err := openNS(t, ns).Do(func() error {
		// Dialled here, on the thread in the namespace: http.Get would dial
		// from a goroutine of its own, outside it.
		c, err := net.Dial("tcp", "127.0.0.1:9586")
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		return err
	})
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func TestWithWg(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("integration test: needs root")
	}
	for _, tool := range []string{"wg", "ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("integration test: %s is not installed (.ci/run installs wireguard-tools)", tool)
		}
	}
	bin := filepath.Join(t.TempDir(), "wireguard-go")
	sh(t, "go", "build", "-o", bin, ".")

	pid := os.Getpid()
	sides := []struct{ ns, dev, veth, underlay, tunnel, priv, pub string }{
		{ns: fmt.Sprintf("rt-wg-a-%d", pid), dev: fmt.Sprintf("wgA%d", pid%10000), veth: "vA", underlay: "198.18.30.1", tunnel: "198.18.31.1"},
		{ns: fmt.Sprintf("rt-wg-b-%d", pid), dev: fmt.Sprintf("wgB%d", pid%10000), veth: "vB", underlay: "198.18.30.2", tunnel: "198.18.31.2"},
	}
	for i := range sides {
		s := &sides[i]
		sh(t, "ip", "netns", "add", s.ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", s.ns).Run() })
		s.priv = sh(t, "wg", "genkey")
		pub := exec.Command("wg", "pubkey")
		pub.Stdin = strings.NewReader(s.priv)
		out, err := pub.Output()
		if err != nil {
			t.Fatal(err)
		}
		s.pub = strings.TrimSpace(string(out))
	}
	a, b := &sides[0], &sides[1]
	sh(t, "ip", "-n", a.ns, "link", "add", a.veth, "type", "veth", "peer", "name", b.veth, "netns", b.ns)
	procs := make([]*exec.Cmd, 2)
	for i, s := range sides {
		sh(t, "ip", "-n", s.ns, "link", "set", "lo", "up")
		sh(t, "ip", "-n", s.ns, "addr", "add", s.underlay+"/24", "dev", s.veth)
		sh(t, "ip", "-n", s.ns, "link", "set", s.veth, "up")
		args := []string{"netns", "exec", s.ns, bin}
		if i == 0 {
			args = append(args, "-metrics", "127.0.0.1:9586")
		}
		cmd := exec.Command("ip", append(args, s.dev)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = cmd
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	for _, s := range sides {
		sock := "/var/run/wireguard/" + s.dev + ".sock"
		deadline := time.Now().Add(10 * time.Second)
		for _, err := os.Stat(sock); err != nil; _, err = os.Stat(sock) {
			if time.Now().After(deadline) {
				t.Fatalf("no UAPI socket %s", sock)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i, s := range sides {
		o := sides[1-i]
		key := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(key, []byte(s.priv), 0o600); err != nil {
			t.Fatal(err)
		}
		sh(t, "wg", "set", s.dev, "private-key", key, "listen-port", "51820",
			"peer", o.pub, "endpoint", o.underlay+":51820", "allowed-ips", o.tunnel+"/32")
		sh(t, "ip", "-n", s.ns, "addr", "add", s.tunnel+"/24", "dev", s.dev)
	}
	sh(t, "ip", "netns", "exec", a.ns, "ping", "-c", "3", "-i", "0.2", "-W", "5", b.tunnel)
	// 50 MiB over TCP through the tunnel, each way, checked by SHA-256.
	nsA, nsB := openNS(t, a.ns), openNS(t, b.ns)
	nstest.Transfer(t, nsA, nsB, b.tunnel, 50<<20)
	nstest.Transfer(t, nsB, nsA, a.tunnel, 50<<20)

	// The metrics: the names, and counters that move with traffic.
	before := scrape(t, a.ns)
	for _, name := range []string{`ringtun_session_packets_total{adapter="` + a.dev + `",direction="sent",tunnel_type="WireGuard"}`,
		`ringtun_session_bytes_total{adapter="` + a.dev + `",direction="received",tunnel_type="WireGuard"}`,
		`ringtun_session_drops_total{adapter="` + a.dev + `",reason="send_not_ip",tunnel_type="WireGuard"}`} {
		if _, ok := before[name]; !ok {
			t.Errorf("the metrics lack %s", name)
		}
	}
	sh(t, "ip", "netns", "exec", a.ns, "ping", "-c", "5", "-i", "0.2", "-W", "5", b.tunnel)
	after := scrape(t, a.ns)
	for _, dir := range []string{"sent", "received"} {
		name := `ringtun_session_packets_total{adapter="` + a.dev + `",direction="` + dir + `",tunnel_type="WireGuard"}`
		if after[name] < before[name]+5 {
			t.Errorf("%s went from %v to %v over 5 pings", name, before[name], after[name])
		}
	}
	show := sh(t, "wg", "show", a.dev)
	for _, want := range []string{"interface: " + a.dev, "peer: " + b.pub, "latest handshake", "listening port: 51820"} {
		if !strings.Contains(show, want) {
			t.Errorf("wg show %s lacks %q:\n%s", a.dev, want, show)
		}
	}
	if got := sh(t, "wg", "show", b.dev, "public-key"); got != b.pub {
		t.Errorf("wg show %s public-key = %q, want %q", b.dev, got, b.pub)
	}

	// SIGTERM: each ends cleanly and takes its adapter with it.
	for i, cmd := range procs {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s after SIGTERM: %v", sides[i].dev, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not stop on SIGTERM", sides[i].dev)
		}
		if out, err := exec.Command("ip", "-n", sides[i].ns, "link", "show", sides[i].dev).CombinedOutput(); err == nil {
			t.Errorf("%s is still there after its program ended: %s", sides[i].dev, out)
		}
	}
}
