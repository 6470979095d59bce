// Package ring implements the Wintun ring buffer protocol over a plain []byte.
//
// A ring is one shared memory region: a 12-byte header followed by
// capacity+0x10000 data bytes.
//
//	offset 0   Head      uint32  first unconsumed byte (written by the consumer)
//	offset 4   Tail      uint32  first free byte       (written by the producer)
//	offset 8   Alertable int32   1 while the consumer sleeps (written by the consumer)
//	offset 12  Data      [capacity + 0x10000]byte
//
// All three words are in the machine's native byte order, exactly as
// wintun.dll and wintun.sys lay them out. Data holds records: a 4-byte
// native-endian Size, then Size bytes of packet, padded to a multiple of 4.
// A record starts at an offset below capacity and never wraps; the trailing
// 0x10000 bytes give room for a record that starts near the end. Offsets wrap
// with & (capacity-1). Head == Tail means empty; the producer keeps one
// 4-byte slot free so that a full ring never looks empty. A Head or Tail of
// capacity or more (0xFFFFFFFF in practice) means the ring is terminated.
//
// The producer side (Allocate, Commit) and the consumer side (Receive,
// Release) are each safe for concurrent use by several goroutines. Records
// may be committed and released in any order: an allocated record carries
// the pending bit 0x80000000 in its Size until it is committed, a received
// record gets the released bit 0x80000000 when it is released, and the
// shared Tail and Head advance only over a contiguous run of committed or
// released records. Records are delivered in allocation order.
//
// The two sides may live in different processes (see [Shared] on Linux), so
// each side treats every byte the other side can write as hostile: Head,
// Tail and record sizes are validated before use, and a ring that fails
// validation gives a sticky error wrapping [ErrCorrupt]. Nothing the peer
// writes can make this package panic or touch memory outside the slice.
//
// The package makes no system calls of its own; the Linux files add a
// memfd-backed shared region and an eventfd [Waker].
package ring
