package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/ringtun/ringtun"
	"github.com/ringtun/ringtun/broker"
	"github.com/ringtun/ringtun/broker/policy"
)

// The brokered contender: the ringtun forwarder run as an unprivileged
// user, its adapters made by one ringtund per namespace, the daemon's
// server run by this program again with -role ringtund. Packets never
// cross the daemons: the forwarder's sessions run on the TUN queues they
// pass it.

// roleDaemon is the -role of a daemon child.
const roleDaemon = "ringtund"

// brokeredUID is the user the brokered forwarder runs as.
const brokeredUID = 65534

// brokeredPolicy lets brokeredUID have the bench's adapters.
const brokeredPolicy = `
[[rule]]
users = ["65534"]
tunnel_types = ["bench"]
addresses = ["198.18.0.0/15"]
routes = ["198.18.0.0/15"]
`

// daemonMain serves ringtund's protocol on o.daemonSocket with the policy
// in o.daemonPolicy, in the namespace it was started in, until its stdin
// closes.
func daemonMain(o options) int {
	log.SetPrefix("ringtund: ")
	pol, err := policy.Load(o.daemonPolicy)
	if err == nil {
		var srv *broker.Server
		if srv, err = broker.NewServer(broker.ServerOptions{Policy: pol}); err == nil {
			l, lerr := broker.Listen(o.daemonSocket)
			if lerr != nil {
				err = lerr
			} else {
				go func() {
					io.Copy(io.Discard, os.Stdin)
					srv.Close()
				}()
				fmt.Println("ready")
				err = srv.Serve(l)
			}
		}
	}
	if err != nil {
		log.Print(err)
		return 1
	}
	return 0
}

// startDaemons starts a daemon in each side's namespace and returns their
// sockets and a function that stops them.
func startDaemons(sides [2]side) (sockets [2]string, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return sockets, nil, err
	}
	dir, err := os.MkdirTemp("", "ringtun-bench-daemons-")
	if err != nil {
		return sockets, nil, err
	}
	os.Chmod(dir, 0o755)
	pol := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(pol, []byte(brokeredPolicy), 0o644); err != nil {
		return sockets, nil, err
	}
	var cmds []*exec.Cmd
	var stdins []io.Closer
	stop = func() {
		for _, c := range stdins {
			c.Close()
		}
		for _, c := range cmds {
			c.Wait()
		}
		os.RemoveAll(dir)
	}
	for i, sd := range sides {
		sockets[i] = filepath.Join(dir, fmt.Sprintf("d%d.sock", i))
		cmd := exec.Command(exe, "-role", roleDaemon, "-daemon-socket", sockets[i], "-daemon-policy", pol)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			stop()
			return sockets, nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			stop()
			return sockets, nil, err
		}
		// Started on a thread in the side's namespace, the daemon is born
		// there.
		if err := inNS(sd.ns, cmd.Start); err != nil {
			stop()
			return sockets, nil, err
		}
		cmds, stdins = append(cmds, cmd), append(stdins, in)
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			stop()
			return sockets, nil, errors.New("a daemon did not start")
		}
	}
	return sockets, stop, nil
}

// forwardBrokered is forwardRingtun as user brokeredUID, through daemons.
func forwardBrokered(ctx contextLike, sides [2]side, capacity uint32) error {
	sockets, stop, err := startDaemons(sides)
	if err != nil {
		return err
	}
	defer stop()
	// From here on the whole process is unprivileged: it cannot enter the
	// namespaces, and its adapters come from the daemons.
	if err := errors.Join(syscall.Setgroups(nil), syscall.Setgid(brokeredUID), syscall.Setuid(brokeredUID)); err != nil {
		return fmt.Errorf("dropping privileges: %w", err)
	}
	return forwardRingtunVia(ctx, sides, capacity, ringtun.SessionOptions{}, pumpRingtun, func(i int, fn func() error) error {
		os.Setenv(ringtun.DaemonEnv, sockets[i])
		return fn()
	})
}
