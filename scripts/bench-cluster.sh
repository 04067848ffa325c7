#!/usr/bin/env bash
# bench-cluster.sh — start a 3-member statenode cluster on 127.0.0.1 with
# production timeouts, run the benchmark suite of docs/OPERATIONS.md
# against its leader, print each summary, and stop the cluster.
#
#   scripts/bench-cluster.sh [--engine bolt|wal] [--quick] [SUITE...]
#
# SUITE is any of: put get lock election (default: all). --quick divides
# the request counts by 10. Data lives in a temporary directory, removed
# on exit. Needs bin/statenode (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/statenode}
ENGINE=wal
DIV=1
SUITES=()
while [ $# -gt 0 ]; do
	case "$1" in
	--engine) ENGINE=$2; shift 2 ;;
	--quick) DIV=10; shift ;;
	-h|--help) sed -n '2,10p' "$0"; exit 0 ;;
	*) SUITES+=("$1"); shift ;;
	esac
done
[ ${#SUITES[@]} -gt 0 ] || SUITES=(put get lock election)
[ -x "$BIN" ] || { echo "bench-cluster: $BIN not built (make build)" >&2; exit 1; }

DIR=$(mktemp -d /tmp/statenode-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$DIR"
}
trap cleanup EXIT

# Ports outside the kernel's ephemeral range (32768+).
BASE=$((20000 + RANDOM % 5000))
CLUSTER="" ; HTTP=()
for i in 1 2 3; do
	CLUSTER+="${CLUSTER:+,}n$i=127.0.0.1:$((BASE + i))"
	HTTP+=("127.0.0.1:$((BASE + 10 + i))")
done
for i in 1 2 3; do
	"$BIN" agent --id "n$i" --data-dir "$DIR/n$i" --log-engine "$ENGINE" \
		--raft-addr "127.0.0.1:$((BASE + i))" --http-addr "${HTTP[$((i - 1))]}" \
		--initial-cluster "$CLUSTER" --log-level warn 2>>"$DIR/agents.log" &
	PIDS+=($!)
done
ALL=$(IFS=,; echo "${HTTP[*]}")
for _ in $(seq 1 100); do
	LEADER=$("$BIN" leader --addr "$ALL" -o json 2>/dev/null | sed -n 's/.*"http_addr": *"\([^"]*\)".*/\1/p' | head -1 || true)
	[ -n "$LEADER" ] && break
	sleep 0.1
done
[ -n "${LEADER:-}" ] || { echo "bench-cluster: no leader" >&2; cat "$DIR/agents.log" >&2; exit 1; }
echo "# engine=$ENGINE leader=$LEADER members=$ALL"

run() { echo; echo "## statenode bench $*"; "$BIN" bench "$@" --addr "$LEADER"; }
KV="--key-size 8 --val-size 256"
for s in "${SUITES[@]}"; do
	case "$s" in
	put)
		run kv --clients 1 --conns 1 --total $((2000 / DIV)) $KV
		run kv --clients 100 --conns 10 --total $((100000 / DIV)) $KV
		run kv --clients 1000 --conns 100 --total $((100000 / DIV)) $KV ;;
	get)
		run kv --clients 1 --conns 1 --total $((10000 / DIV)) $KV --mix get=100 --consistency l --no-preload
		run kv --clients 1 --conns 1 --total $((10000 / DIV)) $KV --mix get=100 --consistency s --no-preload
		run kv --clients 100 --conns 10 --total $((100000 / DIV)) $KV --mix get=100 --consistency l --no-preload ;;
	lock)
		run lock --workers 1 --total $((2000 / DIV))
		run lock --workers 100 --distinct --total $((20000 / DIV))
		run lock --workers 10 --contended --total $((5000 / DIV)) ;;
	election)
		run election --total $((300 / DIV)) ;;
	*) echo "bench-cluster: unknown suite $s" >&2; exit 2 ;;
	esac
done
