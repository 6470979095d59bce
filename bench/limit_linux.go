package main

// The physical limit (issue 13): a forwarder that reads each frame — the
// virtio-net header and a packet that may be a GSO super-packet of up to
// 64 KiB — from one TUN with checksum, TSO and USO offloads, and writes it
// unchanged to the other. No ring, no split, no merge: what remains is the
// kernel's copies and its stacks.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"runtime"

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
	var fds [2]int
	for i, sd := range sides {
		fds[i] = -1
		err := inNS(sd.ns, func() error {
			fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			fds[i] = fd
			ifr, err := unix.NewIfreq(sd.name)
			if err != nil {
				return err
			}
			ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
			if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
				return fmt.Errorf("TUNSETIFF: %w", err)
			}
			if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
				return fmt.Errorf("TUNSETVNETHDRSZ: %w", err)
			}
			var oerr error
			for _, o := range limitOffloads {
				if oerr = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, o); oerr == nil {
					break
				}
			}
			if oerr != nil {
				return fmt.Errorf("TUNSETOFFLOAD: %w", oerr)
			}
			return ipConfigure(sd)
		})
		if err != nil {
			return fmt.Errorf("%s: %w", sd.name, err)
		}
	}
	ready()
	var frames, errs [2]counter
	for i := range 2 {
		go func() {
			runtime.LockOSThread()
			from, to := fds[i], fds[1-i]
			buf := make([]byte, vnetHdrLen+1<<16)
			for {
				n, err := unix.Read(from, buf)
				if errors.Is(err, unix.EINTR) {
					continue
				}
				if err != nil {
					log.Printf("read: %v", err)
					return
				}
				for {
					_, err = unix.Write(to, buf[:n])
					if !errors.Is(err, unix.EINTR) {
						break
					}
				}
				if err != nil {
					errs[i].Add(1)
					continue
				}
				frames[i].Add(1)
			}
		}()
	}
	<-ctx.Done()
	for i := range 2 {
		log.Printf("%s → %s: %d frames forwarded, %d write errors", sides[i].name, sides[1-i].name, frames[i].Load(), errs[i].Load())
	}
	return nil // the blocked reads end with the process
}
