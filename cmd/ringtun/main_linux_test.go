package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringtun/ringtun/internal/netns"
	"github.com/ringtun/ringtun/internal/nstest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// newNS is the shared helpers' (internal/nstest).
func newNS(t *testing.T) *netns.NS { return nstest.New(t) }

// cli runs the command line in-process and returns its exit status,
// standard output and standard error.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := execute(args, &out, &errb)
	return code, out.String(), errb.String()
}

// mustCLI runs the command line and fails the test unless it succeeds.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := cli(args...)
	if code != 0 {
		t.Fatalf("ringtun %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// zeroCounters sets the kernel's counters, which the host's own traffic
// moves, to 0 in list --json output, after checking they are there.
func zeroCounters(t *testing.T, out string) string {
	t.Helper()
	var vs []adapterView
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("list --json: %v:\n%s", err, out)
	}
	for _, k := range []string{"rx_packets", "rx_bytes", "tx_packets", "tx_bytes"} {
		if len(vs) > 0 && !strings.Contains(out, `"`+k+`"`) {
			t.Errorf("list --json lacks %s", k)
		}
	}
	for i := range vs {
		vs[i].RxPackets, vs[i].RxBytes, vs[i].TxPackets, vs[i].TxBytes = 0, 0, 0, 0
	}
	var b bytes.Buffer
	writeJSON(&b, vs)
	return b.String()
}

func TestCommands(t *testing.T) {
	ns := newNS(t)
	err := ns.Do(func() error {
		mustCLI(t, "create", "rt0", "--persistent", "--type", "CLI", "--guid", "{deadbabe-cafe-beef-0123-456789abcdef}",
			"--address", "198.18.40.1/24", "--route", "198.18.41.0/24", "--mtu", "1400")
		mustCLI(t, "create", "rt1", "--persistent", "--type", "Other", "--guid", "{00000000-0000-4000-8000-000000000001}")
		golden(t, "list.json", zeroCounters(t, mustCLI(t, "list", "--json")))
		golden(t, "list-type.json", zeroCounters(t, mustCLI(t, "list", "--type", "Other", "--json")))
		if out := mustCLI(t, "list"); !strings.Contains(out, "rt0   CLI") || !strings.Contains(out, "198.18.40.1/24") {
			t.Errorf("list:\n%s", out)
		}
		mustCLI(t, "set", "rt0", "--address", "198.18.40.2/24", "--mtu", "1300")
		var v adapterView
		if err := json.Unmarshal([]byte(mustCLI(t, "show", "rt0", "--json")), &v); err != nil {
			return err
		}
		if v.MTU != 1300 || len(v.Addresses) != 1 || v.Addresses[0] != "198.18.40.2/24" {
			t.Errorf("after set: %+v", v)
		}
		if out := mustCLI(t, "show", "rt0"); !strings.Contains(out, "address: 198.18.40.2/24") || !strings.Contains(out, "mtu: 1300") {
			t.Errorf("show:\n%s", out)
		}
		if out := mustCLI(t, "version"); !strings.Contains(out, "library: 0.1") || !strings.Contains(out, "kernel offloads: csum") {
			t.Errorf("version:\n%s", out)
		}
		mustCLI(t, "delete", "rt0")
		mustCLI(t, "uninstall")
		if out := mustCLI(t, "list", "--json"); strings.TrimSpace(out) != "[]" {
			t.Errorf("list after delete and uninstall: %s", out)
		}
		return nil
	})
	if errors.Is(err, netns.ErrGoexit) {
		t.FailNow()
	} else if err != nil {
		t.Fatal(err)
	}
}

// TestExitCodes: 2 for a mistake in the command line, 1 for an error, with
// one line on standard error that says what to do.
func TestExitCodes(t *testing.T) {
	ns := newNS(t)
	ns.Do(func() error {
		cases := []struct {
			args []string
			code int
			want string
		}{
			{[]string{"bogus"}, 2, `unknown command "bogus"`},
			{[]string{"create"}, 2, "accepts 1 arg(s)"},
			{[]string{"create", "x", "--mtu", "abc"}, 2, `invalid argument "abc"`},
			{[]string{"create", "x", "--address", "198.18.40.1"}, 2, "not a prefix"},
			{[]string{"create", "x", "--guid", "nope"}, 2, "--guid"},
			{[]string{"list", "--nope"}, 2, "unknown flag"},
			{[]string{"create", "bad/name", "--persistent"}, 1, "a name is at most 15 bytes"},
			{[]string{"show", "nosuch"}, 1, "ringtun list shows the adapters"},
			{[]string{"set", "nosuch", "--mtu", "1300"}, 1, "ringtun list shows the adapters"},
			{[]string{"delete", "nosuch"}, 1, "ringtun list shows the adapters"},
		}
		for _, c := range cases {
			code, out, errs := cli(c.args...)
			if code != c.code || !strings.Contains(errs, c.want) || out != "" {
				t.Errorf("ringtun %s: exit %d, stderr %q, stdout %q; want exit %d and %q", strings.Join(c.args, " "), code, errs, out, c.code, c.want)
			}
			if strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.HasPrefix(errs, "ringtun: ") || strings.HasPrefix(errs, "ringtun: ringtun:") {
				t.Errorf("ringtun %s: the error is not one line: %q", strings.Join(c.args, " "), errs)
			}
		}
		return nil
	})
}

// TestCompletionAndMan: cobra's completion scripts and man pages.
func TestCompletionAndMan(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errs := cli("completion", shell)
		if code != 0 || !strings.Contains(out, "ringtun") {
			t.Errorf("completion %s: exit %d, %d bytes, %s", shell, code, len(out), errs)
		}
	}
	dir := t.TempDir()
	mustCLI(t, "man", dir)
	for _, page := range []string{"ringtun.8", "ringtun-create.8", "ringtun-list.8"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil || !bytes.Contains(b, []byte(".TH")) {
			t.Errorf("man page %s: %v", page, err)
		}
	}
}

// scrape reads http://addr/metrics, dialling from the calling thread (its
// network namespace): http.Get would dial from a goroutine of its own.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestUnprivileged: the command as uid 65534 through a ringtund whose
// policy lets that uid have adapters.
func TestUnprivileged(t *testing.T) {
	ns := newNS(t)
	dir := nstest.SharedDir(t)
	bin := filepath.Join(dir, "ringtun")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	sock := nstest.Daemon(t, ns, dir, "[[rule]]\nusers = [\"65534\"]\ntunnel_types = [\"CLI\"]\nname_prefix = \"vpn\"\npersistent = true\naddresses = [\"198.18.0.0/15\"]\n",
		"-metrics", "127.0.0.1:9587")
	ns.Do(func() error {
		nobody := func(args ...string) (string, error) {
			c := exec.Command(bin, args...)
			c.Env = append(os.Environ(), "RINGTUN_DAEMON="+sock)
			nstest.AsNobody(c)
			out, err := c.CombinedOutput()
			return string(out), err
		}
		if out, err := nobody("create", "vpn0", "--persistent", "--type", "CLI", "--address", "198.18.42.1/24"); err != nil {
			t.Fatalf("create as nobody: %v: %s", err, out)
		}
		if out, err := nobody("list", "--json"); err != nil || !strings.Contains(out, `"name": "vpn0"`) || !strings.Contains(out, "198.18.42.1/24") {
			t.Errorf("list as nobody: %v: %s", err, out)
		}
		if out, err := nobody("create", "other0", "--persistent", "--type", "CLI"); err == nil || !strings.Contains(out, "ringtund's policy") {
			t.Errorf("a name the policy refuses: %v: %s", err, out)
		}
		if out, err := nobody("delete", "vpn0"); err != nil {
			t.Errorf("delete as nobody: %v: %s", err, out)
		}
		// ringtund's metrics saw the two creates, one of them refused.
		m := scrape(t, "127.0.0.1:9587")
		for _, want := range []string{`ringtund_requests_total{op="create"} 2`, `ringtund_refusals_total{reason="access_denied"} 1`,
			`ringtund_requests_total{op="delete"} 1`, "ringtund_adapters 0"} {
			if !strings.Contains(m, want+"\n") {
				t.Errorf("ringtund's metrics lack %q:\n%s", want, m)
			}
		}
		return nil
	})
}
