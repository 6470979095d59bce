// Package control is the control plane of ringtun adapters: their life
// cycle (create, open, list, delete), their network configuration, the
// one-session rule and the metadata that marks an interface as an adapter.
//
// It is one interface, Manager with its Adapter handles, and one
// implementation per way of managing adapters: Local, which acts in the
// process through rtnetlink and /dev/net/tun, and (to come) the ringtund
// client and Windows' Wintun driver. The public package calls the
// interface and never asks which implementation is behind it.
//
// Its types are its own and small; the public package converts. Its errors
// are internal/errs values, which the public package re-exports.
package control

import (
	"net/netip"

	"github.com/ringtun/ringtun/internal/guid"
)

// Meta is what identifies an adapter beyond its name.
type Meta struct {
	GUID       guid.GUID
	Persistent bool
	TunnelType string
}

// Config is a network configuration, applied declaratively: nil slices and
// a zero MTU leave that part as it is. The caller has validated each item
// on its own (prefix syntax, MTU range); Configure checks that the whole
// fits the adapter.
type Config struct {
	Addresses   []netip.Prefix
	Routes      []netip.Prefix
	RouteMetric uint32
	MTU         int
}

// Info describes an adapter, as List gives it.
type Info struct {
	Name  string
	Index int
	Meta  Meta
	InUse bool // it has a session, in any process
}

// Level is a log message's severity.
type Level int

// The levels, in the order of the public package's LogLevel.
const (
	LevelInfo Level = iota
	LevelWarn
	LevelErr
)

// Logger receives log messages. It must be safe for concurrent use.
type Logger func(level Level, msg string)

// Manager creates, finds and deletes adapters, in a place it was made for
// (Local: a network namespace).
type Manager interface {
	// Create makes adapter name with meta, brings it up and applies cfg
	// if not nil. The handle keeps a non-persistent adapter alive.
	Create(name string, meta Meta, cfg *Config) (Adapter, error)
	// Open returns a handle to an existing adapter.
	Open(name string) (Adapter, error)
	// List lists every adapter.
	List() ([]Info, error)
	// Uninstall deletes every adapter that has no session.
	Uninstall() error
	// Version is the version of what manages the adapters:
	// (major<<16)|minor.
	Version() (uint32, error)
}

// NamespaceRunner is a Manager that can act in another network namespace:
// RunIn runs fn on a thread in the namespace at path, so that the
// Manager's calls fn makes act there (and the handles they return keep
// acting there). The daemon's client is not one: its adapters are in the
// daemon's namespace.
type NamespaceRunner interface {
	RunIn(path string, fn func() error) error
}

// Version is the version of this implementation of ringtun, which Local
// reports.
const Version = 0<<16 | 1

// Adapter is a handle to one adapter. Its methods are safe for concurrent
// use; after Close they fail with errs.SessionEnded.
type Adapter interface {
	// Name is the adapter's interface name, as of the handle's last look.
	Name() string
	// Index is the adapter's interface index.
	Index() int
	// LUID is the adapter's locally unique identifier: the interface
	// index on Linux, the NET_LUID on Windows.
	LUID() uint64
	// Meta is the adapter's metadata.
	Meta() Meta
	// Configure applies cfg whole or not at all, and brings it up.
	Configure(cfg Config) error
	// AttachSession takes the adapter's one session, for rings of
	// capacity bytes: errs.AlreadyInitialized if it has one, in any
	// process. The caller owns the returned queue; closing it, and
	// calling Release, ends the session's claim.
	AttachSession(capacity uint32) (*Attached, error)
	// Delete deletes the adapter, persistent or not, unless it has a
	// session (errs.AlreadyInitialized), and closes the handle.
	Delete() error
	// Close closes the handle, and deletes the adapter if the handle
	// created it and it is not persistent.
	Close() error
}
