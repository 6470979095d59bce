//go:build !linux && !windows

package ringtun

import (
	"fmt"
	"runtime"

	"github.com/ringtun/ringtun/internal/control"
)

// manager returns the control plane the package-level functions use. This
// platform has none: ringtun has adapters on Linux (and, to come, on
// Windows over the Wintun driver).
func manager() (control.Manager, error) {
	return nil, fmt.Errorf("%w (%s)", ErrNotSupported, runtime.GOOS)
}

// RunningVersion returns the version of the ringtun driver in use; there
// is none on this platform.
func RunningVersion() (uint32, error) { return 0, ErrNotSupported }

// KernelOffloads reports the TUN offloads of the kernel; there are none to
// report on this platform.
func KernelOffloads() (string, error) { return "", ErrNotSupported }
