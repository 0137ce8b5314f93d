import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from tests.fixtures.build import build, have_clang, strip_copy  # noqa: E402


def run_cli(*args, check=False):
    """Run the installed `symbridge` command; returns CompletedProcess with text output."""
    exe = shutil.which("symbridge") or sys.executable
    cmd = [exe, *map(str, args)] if exe != sys.executable else [exe, "-m", "symbridge.cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=600)


@pytest.fixture(scope="session")
def pair_o2_o3():
    """A reference with symbols (gcc -O2) and a stripped target (gcc -O3) of the same program, plus the
    unstripped target for truth."""
    ref = build("prog_big.c", opt="-O2")
    tgt_full = build("prog_big.c", opt="-O3")
    return ref, strip_copy(tgt_full), tgt_full


@pytest.fixture(scope="session")
def clang_available():
    return have_clang()


def dynamic_functions(path, types="T"):
    """name -> address of the functions `nm -D --defined-only` lists with one of these types."""
    out = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True, text=True).stdout
    return {n: int(a, 16) for a, t, n in (line.split() for line in out.splitlines()) if t in types}


def truth_of(path):
    out = subprocess.run(["nm", "--defined-only", str(path)], capture_output=True, text=True, check=True).stdout
    names = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tT":
            names.setdefault(int(parts[0], 16), set()).add(parts[2])
    return names
