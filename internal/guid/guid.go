// Package guid is ringtun's adapter GUID: its text form, random ones, and
// the one conversion to and from the memory layout of Windows and
// wintun.h.
//
// ringtun keeps a GUID's 16 bytes in the order they are written in its text
// form, {00112233-4455-6677-8899-aabbccddeeff}. Windows (and so Wintun's C
// API) keeps it as a struct of Data1 (uint32), Data2 and Data3 (uint16),
// each little-endian in memory, then Data4 (8 bytes in order): the first
// eight bytes are swapped within each field. Windows and FromWindows are the
// only places that know it.
package guid

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// GUID is 16 bytes in text order.
type GUID [16]byte

// New returns a random (version 4, variant 1) GUID.
func New() GUID {
	var g GUID
	rand.Read(g[:])
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// String formats g as {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}, in lower case.
func (g GUID) String() string {
	h := hex.EncodeToString(g[:])
	return "{" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32] + "}"
}

// Parse parses the form String returns, with or without braces, in either
// case.
func Parse(s string) (GUID, error) {
	var g GUID
	t := strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if len(t) != 36 || len(t) == len(s)-1 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
		return g, fmt.Errorf("ringtun: invalid GUID %q", s)
	}
	h := t[0:8] + t[9:13] + t[14:18] + t[19:23] + t[24:36]
	if _, err := hex.Decode(g[:], []byte(h)); err != nil {
		return g, fmt.Errorf("ringtun: invalid GUID %q", s)
	}
	return g, nil
}

// Windows returns g in the memory layout of a Windows GUID struct.
func (g GUID) Windows() [16]byte {
	return swapFields(g)
}

// FromWindows returns the GUID whose Windows memory layout is b.
func FromWindows(b [16]byte) GUID {
	return GUID(swapFields(b))
}

// swapFields reverses the bytes of Data1, Data2 and Data3; the conversion
// is its own inverse.
func swapFields(b [16]byte) [16]byte {
	b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
	b[4], b[5] = b[5], b[4]
	b[6], b[7] = b[7], b[6]
	return b
}
