package ringtun

import (
	"github.com/ringtun/ringtun/internal/control"
)

// local is the manager of a process that manages its adapters itself.
var local = control.NewLocal(func(level control.Level, msg string) { logf(LogLevel(level), "%s", msg) })

// manager returns the control plane the package-level functions use.
func manager() (control.Manager, error) { return local, nil }

// RunningVersion returns the version of the ringtun driver in use,
// (major<<16)|minor. In-process, that is this package's Version.
func RunningVersion() (uint32, error) { return Version, nil }
