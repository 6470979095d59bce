package ringtun_test

import (
	"context"
	"errors"
	"log"
	"net/netip"

	"github.com/ringtun/ringtun"
)

// The Wintun workflow: create an adapter, start a session, then receive the
// packets the host sends through the adapter and inject packets into the
// host. It needs CAP_NET_ADMIN.
func Example() {
	adapter, err := ringtun.CreateAdapterWithOptions("demo0", "Example", ringtun.AdapterOptions{
		Config: &ringtun.Config{
			Addresses: []netip.Prefix{netip.MustParsePrefix("198.18.7.7/24")},
			Routes:    []netip.Prefix{netip.MustParsePrefix("198.19.0.0/16")},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer adapter.Close() // deletes the adapter

	session, err := adapter.StartSession(0x400000) // two 4 MiB rings
	if err != nil {
		log.Fatal(err)
	}
	defer session.End()

	// Inject a packet into the host.
	packet, err := session.AllocateSendPacket(28)
	if err == nil {
		// ... write an IPv4 or IPv6 packet into packet ...
		session.SendPacket(packet)
	}

	// Receive what the host routes through the adapter.
	ctx := context.Background()
	for {
		packet, err := session.ReceivePacket()
		switch {
		case errors.Is(err, ringtun.ErrNoMoreItems):
			if err := session.Wait(ctx); err != nil {
				return // the session ended or ctx was cancelled
			}
			continue
		case err != nil:
			return
		}
		// ... use packet; it aliases ring memory ...
		session.ReleaseReceivePacket(packet)
	}
}

// Adapters lists every ringtun adapter, whichever process created it.
func ExampleAdapters() {
	adapters, err := ringtun.Adapters()
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range adapters {
		log.Printf("%s: type %q, GUID %s, index %d, persistent %v, in use %v",
			a.Name, a.TunnelType, a.GUID, a.LUID, a.Persistent, a.InUse)
	}
}
