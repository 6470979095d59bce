package broker

import (
	"errors"
	"net/netip"
	"os"
	"reflect"
	"testing"

	"github.com/ringtun/ringtun/internal/control"
	"github.com/ringtun/ringtun/internal/errs"
	"github.com/ringtun/ringtun/internal/guid"
)

// sampleRequests is one request of every type, for round trips and seeds.
func sampleRequests() map[Op]any {
	cfg := &control.Config{
		Addresses:   []netip.Prefix{netip.MustParsePrefix("198.18.7.7/24"), netip.MustParsePrefix("2001:db8::7/64")},
		Routes:      []netip.Prefix{},
		RouteMetric: 10, MTU: 1420,
	}
	return map[Op]any{
		OpVersion:      nil,
		OpList:         nil,
		OpUninstall:    nil,
		OpCreate:       &createReq{name: "vpn0", tunnelType: "MyVPN", guid: guid.New(), persistent: true, config: cfg},
		OpOpen:         &nameReq{name: "vpn0"},
		OpClose:        &handleReq{handle: 3},
		OpDelete:       &handleReq{handle: 4},
		OpEndSession:   &handleReq{handle: 5},
		OpConfigure:    &configureReq{handle: 6, config: *cfg},
		OpStartSession: &startReq{handle: 7, capacity: 0x400000},
	}
}

// TestRequestRoundTrip: every request decodes to what was encoded,
// including the difference between a nil and an empty prefix list.
func TestRequestRoundTrip(t *testing.T) {
	for op, req := range sampleRequests() {
		got, err := decodeRequest(op, encodeRequest(req))
		if err != nil {
			t.Errorf("%v: %v", op, err)
			continue
		}
		if !reflect.DeepEqual(got, req) {
			t.Errorf("%v: decoded %+v, want %+v", op, got, req)
		}
	}
	c := sampleRequests()[OpCreate].(*createReq)
	c.config.Addresses = nil
	got, _ := decodeRequest(OpCreate, encodeRequest(c))
	if g := got.(*createReq); g.config.Addresses != nil || g.config.Routes == nil {
		t.Errorf("nil and empty lists did not survive: %+v", g.config)
	}
}

// TestDecodeRefuses: truncation, extra bytes, unknown ops and bad field
// values are protocol errors.
func TestDecodeRefuses(t *testing.T) {
	body := encodeRequest(sampleRequests()[OpCreate])
	for i := range len(body) {
		if _, err := decodeRequest(OpCreate, body[:i]); !errors.Is(err, errProtocol) {
			t.Fatalf("a create cut to %d bytes: %v", i, err)
		}
	}
	for name, c := range map[string]struct {
		op   Op
		body []byte
	}{
		"extra byte":   {OpVersion, []byte{0}},
		"unknown op":   {Op(99), nil},
		"bad boolean":  {OpCreate, append(append([]byte{0, 0, 0, 0}, make([]byte, 16)...), 2, 0)},
		"no config":    {OpConfigure, []byte{1, 0, 0, 0, 0}},
		"bad family":   {OpConfigure, append([]byte{1, 0, 0, 0, 1, 1, 1, 0, 5}, make([]byte, 17+10)...)},
		"prefix bits":  {OpConfigure, append(append([]byte{1, 0, 0, 0, 1, 1, 1, 0, 4}, make([]byte, 16)...), 33, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
		"huge MTU":     {OpConfigure, []byte{1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}},
		"many entries": {OpConfigure, []byte{1, 0, 0, 0, 1, 1, 0xff, 0xff}},
	} {
		if _, err := decodeRequest(c.op, c.body); !errors.Is(err, errProtocol) {
			t.Errorf("%s: %v, want a protocol error", name, err)
		}
	}
	if _, err := decodeHeader([]byte("RTUN\x01\x00\x01\x00\x00\x00\x00\x00\x01\x00\x01\x00")); !errors.Is(err, errProtocol) {
		t.Errorf("a body over MaxBody: %v", err)
	}
}

// TestErrorCodes: every error value crosses the socket as itself.
func TestErrorCodes(t *testing.T) {
	for _, e := range []error{errs.AccessDenied, errs.AdapterNotFound, errs.AdapterExists, errs.AlreadyInitialized,
		errs.InvalidName, errs.InvalidConfig, errs.RouteConflict, errs.InvalidCapacity, errs.SessionEnded} {
		got := errorFrom(codeOf(e), "msg")
		if !errors.Is(got, e) || got.Error() != "msg" {
			t.Errorf("%v came back as %v", e, got)
		}
	}
	if !errors.Is(errorFrom(codeOf(errs.AccessDenied), "x"), os.ErrPermission) {
		t.Error("AccessDenied lost os.ErrPermission on the way")
	}
}

// FuzzDecodeRequest: no body makes the decoder panic, and whatever it
// accepts encodes and decodes to itself.
func FuzzDecodeRequest(f *testing.F) {
	for op, req := range sampleRequests() {
		f.Add(uint16(op), encodeRequest(req))
	}
	f.Add(uint16(OpConfigure), []byte{1, 0, 0, 0, 1, 1, 1, 0, 4})
	f.Fuzz(func(t *testing.T, op uint16, body []byte) {
		decodeHeader(body)
		req, err := decodeRequest(Op(op), body)
		if err != nil {
			if !errors.Is(err, errProtocol) {
				t.Fatalf("error %v is not a protocol error", err)
			}
			return
		}
		again, err := decodeRequest(Op(op), encodeRequest(req))
		if err != nil || !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip of %+v: %+v, %v", req, again, err)
		}
	})
}
