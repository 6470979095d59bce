//go:build !linux

package wgtun

import "errors"

// linkWatch is Linux only; elsewhere the constructors fail.
type linkWatch struct{}

type linkChange struct {
	up, gone bool
	mtu      int
}

var errNotLinux = errors.New("wgtun: only on Linux")

func watchLink(int) (*linkWatch, error)      { return nil, errNotLinux }
func (*linkWatch) mtu() (int, error)         { return 0, errNotLinux }
func (*linkWatch) next() (linkChange, error) { return linkChange{}, errNotLinux }
func (*linkWatch) close()                    {}
