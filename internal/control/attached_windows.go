package control

import "golang.zx2c4.com/wintun"

// Attached is an adapter's Wintun session, started for the package's
// Session, which owns it from then on.
type Attached struct {
	Session wintun.Session
	Name    string
	MTU     int
	// Release, if not nil, is called once when the session ends.
	Release func()
}
