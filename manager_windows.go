package ringtun

import (
	"github.com/ringtun/ringtun/internal/control"
)

// manager returns the control plane the package-level functions use: on
// Windows, the Wintun driver through wintun.dll.
func manager() (control.Manager, error) { return control.Wintun{}, nil }

// RunningVersion returns the version of the Wintun driver that is
// running: (major<<16)|minor.
func RunningVersion() (uint32, error) { return control.Wintun{}.Version() }

// KernelOffloads reports the TUN offloads of the kernel: Wintun has none.
func KernelOffloads() (string, error) { return "", ErrNotSupported }
