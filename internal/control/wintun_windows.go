package control

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unicode/utf16"

	"github.com/ringtun/ringtun/internal/errs"
	"github.com/ringtun/ringtun/internal/guid"
	"golang.org/x/sys/windows"
	"golang.zx2c4.com/wintun"
)

// Wintun is the Manager on Windows: the signed Wintun driver through
// wintun.dll, which must lie next to the program (or in System32). What
// Wintun has no call for fails with errs.NotSupported: listing adapters,
// persistent adapters, and configuration (addresses, routes and MTU are
// set with iphlpapi, for instance golang.zx2c4.com/wireguard/windows's
// winipcfg, on the adapter's LUID).
type Wintun struct{}

// maxName is Wintun's limit on names and tunnel types: MAX_ADAPTER_NAME
// UTF-16 units with the terminating zero.
const maxName = 128

// CheckWindowsName refuses a name or tunnel type Wintun cannot take.
func CheckWindowsName(what, s string) error {
	n := len(utf16.Encode([]rune(s)))
	switch {
	case s == "":
		return fmt.Errorf("%w: the %s is empty", errs.InvalidName, what)
	case n >= maxName:
		return fmt.Errorf("%w: the %s is %d UTF-16 units, at most %d", errs.InvalidName, what, n, maxName-1)
	}
	for _, r := range s {
		if r == 0 {
			return fmt.Errorf("%w: the %s has a NUL character", errs.InvalidName, what)
		}
	}
	return nil
}

// WindowsGUID returns g as Wintun's windows.GUID.
func WindowsGUID(g guid.GUID) windows.GUID {
	b := g.Windows()
	w := windows.GUID{
		Data1: binary.LittleEndian.Uint32(b[0:4]),
		Data2: binary.LittleEndian.Uint16(b[4:6]),
		Data3: binary.LittleEndian.Uint16(b[6:8]),
	}
	copy(w.Data4[:], b[8:])
	return w
}

// FromWintun turns an error of package wintun into the package's errors:
// the Win32 codes errs knows, and a wintun.dll that cannot be loaded as
// errs.NotSupported.
func FromWintun(what string, err error) error {
	if err == nil {
		return nil
	}
	var code windows.Errno
	if errors.As(err, &code) {
		if code == windows.ERROR_MOD_NOT_FOUND {
			return fmt.Errorf("%s: wintun.dll not found next to the program: %w (%v)", what, errs.NotSupported, err)
		}
		if e := errs.FromWin32(uint32(code)); e != nil {
			return fmt.Errorf("%s: %w (%v)", what, e, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (Wintun) Create(name string, meta Meta, cfg *Config) (Adapter, error) {
	if err := errors.Join(CheckWindowsName("name", name), CheckWindowsName("tunnel type", meta.TunnelType)); err != nil {
		return nil, err
	}
	if meta.Persistent {
		return nil, fmt.Errorf("%w: Wintun adapters are not persistent", errs.NotSupported)
	}
	if cfg != nil {
		return nil, errConfigure
	}
	g := WindowsGUID(meta.GUID)
	w, err := wintun.CreateAdapter(name, meta.TunnelType, &g)
	if err != nil {
		return nil, FromWintun("create adapter "+name, err)
	}
	return &wintunAdapter{w: w, name: name, meta: meta}, nil
}

func (Wintun) Open(name string) (Adapter, error) {
	if err := CheckWindowsName("name", name); err != nil {
		return nil, err
	}
	w, err := wintun.OpenAdapter(name)
	if err != nil {
		return nil, FromWintun("open adapter "+name, err)
	}
	// Wintun does not say an opened adapter's tunnel type or GUID.
	return &wintunAdapter{w: w, name: name}, nil
}

func (Wintun) List() ([]Info, error) {
	return nil, fmt.Errorf("%w: Wintun cannot list its adapters", errs.NotSupported)
}

func (Wintun) Uninstall() error { return FromWintun("uninstall", wintun.Uninstall()) }

func (Wintun) Version() (uint32, error) {
	v, err := wintun.RunningVersion()
	return v, FromWintun("running version", err)
}

var errConfigure = fmt.Errorf("%w: configure a Wintun adapter with iphlpapi (winipcfg) on its LUID", errs.NotSupported)

// wintunAdapter is a handle from wintun.CreateAdapter or OpenAdapter.
type wintunAdapter struct {
	w    *wintun.Adapter
	name string
	meta Meta

	mu     sync.Mutex
	closed bool
}

func (a *wintunAdapter) Name() string               { return a.name }
func (a *wintunAdapter) Index() int                 { return 0 }
func (a *wintunAdapter) LUID() uint64               { return a.w.LUID() }
func (a *wintunAdapter) Meta() Meta                 { return a.meta }
func (a *wintunAdapter) Configure(cfg Config) error { return errConfigure }

func (a *wintunAdapter) AttachSession(capacity uint32) (*Attached, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, fmt.Errorf("start session on %s: %w", a.name, errs.SessionEnded)
	}
	s, err := a.w.StartSession(capacity)
	if err != nil {
		return nil, FromWintun("start session on "+a.name, err)
	}
	return &Attached{Session: s, Name: a.name, MTU: 0xFFFF}, nil
}

// Delete closes the handle: Wintun deletes an adapter when the handle
// that created it closes, and has no other way.
func (a *wintunAdapter) Delete() error { return a.Close() }

func (a *wintunAdapter) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	return FromWintun("close adapter "+a.name, a.w.Close())
}
