package broker

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerGroups returns the supplementary groups of the peer of Unix socket
// fd (SO_PEERGROUPS, Linux 4.13 and later).
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]byte, 4*256)
	for {
		n := uint32(len(buf))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if e == unix.ERANGE && int(n) > len(buf) {
			buf = make([]byte, n)
			continue
		}
		if e != 0 {
			return nil, e
		}
		gids := make([]uint32, n/4)
		for i := range gids {
			gids[i] = binary.NativeEndian.Uint32(buf[4*i:])
		}
		return gids, nil
	}
}
