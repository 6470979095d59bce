package main

// The physical limit (issue 13): a forwarder that reads each frame — the
// virtio-net header and a packet that may be a GSO super-packet of up to
// 64 KiB — from one TUN with checksum, TSO and USO offloads, and writes it
// unchanged to the other. No ring, no split, no merge: what remains is the
// kernel's copies and its stacks.

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"
)

// limitOffloads are asked for best first; a kernel without USO gets TSO.
var limitOffloads = []int{
	unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_TSO_ECN | unix.TUN_F_USO4 | unix.TUN_F_USO6,
	unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_TSO_ECN,
}

// vnetHdrLen is the virtio-net header the frames carry (virtio_net_hdr_v1).
const vnetHdrLen = 12

func forwardLimit(ctx context.Context, sides [2]side) error {
	return forwardFrames(ctx, sides, true)
}

// setupTUN makes fd the TUN device name: with offloads, with the
// virtio-net header and the best of limitOffloads the kernel accepts.
func setupTUN(fd int, name string, offloads bool) error {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if offloads {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("TUNSETIFF: %w", err)
	}
	if !offloads {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
		return fmt.Errorf("TUNSETVNETHDRSZ: %w", err)
	}
	var oerr error
	for _, o := range limitOffloads {
		if oerr = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, o); oerr == nil {
			return nil
		}
	}
	return fmt.Errorf("TUNSETOFFLOAD: %w", oerr)
}
