package ringtun

import "github.com/ringtun/ringtun/internal/errs"

// Errors returned by this package; use errors.Is to test for them, since
// most are wrapped with details.
var (
	// ErrNoMoreItems: the receive ring is empty (Wintun's ERROR_NO_MORE_ITEMS).
	ErrNoMoreItems = errs.NoMoreItems
	// ErrBufferOverflow: the send ring is full; drop the packet
	// (ERROR_BUFFER_OVERFLOW).
	ErrBufferOverflow = errs.BufferOverflow
	// ErrInvalidData: the peer corrupted a ring; the session is unusable
	// (ERROR_INVALID_DATA). Sticky.
	ErrInvalidData = errs.InvalidData
	// ErrSessionEnded: the session was ended, its adapter deleted, or its
	// daemon is gone (ERROR_HANDLE_EOF). Also matches os.ErrClosed.
	ErrSessionEnded = errs.SessionEnded
	// ErrAlreadyInitialized: the adapter already has a session, in this or
	// another process (ERROR_ALREADY_INITIALIZED).
	ErrAlreadyInitialized = errs.AlreadyInitialized
	// ErrInvalidCapacity: a ring capacity that is not a power of two from
	// RingCapacityMin to RingCapacityMax.
	ErrInvalidCapacity = errs.InvalidCapacity
	// ErrInvalidPacketSize: a packet size outside 0..PacketSizeMax.
	ErrInvalidPacketSize = errs.InvalidPacketSize
	// ErrInvalidName: an adapter name the system refuses (on Linux: empty,
	// longer than 15 bytes, or with characters the kernel refuses, or '%'),
	// or an invalid tunnel type.
	ErrInvalidName = errs.InvalidName
	// ErrAdapterExists: a network interface of that name exists, or an
	// adapter has the GUID asked for. ringtun never renames another
	// interface. Also matches os.ErrExist.
	ErrAdapterExists = errs.AdapterExists
	// ErrAdapterNotFound: no ringtun adapter has that name, or a handle's
	// adapter was deleted or left the network namespace the handle acts
	// in. Also matches os.ErrNotExist.
	ErrAdapterNotFound = errs.AdapterNotFound
	// ErrAccessDenied: the process may not create or open adapters (on
	// Linux: it lacks CAP_NET_ADMIN). Also matches os.ErrPermission.
	ErrAccessDenied = errs.AccessDenied
	// ErrInvalidConfig: a Config with an invalid address, route or MTU,
	// or one the adapter cannot take as it is (IPv6 with an MTU below
	// 1280, or on an adapter with IPv6 disabled).
	ErrInvalidConfig = errs.InvalidConfig
	// ErrRouteConflict: a Config route that another interface has with
	// the same destination and metric. Set Config.RouteMetric, or split
	// the route into more specific ones.
	ErrRouteConflict = errs.RouteConflict
	// ErrNotSupported: ringtun has no adapters on this platform (it has
	// them on Linux), or the platform or kernel cannot do an option asked
	// for (SessionOptions). Also matches errors.ErrUnsupported.
	ErrNotSupported = errs.NotSupported
)
