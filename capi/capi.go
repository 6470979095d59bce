//go:build linux && cgo

// Command capi is libringtun, Wintun's C API (wintun.h) over ringtun,
// built with
//
//	make -C capi             # libringtun.so, wintun.h, ringtun.pc
//	make -C capi ARCH=386    # the same for 32-bit programs
//
// The adapter calls (create, open, close, LUID, version, delete, start and
// end a session) run in Go, here: they are rare and need the control
// plane. The four packet calls and their wake-ups run in C (ringtun.c) on
// a second mapping of the session's memory, so that a packet costs no call
// into Go: a SharedSession's rings, whose driver half runs in Go.
//
// Handles: an adapter handle is an id of this file's table (low bits 01);
// session and event handles belong to ringtun.c's table (10 and 11). Every
// call looks its handle up, so a stale or foreign handle is an error
// (ERROR_INVALID_HANDLE), never a crash.
//
// The library installs no signal handler (it never calls signal.Notify):
// the program's own handling of SIGINT and the rest stays as it was.
package main

/*
#include <stdint.h>
#include <stddef.h>
#include "wintun.h"
#include "capi.h"

static inline void rtLog(int level, uint64_t ts, _GoString_ msg) {
	rtLogUTF8(level, ts, _GoStringPtr(msg), _GoStringLen(msg));
}
*/
import "C"

import (
	"sync"
	"time"

	"github.com/ringtun/ringtun"
	"github.com/ringtun/ringtun/internal/errs"
)

func main() {}

func init() {
	// Every message goes to C, which hands it to the program's logger if
	// one is set (WintunSetLogger).
	ringtun.SetLogger(func(level ringtun.LogLevel, t time.Time, msg string) {
		C.rtLog(C.int(level), C.uint64_t(fileTime(t)), msg)
	})
}

// fileTime returns t in 100 ns units since 1601-01-01 UTC, Windows'
// FILETIME, which Wintun's logger receives.
func fileTime(t time.Time) uint64 {
	const unixTo1601 = 116444736000000000 // 100 ns units from 1601 to 1970
	return uint64(t.UnixNano()/100 + unixTo1601)
}

// handles is the table of adapter and session objects C refers to by id.
var handles = struct {
	sync.Mutex
	next     uintptr
	adapters map[uintptr]*ringtun.Adapter
	sessions map[uintptr]*ringtun.SharedSession
}{adapters: map[uintptr]*ringtun.Adapter{}, sessions: map[uintptr]*ringtun.SharedSession{}}

// Tag bits of handles; ringtun.c uses the same.
const (
	tagAdapter = 1
	tagSession = 2
)

func newID(tag uintptr) uintptr {
	handles.next++
	return handles.next<<2 | tag
}

func adapter(h C.uintptr_t) *ringtun.Adapter {
	handles.Lock()
	defer handles.Unlock()
	return handles.adapters[uintptr(h)]
}

func code(err error) C.uint32_t { return C.uint32_t(errs.Win32Code(err)) }

func addAdapter(a *ringtun.Adapter, out *C.uintptr_t) {
	handles.Lock()
	defer handles.Unlock()
	id := newID(tagAdapter)
	handles.adapters[id] = a
	*out = C.uintptr_t(id)
}

//export rtGoCreateAdapter
func rtGoCreateAdapter(name, tunnelType *C.char, g *C.GUID, out *C.uintptr_t) C.uint32_t {
	var opts ringtun.AdapterOptions
	if g != nil {
		var w [16]byte
		d1, d2, d3 := uint32(g.Data1), uint16(g.Data2), uint16(g.Data3)
		w[0], w[1], w[2], w[3] = byte(d1), byte(d1>>8), byte(d1>>16), byte(d1>>24)
		w[4], w[5], w[6], w[7] = byte(d2), byte(d2>>8), byte(d3), byte(d3>>8)
		for i := range 8 {
			w[8+i] = byte(g.Data4[i])
		}
		guid := ringtun.GUIDFromWindowsLayout(w)
		opts.GUID = &guid
	}
	a, err := ringtun.CreateAdapterWithOptions(C.GoString(name), C.GoString(tunnelType), opts)
	if err != nil {
		return code(err)
	}
	addAdapter(a, out)
	return 0
}

//export rtGoOpenAdapter
func rtGoOpenAdapter(name *C.char, out *C.uintptr_t) C.uint32_t {
	a, err := ringtun.OpenAdapter(C.GoString(name))
	if err != nil {
		return code(err)
	}
	addAdapter(a, out)
	return 0
}

//export rtGoCloseAdapter
func rtGoCloseAdapter(h C.uintptr_t) C.uint32_t {
	handles.Lock()
	a := handles.adapters[uintptr(h)]
	delete(handles.adapters, uintptr(h))
	handles.Unlock()
	if a == nil {
		return C.uint32_t(errs.Win32InvalidHandle)
	}
	return code(a.Close())
}

//export rtGoAdapterLUID
func rtGoAdapterLUID(h C.uintptr_t, out *C.uint64_t) C.uint32_t {
	a := adapter(h)
	if a == nil {
		return C.uint32_t(errs.Win32InvalidHandle)
	}
	*out = C.uint64_t(a.LUID())
	return 0
}

//export rtGoDeleteDriver
func rtGoDeleteDriver() C.uint32_t { return code(ringtun.Uninstall()) }

//export rtGoRunningVersion
func rtGoRunningVersion(out *C.uint32_t) C.uint32_t {
	v, err := ringtun.RunningVersion()
	*out = C.uint32_t(v)
	return code(err)
}

//export rtGoStartSession
func rtGoStartSession(h C.uintptr_t, capacity C.uint32_t, out *C.struct_rt_shared) C.uint32_t {
	a := adapter(h)
	if a == nil {
		return C.uint32_t(errs.Win32InvalidHandle)
	}
	s, err := a.StartSharedSession(uint32(capacity))
	if err != nil {
		return code(err)
	}
	handles.Lock()
	id := newID(tagSession)
	handles.sessions[id] = s
	handles.Unlock()
	notify.Store(id, s)
	out.id = C.uintptr_t(id)
	out.size = C.size_t(len(s.Memory()))
	out.mem_fd = C.int(s.MemFd())
	out.read_fd = C.int(s.ReadWaitFd())
	out.send_fd = C.int(s.SendFd())
	out.space_fd = C.int(s.SpaceFd())
	return 0
}

//export rtGoEndSession
func rtGoEndSession(id C.uintptr_t) {
	handles.Lock()
	s := handles.sessions[uintptr(id)]
	delete(handles.sessions, uintptr(id))
	handles.Unlock()
	notify.Delete(uintptr(id))
	if s != nil {
		s.End()
	}
}

// notify is the sessions by id again, for rtGoNotify, which runs on every
// WintunSendPacket that finds the driver's writer asleep and so must not
// wait for the handles' lock.
var notify sync.Map

//export rtGoNotify
func rtGoNotify(id C.uintptr_t) {
	if s, ok := notify.Load(uintptr(id)); ok {
		s.(*ringtun.SharedSession).Notify()
	}
}
