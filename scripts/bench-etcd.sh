#!/usr/bin/env bash
# bench-etcd.sh — the reference column of docs/PERFORMANCE.md: start a
# 3-member etcd cluster (the version pinned in scripts/etcdref/go.mod) on
# 127.0.0.1, run the workloads of bench-cluster.sh against its leader with
# etcd's own Go client, print each summary, and stop the cluster.
#
#   scripts/bench-etcd.sh [--quick] [SUITE...]
#
# SUITE is any of: put get lock (default: all). --quick divides the
# request counts by 10. Builds etcd and the client into a temporary
# directory first (the Go module proxy provides the sources).
set -euo pipefail
cd "$(dirname "$0")/etcdref"
DIV=1
SUITES=()
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) DIV=10; shift ;;
	-h|--help) sed -n '2,11p' "$0"; exit 0 ;;
	*) SUITES+=("$1"); shift ;;
	esac
done
[ ${#SUITES[@]} -gt 0 ] || SUITES=(put get lock)

DIR=$(mktemp -d /tmp/etcd-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$DIR"
}
trap cleanup EXIT
go build -o "$DIR/etcd" ./etcd
go build -o "$DIR/bench" ./bench

BASE=$((25000 + RANDOM % 4000))
CLUSTER="" ; EPS=""
for i in 1 2 3; do
	CLUSTER+="${CLUSTER:+,}e$i=http://127.0.0.1:$((BASE + i))"
	EPS+="${EPS:+,}127.0.0.1:$((BASE + 10 + i))"
done
for i in 1 2 3; do
	"$DIR/etcd" --name "e$i" --data-dir "$DIR/e$i" \
		--listen-peer-urls "http://127.0.0.1:$((BASE + i))" --initial-advertise-peer-urls "http://127.0.0.1:$((BASE + i))" \
		--listen-client-urls "http://127.0.0.1:$((BASE + 10 + i))" --advertise-client-urls "http://127.0.0.1:$((BASE + 10 + i))" \
		--initial-cluster "$CLUSTER" --initial-cluster-state new --log-level error 2>>"$DIR/etcd.log" &
	PIDS+=($!)
done
echo "# etcd members=$EPS"

run() { echo; echo "## bench $*"; "$DIR/bench" --endpoints "$EPS" "$@"; }
for s in "${SUITES[@]}"; do
	case "$s" in
	put)
		run --mode put --clients 1 --conns 1 --total $((2000 / DIV))
		run --mode put --clients 100 --conns 10 --total $((100000 / DIV))
		run --mode put --clients 1000 --conns 100 --total $((100000 / DIV)) ;;
	get)
		run --mode get-l --clients 1 --conns 1 --total $((10000 / DIV))
		run --mode get-s --clients 1 --conns 1 --total $((10000 / DIV))
		run --mode get-l --clients 100 --conns 10 --total $((100000 / DIV)) ;;
	lock)
		run --mode lock --clients 1 --conns 1 --total $((2000 / DIV))
		run --mode lockdistinct --clients 100 --conns 10 --total $((20000 / DIV))
		run --mode lockcontended --clients 10 --conns 10 --total $((500 / DIV)) ;;
	*) echo "bench-etcd: unknown suite $s" >&2; exit 2 ;;
	esac
done
