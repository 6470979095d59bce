//go:build linux

// Command wireguard-go is wireguard-go's device on a ringtun adapter, with
// wireguard-go's UAPI socket, so that the standard wg(8) tool configures
// and shows it:
//
//	go -C examples/wireguard-go run . wg0        # as root, or through ringtund
//	wg set wg0 private-key ./key listen-port 51820 peer … endpoint … allowed-ips …
//	wg show wg0
//	ip addr add 198.18.31.1/24 dev wg0
//
// With -metrics ADDR it serves the session's counters for Prometheus at
// http://ADDR/metrics (package prom).
//
// It runs in the foreground until SIGINT or SIGTERM, then deletes the
// adapter. The UAPI socket is /var/run/wireguard/NAME.sock, as wg expects.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/ringtun/ringtun/prom"
	"github.com/ringtun/ringtun/wgtun"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
)

func main() {
	mtu := flag.Int("mtu", device.DefaultMTU, "the adapter's MTU")
	verbose := flag.Bool("v", false, "log wireguard-go's verbose messages")
	metrics := flag.String("metrics", "", "serve the session's Prometheus metrics at http://ADDR/metrics (for example 127.0.0.1:9586)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: wireguard-go [-mtu N] [-v] [-metrics ADDR] INTERFACE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *mtu, *verbose, *metrics); err != nil {
		fmt.Fprintln(os.Stderr, "wireguard-go:", err)
		os.Exit(1)
	}
}

// serveMetrics serves the device's session counters (package prom) at
// http://addr/metrics until stop.
func serveMetrics(addr, name string, dev *wgtun.Device) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prom.NewCollector(name, wgtun.TunnelType, dev.Stats))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

func run(name string, mtu int, verbose bool, metrics string) error {
	level := device.LogLevelError
	if verbose {
		level = device.LogLevelVerbose
	}
	logger := device.NewLogger(level, fmt.Sprintf("(%s) ", name))

	dev, err := wgtun.CreateTUN(name, mtu)
	if err != nil {
		return fmt.Errorf("create adapter %s: %w", name, err)
	}
	wg := device.NewDevice(dev, conn.NewDefaultBind(), logger)
	defer wg.Close() // closes dev, which deletes the adapter

	file, err := ipc.UAPIOpen(name)
	if err != nil {
		return fmt.Errorf("UAPI socket: %w", err)
	}
	uapi, err := ipc.UAPIListen(name, file)
	if err != nil {
		return fmt.Errorf("UAPI socket: %w", err)
	}
	defer uapi.Close()
	go func() {
		for {
			c, err := uapi.Accept()
			if err != nil {
				return // closed
			}
			go wg.IpcHandle(c)
		}
	}()
	if metrics != "" {
		stop, err := serveMetrics(metrics, name, dev.(*wgtun.Device))
		if err != nil {
			return err
		}
		defer stop()
	}
	fmt.Fprintf(os.Stderr, "wireguard-go on ringtun adapter %s: configure it with wg(8)\n", name)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case <-wg.Wait():
	}
	fmt.Fprintf(os.Stderr, "wireguard-go: shutting down %s\n", name)
	return nil
}
