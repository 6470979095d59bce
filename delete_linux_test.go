package ringtun

import (
	"errors"
	"testing"
)

// TestDelete: a handle from OpenAdapter deletes a persistent adapter; an
// adapter with a session in use is refused, and a handle's own session
// ends first.
func TestDelete(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		mustClose(t, mustCreate(t, "del0", "Test", AdapterOptions{Persistent: true}))
		a, err := OpenAdapter("del0")
		if err != nil {
			return err
		}
		if err := a.Delete(); err != nil {
			return err
		}
		wantLinks(t, "lo")
		if err := a.Delete(); !errors.Is(err, ErrSessionEnded) {
			t.Errorf("Delete twice: %v, want ErrSessionEnded (the handle is closed)", err)
		}

		busy := mustCreate(t, "del1", "Test", AdapterOptions{Persistent: true})
		s := mustStart(t, busy)
		other, err := OpenAdapter("del1")
		if err != nil {
			return err
		}
		wantErr(t, "Delete of an adapter with a session", other.Delete(), ErrAlreadyInitialized)
		wantLinks(t, "del1", "lo")
		// The handle with the session: its session ends, then the adapter goes.
		if err := busy.Delete(); err != nil {
			return err
		}
		if _, err := s.ReceivePacket(); !errors.Is(err, ErrSessionEnded) {
			t.Errorf("the session after Delete: %v", err)
		}
		wantLinks(t, "lo")
		return nil
	})
}
