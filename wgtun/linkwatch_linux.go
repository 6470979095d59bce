package wgtun

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// linkWatch follows one interface over rtnetlink: its state and MTU. The
// socket is opened in the calling thread's network namespace, the
// adapter's.
type linkWatch struct {
	index int
	f     *os.File // the netlink socket, in Go's poller
	buf   []byte
	queue []linkChange
}

// linkChange is one RTM_NEWLINK or RTM_DELLINK for the interface.
type linkChange struct {
	up   bool
	mtu  int // 0: not said
	gone bool
}

func watchLink(index int) (*linkWatch, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rtnetlink bind: %w", err)
	}
	return &linkWatch{index: index, f: os.NewFile(uintptr(fd), "rtnetlink"), buf: make([]byte, 1<<16)}, nil
}

// mtu asks the kernel for the interface's MTU now.
func (w *linkWatch) mtu() (int, error) {
	req := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.RTM_GETLINK)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], 1) // sequence number
	binary.NativeEndian.PutUint32(req[unix.SizeofNlMsghdr+4:], uint32(w.index))
	if _, err := w.f.Write(req); err != nil {
		return 0, fmt.Errorf("rtnetlink request: %w", err)
	}
	for {
		ch, err := w.next()
		if err != nil {
			return 0, err
		}
		if ch.gone {
			return 0, fmt.Errorf("interface %d is gone", w.index)
		}
		if ch.mtu != 0 {
			return ch.mtu, nil
		}
	}
}

// next returns the interface's next change; an error once closed.
func (w *linkWatch) next() (linkChange, error) {
	for len(w.queue) == 0 {
		n, err := w.f.Read(w.buf)
		if err != nil {
			return linkChange{}, err
		}
		msgs, err := syscall.ParseNetlinkMessage(w.buf[:n])
		if err != nil {
			continue // a message the kernel cut: the next one will say
		}
		for i := range msgs {
			if ch, ok := w.parse(&msgs[i]); ok {
				w.queue = append(w.queue, ch)
			}
		}
	}
	ch := w.queue[0]
	w.queue = w.queue[1:]
	return ch, nil
}

// parse reads an RTM_NEWLINK or RTM_DELLINK about the interface.
func (w *linkWatch) parse(m *syscall.NetlinkMessage) (linkChange, bool) {
	if m.Header.Type != unix.RTM_NEWLINK && m.Header.Type != unix.RTM_DELLINK || len(m.Data) < unix.SizeofIfInfomsg {
		return linkChange{}, false
	}
	index := int(int32(binary.NativeEndian.Uint32(m.Data[4:8])))
	flags := binary.NativeEndian.Uint32(m.Data[8:12])
	if index != w.index {
		return linkChange{}, false
	}
	ch := linkChange{up: flags&unix.IFF_UP != 0, gone: m.Header.Type == unix.RTM_DELLINK}
	attrs, err := syscall.ParseNetlinkRouteAttr(m)
	if err == nil {
		for _, a := range attrs {
			if a.Attr.Type == unix.IFLA_MTU && len(a.Value) >= 4 {
				ch.mtu = int(binary.NativeEndian.Uint32(a.Value))
			}
		}
	}
	return ch, true
}

// close closes the socket, which ends a next in progress.
func (w *linkWatch) close() { w.f.Close() }
