package ringtun

import (
	"strings"
	"testing"
)

// TestKernelOffloads: the probe reports what a session negotiates (the
// machines CI runs on have checksum offload at least) and leaves no
// interface behind.
func TestKernelOffloads(t *testing.T) {
	ns := newNS(t)
	in(t, ns, func() error {
		got, err := KernelOffloads()
		if err != nil {
			return err
		}
		if !strings.Contains(got, "csum") {
			t.Errorf("KernelOffloads = %q, want at least csum", got)
		}
		if links := ipLinkNames(t); len(links) != 1 {
			t.Errorf("interfaces after the probe: %v, want only lo", links)
		}
		return nil
	})
}
