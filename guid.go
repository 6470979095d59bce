package ringtun

import "github.com/ringtun/ringtun/internal/guid"

// GUID identifies an adapter, as in Wintun: 16 bytes in the order its
// text form is written. ringtun keeps it in the interface alias, so it
// survives across processes. WindowsLayout and GUIDFromWindowsLayout
// convert to and from the memory layout of a Windows GUID struct, which
// wintun.h uses.
type GUID [16]byte

// NewGUID returns a random (version 4) GUID.
func NewGUID() GUID { return GUID(guid.New()) }

// String formats g as {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}, bytes in order.
func (g GUID) String() string { return guid.GUID(g).String() }

// ParseGUID parses the form String returns, with or without braces, in
// either case.
func ParseGUID(s string) (GUID, error) {
	g, err := guid.Parse(s)
	return GUID(g), err
}

// WindowsLayout returns g as a Windows GUID struct lies in memory: Data1
// (4 bytes), Data2 and Data3 (2 bytes each) little-endian, then Data4.
// {deadbabe-cafe-beef-0123-456789abcdef} is be ba ad de fe ca ef be 01 23
// 45 67 89 ab cd ef.
func (g GUID) WindowsLayout() [16]byte { return guid.GUID(g).Windows() }

// GUIDFromWindowsLayout returns the GUID whose Windows GUID struct is b.
func GUIDFromWindowsLayout(b [16]byte) GUID { return GUID(guid.FromWindows(b)) }
