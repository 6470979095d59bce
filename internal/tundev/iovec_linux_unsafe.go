//go:build linux

package tundev

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setIovecs appends an iovec for each non-empty buffer in vec to iov.
func setIovecs(iov []unix.Iovec, vec [][]byte) []unix.Iovec {
	for _, b := range vec {
		if len(b) == 0 {
			continue
		}
		var v unix.Iovec
		v.Base = unsafe.SliceData(b)
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	return iov
}

// clearIovecs drops the iovecs' pointers, so that the queue keeps no
// buffer alive.
func clearIovecs(iov []unix.Iovec) {
	for i := range iov {
		iov[i] = unix.Iovec{}
	}
}

// vectored makes one readv or writev system call.
func vectored(trap, fd uintptr, iov []unix.Iovec) (int, syscall.Errno) {
	var p unsafe.Pointer
	if len(iov) > 0 {
		p = unsafe.Pointer(unsafe.SliceData(iov))
	}
	n, _, errno := unix.Syscall(trap, fd, uintptr(p), uintptr(len(iov)))
	return int(n), errno
}
