package ring

import (
	"sync/atomic"
	"unsafe"
)

// This file holds every use of package unsafe in the ring code: viewing the
// three shared header words as atomics, building record slices that keep
// their address even when empty, and mapping a slice back to its record.

// headerWords returns the shared Head, Tail and Alertable words of mem,
// which the caller has checked to be at least HeaderSize bytes long and
// 4-byte aligned.
func headerWords(mem []byte) (head, tail *atomic.Uint32, alertable *atomic.Int32) {
	p := unsafe.Pointer(unsafe.SliceData(mem))
	return (*atomic.Uint32)(p),
		(*atomic.Uint32)(unsafe.Add(p, 4)),
		(*atomic.Int32)(unsafe.Add(p, 8))
}

// aligned4 reports whether mem starts on a 4-byte boundary.
func aligned4(mem []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%4 == 0
}

// packetAt returns data[off:off+n] with capacity n. Unlike slicing, it keeps
// the address of data[off] when n is 0, so that a zero-length record can
// still be committed or released by its slice.
func packetAt(data []byte, off, n uint32) []byte {
	_ = data[off : off+n] // bounds check only: reads no byte of data
	return unsafe.Slice(&data[off], n)
}

// offsetIn returns the offset of p's first byte from the start of data, and
// false when p does not point into data.
func offsetIn(data, p []byte) (uint32, bool) {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	if p == nil || at < base || at-base >= uintptr(len(data)) {
		return 0, false
	}
	return uint32(at - base), true
}

// wordAt returns the 4-byte word at the start of mem, which the caller has
// checked to be at least 4 bytes long and 4-byte aligned, as an atomic.
func wordAt(mem []byte) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(unsafe.SliceData(mem)))
}
