package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
	"time"
)

// runInfo is everything a report is made from.
type runInfo struct {
	Machine    [][2]string // label, value
	Command    string
	Started    time.Time
	Elapsed    time.Duration
	Rounds     int
	Duration   time.Duration
	Pings      int
	Interval   time.Duration
	Smoke      bool
	Contenders []string
	Tests      []string            // the measurements that ran (-tests)
	Samples    map[string][]sample // per contender, one per round that ran
}

// medianOf returns the median of one metric of a contender over the rounds.
func (ri *runInfo) medianOf(contender string, m metric) float64 {
	var v []float64
	for i := range ri.Samples[contender] {
		v = append(v, m.get(&ri.Samples[contender][i]))
	}
	return median(v)
}

// ratio returns median(c)/median(ref) for a metric, or NaN.
func (ri *runInfo) ratio(c, ref string, m metric) float64 {
	if !ri.has(c) || !ri.has(ref) {
		return math.NaN()
	}
	a, b := ri.medianOf(c, m), ri.medianOf(ref, m)
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

func (ri *runInfo) has(c string) bool {
	for _, x := range ri.Contenders {
		if x == c {
			return true
		}
	}
	return false
}

func fmtNum(v float64, digits int) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.*f", digits, v)
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v)
}

// table returns the Markdown tables: medians, ratios, goals.
func (ri *runInfo) table() string {
	var b strings.Builder
	get := func(c, key string) float64 { return ri.medianOf(c, metricByKey(key)) }
	fmt.Fprintf(&b, "Medians of %d round(s); iperf3 runs of %v, %d pings at %v.\n\n", ri.Rounds, ri.Duration, ri.Pings, ri.Interval)
	if len(ri.Tests) > 0 && len(ri.Tests) < len(allTests) {
		fmt.Fprintf(&b, "Only these measurements ran (-tests): %s; CPU per GB is over the TCP runs among them.\n\n", strings.Join(ri.Tests, ", "))
	}
	fmt.Fprintf(&b, "| contender | TCP 1 stream (Gbit/s) | TCP 4 streams (Gbit/s) | UDP %d B delivered (kpps) | UDP %d B loss (%%) | ping min / avg / p99 (µs) | ping avg under TCP 1 (µs) | forwarder CPU (s/GB) |\n", udpSize, udpSize)
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range ri.Contenders {
		cpu := fmtNum(get(c, "cpu"), 2)
		if c == cVeth {
			cpu = "n/a"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s / %s / %s | %s | %s |\n", c,
			fmtNum(get(c, "tcp1"), 2), fmtNum(get(c, "tcp4"), 2),
			fmtNum(get(c, "udp"), 0), fmtNum(get(c, "loss"), 1),
			fmtNum(get(c, "pingmin"), 0), fmtNum(get(c, "pingavg"), 0), fmtNum(get(c, "pingp99"), 0),
			fmtNum(get(c, "pingload"), 0), cpu)
	}
	ratioKeys := []string{"tcp1", "tcp4", "udp", "pingavg", "pingload", "cpu"}
	for _, ref := range []string{cWireguard, cVeth, cRingtun, cWGTun, cLimit} {
		if ref == cRingtun && !ri.has(cBrokered) {
			continue
		}
		if !ri.has(ref) || len(ri.Contenders) < 2 {
			continue
		}
		fmt.Fprintf(&b, "\nRatio to %s (median ÷ median, same run; for ping and CPU lower is better):\n\n", ref)
		fmt.Fprintf(&b, "| contender | TCP 1 stream | TCP 4 streams | UDP %d B pps | ping avg | ping under TCP 1 | CPU/GB |\n", udpSize)
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|\n")
		for _, c := range ri.Contenders {
			if c == ref {
				continue
			}
			fmt.Fprintf(&b, "| %s", c)
			for _, k := range ratioKeys {
				if k == "cpu" && (c == cVeth || ref == cVeth) {
					b.WriteString(" | n/a")
					continue
				}
				fmt.Fprintf(&b, " | %s", fmtRatio(ri.ratio(c, ref, metricByKey(k))))
			}
			b.WriteString(" |\n")
		}
	}
	// goal compares a ratio of this run with a goal of an issue.
	goal := func(a, ref, name, key string, want float64, atLeast bool) {
		r := ri.ratio(a, ref, metricByKey(key))
		verdict := "no data"
		switch {
		case math.IsNaN(r):
		case atLeast && r >= want, !atLeast && r <= want:
			verdict = "met"
		case atLeast:
			verdict = fmt.Sprintf("missed by %.0f%%", 100*(want-r)/want)
		default:
			verdict = fmt.Sprintf("missed by %.0f%%", 100*(r-want)/want)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, fmtRatio(r), verdict)
	}
	if ri.has(cRingtun) && ri.has(cWireguard) {
		b.WriteString("\nIssue 4 goals (ringtun against wireguard-go, medians of this run):\n\n")
		b.WriteString("| goal | ratio | |\n|---|--:|---|\n")
		goal(cRingtun, cWireguard, "TCP 1 stream ≥ 1.2 × wireguard-go", "tcp1", 1.2, true)
		goal(cRingtun, cWireguard, fmt.Sprintf("UDP %d B delivered pps ≥ 1.5 × wireguard-go", udpSize), "udp", 1.5, true)
		goal(cRingtun, cWireguard, "ping avg RTT ≤ wireguard-go", "pingavg", 1, false)
		goal(cRingtun, cWireguard, "forwarder CPU per GB ≤ 0.8 × wireguard-go", "cpu", 0.8, false)
	}
	if ri.has(cWireguard) && (ri.has(cOffload) || ri.has(cWintun1)) {
		b.WriteString("\nIssue 13 goals (medians of this run):\n\n")
		b.WriteString("| goal | ratio | |\n|---|--:|---|\n")
		if ri.has(cLimit) {
			goal(cOffload, cLimit, "offload-aware forwarder: TCP 1 stream ≥ 0.95 × limit", "tcp1", 0.95, true)
			goal(cOffload, cLimit, "offload-aware forwarder: CPU per GB ≤ 1.1 × limit", "cpu", 1.1, false)
		}
		goal(cOffload, cWireguard, "offload-aware forwarder: TCP 1 stream (≈ 1.15 × wireguard-go)", "tcp1", 1.15, true)
		for _, c := range []string{cWintun1, cWintun8} {
			goal(c, cWireguard, c+": TCP 1 stream ≥ 1.0 × wireguard-go", "tcp1", 1, true)
			goal(c, cWireguard, c+": CPU per GB ≤ 1.2 × wireguard-go", "cpu", 1.2, false)
		}
		goal(cWintun8, cWintun1, "8 MiB rings not slower than 1 MiB: TCP 1 stream ≥ 1.0 ×", "tcp1", 1, true)
		goal(cRingtun, cWireguard, "ringtun: ping avg ≤ 1.0 × wireguard-go (idle)", "pingavg", 1, false)
		goal(cRingtun, cWireguard, fmt.Sprintf("ringtun: UDP %d B delivered ≥ 1.5 × wireguard-go", udpSize), "udp", 1.5, true)
	}
	if ri.has(cWGRingtun) && ri.has(cWGTun) {
		b.WriteString("\nIssue 12 goals (wireguard-go on ringtun against wireguard-go on its tun, medians of this run):\n\n")
		b.WriteString("| goal | ratio | |\n|---|--:|---|\n")
		goal(cWGRingtun, cWGTun, "TCP 1 stream ≥ 1.0 ×", "tcp1", 1, true)
		goal(cWGRingtun, cWGTun, "TCP 4 streams ≥ 1.0 ×", "tcp4", 1, true)
		goal(cWGRingtun, cWGTun, fmt.Sprintf("UDP %d B delivered ≥ 1.0 ×", udpSize), "udp", 1, true)
		goal(cWGRingtun, cWGTun, "ping avg ≤ 1.0 ×", "pingavg", 1, false)
		fmt.Fprintf(&b, "| CPU per GB (reported) | %s | |\n", fmtRatio(ri.ratio(cWGRingtun, cWGTun, metricByKey("cpu"))))
	}
	return b.String()
}

// errorsList returns every error of the run, by contender and round.
func (ri *runInfo) errorsList() []string {
	var out []string
	for _, c := range ri.Contenders {
		for r, s := range ri.Samples[c] {
			for _, e := range s.Errors {
				e = strings.Join(strings.Fields(e), " ")
				out = append(out, fmt.Sprintf("round %d, %s: %s", r+1, c, e))
			}
		}
	}
	return out
}

// markdown returns the whole of RESULTS.md.
func (ri *runInfo) markdown() string {
	var b strings.Builder
	title := "ringtun benchmark results"
	if ri.Smoke {
		title += " (smoke run: too short to trust)"
	}
	fmt.Fprintf(&b, "# %s\n\n", title)
	fmt.Fprintf(&b, "Written by `%s` on %s (took %v). Chart: [results.svg](results.svg).\n\n",
		ri.Command, ri.Started.UTC().Format("2006-01-02 15:04 MST"), ri.Elapsed.Round(time.Second))
	b.WriteString("## Machine\n\n")
	for _, kv := range ri.Machine {
		fmt.Fprintf(&b, "- %s: %s\n", kv[0], kv[1])
	}
	b.WriteString("\n## Results\n\n")
	b.WriteString(ri.table())
	if errs := ri.errorsList(); len(errs) > 0 {
		b.WriteString("\n## Errors\n\n")
		for _, e := range errs {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	b.WriteString("\n## Method\n\n")
	b.WriteString("Two network namespaces, A and B. Every forwarder is its own process that owns one TUN " +
		"interface in each: A has 198.18.1.1/24 and routes 198.18.2.0/24 through its interface, B has " +
		"198.18.2.1/24 and routes 198.18.1.0/24 back; every packet from A to B crosses the forwarder. " +
		"iperf3 servers run in B and clients in A; the MTU is 1500 everywhere.\n\n")
	for _, c := range ri.Contenders {
		fmt.Fprintf(&b, "- **%s**: %s.\n", c, contenderNote[c])
	}
	b.WriteString("\nMeasurements, in this order for each contender in each round (the order of the contenders " +
		"rotates from round to round, and each forwarder is started afresh):\n\n")
	b.WriteString("- ping: `ping -c N -i INTERVAL` from A to B; min, mean and 99th percentile (nearest rank) of the per-reply times;\n")
	b.WriteString("- TCP: `iperf3 -c B -t D -P 1` and `-P 4`; throughput as the receiver counted it;\n")
	b.WriteString("- UDP: `iperf3 -c B -u -l 64 -b 0 -t D`: datagrams delivered to the receiver per second, and the share lost. " +
		"The sender is unthrottled, so sender, receiver and forwarder compete for the cores: through veth the sender can " +
		"outrun the receiver and lose more, so veth is no ceiling for this figure;\n")
	b.WriteString("- ping under load: during the TCP 1-stream run, `ping -i INTERVAL` from A to B from its first second to its last; the mean of the per-reply times;\n")
	b.WriteString("- CPU: the forwarder process's user+system time (/proc/PID/stat, both TCP runs) divided by the bytes " +
		"the receivers counted in those runs (GB = 10⁹ bytes). It counts every thread of the forwarder, including " +
		"ringtun's driver loop, which runs inside it.\n\n")
	b.WriteString("The table shows the median over the rounds of each figure; ratios divide medians of the same run. " +
		"All processes share the machine's cores (forwarder, iperf3 client and server, kernel).\n")
	b.WriteString("\n## Rounds\n\n")
	b.WriteString("| round | contender | TCP 1 | TCP 4 | UDP kpps | loss % | ping avg µs | CPU s/GB |\n")
	b.WriteString("|--:|---|--:|--:|--:|--:|--:|--:|\n")
	for r := 0; r < ri.Rounds; r++ {
		for _, c := range ri.Contenders {
			if r >= len(ri.Samples[c]) {
				continue
			}
			s := &ri.Samples[c][r]
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s |\n", r+1, c,
				fmtNum(s.TCP1Gbps, 2), fmtNum(s.TCP4Gbps, 2), fmtNum(s.UDPpps/1e3, 0),
				fmtNum(s.UDPLossPct, 1), fmtNum(s.PingAvgUs, 0), fmtNum(s.CPUsPerGB, 2))
		}
	}
	return b.String()
}

var contenderColor = map[string]string{
	cRingtun:   "#1f77b4",
	cBrokered:  "#9467bd",
	cWireguard: "#d62728",
	cPlain:     "#8c8c8c",
	cVeth:      "#2ca02c",
	cOffload:   "#17becf",
	cWintun1:   "#ff7f0e",
	cWintun8:   "#bcbd22",
	cLimit:     "#7f7f7f",
}

func xmlText(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// svg returns a bar chart of the medians: one panel per figure, one bar per
// contender. Ping bars show the mean with a min–p99 whisker.
func (ri *runInfo) svg() string {
	const (
		width   = 860
		left    = 120 // label column
		barMax  = 500
		barH    = 18
		rowH    = 24
		panelTB = 34 // panel title band
		gap     = 18
	)
	panels := []string{"tcp1", "tcp4", "udp", "pingavg", "cpu"}
	n := len(ri.Contenders)
	height := 50 + len(panels)*(panelTB+n*rowH+gap) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	title := fmt.Sprintf("ringtun benchmark: medians of %d round(s), %s", ri.Rounds, ri.Started.UTC().Format("2006-01-02"))
	if ri.Smoke {
		title += " (smoke run)"
	}
	fmt.Fprintf(&b, `<text x="10" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", xmlText(title))
	y := 50
	for _, key := range panels {
		m := metricByKey(key)
		better := "higher is better"
		if m.lowerBetter {
			better = "lower is better"
		}
		label := fmt.Sprintf("%s (%s, %s)", m.title, m.unit, better)
		if key == "pingavg" {
			label = fmt.Sprintf("ping RTT: mean, whisker min–p99 (%s, %s)", m.unit, better)
		}
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+16, xmlText(label))
		top := y + panelTB
		scale := 0.0
		for _, c := range ri.Contenders {
			v := ri.medianOf(c, m)
			if key == "pingavg" {
				v = ri.medianOf(c, metricByKey("pingp99"))
			}
			if !math.IsNaN(v) && v > scale {
				scale = v
			}
		}
		for i, c := range ri.Contenders {
			ry := top + i*rowH
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, ry+barH-5, xmlText(c))
			v := ri.medianOf(c, m)
			if math.IsNaN(v) || scale == 0 {
				text := "no data"
				if key == "cpu" && c == cVeth {
					text = "n/a (no forwarder)"
				}
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#666">%s</text>`+"\n", left+4, ry+barH-5, text)
				continue
			}
			w := v / scale * barMax
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, ry, w, barH, contenderColor[c])
			text := fmtNum(v, m.digits)
			end := w
			if key == "pingavg" {
				lo, hi := ri.medianOf(c, metricByKey("pingmin")), ri.medianOf(c, metricByKey("pingp99"))
				if !math.IsNaN(lo) && !math.IsNaN(hi) {
					x1, x2 := float64(left)+lo/scale*barMax, float64(left)+hi/scale*barMax
					cy := float64(ry) + barH/2
					fmt.Fprintf(&b, `<path d="M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1fV%.1f" stroke="black" fill="none"/>`+"\n",
						x1, cy, x2, x1, cy-5, cy+5, x2, cy-5, cy+5)
					end = max(end, x2-float64(left))
					text = fmt.Sprintf("%s (min %s, p99 %s)", text, fmtNum(lo, 0), fmtNum(hi, 0))
				}
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(left)+end+6, ry+barH-5, xmlText(text))
		}
		y = top + n*rowH + gap
	}
	b.WriteString("</svg>\n")
	return b.String()
}
