"""Fixtures for the library (store) tests: small C programs compiled with gcc into temporary folders."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

N_FUNCS = 32

# Distinct bodies: each template is filled with its own constants and strings per function.
TEMPLATES = [
    """int {name}(int *a, int n) {{
    int s = {c0};
    for (int i = 0; i < n; i++) {{ if (a[i] > {c1}) s += a[i] * {c2}; else s ^= a[i] + {c3}; }}
    if (s < 0) printf("{name}: negative %d\\n", s);
    return s;
}}""",
    """unsigned {name}(const char *p) {{
    unsigned h = {c0}u;
    while (*p) {{ h = (h << 5) + h + (unsigned char)*p++; h ^= {c1}u; }}
    if (h % {c2} == 0) puts("{name}: divisible");
    return h;
}}""",
    """long {name}(long x, long y) {{
    switch ((x + y) & 7) {{
    case 0: return x * {c0} - y;
    case 1: return (x ^ {c1}) + y * 3;
    case 2: return x / (y | 1) + {c2};
    case 3: return x % {c3} + strlen("{name} case three");
    case 4: return -x + y * {c1};
    default: fprintf(stderr, "{name}: %ld %ld\\n", x, y); return {c3};
    }}
}}""",
    """double {name}(const double *v, int n) {{
    double acc = {c0}.5, best = -1e300;
    for (int i = 0; i < n; i++) {{ acc = acc * 0.{c1} + v[i]; if (v[i] > best) best = v[i]; }}
    if (acc > {c2}.0) printf("{name}: %f %f\\n", acc, best);
    return acc - best / {c3}.0;
}}""",
    """char *{name}(const char *s, int k) {{
    size_t n = strlen(s);
    char *out = malloc(n + {c0});
    if (!out) {{ perror("{name}: malloc"); return 0; }}
    for (size_t i = 0; i < n; i++) out[i] = (char)(s[i] + k + {c1});
    out[n] = 0;
    if (n > {c2}) memmove(out, out + {c3} % (n + 1), 1);
    return out;
}}""",
    """int {name}(int *a, int n, int key) {{
    int lo = 0, hi = n - 1, steps = {c0};
    while (lo <= hi) {{
        int mid = lo + (hi - lo) / 2; steps++;
        if (a[mid] == key + {c1}) return mid * {c2} + steps;
        if (a[mid] < key) lo = mid + 1; else hi = mid - 1;
    }}
    if (steps > {c3}) puts("{name}: long search");
    return -1;
}}""",
]


def c_source(variant: int = 0, n: int = N_FUNCS) -> str:
    """A program of n distinct functions; variant changes one constant (a different file, same code)."""
    parts = ["#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>", ""]
    names = []
    for i in range(n):
        name = f"fn_{['sum', 'hash', 'mix', 'avg', 'shift', 'find'][i % 6]}_{i}"
        names.append(name)
        c = [7 + 13 * i, 3 + 5 * i, 11 + 17 * i, 29 + 7 * i]
        body = TEMPLATES[i % len(TEMPLATES)].format(name=name, c0=c[0], c1=c[1], c2=c[2], c3=c[3])
        parts.append("__attribute__((noinline)) " + body)
    parts.append("volatile long sink;")
    parts.append("int main(int argc, char **argv) {")
    parts.append(f"    int arr[16] = {{0}}; double dv[4] = {{1, 2, 3, {variant}}}; (void)dv; (void)arr;")
    for i, name in enumerate(names):
        call = ["{0}(arr, argc)", "{0}(argv[0])", "{0}(argc, {1})", "{0}(dv, argc)", "(long){0}(argv[0], argc)",
                "{0}(arr, 16, argc)"][i % 6].format(name, i)
        parts.append(f"    sink += (long){call};")
    parts.append(f"    return (int)(sink & {variant + 1});")
    parts.append("}")
    return "\n".join(parts) + "\n"


def compile_c(dest: Path, source: str, opt: str = "-O2", strip: bool = False) -> Path:
    src = dest.with_suffix(".c")
    src.write_text(source)
    subprocess.run(["gcc", opt, "-fno-inline", "-o", str(dest), str(src)], check=True, capture_output=True)
    if strip:
        subprocess.run(["strip", str(dest)], check=True, capture_output=True)
    return dest


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the fixtures")
    d = tmp_path_factory.mktemp("store-bins")
    ref = compile_c(d / "ref_O2", c_source(0), "-O2")
    target = compile_c(d / "target_O1", c_source(0), "-O1", strip=True)
    target_sym = compile_c(d / "target_O1_sym", c_source(0), "-O1")
    other = compile_c(d / "other_O2", c_source(1), "-O2")
    stripped_ref = compile_c(d / "ref_O2_stripped", c_source(0), "-O2", strip=True)
    return {"ref": ref, "target": target, "target_sym": target_sym, "other": other, "stripped": stripped_ref}


@pytest.fixture()
def db(tmp_path) -> Path:
    return tmp_path / "lib.db"
