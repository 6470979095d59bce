package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtun/ringtun/internal/netns"
)

// Addresses (RFC 2544 benchmarking range only). Namespace A is the iperf3
// client's, B the server's.
const (
	addrA      = "198.18.1.1/24"
	netA       = "198.18.1.0/24"
	addrB      = "198.18.2.1/24"
	netB       = "198.18.2.0/24"
	targetTUN  = "198.18.2.1"
	vethAddrA  = "198.18.4.1/24"
	vethAddrB  = "198.18.4.2/24"
	targetVeth = "198.18.4.2"
	iperfPort  = "5201"
	linkMTU    = 1500
)

// The tools the harness runs, and the Debian packages that have them.
var tools = []struct{ cmd, pkg string }{
	{"iperf3", "iperf3"},
	{"ip", "iproute2"},
	{"ss", "iproute2"},
	{"ping", "iputils-ping"},
}

func run(o options) int {
	if o.role != "" {
		return forwarderMain(o)
	}
	started := time.Now()
	contenders, err := parseContenders(o.contenders)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 2
	}
	tests, err := parseTests(o.tests)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: -tests: %v\n", err)
		return 2
	}
	if o.rounds < 1 || o.pings < 1 || o.duration < time.Second || o.interval < time.Millisecond {
		fmt.Fprintln(os.Stderr, "bench: -rounds and -pings must be ≥ 1, -duration ≥ 1s, -ping-interval ≥ 1ms")
		return 2
	}
	if err := netns.CanCreate(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v; run it as root: sudo go -C bench run .\n", err)
		return 1
	}
	outDir, err := resolveOut(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	profDir := ""
	if o.cpuprofile != "" {
		// Absolute: the forwarders get the path of their file on their command line.
		if profDir, err = filepath.Abs(o.cpuprofile); err == nil {
			err = os.MkdirAll(profDir, 0o755)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: -cpuprofile: %v\n", err)
			return 1
		}
	}

	sigCtx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	go func() {
		<-sigCtx.Done()
		stopSignals() // a second Ctrl-C kills at once; Pdeathsig takes the children along
	}()

	if err := ensureTools(sigCtx, o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}

	timeout := o.timeout
	if timeout == 0 {
		timeout = estimate(o, len(contenders))
	}
	ctx, cancel := context.WithTimeout(sigCtx, timeout)
	defer cancel()

	h := &harness{o: o, verbose: o.verbose, tests: tests, profDir: profDir}
	defer h.cleanup()
	logf("setting up namespaces (run bounded to %v)", timeout.Round(time.Second))
	if err := h.setup(ctx, contenders); err != nil {
		fmt.Fprintf(os.Stderr, "bench: setup: %v\n", err)
		return 1
	}

	info := &runInfo{
		Machine:    machine(),
		Command:    commandLine(),
		Started:    started,
		Rounds:     o.rounds,
		Duration:   o.duration,
		Pings:      o.pings,
		Interval:   o.interval,
		Smoke:      o.smoke,
		Contenders: contenders,
		Tests:      selected(allTests, tests),
		Samples:    map[string][]sample{},
	}
rounds:
	for r := 0; r < o.rounds; r++ {
		for i := range contenders {
			c := contenders[(i+r)%len(contenders)]
			if ctx.Err() != nil {
				break rounds
			}
			logf("round %d/%d: %s", r+1, o.rounds, c)
			s := h.measure(ctx, c, r+1)
			if ctx.Err() != nil {
				break rounds
			}
			info.Samples[c] = append(info.Samples[c], s)
			logf("round %d/%d: %s: %s", r+1, o.rounds, c, summary(&s))
		}
	}
	switch {
	case sigCtx.Err() != nil:
		fmt.Fprintln(os.Stderr, "bench: interrupted; cleaning up, no results written")
		return 130
	case ctx.Err() != nil:
		fmt.Fprintf(os.Stderr, "bench: the run did not finish within %v (-timeout); cleaning up, no results written\n", timeout)
		return 1
	}
	info.Elapsed = time.Since(started)

	fmt.Println()
	fmt.Println(info.table())
	errs := info.errorsList()
	if len(errs) > 0 {
		fmt.Println("Errors:")
		for _, e := range errs {
			fmt.Println("-", e)
		}
	}
	md, svg := filepath.Join(outDir, "RESULTS.md"), filepath.Join(outDir, "results.svg")
	if err := os.WriteFile(md, []byte(info.markdown()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	if err := os.WriteFile(svg, []byte(info.svg()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	fmt.Printf("wrote %s and %s (%v in all)\n", md, svg, info.Elapsed.Round(time.Second))
	if profDir != "" {
		fmt.Printf("forwarder CPU profiles in %s (go tool pprof -top FILE)\n", profDir)
	}
	if len(errs) > 0 {
		return 1
	}
	return 0
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func summary(s *sample) string {
	t := fmt.Sprintf("TCP1 %s Gbit/s, TCP4 %s Gbit/s, UDP %s kpps (loss %s%%), ping avg %s µs, CPU %s s/GB",
		fmtNum(s.TCP1Gbps, 2), fmtNum(s.TCP4Gbps, 2), fmtNum(s.UDPpps/1e3, 0), fmtNum(s.UDPLossPct, 1),
		fmtNum(s.PingAvgUs, 0), fmtNum(s.CPUsPerGB, 2))
	if len(s.Errors) > 0 {
		t += "; errors: " + strings.Join(s.Errors, "; ")
	}
	return t
}

func parseContenders(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, c := range strings.Split(list, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if _, ok := contenderNote[c]; !ok {
			return nil, fmt.Errorf("unknown contender %q (known: %s)", c, strings.Join(allContenders, ", "))
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no contenders")
	}
	// Keep the report's order whatever the flag's.
	var ordered []string
	for _, c := range allContenders {
		if seen[c] {
			ordered = append(ordered, c)
		}
	}
	return ordered, nil
}

// resolveOut picks the directory for RESULTS.md and results.svg.
func resolveOut(o options) (string, error) {
	dir := o.out
	switch {
	case dir != "":
	case o.smoke:
		dir = filepath.Join(os.TempDir(), "ringtun-bench-smoke")
	default:
		if _, err := os.Stat(filepath.Join("bench", "main.go")); err == nil {
			dir = "bench"
		} else if mod, err := os.ReadFile("go.mod"); err == nil && strings.Contains(string(mod), "module github.com/ringtun/ringtun/bench\n") {
			dir = "."
		} else {
			return "", errors.New("run it with go -C bench run . from the repository root (so that results go to bench/), or give -out DIR")
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// estimate bounds a run generously from its flags.
func estimate(o options, contenders int) time.Duration {
	per := 3*(o.duration+5*time.Second) + time.Duration(o.pings)*o.interval + 5*time.Second + 10*time.Second
	total := time.Duration(o.rounds*contenders)*per + 30*time.Second
	return 2*total + time.Minute
}

// ensureTools checks for the tools, and installs the missing ones with
// apt-get unless -no-install.
func ensureTools(ctx context.Context, o options) error {
	var missing, pkgs []string
	for _, t := range tools {
		if _, err := exec.LookPath(t.cmd); err != nil {
			missing = append(missing, t.cmd)
			if !contains(pkgs, t.pkg) {
				pkgs = append(pkgs, t.pkg)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	hint := "apt-get install " + strings.Join(pkgs, " ")
	if o.noInstall {
		return fmt.Errorf("missing %s: install them (%s) or drop -no-install", strings.Join(missing, ", "), hint)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("missing %s and no apt-get to install them: install %s by hand", strings.Join(missing, ", "), strings.Join(pkgs, ", "))
	}
	logf("missing %s: installing %s with apt-get", strings.Join(missing, ", "), strings.Join(pkgs, " "))
	for _, args := range [][]string{
		{"update", "-qq"},
		append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...),
	} {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		cmd := exec.CommandContext(cctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s\ninstall %s by hand (%s)", args[0], err, lastLines(out, 10), strings.Join(pkgs, ", "), hint)
		}
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t.cmd); err != nil {
			return fmt.Errorf("%s is still missing after installing %s", t.cmd, t.pkg)
		}
	}
	return nil
}

// selected returns the members of all that are in set, in all's order.
func selected(all []string, set map[string]bool) []string {
	var out []string
	for _, x := range all {
		if set[x] {
			out = append(out, x)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// executor runs functions on one locked OS thread, in a network namespace
// or in the harness's own. Children are started from it so that they run
// in its namespace, and so that their Pdeathsig, which follows the thread
// that forked them, fires only when the harness ends: the thread lives
// until close.
type executor struct {
	reqs chan func()
}

func newExecutor(ns *netns.NS) (*executor, error) {
	e := &executor{reqs: make(chan func())}
	ready := make(chan error, 1)
	body := func() {
		ready <- nil
		for f := range e.reqs {
			f()
		}
	}
	if ns == nil {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the executor
			body()
		}()
	} else {
		ns.Go(body, func(err error) { ready <- err })
	}
	if err := <-ready; err != nil {
		return nil, err
	}
	return e, nil
}

func (e *executor) do(f func()) {
	done := make(chan struct{})
	e.reqs <- func() {
		defer close(done)
		f()
	}
	<-done
}

func (e *executor) start(cmd *exec.Cmd) error {
	var err error
	e.do(func() { err = cmd.Start() })
	return err
}

func (e *executor) close() { close(e.reqs) }

func childAttr() *syscall.SysProcAttr {
	// Own process group: a Ctrl-C on the terminal reaches the harness
	// only, which then stops its children in order.
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// tailBuffer keeps the last bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
	tee io.Writer
}

func newTail(max int, tee io.Writer) *tailBuffer { return &tailBuffer{max: max, tee: tee} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tee != nil {
		t.tee.Write(p)
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// harness owns the namespaces and the long-lived children.
type harness struct {
	o       options
	verbose bool
	tests   map[string]bool // the measurements to run (-tests)
	profDir string          // where forwarders write CPU profiles (-cpuprofile), or ""

	nsA, nsB         *netns.NS
	exRoot, exA, exB *executor

	server     *exec.Cmd // iperf3 server in B
	serverDone chan struct{}
	serverLog  *tailBuffer
}

func (h *harness) setup(ctx context.Context, contenders []string) error {
	var err error
	if h.exRoot, err = newExecutor(nil); err != nil {
		return err
	}
	if h.nsA, err = netns.New(); err != nil {
		return err
	}
	if h.nsB, err = netns.New(); err != nil {
		return err
	}
	if h.exA, err = newExecutor(h.nsA); err != nil {
		return err
	}
	if h.exB, err = newExecutor(h.nsB); err != nil {
		return err
	}
	// No IPv6 in the namespaces: no router solicitations or MLD reports
	// crossing the forwarders while they are measured.
	for _, e := range []*executor{h.exA, h.exB} {
		e.do(func() {
			for _, p := range []string{"all", "default"} {
				os.WriteFile("/proc/sys/net/ipv6/conf/"+p+"/disable_ipv6", []byte("1"), 0)
			}
		})
	}
	if contains(contenders, cVeth) || contains(contenders, cWGRingtun) || contains(contenders, cWGTun) {
		if _, err := h.cmd(ctx, h.exA, 10*time.Second, "ip", "link", "add", "veth-a", "mtu", strconv.Itoa(linkMTU), "type", "veth",
			"peer", "name", "veth-b", "mtu", strconv.Itoa(linkMTU), "netns", h.nsB.Path()); err != nil {
			return err
		}
		for _, step := range []struct {
			e          *executor
			name, addr string
		}{{h.exA, "veth-a", vethAddrA}, {h.exB, "veth-b", vethAddrB}} {
			if _, err := h.cmd(ctx, step.e, 10*time.Second, "ip", "addr", "add", step.addr, "dev", step.name); err != nil {
				return err
			}
			if _, err := h.cmd(ctx, step.e, 10*time.Second, "ip", "link", "set", step.name, "up"); err != nil {
				return err
			}
		}
	}
	return nil
}

// cmd runs a short command in an executor's namespace and returns its
// standard output.
func (h *harness) cmd(ctx context.Context, e *executor, timeout time.Duration, name string, args ...string) ([]byte, error) {
	out, errOut, err := h.output(ctx, e, timeout, name, args...)
	if err != nil {
		return out, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, lastLines(errOut, 5))
	}
	return out, nil
}

// output runs a command in an executor's namespace, bounded by timeout,
// and returns its standard output and error.
func (h *harness) output(ctx context.Context, e *executor, timeout time.Duration, name string, args ...string) (stdout, stderr []byte, err error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = 2 * time.Second
	if err := e.start(cmd); err != nil {
		return nil, nil, err
	}
	err = cmd.Wait()
	if err != nil && cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		err = fmt.Errorf("timed out after %v", timeout)
	}
	return out.Bytes(), errb.Bytes(), err
}

// startServer starts a one-off iperf3 server (-1: it serves one test and
// exits) in B and waits until it listens. A fresh server per test leaves no
// state from one test to the next (a server still busy with the end of a
// UDP flood turns the next client away).
func (h *harness) startServer(ctx context.Context) error {
	h.serverLog = newTail(4096, nil)
	cmd := exec.Command("iperf3", "-s", "-1", "-p", iperfPort)
	cmd.Stdout, cmd.Stderr = io.Discard, h.serverLog
	cmd.SysProcAttr = childAttr()
	if err := h.exB.start(cmd); err != nil {
		return fmt.Errorf("iperf3 server: %w", err)
	}
	h.server, h.serverDone = cmd, make(chan struct{})
	done := h.serverDone
	go func() {
		cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := h.cmd(ctx, h.exB, 5*time.Second, "ss", "-Hltn", "sport = :"+iperfPort)
		if err == nil && len(bytes.TrimSpace(out)) > 0 {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("iperf3 server exited: %s", h.serverLog)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			h.stopServer(0)
			return fmt.Errorf("iperf3 server not listening after 10s: %s", h.serverLog)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopServer waits up to grace for the server to finish by itself, then
// kills it.
func (h *harness) stopServer(grace time.Duration) {
	if h.server == nil {
		return
	}
	select {
	case <-h.serverDone:
	case <-time.After(grace):
		if grace > 0 && h.verbose {
			logf("the iperf3 server had not exited %v after its test: killed (%s)", grace, lastLines([]byte(h.serverLog.String()), 2))
		}
		h.server.Process.Kill()
		<-h.serverDone
	}
	h.server = nil
}

func (h *harness) cleanup() {
	h.stopServer(0)
	for _, e := range []*executor{h.exA, h.exB, h.exRoot} {
		if e != nil {
			e.close()
		}
	}
	// The namespaces, and the veth pair in them, go away with the last
	// handle: every child in them has exited by now.
	for _, ns := range []*netns.NS{h.nsA, h.nsB} {
		if ns != nil {
			ns.Close()
		}
	}
}

// measure runs one round of the selected measurements for one contender.
func (h *harness) measure(ctx context.Context, c string, round int) sample {
	s := newSample()
	fail := func(what string, err error) {
		if ctx.Err() == nil {
			s.Errors = append(s.Errors, fmt.Sprintf("%s: %v", what, err))
			if h.verbose {
				logf("%s: %s: %v", c, what, err)
			}
		}
	}
	target := targetTUN
	if isWireGuard(c) {
		target = targetWG
	}
	var fwd *forwarder
	if c == cVeth {
		target = targetVeth
	} else {
		var err error
		fwd, err = h.startForwarder(ctx, c, round)
		if err != nil {
			fail("forwarder", err)
			return s
		}
		defer func() {
			if err := fwd.stop(); err != nil {
				fail("forwarder", err)
			}
		}()
	}

	if h.tests[tPing] {
		if p, err := h.ping(ctx, target); err != nil {
			fail("ping", err)
		} else {
			s.PingMinUs = slices.Min(p.RTTus)
			s.PingAvgUs = mean(p.RTTus)
			s.PingP99Us = percentile(p.RTTus, 99)
		}
	}

	var cpu, moved float64
	cpuOK := fwd != nil
	for _, streams := range []int{1, 4} {
		if !h.tests[map[int]string{1: tTCP1, 4: tTCP4}[streams]] {
			continue
		}
		var before, after float64
		var err error
		if fwd != nil {
			if before, err = fwd.cpu(); err != nil {
				fail("forwarder", err)
				return s
			}
		}
		var load chan pingLoad
		if streams == 1 && h.tests[tPingLoad] {
			load = make(chan pingLoad, 1)
			go func() { r, err := h.pingUnderLoad(ctx, target); load <- pingLoad{r, err} }()
		}
		r, err := h.iperfTCP(ctx, target, streams)
		if fwd != nil {
			after, _ = fwd.cpu()
		}
		if load != nil {
			if l := <-load; l.err != nil {
				fail("ping under TCP load", l.err)
			} else {
				s.PingLoadUs = mean(l.r.RTTus)
			}
		}
		if err != nil {
			fail(fmt.Sprintf("TCP %d stream(s)", streams), err)
			cpuOK = false
			continue
		}
		if streams == 1 {
			s.TCP1Gbps = r.Gbps
		} else {
			s.TCP4Gbps = r.Gbps
		}
		cpu += after - before
		moved += r.Bytes
	}
	if cpuOK && moved > 0 {
		s.CPUsPerGB = cpu / (moved / 1e9)
	}

	if h.tests[tUDP] {
		if u, err := h.iperfUDP(ctx, target); err != nil {
			fail(fmt.Sprintf("UDP %d B", udpSize), err)
		} else {
			s.UDPpps = u.PPS
			s.UDPLossPct = u.LossPct
		}
	}
	if fwd != nil && !fwd.alive() {
		fail("forwarder", fmt.Errorf("exited during the measurements: %s", fwd.tail()))
	}
	return s
}

func (h *harness) ping(ctx context.Context, target string) (pingResult, error) {
	deadline := int(math.Ceil((time.Duration(h.o.pings) * h.o.interval).Seconds())) + 3
	out, errOut, err := h.output(ctx, h.exA, time.Duration(deadline+5)*time.Second, "ping", "-n",
		"-c", strconv.Itoa(h.o.pings), "-i", strconv.FormatFloat(h.o.interval.Seconds(), 'f', -1, 64),
		"-W", "1", "-w", strconv.Itoa(deadline), target)
	r, perr := parsePing(out, h.o.pings)
	if perr != nil {
		if err != nil {
			return r, fmt.Errorf("%v (%v: %s)", perr, err, lastLines(errOut, 3))
		}
		return r, perr
	}
	return r, nil
}

// pingLoad is the outcome of pingUnderLoad.
type pingLoad struct {
	r   pingResult
	err error
}

// pingUnderLoad pings target while a TCP run goes on: it starts a second
// after the run and stops a second before its end, at the ping interval.
func (h *harness) pingUnderLoad(ctx context.Context, target string) (pingResult, error) {
	window := h.o.duration - 2*time.Second
	if window < 500*time.Millisecond {
		window = h.o.duration / 2
	}
	count := max(5, int(window/h.o.interval))
	select {
	case <-time.After(min(time.Second, h.o.duration/4)):
	case <-ctx.Done():
		return pingResult{}, ctx.Err()
	}
	secs := int(math.Ceil(window.Seconds())) + 3
	out, errOut, err := h.output(ctx, h.exA, time.Duration(secs+5)*time.Second, "ping", "-n",
		"-c", strconv.Itoa(count), "-i", strconv.FormatFloat(h.o.interval.Seconds(), 'f', -1, 64),
		"-W", "1", "-w", strconv.Itoa(secs), target)
	r, perr := parsePing(out, count)
	if perr != nil {
		if err != nil {
			return r, fmt.Errorf("%v (%v: %s)", perr, err, lastLines(errOut, 3))
		}
		return r, perr
	}
	return r, nil
}

func (h *harness) iperf(ctx context.Context, target string, extra ...string) ([]byte, error) {
	if err := h.startServer(ctx); err != nil {
		return nil, err
	}
	secs := int(max(1, h.o.duration.Round(time.Second)/time.Second))
	args := append([]string{"-c", target, "-p", iperfPort, "-t", strconv.Itoa(secs), "-J", "--connect-timeout", "3000"}, extra...)
	out, errOut, err := h.output(ctx, h.exA, time.Duration(secs)*time.Second+20*time.Second, "iperf3", args...)
	grace := 3 * time.Second
	if err != nil {
		grace = 0
	}
	h.stopServer(grace)
	if err != nil && len(bytes.TrimSpace(out)) == 0 {
		return nil, fmt.Errorf("iperf3 %s: %v: %s", strings.Join(extra, " "), err, lastLines(errOut, 3))
	}
	return out, nil // the JSON says what went wrong, if anything did
}

func (h *harness) iperfTCP(ctx context.Context, target string, streams int) (tcpResult, error) {
	out, err := h.iperf(ctx, target, "-P", strconv.Itoa(streams))
	if err != nil {
		return tcpResult{}, err
	}
	return parseIperfTCP(out)
}

func (h *harness) iperfUDP(ctx context.Context, target string) (udpResult, error) {
	out, err := h.iperf(ctx, target, "-u", "-l", strconv.Itoa(udpSize), "-b", "0")
	if err != nil {
		return udpResult{}, err
	}
	return parseIperfUDP(out)
}

// forwarder is a running forwarder child process.
type forwarder struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	log   *tailBuffer
}

// startForwarder starts a contender's forwarder: this program again, with
// -role, holding the namespaces as file descriptors 3 (A) and 4 (B). It
// returns once the forwarder has made and configured both interfaces. With
// -cpuprofile it profiles itself into DIR/CONTENDER-roundN.pprof.
func (h *harness) startForwarder(ctx context.Context, c string, round int) (*forwarder, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	fa, err := os.Open(h.nsA.Path())
	if err != nil {
		return nil, err
	}
	defer fa.Close()
	fb, err := os.Open(h.nsB.Path())
	if err != nil {
		return nil, err
	}
	defer fb.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer outR.Close()
	var tee io.Writer
	if h.verbose {
		tee = os.Stderr
	}
	f := &forwarder{name: c, log: newTail(8192, tee), done: make(chan struct{})}
	args := []string{"-role", c, "-ring-capacity", strconv.FormatUint(uint64(h.o.capacity), 10)}
	if h.profDir != "" {
		args = append(args, "-profile-file", filepath.Join(h.profDir, fmt.Sprintf("%s-round%d.pprof", c, round)))
	}
	f.cmd = exec.Command(exe, args...)
	f.cmd.ExtraFiles = []*os.File{fa, fb}
	f.cmd.Stdout, f.cmd.Stderr = outW, f.log
	f.cmd.SysProcAttr = childAttr()
	if f.stdin, err = f.cmd.StdinPipe(); err != nil {
		outW.Close()
		return nil, err
	}
	err = h.exRoot.start(f.cmd)
	outW.Close()
	if err != nil {
		return nil, err
	}
	go func() {
		f.cmd.Wait()
		close(f.done)
	}()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(outR)
		line := ""
		if sc.Scan() {
			line = sc.Text()
		}
		ready <- line
		io.Copy(io.Discard, outR)
	}()
	select {
	case line := <-ready:
		if line == "ready" {
			return f, nil
		}
		f.stop()
		return nil, fmt.Errorf("did not start: %s", f.tail())
	case <-time.After(20 * time.Second):
		f.stop()
		return nil, fmt.Errorf("not ready after 20s: %s", f.tail())
	case <-ctx.Done():
		f.stop()
		return nil, ctx.Err()
	}
}

// cpu returns the forwarder's CPU time so far (user + system, all
// threads), in seconds.
func (f *forwarder) cpu() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", f.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("reading its CPU time: %v", err)
	}
	return parseStatCPU(b)
}

// tail returns the end of the forwarder's log, for error messages.
func (f *forwarder) tail() string { return lastLines([]byte(f.log.String()), 3) }

func (f *forwarder) alive() bool {
	select {
	case <-f.done:
		return false
	default:
		return true
	}
}

// stop asks the forwarder to end (its standard input closes), and kills it
// if it has not within 10 seconds. It reports a forwarder that did not end
// cleanly.
func (f *forwarder) stop() error {
	f.stdin.Close()
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		f.cmd.Process.Kill()
		<-f.done
		return fmt.Errorf("did not stop within 10s, killed: %s", f.tail())
	}
	if st := f.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("%v: %s", st, f.tail())
	}
	return nil
}

// machine describes the machine for the report.
func machine() [][2]string {
	var m [][2]string
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	m = append(m, [2]string{"CPU", fmt.Sprintf("%s, %d logical cores", cpu, runtime.NumCPU())})
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if line, _, _ := strings.Cut(string(b), "\n"); strings.HasPrefix(line, "MemTotal:") {
			if kb, err := strconv.ParseFloat(strings.Fields(line)[1], 64); err == nil {
				m = append(m, [2]string{"memory", fmt.Sprintf("%.1f GiB", kb/(1<<20))})
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m = append(m, [2]string{"kernel", fmt.Sprintf("Linux %s (%s)", unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:]))})
	}
	m = append(m, [2]string{"Go", runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH})
	if out, err := exec.Command("iperf3", "--version").Output(); err == nil {
		line, _, _ := strings.Cut(string(out), "\n")
		m = append(m, [2]string{"iperf3", strings.TrimSpace(line)})
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "golang.zx2c4.com/wireguard" {
				m = append(m, [2]string{"wireguard-go", d.Version})
			}
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				m = append(m, [2]string{"ringtun revision", s.Value})
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m = append(m, [2]string{"load average at start", strings.Join(f[:3], " ")})
		}
	}
	m = append(m, [2]string{"date", time.Now().UTC().Format(time.RFC3339)})
	return m
}

// commandLine is how the run was started, as a user would type it.
func commandLine() string {
	name := filepath.Base(os.Args[0])
	if strings.Contains(os.Args[0], "go-build") {
		name = "go -C bench run ."
	}
	return strings.TrimSpace(name + " " + strings.Join(os.Args[1:], " "))
}
