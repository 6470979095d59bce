package ringtun

import (
	"errors"
	"os"
)

// kindError is an error value that also matches a standard error kind under
// errors.Is, such as os.ErrClosed for ErrSessionEnded.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Errors returned by this package; use errors.Is to test for them, since
// most are wrapped with details.
var (
	// ErrNoMoreItems: the receive ring is empty (Wintun's ERROR_NO_MORE_ITEMS).
	ErrNoMoreItems = errors.New("ringtun: no more items")
	// ErrBufferOverflow: the send ring is full; drop the packet
	// (ERROR_BUFFER_OVERFLOW).
	ErrBufferOverflow = errors.New("ringtun: buffer overflow")
	// ErrInvalidData: the peer corrupted a ring; the session is unusable
	// (ERROR_INVALID_DATA). Sticky.
	ErrInvalidData = errors.New("ringtun: invalid data")
	// ErrSessionEnded: the session was ended, its adapter deleted, or its
	// daemon is gone (ERROR_HANDLE_EOF). Also matches os.ErrClosed.
	ErrSessionEnded error = &kindError{"ringtun: session ended", os.ErrClosed}
	// ErrAlreadyInitialized: the adapter already has a session, in this or
	// another process (ERROR_ALREADY_INITIALIZED).
	ErrAlreadyInitialized = errors.New("ringtun: adapter already has a session")
	// ErrInvalidCapacity: a ring capacity that is not a power of two from
	// RingCapacityMin to RingCapacityMax.
	ErrInvalidCapacity = errors.New("ringtun: invalid ring capacity")
	// ErrInvalidPacketSize: a packet size outside 0..PacketSizeMax.
	ErrInvalidPacketSize = errors.New("ringtun: invalid packet size")
	// ErrInvalidName: an adapter name that is empty, longer than 15 bytes,
	// or has characters the kernel refuses; or an invalid tunnel type.
	ErrInvalidName = errors.New("ringtun: invalid adapter name")
	// ErrAdapterExists: a network interface of that name exists, or an
	// adapter has the GUID asked for. ringtun never renames another
	// interface. Also matches os.ErrExist.
	ErrAdapterExists error = &kindError{"ringtun: adapter exists", os.ErrExist}
	// ErrAdapterNotFound: no ringtun adapter has that name, or a handle's
	// adapter was deleted or left the network namespace the handle acts
	// in. Also matches os.ErrNotExist.
	ErrAdapterNotFound error = &kindError{"ringtun: adapter not found", os.ErrNotExist}
	// ErrAccessDenied: the process may not create or open adapters (no
	// CAP_NET_ADMIN). Also matches os.ErrPermission.
	ErrAccessDenied error = &kindError{"ringtun: access denied", os.ErrPermission}
	// ErrInvalidConfig: a Config with an invalid address, route or MTU,
	// or one the adapter cannot take as it is (IPv6 with an MTU below
	// 1280, or on an adapter with IPv6 disabled).
	ErrInvalidConfig = errors.New("ringtun: invalid configuration")
	// ErrRouteConflict: a Config route that another interface has with
	// the same destination and metric. Set Config.RouteMetric, or split
	// the route into more specific ones.
	ErrRouteConflict = errors.New("ringtun: route conflicts with another interface's")
)
