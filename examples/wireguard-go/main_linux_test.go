package main

// The example configured by the standard wg(8) tool: two instances in two
// network namespaces joined by a veth pair, keys and peers set with
// `wg set`, a ping through the tunnel, `wg show` reporting the handshake.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
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
		cmd := exec.Command("ip", "netns", "exec", s.ns, bin, s.dev)
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
