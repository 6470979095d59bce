package errs

import (
	"errors"
	"fmt"
	"testing"
)

// TestWin32RoundTrip: every code FromWin32 knows maps back to itself, and
// wrapped errors keep their code.
func TestWin32RoundTrip(t *testing.T) {
	for _, e := range win32 {
		if got := Win32Code(fmt.Errorf("context: %w", e.err)); got != e.code {
			t.Errorf("Win32Code(wrapped %v) = %d, want %d", e.err, got, e.code)
		}
		back := FromWin32(e.code)
		if back == nil || Win32Code(back) != e.code {
			t.Errorf("FromWin32(%d) = %v, which maps to %d", e.code, back, Win32Code(back))
		}
	}
	want := map[error]uint32{
		NoMoreItems: 259, SessionEnded: 38, BufferOverflow: 111, InvalidData: 13,
		AlreadyInitialized: 1247, AccessDenied: 5, AdapterExists: 183, AdapterNotFound: 2,
		InvalidCapacity: 87, InvalidName: 123,
	}
	for err, code := range want {
		if got := Win32Code(err); got != code {
			t.Errorf("Win32Code(%v) = %d, want Windows' %d", err, got, code)
		}
	}
	if Win32Code(nil) != 0 || Win32Code(errors.New("other")) != Win32GenFailure {
		t.Error("nil must be ERROR_SUCCESS and an unknown error ERROR_GEN_FAILURE")
	}
	if FromWin32(12345) != nil {
		t.Error("FromWin32 of an unknown code must be nil")
	}
}
