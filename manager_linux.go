package ringtun

import (
	"os"
	"sync"

	"github.com/ringtun/ringtun/broker"
	"github.com/ringtun/ringtun/internal/control"
)

// local is the manager of a process that manages its adapters itself.
var local = control.NewLocal(func(level control.Level, msg string) { logf(LogLevel(level), "%s", msg) })

// daemons are the clients of the ringtund daemons in use, by socket.
var daemons struct {
	sync.Mutex
	m map[string]*broker.Client
}

// DaemonEnv is the environment variable that chooses the control plane:
// "off" makes the process manage adapters itself; a socket path makes it
// ask the ringtund daemon listening there. Unset, a process with
// CAP_NET_ADMIN manages adapters itself and one without asks the daemon at
// broker.DefaultSocket if there is one.
const DaemonEnv = "RINGTUN_DAEMON"

// manager returns the control plane the package's functions use, chosen
// as DaemonEnv says.
func manager() (control.Manager, error) {
	switch v := os.Getenv(DaemonEnv); {
	case v == "off":
		return local, nil
	case v != "":
		return daemon(v), nil
	}
	if !control.HaveNetAdmin() {
		if _, err := os.Stat(broker.DefaultSocket); err == nil {
			return daemon(broker.DefaultSocket), nil
		}
	}
	return local, nil
}

// daemon returns the process's client of the daemon at path.
func daemon(path string) *broker.Client {
	daemons.Lock()
	defer daemons.Unlock()
	if daemons.m == nil {
		daemons.m = map[string]*broker.Client{}
	}
	c := daemons.m[path]
	if c == nil {
		c = broker.NewClient(path)
		daemons.m[path] = c
	}
	return c
}

// RunningVersion returns the version of what manages the process's
// adapters, (major<<16)|minor: this package's Version in-process, the
// daemon's through ringtund.
func RunningVersion() (uint32, error) {
	m, err := manager()
	if err != nil {
		return 0, err
	}
	return m.Version()
}
