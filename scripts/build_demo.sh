#!/usr/bin/env bash
# Rebuilds the two demo binaries shipped in src/symbridge/demo/ from tests/fixtures/src/prog_big.c:
# the reference with gcc -O2 and its symbols, the target with clang -O2 (gcc -O3 without clang), stripped.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src=$here/tests/fixtures/src/prog_big.c
out=$here/src/symbridge/demo
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gcc -O2 -g0 -o "$out/demo-reference" "$src" -lm
if command -v clang >/dev/null; then cc="clang -O2"; else cc="gcc -O3"; fi
$cc -g0 -o "$tmp/target" "$src" -lm
python3 - "$tmp/target" "$out/demo-truth.json" "$cc" <<'PY'
import json, subprocess, sys
rows = subprocess.run(["nm", "--defined-only", sys.argv[1]], capture_output=True, text=True, check=True).stdout
truth = {int(a, 16): n for a, t, n in (l.split() for l in rows.splitlines() if len(l.split()) == 3) if t in "tT"}
json.dump({"compiler": sys.argv[3], "names": {str(a): n for a, n in sorted(truth.items())}}, open(sys.argv[2], "w"),
          indent=0)
PY
strip --strip-all -o "$out/demo-target" "$tmp/target"
ls -l "$out"
