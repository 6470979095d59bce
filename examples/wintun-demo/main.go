//go:build linux

// Command wintun-demo does what Wintun's example program does, on Linux:
// it creates adapter "Demo" of tunnel type "Example" with a fixed GUID and
// address 198.18.7.7/24, starts a 4 MiB session, injects an ICMP echo
// request from 198.18.7.8 to 198.18.7.7 every second, and prints every
// packet the host sends through the adapter, such as the echo replies.
// Ctrl-C ends the session and deletes the adapter. It needs root (or
// CAP_NET_ADMIN).
//
//	go run ./examples/wintun-demo            # until Ctrl-C
//	go run ./examples/wintun-demo -replies 3 # stop after three echo replies
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringtun/ringtun"
)

var (
	adapterAddr = netip.MustParseAddr("198.18.7.7")
	peerAddr    = netip.MustParseAddr("198.18.7.8")
	demoGUID    = ringtun.GUID{0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef}
)

func main() {
	replies := flag.Int("replies", 0, "stop after this many echo replies (0: run until Ctrl-C)")
	flag.Parse()
	ringtun.SetLogger(func(level ringtun.LogLevel, t time.Time, msg string) {
		fmt.Fprintf(os.Stderr, "%s [%s] %s\n", t.Format("2006-01-02 15:04:05.000"), level, msg)
	})
	if err := run(*replies); err != nil {
		fmt.Fprintln(os.Stderr, "wintun-demo:", err)
		os.Exit(1)
	}
}

func run(replies int) error {
	adapter, err := ringtun.CreateAdapterWithOptions("Demo", "Example", ringtun.AdapterOptions{
		GUID:   &demoGUID,
		Config: &ringtun.Config{Addresses: []netip.Prefix{netip.PrefixFrom(adapterAddr, 24)}},
	})
	if err != nil {
		return fmt.Errorf("create adapter: %w", err)
	}
	defer func() {
		if err := adapter.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close adapter:", err)
		}
	}()
	v, _ := ringtun.RunningVersion()
	fmt.Fprintf(os.Stderr, "ringtun v%d.%d loaded, adapter %s (index %d)\n", v>>16, v&0xffff, adapter.Name(), adapter.LUID())

	session, err := adapter.StartSession(0x400000)
	if err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	defer session.End()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go sendPings(ctx, session)
	return receive(ctx, stop, session, replies)
}

// sentAt holds when each echo request left, by sequence number, for the
// round trip times the replies are printed with.
var sentAt [1 << 16]atomic.Int64

// sendPings injects an ICMP echo request into the host every second.
func sendPings(ctx context.Context, session *ringtun.Session) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for seq := uint16(1); ; seq++ {
		packet, err := session.AllocateSendPacket(28)
		switch {
		case err == nil:
			makeEchoRequest(packet, peerAddr, adapterAddr, seq)
			fmt.Printf("sending ICMP echo request from %s to %s, seq %d\n", peerAddr, adapterAddr, seq)
			sentAt[seq].Store(time.Now().UnixNano())
			session.SendPacket(packet)
		case errors.Is(err, ringtun.ErrSessionEnded):
			return
		default:
			fmt.Fprintln(os.Stderr, "send:", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// receive prints every packet the host sends through the adapter.
func receive(ctx context.Context, stop func(), session *ringtun.Session, replies int) error {
	seen := 0
	for {
		packet, err := session.ReceivePacket()
		switch {
		case errors.Is(err, ringtun.ErrNoMoreItems):
			if err := session.Wait(ctx); err != nil {
				if ctx.Err() != nil {
					return nil // Ctrl-C
				}
				return err
			}
			continue
		case err != nil:
			return err
		}
		line, isReply := describe(packet)
		if isReply && len(packet) >= 28 && packet[0]>>4 == 4 {
			seq := binary.BigEndian.Uint16(packet[26:])
			rtt := time.Duration(time.Now().UnixNano() - sentAt[seq].Load())
			line += fmt.Sprintf(", seq %d, time %.3f ms", seq, float64(rtt)/1e6)
		}
		session.ReleaseReceivePacket(packet)
		fmt.Println(line)
		if isReply {
			seen++
			if replies > 0 && seen >= replies {
				stop()
				return nil
			}
		}
	}
}

// makeEchoRequest writes a 28-byte IPv4 ICMP echo request into b.
func makeEchoRequest(b []byte, src, dst netip.Addr, seq uint16) {
	clear(b)
	b[0] = 0x45                           // version 4, header length 20
	binary.BigEndian.PutUint16(b[2:], 28) // total length
	b[8] = 255                            // TTL
	b[9] = 1                              // ICMP
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:], checksum(b[:20]))
	b[20] = 8                                  // echo request
	binary.BigEndian.PutUint16(b[24:], 0x7777) // identifier
	binary.BigEndian.PutUint16(b[26:], seq)    // sequence
	binary.BigEndian.PutUint16(b[22:], checksum(b[20:28]))
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// describe names a packet the way Wintun's example does, and reports
// whether it is an ICMP echo reply.
func describe(p []byte) (string, bool) {
	if len(p) < 1 {
		return "not IP", false
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return "not IP", false
		}
		src, _ := netip.AddrFromSlice(p[12:16])
		dst, _ := netip.AddrFromSlice(p[16:20])
		ihl := int(p[0]&0xf) * 4
		if p[9] == 1 && len(p) >= ihl+8 && p[ihl] == 0 {
			return fmt.Sprintf("IPv4 ICMP echo reply from %s to %s", src, dst), true
		}
		return fmt.Sprintf("IPv4 packet, protocol %d, from %s to %s", p[9], src, dst), false
	case 6:
		if len(p) < 40 {
			return "not IP", false
		}
		src, _ := netip.AddrFromSlice(p[8:24])
		dst, _ := netip.AddrFromSlice(p[24:40])
		if p[6] == 58 && len(p) >= 41 && p[40] == 129 {
			return fmt.Sprintf("IPv6 ICMPv6 echo reply from %s to %s", src, dst), true
		}
		return fmt.Sprintf("IPv6 packet, next header %d, from %s to %s", p[6], src, dst), false
	}
	return "not IP", false
}
