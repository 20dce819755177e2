#!/bin/bash
# Runs each libFuzzer binary for SECONDS on a copy of its corpus
# (tests/fuzz/corpus/<name>/ for build/fuzz/tests/fuzz/fuzz_<name>), so new
# inputs never land in the source tree. A crash, leak, timeout or
# sanitizer report fails the run; its reproducer is kept under
# build/fuzz/artifacts/<name>/ (replay it with the fuzzer binary, or add it
# to the corpus as a regression input once fixed).
# Usage: scripts/run-fuzz.sh SECONDS BINARY...   (`make fuzz` calls this)
# Ends with one line "fuzz: N passed, N failed".
set -u
if [ $# -lt 2 ]; then
	echo "usage: $0 SECONDS BINARY..." >&2
	exit 2
fi
secs=$1
shift
case $secs in
'' | *[!0-9]*) echo "$0: SECONDS must be a number, not '$secs'" >&2; exit 2 ;;
esac
pass=0
fail=0
work=$(mktemp -d /tmp/mailsync-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
for bin in "$@"; do
	name=$(basename "$bin")
	name=${name#fuzz_}
	src=tests/fuzz/corpus/$name
	art=build/fuzz/artifacts/$name
	mkdir -p "$work/$name" "$art"
	if [ -d "$src" ]; then
		cp -R "$src/." "$work/$name/"
	else
		echo "fuzz: $name: no corpus at $src, starting empty" >&2
	fi
	log=$work/$name.log
	echo "fuzz: $name for ${secs}s ($(ls "$work/$name" | wc -l) seeds)"
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art/" \
		"$work/$name" >"$log" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1))
		echo "ok   fuzz/$name: $(grep -E 'stat::number_of_executed_units' "$log" |
			awk '{print $2}') runs, corpus $(ls "$work/$name" | wc -l)"
	else
		fail=$((fail + 1))
		echo "FAIL fuzz/$name (exit $rc); reproducers in $art/:"
		ls "$art" | sed 's/^/    /'
		grep -E 'ERROR|SUMMARY|==[0-9]+==' "$log" | head -20 | sed 's/^/    /'
	fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
