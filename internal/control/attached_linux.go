package control

import "github.com/ringtun/ringtun/internal/tundev"

// Attached is an adapter's TUN queue attached as its session's, with what
// the session needs to know of the adapter.
type Attached struct {
	Queue *tundev.Queue
	Name  string // the interface's name when the queue attached
	MTU   int
	// Release, if not nil, is called once when the session ends, after
	// the queue is closed: the daemon's client tells the daemon.
	Release func()
}
