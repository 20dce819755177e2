#!/bin/bash
# Runs every unit test binary and every fuzz corpus replayer of a build
# directory (default build/release). Prints one line per binary and a
# closing "N passed, N failed" line; exits non-zero on any failure.
# VALGRIND=1 runs each under valgrind's leak checker.
set -u
B=${1:-build/release}
# Sanitizer builds: nng's never-freed wedged listener is expected (see
# tests/lsan.supp); harmless for other builds.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
pass=0; fail=0; failed=()
run() {
	local name=$1; shift
	local log; log=$(mktemp)
	if [ -n "${VALGRIND:-}" ]; then
		set -- valgrind -q --leak-check=full --error-exitcode=99 "$@"
	fi
	if "$@" >"$log" 2>&1; then
		pass=$((pass + 1)); echo "ok   $name"
	else
		fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name"; sed 's/^/    /' "$log" | tail -40
	fi
	rm -f "$log"
}
for t in "$B"/tests/unit/*_test; do
	[ -x "$t" ] || continue
	run "unit/$(basename "$t")" "$t"
done
for r in "$B"/tests/fuzz/*-replay; do
	[ -x "$r" ] || continue
	name=$(basename "$r" -replay)
	corpus=tests/fuzz/corpus/${name#fuzz_}
	[ -d "$corpus" ] || continue
	run "fuzz-replay/$name" "$r" "$corpus"
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
