#!/usr/bin/env bash
# bench-compare.sh — the table of docs/PERFORMANCE.md: run the suites of
# bench-etcd.sh (etcd, the reference) and bench-cluster.sh (statenode on
# each log engine) in interleaved rounds, so that all columns see the same
# machine, and print per workload the median over the rounds of
# requests/s and of p99 latency.
#
#   scripts/bench-compare.sh [--rounds N] [--quick]
#
# Default 3 rounds; about 2 minutes per round with --quick, 6 without.
# Needs bin/statenode (make build). Raw outputs stay in the directory it
# prints, for a second look.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3
QUICK=()
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--quick) QUICK=(--quick); shift ;;
	-h|--help) sed -n '2,12p' "$0"; exit 0 ;;
	*) echo "bench-compare: unknown argument $1" >&2; exit 2 ;;
	esac
done
OUT=$(mktemp -d /tmp/statenode-compare.XXXXXX)
echo "# raw outputs in $OUT" >&2
for r in $(seq 1 "$ROUNDS"); do
	echo "# round $r/$ROUNDS" >&2
	scripts/bench-etcd.sh "${QUICK[@]}" put get lock >"$OUT/etcd.$r" 2>&1
	scripts/bench-cluster.sh "${QUICK[@]}" --engine bolt put get lock election >"$OUT/bolt.$r" 2>&1
	scripts/bench-cluster.sh "${QUICK[@]}" --engine wal put get lock election >"$OUT/wal.$r" 2>&1
done

# rows FILE: one "requests/s p99-seconds" line per workload, in suite order.
rows() {
	awk '/Requests\/sec:/ { rps = $2 } /^ *99% in/ { print rps, $3 }' "$1"
}
# median COLUMN SYSTEM ROW: the median over the rounds.
median() {
	for r in $(seq 1 "$ROUNDS"); do rows "$OUT/$2.$r" | sed -n "$3p" | cut -d' ' -f"$1"; done |
		sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
NAMES=("put, 1 client" "put, 100 clients / 10 conns" "put, 1,000 clients / 100 conns"
	"linearizable get, 1 client" "stale get, 1 client" "linearizable get, 100 clients / 10 conns"
	"lock+unlock, 1 holder" "lock+unlock, 100 workers, distinct locks" "lock+unlock, 10 workers, one lock"
	"election handoff (resign → next leads)")
fmt() { # requests/s, p99 in ms
	awk -v r="$1" -v p="$2" 'BEGIN { if (r == "-") print "-"; else printf "%.0f/s, p99 %.1f ms", r, p * 1000 }'
}
echo "| workload | etcd | statenode, bolt | statenode, wal |"
echo "|---|---|---|---|"
for i in "${!NAMES[@]}"; do
	row=$((i + 1))
	cells=()
	for sys in etcd bolt wal; do
		cells+=("$(fmt "$(median 1 "$sys" "$row")" "$(median 2 "$sys" "$row")")")
	done
	echo "| ${NAMES[$i]} | ${cells[0]} | ${cells[1]} | ${cells[2]} |"
done
