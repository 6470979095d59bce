package errs

import "errors"

// Windows' numeric error codes for the package's errors: the C library
// (libringtun) sets them as the last error, and the Windows binding turns
// the Wintun driver's back into the package's errors.
const (
	Win32Success             uint32 = 0
	Win32FileNotFound        uint32 = 2
	Win32TooManyOpenFiles    uint32 = 4
	Win32AccessDenied        uint32 = 5
	Win32InvalidHandle       uint32 = 6
	Win32NotEnoughMemory     uint32 = 8
	Win32InvalidData         uint32 = 13
	Win32GenFailure          uint32 = 31
	Win32HandleEOF           uint32 = 38
	Win32NotSupported        uint32 = 50
	Win32InvalidParameter    uint32 = 87
	Win32BufferOverflow      uint32 = 111
	Win32InvalidName         uint32 = 123
	Win32AlreadyExists       uint32 = 183
	Win32NoMoreItems         uint32 = 259
	Win32NoUnicodeTranslate  uint32 = 1113
	Win32AlreadyInitialized  uint32 = 1247
	Win32ObjectAlreadyExists uint32 = 5010
)

// win32 pairs errors with codes. Where several errors share a code, the
// first listed is the one FromWin32 gives.
var win32 = []struct {
	err  error
	code uint32
}{
	{AdapterNotFound, Win32FileNotFound},
	{AccessDenied, Win32AccessDenied},
	{InvalidData, Win32InvalidData},
	{SessionEnded, Win32HandleEOF},
	{NotSupported, Win32NotSupported},
	{InvalidCapacity, Win32InvalidParameter},
	{InvalidPacketSize, Win32InvalidParameter},
	{InvalidConfig, Win32InvalidParameter},
	{BufferOverflow, Win32BufferOverflow},
	{InvalidName, Win32InvalidName},
	{AdapterExists, Win32AlreadyExists},
	{RouteConflict, Win32ObjectAlreadyExists},
	{NoMoreItems, Win32NoMoreItems},
	{AlreadyInitialized, Win32AlreadyInitialized},
}

// Win32Code returns the Windows error code for err: 0 for nil, the code of
// the first package error err matches, ERROR_GEN_FAILURE otherwise.
func Win32Code(err error) uint32 {
	if err == nil {
		return Win32Success
	}
	for _, e := range win32 {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return Win32GenFailure
}

// FromWin32 returns the package error for a Windows error code, or nil
// if no package error has that code.
func FromWin32(code uint32) error {
	for _, e := range win32 {
		if e.code == code {
			return e.err
		}
	}
	return nil
}
