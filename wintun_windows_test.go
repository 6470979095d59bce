package ringtun

// The Windows binding's checks that need no Wintun driver: they fail
// before wintun.dll is loaded. CI compiles them for windows/amd64, 386 and
// arm64.

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/ringtun/ringtun/internal/control"
	"golang.org/x/sys/windows"
)

func TestWindowsRefusals(t *testing.T) {
	cfg := &Config{Addresses: []netip.Prefix{netip.MustParsePrefix("198.18.7.7/24")}}
	cases := []struct {
		what string
		err  error
		want error
	}{
		{"Config at creation", second(CreateAdapterWithOptions("Demo", "Example", AdapterOptions{Config: cfg})), ErrNotSupported},
		{"a persistent adapter", second(CreateAdapterWithOptions("Demo", "Example", AdapterOptions{Persistent: true})), ErrNotSupported},
		{"an empty name", second(CreateAdapter("", "Example", nil)), ErrInvalidName},
		{"a name of 128 units", second(CreateAdapter(strings.Repeat("a", 128), "Example", nil)), ErrInvalidName},
		{"a tunnel type of 128 units", second(CreateAdapter("Demo", strings.Repeat("t", 128), nil)), ErrInvalidName},
		{"opening an empty name", second(OpenAdapter("")), ErrInvalidName},
		{"listing adapters", second(Adapters()), ErrNotSupported},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
		}
	}
	if err := control.CheckWindowsName("name", strings.Repeat("é", 127)); err != nil {
		t.Errorf("a name of 127 units: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestWindowsGUID(t *testing.T) {
	g, err := ParseGUID("{deadbabe-cafe-beef-0123-456789abcdef}")
	if err != nil {
		t.Fatal(err)
	}
	w := control.WindowsGUID([16]byte(g))
	want := windows.GUID{Data1: 0xdeadbabe, Data2: 0xcafe, Data3: 0xbeef, Data4: [8]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}}
	if w != want {
		t.Errorf("WindowsGUID = %+v, want %+v", w, want)
	}
}

func TestWindowsErrors(t *testing.T) {
	for code, want := range map[windows.Errno]error{
		windows.ERROR_FILE_NOT_FOUND:      ErrAdapterNotFound,
		windows.ERROR_ALREADY_EXISTS:      ErrAdapterExists,
		windows.ERROR_ACCESS_DENIED:       ErrAccessDenied,
		windows.ERROR_MOD_NOT_FOUND:       ErrNotSupported,
		windows.ERROR_ALREADY_INITIALIZED: ErrAlreadyInitialized,
	} {
		if err := control.FromWintun("call", fmt.Errorf("wintun: %w", code)); !errors.Is(err, want) {
			t.Errorf("FromWintun(%d) = %v, want %v", code, err, want)
		}
	}
	for code, want := range map[windows.Errno]error{
		windows.ERROR_NO_MORE_ITEMS:   ErrNoMoreItems,
		windows.ERROR_HANDLE_EOF:      ErrSessionEnded,
		windows.ERROR_BUFFER_OVERFLOW: ErrBufferOverflow,
		windows.ERROR_INVALID_DATA:    ErrInvalidData,
	} {
		if err := fromWintunPacket(code); err != want {
			t.Errorf("fromWintunPacket(%d) = %v, want %v itself", code, err, want)
		}
	}
}
