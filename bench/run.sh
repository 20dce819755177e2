#!/bin/bash
# Runs the benchmarks against real local servers and prints their figures.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 bench/first_sync.py "${BENCH_MESSAGES:-10000}"
