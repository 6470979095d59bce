//go:build !linux

package main

import (
	"fmt"
	"os"
	"runtime"
)

func run(o options) int {
	fmt.Fprintf(os.Stderr, "bench: the benchmark harness needs Linux (network namespaces, /dev/net/tun, iperf3); this is %s\n", runtime.GOOS)
	return 1
}
