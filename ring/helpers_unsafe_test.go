package ring

import "unsafe"

// The tests' only use of unsafe: telling where a slice points, to check
// that the ring hands out its own memory, in place.

// addr is the address of b's first byte.
func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// sameStart reports whether a and b start at the same byte.
func sameStart(a, b []byte) bool { return unsafe.SliceData(a) == unsafe.SliceData(b) }
