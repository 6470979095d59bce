package prom

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ringtun/ringtun"
)

// TestCollector: every counter of Stats under its name and labels, with
// the value Stats had at the scrape; and the names pass Prometheus's lint.
func TestCollector(t *testing.T) {
	st := ringtun.Stats{RxPackets: 1, RxBytes: 2, RxDropsFull: 3, RxFullWaits: 4, RxDropsInvalid: 5, RxErrors: 6,
		RxSuperPackets: 7, RxSegments: 8, RxWakeups: 9, TxPackets: 10, TxBytes: 11, TxWrites: 12, TxCoalescedWrites: 13,
		TxCoalescedPackets: 14, TxDropsNotIP: 15, TxErrors: 16, TxSleeps: 17,
		RxGSORecords: 18, TxGSORecords: 19, TxDropsInvalid: 20, RxDirectReads: 21}
	c := NewCollector("wg0", "WireGuard", func() ringtun.Stats { return st })
	l := `adapter="wg0",tunnel_type="WireGuard"`
	// lab is the labels with one of the metric's own, in the sorted order
	// the exposition format compares in.
	lab := func(own string) string { return `{adapter="wg0",` + own + `,tunnel_type="WireGuard"}` }
	want := map[string]string{
		"ringtun_session_packets_total":                    lab(`direction="received"`) + ` 1` + "\n" + `ringtun_session_packets_total` + lab(`direction="sent"`) + ` 10`,
		"ringtun_session_bytes_total":                      lab(`direction="received"`) + ` 2` + "\n" + `ringtun_session_bytes_total` + lab(`direction="sent"`) + ` 11`,
		"ringtun_session_drops_total":                      lab(`reason="receive_invalid"`) + ` 5` + "\n" + `ringtun_session_drops_total` + lab(`reason="receive_ring_full"`) + ` 3` + "\n" + `ringtun_session_drops_total` + lab(`reason="send_invalid_record"`) + ` 20` + "\n" + `ringtun_session_drops_total` + lab(`reason="send_not_ip"`) + ` 15`,
		"ringtun_session_gso_records_total":                lab(`direction="received"`) + ` 18` + "\n" + `ringtun_session_gso_records_total` + lab(`direction="sent"`) + ` 19`,
		"ringtun_session_errors_total":                     lab(`direction="received"`) + ` 6` + "\n" + `ringtun_session_errors_total` + lab(`direction="sent"`) + ` 16`,
		"ringtun_session_receive_ring_full_waits_total":    `{` + l + `} 4`,
		"ringtun_session_gso_super_packets_received_total": `{` + l + `} 7`,
		"ringtun_session_gso_segments_received_total":      `{` + l + `} 8`,
		"ringtun_session_writes_total":                     `{` + l + `} 12`,
		"ringtun_session_coalesced_writes_total":           `{` + l + `} 13`,
		"ringtun_session_coalesced_packets_total":          `{` + l + `} 14`,
		"ringtun_session_application_wakeups_total":        `{` + l + `} 9`,
		"ringtun_session_direct_reads_total":               `{` + l + `} 21`,
		"ringtun_session_writer_sleeps_total":              `{` + l + `} 17`,
	}
	var expo strings.Builder
	for _, m := range metrics {
		name := strings.Split(strings.Split(m.desc.String(), `fqName: "`)[1], `"`)[0]
		values, ok := want[name]
		if !ok {
			t.Fatalf("metric %s has no expected value here", name)
		}
		help := strings.Split(strings.Split(m.desc.String(), `help: "`)[1], `"`)[0]
		expo.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " counter\n" + name + values + "\n")
	}
	if len(want) != len(metrics) {
		t.Fatalf("%d metrics, %d expected", len(metrics), len(want))
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(expo.String())); err != nil {
		t.Error(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
	st.RxPackets = 100 // the next scrape reads Stats again
	next := "# HELP ringtun_session_packets_total " + strings.Split(strings.Split(metrics[0].desc.String(), `help: "`)[1], `"`)[0] +
		"\n# TYPE ringtun_session_packets_total counter\n" +
		`ringtun_session_packets_total` + lab(`direction="received"`) + ` 100` + "\n" +
		`ringtun_session_packets_total` + lab(`direction="sent"`) + ` 10` + "\n"
	if err := testutil.CollectAndCompare(c, strings.NewReader(next), "ringtun_session_packets_total"); err != nil {
		t.Error(err)
	}
}
