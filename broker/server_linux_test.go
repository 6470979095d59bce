package broker

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ringtun/ringtun/internal/control"
	"github.com/ringtun/ringtun/internal/guid"
	"github.com/ringtun/ringtun/internal/netns"
)

// recorder is a slog.Handler that keeps the records.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// TestServerLogLevels: the control plane's messages reach the daemon's log
// at their own level (an adapter's creation is info, not debug).
func TestServerLogLevels(t *testing.T) {
	if err := netns.CanCreate(); err != nil {
		t.Skip("integration test:", err)
	}
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	rec := &recorder{}
	s, err := NewServer(ServerOptions{Log: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	err = ns.Do(func() error {
		a, err := s.local.Create("vpnlog0", control.Meta{GUID: guid.New(), TunnelType: "Log"}, nil)
		if err != nil {
			return err
		}
		return a.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	found := false
	for _, r := range rec.records {
		if strings.Contains(r.Message, "created adapter vpnlog0") {
			found = true
			if r.Level != slog.LevelInfo {
				t.Errorf("%q logged at %v, want INFO", r.Message, r.Level)
			}
		}
	}
	if !found {
		t.Fatalf("no creation message among %d records", len(rec.records))
	}
}
