package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ringtun/ringtun/internal/errs"
)

// The wire protocol, version 1.
//
// Every message is a 16-byte header and a body, all integers
// little-endian, no field pointer-sized and no padding, so that 32-bit and
// 64-bit programs agree:
//
//	magic   [4]byte  "RTUN"
//	version uint16   ProtocolVersion
//	op      uint16   the request's Op; a response has respFlag set
//	id      uint32   chosen by the client, echoed in the response
//	length  uint32   the body's length, at most MaxBody
//
// A body is a sequence of fields: u8, u16, u32, u64; strings and byte
// strings as a u16 length and the bytes; prefixes as a family byte (4 or
// 6), 16 address bytes and a prefix length. A response body starts with a
// u32 status (0 for success, an errorCode otherwise) and a string message.
// The response to OpStartSession carries the session's TUN queue as one
// file descriptor (SCM_RIGHTS) with its first byte; no other message
// carries any, and descriptors that come with any other message are
// closed unread.
//
// A malformed message (bad magic or version, a body over MaxBody, a field
// past the body's end, bytes left over, an unknown op) ends the connection
// that sent it.

// ProtocolVersion is the version of the protocol this package speaks.
const ProtocolVersion = 1

// MaxBody bounds a message's body.
const MaxBody = 64 << 10

const (
	headerLen = 16
	magic     = "RTUN"
	respFlag  = 0x8000
	// maxPrefixes bounds the addresses and routes of one Config.
	maxPrefixes = 1024
)

// Op is a request type.
type Op uint16

// The requests.
const (
	OpVersion      Op = 1
	OpCreate       Op = 2
	OpOpen         Op = 3
	OpClose        Op = 4
	OpDelete       Op = 5
	OpConfigure    Op = 6
	OpList         Op = 7
	OpStartSession Op = 8
	OpEndSession   Op = 9
	OpUninstall    Op = 10
)

func (o Op) String() string {
	names := [...]string{"", "version", "create", "open", "close", "delete", "configure", "list", "start session", "end session", "uninstall"}
	if int(o) < len(names) && o != 0 {
		return names[o]
	}
	return fmt.Sprintf("op %d", uint16(o))
}

// header is a decoded message header.
type header struct {
	op     uint16
	id     uint32
	length uint32
}

// errProtocol is wrapped by every error for a malformed message.
var errProtocol = errors.New("ringtund protocol error")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

func encodeHeader(b []byte, h header) {
	copy(b, magic)
	binary.LittleEndian.PutUint16(b[4:], ProtocolVersion)
	binary.LittleEndian.PutUint16(b[6:], h.op)
	binary.LittleEndian.PutUint32(b[8:], h.id)
	binary.LittleEndian.PutUint32(b[12:], h.length)
}

func decodeHeader(b []byte) (header, error) {
	if len(b) < headerLen || string(b[:4]) != magic {
		return header{}, protoErr("bad magic")
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != ProtocolVersion {
		return header{}, protoErr("protocol version %d, want %d", v, ProtocolVersion)
	}
	h := header{op: binary.LittleEndian.Uint16(b[6:]), id: binary.LittleEndian.Uint32(b[8:]), length: binary.LittleEndian.Uint32(b[12:])}
	if h.length > MaxBody {
		return header{}, protoErr("body of %d bytes, more than %d", h.length, MaxBody)
	}
	return h, nil
}

// enc appends fields to a body.
type enc struct{ b []byte }

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) bool(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}
func (e *enc) bytes(v []byte) { e.u16(uint16(len(v))); e.b = append(e.b, v...) }
func (e *enc) str(v string)   { e.bytes([]byte(v)) }
func (e *enc) guid(g [16]byte) {
	e.b = append(e.b, g[:]...)
}
func (e *enc) prefix(p netip.Prefix) {
	fam := uint8(4)
	if p.Addr().Is6() {
		fam = 6
	}
	a := p.Addr().As16()
	if fam == 4 {
		a4 := p.Addr().As4()
		a = [16]byte{}
		copy(a[:], a4[:])
	}
	e.u8(fam)
	e.b = append(e.b, a[:]...)
	e.u8(uint8(p.Bits()))
}
func (e *enc) prefixes(ps []netip.Prefix) {
	e.bool(ps != nil)
	e.u16(uint16(len(ps)))
	for _, p := range ps {
		e.prefix(p)
	}
}

// dec reads fields from a body; the first error sticks and every later
// read returns zero values.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = protoErr("field past the end of the body")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}
func (d *dec) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}
func (d *dec) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}
func (d *dec) bool() bool {
	switch v := d.u8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		if d.err == nil {
			d.err = protoErr("boolean %d", v)
		}
		return false
	}
}
func (d *dec) bytes() []byte { return d.take(int(d.u16())) }
func (d *dec) str() string   { return string(d.bytes()) }
func (d *dec) guid() (g [16]byte) {
	copy(g[:], d.take(16))
	return g
}
func (d *dec) prefix() netip.Prefix {
	fam, raw, bits := d.u8(), d.take(16), int(d.u8())
	if d.err != nil {
		return netip.Prefix{}
	}
	var a netip.Addr
	switch fam {
	case 4:
		a = netip.AddrFrom4([4]byte(raw[:4]))
	case 6:
		a = netip.AddrFrom16([16]byte(raw))
	default:
		d.err = protoErr("address family %d", fam)
		return netip.Prefix{}
	}
	p := netip.PrefixFrom(a, bits)
	if !p.IsValid() {
		d.err = protoErr("prefix length %d for %v", bits, a)
	}
	return p
}
func (d *dec) prefixes() []netip.Prefix {
	set, n := d.bool(), int(d.u16())
	if d.err != nil {
		return nil
	}
	if n > maxPrefixes || !set && n != 0 {
		d.err = protoErr("%d prefixes", n)
		return nil
	}
	if !set {
		return nil
	}
	ps := make([]netip.Prefix, 0, n)
	for range n {
		ps = append(ps, d.prefix())
	}
	return ps
}

// end fails if the body had bytes left over, or an earlier read failed.
func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = protoErr("%d bytes left over", len(d.b))
	}
	return d.err
}

// errorCode is a response's status: 0 for success.
type errorCode uint32

const (
	codeOK errorCode = iota
	codeAccessDenied
	codeNotFound
	codeExists
	codeAlreadyInitialized
	codeInvalidName
	codeInvalidConfig
	codeRouteConflict
	codeInvalidCapacity
	codeSessionEnded
	codeProtocol
	codeOther
)

// codeTable pairs codes with the errors they stand for.
var codeTable = []struct {
	code errorCode
	err  error
}{
	{codeAccessDenied, errs.AccessDenied},
	{codeNotFound, errs.AdapterNotFound},
	{codeExists, errs.AdapterExists},
	{codeAlreadyInitialized, errs.AlreadyInitialized},
	{codeInvalidName, errs.InvalidName},
	{codeInvalidConfig, errs.InvalidConfig},
	{codeRouteConflict, errs.RouteConflict},
	{codeInvalidCapacity, errs.InvalidCapacity},
	{codeSessionEnded, errs.SessionEnded},
	{codeProtocol, errProtocol},
}

// codeOf is the code a server sends for err.
func codeOf(err error) errorCode {
	for _, c := range codeTable {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return codeOther
}

// remoteError is an error a server reported: its message, and the error
// value its code stands for, for errors.Is.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// errorFrom rebuilds a server's error on the client's side.
func errorFrom(code errorCode, msg string) error {
	for _, c := range codeTable {
		if c.code == code {
			return &remoteError{msg: msg, kind: c.err}
		}
	}
	return errors.New(msg)
}
