package ring

import "errors"

// Errors returned by this package. They are distinct values meant for
// errors.Is; corruption errors wrap ErrCorrupt with a description of what
// was found.
var (
	// ErrEmpty means the consumer has no committed record to receive.
	ErrEmpty = errors.New("ring: no more items")
	// ErrFull means the producer has no room for a record of the requested
	// size; the caller drops the packet or waits for the consumer.
	ErrFull = errors.New("ring: buffer overflow")
	// ErrTerminated means one side set Head or Tail to a value of capacity
	// or more. It is sticky.
	ErrTerminated = errors.New("ring: terminated")
	// ErrCorrupt means the peer left the shared memory in a state the
	// protocol does not allow. It is sticky for the side that saw it.
	ErrCorrupt = errors.New("ring: invalid data")
	// ErrInvalidCapacity means a capacity that is not a power of two from
	// CapacityMin to CapacityMax.
	ErrInvalidCapacity = errors.New("ring: invalid capacity")
	// ErrInvalidMemory means a region whose length is not Size(capacity)
	// or whose start is not 4-byte aligned.
	ErrInvalidMemory = errors.New("ring: invalid memory region")
	// ErrPacketSize means a record size outside 0..PacketSizeMax.
	ErrPacketSize = errors.New("ring: invalid packet size")
	// ErrForeignPacket means a slice passed to Commit or Release that is
	// not a record this side handed out and has not yet committed or
	// released.
	ErrForeignPacket = errors.New("ring: packet not from this ring or already returned")
)

var errNoWaker = errors.New("ring: Wait needs a consumer built with a Waker")
