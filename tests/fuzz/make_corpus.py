"""Rebuild the fuzz seed corpus in ``tests/fuzz/corpus/`` from the fixture sources (needs gcc).

The committed corpus lets the fuzzers start without compilers; run this only to refresh it:
``python tests/fuzz/make_corpus.py``. Each seed is small (< 100 KB) so the whole corpus stays under 1 MB.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.build import build  # noqa: E402

TINY = HERE / "tiny.c"
NOSTD = ("-nostdlib", "-DNOSTDLIB", "-fno-stack-protector")

SEEDS = {
    "hello_plt-O0-pie": dict(source_names="hello_plt.c", opt="-O0", kind="pie"),
    "hello_plt-O2-nopie": dict(source_names="hello_plt.c", opt="-O2", kind="nopie"),
    "hello_plt-O2-pie-stripped": dict(source_names="hello_plt.c", opt="-O2", kind="pie", strip=True),
    "tiny-O0-pie": dict(source_names=TINY, opt="-O0", kind="pie", extra=("-g",)),
    "tiny-O2-nopie": dict(source_names=TINY, opt="-O2", kind="nopie"),
    "tiny-O2-shared.so": dict(source_names=TINY, opt="-O2", kind="shared"),
    "tiny-O2-static-nostdlib-stripped": dict(source_names=TINY, opt="-O2", kind="static", extra=NOSTD,
                                             strip=True),
    "tiny-O1-static-nostdlib-nounwind": dict(source_names=TINY, opt="-O1", kind="static",
                                             extra=(*NOSTD, "-fno-asynchronous-unwind-tables",
                                                    "-fno-unwind-tables")),
}


def main() -> int:
    out = HERE / "corpus"
    out.mkdir(exist_ok=True)
    total = 0
    for name, kw in SEEDS.items():
        src = build(**kw)
        dest = out / name
        shutil.copyfile(src, dest)
        size = dest.stat().st_size
        total += size
        print(f"{name:40s} {size:7d} bytes")
    print(f"{'total':40s} {total:7d} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
