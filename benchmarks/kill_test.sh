#!/usr/bin/env bash
# The long form of tests/store/test_cli.py::test_sigkill_during_add: SIGKILL `symbridge index add` at random
# points N times (default 220) and check after each kill that the database opens, passes SQLite's integrity
# and foreign-key checks, and holds exactly the binaries whose add completed.
set -euo pipefail
cd "$(dirname "$0")/.."
SYMBRIDGE_KILL_ITERATIONS=${1:-220} python3 -m pytest -q -s tests/store/test_cli.py -k sigkill
