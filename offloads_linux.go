package ringtun

import (
	"errors"
	"fmt"
	"os"

	"github.com/ringtun/ringtun/internal/tundev"
)

// KernelOffloads reports the TUN offloads this kernel grants a session
// (checksum, TSO, USO), for example "csum|tso4|tso6|tso_ecn|uso4|uso6", by
// asking for them on a throw-away TUN device in the calling thread's
// network namespace. It needs CAP_NET_ADMIN; without it the error wraps
// ErrAccessDenied.
func KernelOffloads() (string, error) {
	q, err := tundev.Create("")
	if errors.Is(err, os.ErrPermission) {
		return "", fmt.Errorf("ringtun: probe the kernel's offloads: %w", ErrAccessDenied)
	}
	if err != nil {
		return "", fmt.Errorf("ringtun: probe the kernel's offloads: %w", err)
	}
	defer q.Close() // not persistent: the kernel deletes it
	o, err := q.Negotiate()
	if err != nil {
		return "", fmt.Errorf("ringtun: probe the kernel's offloads: %w", err)
	}
	return o.String(), nil
}
