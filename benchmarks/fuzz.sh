#!/usr/bin/env bash
# Long coverage-guided fuzz run of loading, discovery, lifting and embedding (atheris / libFuzzer).
#
#   benchmarks/fuzz.sh [MINUTES]        # default 30; one worker; needs `pip install atheris coverage`
#
# Work files go to benchmarks/work/fuzz/ (git-ignored): corpus/ (grows from tests/fuzz/corpus/), artifacts/
# (crash-*, timeout-* (> 10 s, a hang), oom-* (> 2 GB)), log. After a crash the fuzzer restarts on the grown
# corpus until the time is up. At the end it prints executions per second, corpus size, libFuzzer's edge
# coverage, and the line coverage (coverage.py) of symbridge's loader and analysis over the final corpus.
# Copy each artifact into tests/fuzz/regressions/ once fixed; tests/fuzz/test_regressions.py replays them.
set -uo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-30}"
WORK="${FUZZ_WORK:-benchmarks/work/fuzz}"
mkdir -p "$WORK/corpus" "$WORK/artifacts"
LOG="$WORK/log"
: > "$LOG"
PY="${PYTHON:-python3}"
deadline=$(( $(date +%s) + MINUTES * 60 ))
start=$(date +%s)
runs=0
while :; do
  left=$(( deadline - $(date +%s) ))
  [ "$left" -le 5 ] && break
  "$PY" benchmarks/fuzz_target.py -dict=tests/fuzz/elf.dict -timeout=10 -rss_limit_mb=2048 -max_len=131072 \
    -max_total_time="$left" -print_final_stats=1 -artifact_prefix="$WORK/artifacts/" \
    "$WORK/corpus" tests/fuzz/corpus >>"$LOG" 2>&1
  rc=$?
  runs=$(( runs + 1 ))
  [ "$rc" -eq 0 ] && break
  echo "fuzzer stopped with status $rc (see $LOG); restarting" >&2
done
elapsed=$(( $(date +%s) - start ))
# executions: per fuzzer segment, its "Done N runs" line or (a segment cut short) its last "#N" status line
execs=$(awk '/^INFO: Seed:/{t+=seg; seg=0} /^#[0-9]+/{seg=substr($1,2)+0} /^Done [0-9]+ runs/{seg=$2+0}
             END{print t+seg}' "$LOG")
last=$(grep -E '^#[0-9]+.*cov:' "$LOG" | tail -1)
crashes=$(find "$WORK/artifacts" -name 'crash-*' | wc -l)
hangs=$(find "$WORK/artifacts" -name 'timeout-*' -o -name 'slow-unit-*' | wc -l)
ooms=$(find "$WORK/artifacts" -name 'oom-*' | wc -l)
ncorp=$(find "$WORK/corpus" -type f | wc -l)
kb=$(du -sk "$WORK/corpus" | cut -f1)
echo "== symbridge fuzz run: ${elapsed}s wall, ${runs} fuzzer segment(s), 1 worker"
echo "executions:   $execs ($(( execs / (elapsed > 0 ? elapsed : 1) )) exec/s)"
echo "corpus:       $ncorp inputs, ${kb} KB (seeds: $(ls tests/fuzz/corpus | wc -l))"
echo "libFuzzer:    $(echo "$last" | grep -oE 'cov: [0-9]+ ft: [0-9]+') (edges / features, Python + pyelftools)"
echo "crashes: $crashes  hangs (>10 s): $hangs  out-of-memory (>2 GB): $ooms   artifacts in $WORK/artifacts/"
if "$PY" -c "import coverage" 2>/dev/null; then
  "$PY" -m coverage run --data-file="$WORK/.coverage" --include="*/symbridge/elf/*,*/symbridge/analysis/*,*/symbridge/binary.py,*/symbridge/model/features.py" \
    benchmarks/fuzz_target.py --replay "$WORK/corpus" tests/fuzz/corpus >>"$LOG" 2>&1 \
    && "$PY" -m coverage report --data-file="$WORK/.coverage" | tail -n 12
fi
[ $(( crashes + hangs + ooms )) -eq 0 ]
