package broker

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"github.com/ringtun/ringtun/internal/errs"
)

// metrics are the daemon's counters, for WriteMetrics.
type metrics struct {
	requests [OpUninstall + 1]atomic.Uint64 // by op
	refusals [len(refusalReasons)]atomic.Uint64
}

// refusalReasons classify refused requests, in the order of
// metrics.refusals.
var refusalReasons = [...]struct {
	name string
	err  error
}{
	{"access_denied", errs.AccessDenied},
	{"adapter_exists", errs.AdapterExists},
	{"adapter_not_found", errs.AdapterNotFound},
	{"in_use", errs.AlreadyInitialized},
	{"invalid_name", errs.InvalidName},
	{"invalid_config", errs.InvalidConfig},
	{"invalid_capacity", errs.InvalidCapacity},
	{"other", nil},
}

// count records one request and, if it was refused, why.
func (m *metrics) count(op Op, err error) {
	if int(op) < len(m.requests) {
		m.requests[op].Add(1)
	}
	if err == nil {
		return
	}
	for i, r := range refusalReasons {
		if r.err == nil || errors.Is(err, r.err) {
			m.refusals[i].Add(1)
			return
		}
	}
}

// WriteMetrics writes the daemon's metrics in Prometheus's text format:
// ringtund_clients and ringtund_adapters (gauges: clients connected,
// adapters created through the daemon that exist), and the counters
// ringtund_requests_total{op} and ringtund_refusals_total{reason}.
func (s *Server) WriteMetrics(w io.Writer) error {
	s.mu.Lock()
	clients, adapters := len(s.conns), len(s.owners)
	s.mu.Unlock()
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "# HELP ringtund_clients Clients connected now.\n# TYPE ringtund_clients gauge\nringtund_clients %d\n", clients)
	fmt.Fprintf(b, "# HELP ringtund_adapters Adapters created through the daemon that exist now.\n# TYPE ringtund_adapters gauge\nringtund_adapters %d\n", adapters)
	b.WriteString("# HELP ringtund_requests_total Requests served, by operation.\n# TYPE ringtund_requests_total counter\n")
	for op := OpVersion; op <= OpUninstall; op++ {
		fmt.Fprintf(b, "ringtund_requests_total{op=%q} %d\n", strings.ReplaceAll(op.String(), " ", "_"), s.metrics.requests[op].Load())
	}
	b.WriteString("# HELP ringtund_refusals_total Requests refused, by reason.\n# TYPE ringtund_refusals_total counter\n")
	for i, r := range refusalReasons {
		fmt.Fprintf(b, "ringtund_refusals_total{reason=%q} %d\n", r.name, s.metrics.refusals[i].Load())
	}
	return b.Flush()
}
