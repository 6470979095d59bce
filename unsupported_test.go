//go:build !linux && !windows

package ringtun

import (
	"errors"
	"testing"
)

// TestNotSupported: on a platform without adapters every entry point
// fails with ErrNotSupported (CI compiles this for windows and darwin).
func TestNotSupported(t *testing.T) {
	if _, err := CreateAdapter("Demo", "Example", nil); !errors.Is(err, ErrNotSupported) {
		t.Errorf("CreateAdapter: %v", err)
	}
	if _, err := OpenAdapter("Demo"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("OpenAdapter: %v", err)
	}
	if _, err := Adapters(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Adapters: %v", err)
	}
	if err := Uninstall(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Uninstall: %v", err)
	}
	if _, err := RunningVersion(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("RunningVersion: %v", err)
	}
}
