// Command bench is ringtun's benchmark harness (issue 4). It measures how
// fast IP packets move between two network namespaces through a userspace
// forwarder built on each contender, next to a veth pair as the kernel-only
// ceiling:
//
//   - ringtun: two ringtun adapters, forwarded with the public Session API
//     exactly as an application would write it;
//   - wireguard-go: two devices of golang.zx2c4.com/wireguard/tun with its
//     Linux offloads and batched Read/Write, used as wireguard-go uses them;
//   - plain: a read()/write() loop on /dev/net/tun (IFF_TUN|IFF_NO_PI, no
//     offloads), one packet per system call;
//   - veth: a veth pair between the namespaces, no forwarder at all.
//
// For each contender it runs iperf3 TCP with 1 and 4 streams, iperf3 UDP with
// 64-byte datagrams, and ping, and reads the forwarder's CPU time. Contenders
// are interleaved over several rounds and the medians are reported, with
// ratios to wireguard-go and to veth from the same run.
//
// Run it as root from the repository root:
//
//	sudo go -C bench run .            # 5 rounds of 5-second runs, writes bench/RESULTS.md and bench/results.svg
//	sudo go -C bench run . -smoke     # 1 round of 1-second runs, about 15 seconds, for CI
//
// It creates its own network namespaces (198.18.0.0/15 addresses only) and
// removes them, with every process it started, when it ends, fails or is
// interrupted. See bench/README.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

// options are the command-line flags.
type options struct {
	rounds     int
	duration   time.Duration
	pings      int
	interval   time.Duration
	smoke      bool
	out        string
	contenders string
	timeout    time.Duration
	noInstall  bool
	capacity   uint
	verbose    bool
	tests      string // comma-separated measurements to run
	cpuprofile string // directory for the forwarders' CPU profiles

	role                       string // internal: run as a forwarder child
	daemonSocket, daemonPolicy string // internal: the ringtund child's socket and policy
	profileFile                string // internal: the forwarder child's CPU profile
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 5, "rounds; every contender is measured once per round, in rotating order")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each iperf3 run")
	flag.IntVar(&o.pings, "pings", 200, "pings per round and contender")
	flag.DurationVar(&o.interval, "ping-interval", 10*time.Millisecond, "interval between pings")
	flag.BoolVar(&o.smoke, "smoke", false, "quick check for CI: 1 round, 1-second iperf3 runs, 20 pings; results go to a temporary directory unless -out is given")
	flag.StringVar(&o.out, "out", "", "directory for RESULTS.md and results.svg (default: bench/ when run from the repository root)")
	flag.StringVar(&o.contenders, "contenders", "ringtun,ringtun-brokered,wireguard-go,plain,veth",
		"comma-separated contenders to run; wg-ringtun,wg-tun is the WireGuard scenario (a tunnel between the namespaces)")
	udp := flag.Int("udp-size", 64, "the size of iperf3's UDP datagrams")
	flag.DurationVar(&o.timeout, "timeout", 0, "bound on the whole run (0: computed from the other flags)")
	flag.BoolVar(&o.noInstall, "no-install", false, "fail instead of installing missing tools (iperf3, iproute2, ping) with apt-get")
	flag.UintVar(&o.capacity, "ring-capacity", 0x100000, "ringtun session ring capacity in bytes")
	flag.BoolVar(&o.verbose, "v", false, "show the forwarders' logs and every measurement as it is made")
	flag.StringVar(&o.tests, "tests", "ping,tcp1,tcp4,udp,pingload", "comma-separated measurements to run: ping, tcp1, tcp4, udp, pingload (ping during tcp1)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "directory for a Go CPU profile of every forwarder process, over its whole life: DIR/CONTENDER-roundN.pprof")
	flag.StringVar(&o.role, "role", "", "internal: run as the forwarder of a contender")
	flag.StringVar(&o.daemonSocket, "daemon-socket", "", "internal: the socket of a ringtund child")
	flag.StringVar(&o.daemonPolicy, "daemon-policy", "", "internal: the policy of a ringtund child")
	flag.StringVar(&o.profileFile, "profile-file", "", "internal: the forwarder's CPU profile file")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if *udp < 16 || *udp > 1472 {
		fmt.Fprintf(os.Stderr, "bench: -udp-size %d: from 16 to 1472 bytes\n", *udp)
		os.Exit(2)
	}
	setUDPSize(*udp)
	if o.smoke {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["duration"] {
			o.duration = time.Second
		}
		if !set["pings"] {
			o.pings = 20
		}
	}
	os.Exit(run(o))
}
