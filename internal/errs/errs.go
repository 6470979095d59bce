// Package errs defines ringtun's error values once, so that the internal
// packages can return them and the root package can re-export them without
// an import cycle. The root package's errors.go documents each one.
package errs

import (
	"errors"
	"os"
)

// kindError is an error value that also matches a standard error kind
// under errors.Is, such as os.ErrClosed for SessionEnded.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// The error values, each as the root package exports it.
var (
	NoMoreItems        = errors.New("ringtun: no more items")
	BufferOverflow     = errors.New("ringtun: buffer overflow")
	InvalidData        = errors.New("ringtun: invalid data")
	SessionEnded       = error(&kindError{"ringtun: session ended", os.ErrClosed})
	AlreadyInitialized = errors.New("ringtun: adapter already has a session")
	InvalidCapacity    = errors.New("ringtun: invalid ring capacity")
	InvalidPacketSize  = errors.New("ringtun: invalid packet size")
	InvalidName        = errors.New("ringtun: invalid adapter name")
	AdapterExists      = error(&kindError{"ringtun: adapter exists", os.ErrExist})
	AdapterNotFound    = error(&kindError{"ringtun: adapter not found", os.ErrNotExist})
	AccessDenied       = error(&kindError{"ringtun: access denied", os.ErrPermission})
	InvalidConfig      = errors.New("ringtun: invalid configuration")
	RouteConflict      = errors.New("ringtun: route conflicts with another interface's")
	NotSupported       = error(&kindError{"ringtun: not supported on this platform", errors.ErrUnsupported})
)
