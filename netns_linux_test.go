package ringtun

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/ringtun/ringtun/internal/packettest"
)

// TestAdapterInOtherNamespace: a program in one namespace creates an
// adapter in another (AdapterOptions.NetNS), exchanges ICMP through it
// there, opens and lists it from its own, and closing deletes it there;
// nothing is left in either.
func TestAdapterInOtherNamespace(t *testing.T) {
	home, target := newNS(t), newNS(t)
	path := target.Path()
	local, peer := netip.MustParseAddr("198.18.50.1"), netip.MustParseAddr("198.18.50.2")
	in(t, home, func() error {
		a, err := CreateAdapterWithOptions("nsx0", "Test", AdapterOptions{
			NetNS:  path,
			Config: &Config{Addresses: []netip.Prefix{netip.PrefixFrom(local, 24)}},
		})
		if err != nil {
			return err
		}
		defer a.Close()
		if slices.Contains(ipLinkNames(t), "nsx0") {
			t.Error("the adapter is in the creator's namespace")
		}
		if list, err := Adapters(); err != nil || len(list) != 0 {
			t.Errorf("Adapters() in the creator's namespace: %v, %v", list, err)
		}
		list, err := AdaptersIn(path)
		if err != nil || len(list) != 1 || list[0].Name != "nsx0" {
			t.Errorf("AdaptersIn(target): %v, %v", list, err)
		}
		if _, err := OpenAdapter("nsx0"); !errors.Is(err, ErrAdapterNotFound) {
			t.Errorf("OpenAdapter in the creator's namespace: %v, want ErrAdapterNotFound", err)
		}
		o, err := OpenAdapterIn(path, "nsx0")
		if err != nil {
			return err
		}
		if o.LUID() != a.LUID() || o.GUID() != a.GUID() {
			t.Errorf("OpenAdapterIn: index %d GUID %v, want %d %v", o.LUID(), o.GUID(), a.LUID(), a.GUID())
		}
		o.Close()

		// ICMP there, from here: the session's queue is the target's.
		s, err := a.StartSession(RingCapacityMin)
		if err != nil {
			return err
		}
		defer s.End()
		p, err := s.AllocateSendPacket(28 + 4)
		if err != nil {
			return err
		}
		packettest.EchoRequest4(p, peer, local, 0x5151, 1, []byte("nsns"))
		s.SendPacket(p)
		r := receiveMatching(t, s, func(p []byte) bool { return len(p) >= 28 && p[9] == 1 && p[20] == 0 })
		if netip.AddrFrom4([4]byte(r[12:16])) != local {
			t.Errorf("reply from %v", r[12:16])
		}
		return nil
	})
	in(t, target, func() error {
		wantLinks(t, "lo")
		return nil
	})
}

// TestUninstallIn: UninstallIn deletes the adapters of another namespace;
// a path that is no namespace is an error.
func TestUninstallIn(t *testing.T) {
	home, target := newNS(t), newNS(t)
	in(t, home, func() error {
		a, err := CreateAdapterWithOptions("nsx1", "Test", AdapterOptions{NetNS: target.Path(), Persistent: true})
		if err != nil {
			return err
		}
		a.Close()
		if err := UninstallIn(target.Path()); err != nil {
			return err
		}
		if list, err := AdaptersIn(target.Path()); err != nil || len(list) != 0 {
			t.Errorf("after UninstallIn: %v, %v", list, err)
		}
		if _, err := AdaptersIn("/nonexistent/netns"); err == nil {
			t.Error("AdaptersIn of a path that does not exist succeeded")
		}
		return nil
	})
	in(t, target, func() error {
		wantLinks(t, "lo")
		return nil
	})
}
