package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ringtun/ringtun/broker"
	"github.com/ringtun/ringtun/broker/policy"
)

func main() {
	socket := flag.String("socket", broker.DefaultSocket, "the Unix socket to listen on (ignored under systemd socket activation)")
	policyPath := flag.String("policy", "/etc/ringtun/policy.toml", "the policy file; absent: nobody but root")
	state := flag.String("state", "/run/ringtun/state.json", "where to record which client created which adapter")
	verbose := flag.Bool("v", false, "log every request, not only privileged ones")
	metrics := flag.String("metrics", "", "serve Prometheus metrics at http://ADDR/metrics (clients, adapters, requests, refusals by reason)")
	flag.Parse()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(log, *socket, *policyPath, *state, *metrics); err != nil {
		log.Error("ringtund", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, socket, policyPath, state, metrics string) error {
	pol, err := policy.Load(policyPath)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	log.Info("policy loaded", "path", policyPath, "rules", len(pol.Rules))
	srv, err := broker.NewServer(broker.ServerOptions{Policy: pol, Log: log, StateFile: state})
	if err != nil {
		return err
	}
	l, err := broker.ListenSystemd()
	if err != nil {
		return err
	}
	if l == nil {
		if l, err = broker.Listen(socket); err != nil {
			return err
		}
	}
	if metrics != "" {
		ml, err := net.Listen("tcp", metrics)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			srv.WriteMetrics(w)
		})
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ml)
		defer hs.Close()
		log.Info("metrics", "address", ml.Addr().String())
	}
	log.Info("listening", "socket", l.Addr().String(), "version", fmt.Sprintf("%d.%d", broker.Version>>16, broker.Version&0xffff))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for sig := range sigs {
			if sig != syscall.SIGHUP {
				log.Info("stopping", "signal", sig.String())
				srv.Close()
				return
			}
			p, err := policy.Load(policyPath)
			if err != nil {
				log.Error("policy reload refused; the old policy stays", "path", policyPath, "err", err)
				continue
			}
			srv.SetPolicy(p)
			log.Info("policy reloaded", "path", policyPath, "rules", len(p.Rules))
		}
	}()
	return srv.Serve(l)
}
