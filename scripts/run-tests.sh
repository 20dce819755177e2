#!/bin/bash
# The whole suite for one build flavour (release or asan): unit tests,
# fuzz corpus replay, then end-to-end tests against a real Dovecot.
# Ends with one line "N passed, N failed" over both.
set -u
FLAVOUR=${1:-release}
B=build/$FLAVOUR
if [ "$FLAVOUR" = release ]; then BIN=bin; else BIN=$B/bin; fi
export MAILSYNC_BIN=$PWD/$BIN
if [ "$FLAVOUR" = asan ]; then
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
out=$(mktemp)
scripts/run-unit.sh "$B" | tee "$out"
unit_rc=${PIPESTATUS[0]}
python3 tests/e2e/run.py 2>&1 | tee -a "$out"
e2e_rc=${PIPESTATUS[0]}
read -r pass fail < <(awk '/^[a-z0-9]+: [0-9]+ passed, [0-9]+ failed$/ \
	{ p += $2; f += $4 } END { print p + 0, f + 0 }' "$out")
rm -f "$out"
echo "${pass:-0} passed, ${fail:-0} failed"
[ "$unit_rc" -eq 0 ] && [ "$e2e_rc" -eq 0 ]
