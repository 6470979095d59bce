// Package broker is ringtund's control plane: the protocol between the
// daemon and its clients, the server the daemon runs and the client the
// ringtun package uses when the process may not manage adapters itself.
//
// The daemon only manages adapters: it identifies each client by its
// socket's peer credentials (SO_PEERCRED), asks a Checker (package
// broker/policy) before every privileged action of a client that is not
// root, creates, configures and deletes adapters, and for a session
// attaches a TUN queue of the adapter and passes the queue's file
// descriptor to the client (SCM_RIGHTS). The client's ringtun then runs
// its rings and driver loop on that queue as it would in-process: packets
// never cross the daemon, so a brokered session is as fast as an
// in-process one, and it keeps working if the daemon dies.
//
// A client may open, configure, start sessions on and delete only the
// adapters it created (root may act on any); listing shows all of them,
// as ip link would. Adapters a client created that are not persistent go
// when its connection goes.
package broker

import "net/netip"

// DefaultSocket is where ringtund listens unless told otherwise.
const DefaultSocket = "/run/ringtun/ringtund.sock"

// Peer is a client as the daemon knows it: its socket's credentials.
type Peer struct {
	UID, PID uint32
	GIDs     []uint32 // its primary and supplementary groups
}

// Action is a privileged request a Checker decides on.
type Action struct {
	What       string // "create", "configure", "start a session on"
	Name       string // the adapter's name
	TunnelType string
	Persistent bool // creating a persistent adapter
	Owned      int  // adapters the uid has, when creating one more; -1 otherwise
	Addresses  []netip.Prefix
	Routes     []netip.Prefix
	MTU        int    // 0: not asked for
	Capacity   uint32 // ring capacity; 0: not asked for
}

// Checker decides whether a peer that is not root may do an action. Its
// refusals wrap errs.AccessDenied (ringtun.ErrAccessDenied).
type Checker interface {
	Check(p Peer, a Action) error
}
