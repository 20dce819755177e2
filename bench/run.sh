#!/bin/bash
# Runs the benchmarks against real local servers and prints their figures.
# BENCH_MESSAGES sizes the first-sync run (default 10,000); BENCH_PEERS the
# mbsync comparison (default 100,000; 0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 bench/first_sync.py "${BENCH_MESSAGES:-10000}"
if [ "${BENCH_PEERS:-100000}" != 0 ]; then
	python3 bench/imap_vs_peers.py "${BENCH_PEERS:-100000}"
fi
python3 bench/many_accounts.py "${BENCH_ACCOUNTS:-1000}"
python3 bench/push_latency.py "${BENCH_PUSH_APPENDS:-40}" "${BENCH_PUSH_CONNECTIONS:-1000}"
python3 bench/drain.py "${BENCH_DRAIN_MESSAGES:-200}"
python3 bench/jmap_vs_imap.py "${BENCH_JMAP_MESSAGES:-10000}"
