#!/usr/bin/env bash
# The C API's figures (issue 11), same run, interleaved rounds:
#   - the four per-packet calls, records per second each way and the time
#     inside the calls: capi_bench (C) against echobench (the Go API's
#     per-packet calls, waiting with Session.Wait; and "Go-event", waiting
#     on ReadWaitEvent with poll(2) as the C program does), 64 B and 1400 B;
#   - the ported example's echo round trip against the Go demo's (min and
#     avg over the pings of a run).
# As root, from the repository: capi/test/compare.sh [ROUNDS] [PING_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
pingsecs=${2:-12}
arch=$(go env GOARCH)
make -s -C capi programs >/dev/null
go build -o /tmp/ringtun-echobench ./capi/test/echobench
go build -o /tmp/ringtun-wintun-demo ./examples/wintun-demo

echo "per-packet calls, $rounds interleaved rounds of 3 s (records/s each way; ns inside the calls)"
for r in $(seq "$rounds"); do
	for size in 64 1400; do
		unshare --net "capi/build/$arch/capi_bench" "$size" 3
		unshare --net /tmp/ringtun-echobench -size "$size" -seconds 3
		unshare --net /tmp/ringtun-echobench -event -size "$size" -seconds 3
	done
done | tee /tmp/ringtun-compare.txt
awk '/records/ { key = $1 " " $2; rate[key] += $4; n[key]++ }
	END { for (s in rate) printf "mean %s B: %.0f records/s\n", s, rate[s] / n[s] }' /tmp/ringtun-compare.txt | sort
mean() { awk -v who="$1" -v s="$2" '$1 == who && $2 == s { t += $4; n++ } END { print t / n }' /tmp/ringtun-compare.txt; }
for size in 64 1400; do
	c=$(mean C "$size") g=$(mean Go "$size") e=$(mean Go-event "$size")
	echo "$size B: C/Go $(awk -v c="$c" -v g="$g" 'BEGIN { printf "%.2f", c / g }')x, C/Go-event $(awk -v c="$c" -v g="$e" 'BEGIN { printf "%.2f", c / g }')x"
done

# ping_stats FILE: min and avg of the "time X ms" of its echo replies.
ping_stats() {
	grep -o 'echo reply.*time [0-9.]* ms' "$1" | awk '{ t = $(NF-1); s += t; n++; if (min == "" || t < min) min = t }
		END { printf "%d replies, min %.3f ms, avg %.3f ms\n", n, min, s / n }'
}
echo "echo round trip through the adapter, one ping a second for $pingsecs s each"
unshare --net sh -c "timeout --preserve-status -s INT $pingsecs capi/build/$arch/example" >/tmp/ringtun-example.out 2>&1
echo "  C example (libringtun): $(ping_stats /tmp/ringtun-example.out)"
unshare --net sh -c "timeout --preserve-status -s INT $pingsecs /tmp/ringtun-wintun-demo" >/tmp/ringtun-demo.out 2>&1
echo "  Go demo (ringtun):      $(ping_stats /tmp/ringtun-demo.out)"
rm -f /tmp/ringtun-echobench /tmp/ringtun-wintun-demo /tmp/ringtun-compare.txt /tmp/ringtun-example.out /tmp/ringtun-demo.out
