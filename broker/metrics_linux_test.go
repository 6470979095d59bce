package broker

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ringtun/ringtun/internal/errs"
)

// TestWriteMetrics: requests counted by operation, refusals by reason, in
// Prometheus's text format with HELP and TYPE for every family.
func TestWriteMetrics(t *testing.T) {
	s, err := NewServer(ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.metrics.count(OpCreate, nil)
	s.metrics.count(OpCreate, fmt.Errorf("rule 1: %w", errs.AccessDenied))
	s.metrics.count(OpStartSession, errs.AlreadyInitialized)
	s.metrics.count(OpOpen, fmt.Errorf("vpn9: %w", errs.AdapterNotFound))
	s.metrics.count(OpDelete, errors.New("something else"))
	var b bytes.Buffer
	if err := s.WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# TYPE ringtund_clients gauge\nringtund_clients 0\n",
		"# TYPE ringtund_adapters gauge\nringtund_adapters 0\n",
		"# TYPE ringtund_requests_total counter\n",
		`ringtund_requests_total{op="create"} 2`,
		`ringtund_requests_total{op="start_session"} 1`,
		`ringtund_requests_total{op="open"} 1`,
		`ringtund_requests_total{op="delete"} 1`,
		`ringtund_requests_total{op="list"} 0`,
		"# TYPE ringtund_refusals_total counter\n",
		`ringtund_refusals_total{reason="access_denied"} 1`,
		`ringtund_refusals_total{reason="in_use"} 1`,
		`ringtund_refusals_total{reason="adapter_not_found"} 1`,
		`ringtund_refusals_total{reason="other"} 1`,
		`ringtund_refusals_total{reason="adapter_exists"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); len(f) != 2 || !strings.HasPrefix(f[0], "ringtund_") {
			t.Errorf("not a sample line: %q", line)
		}
	}
}
