//go:build !linux && !windows

package control

// Attached is an adapter's queue attached as its session's. No platform
// but Linux and Windows have one.
type Attached struct {
	Name string
	MTU  int
	// Release, if not nil, is called once when the session ends.
	Release func()
}
