"""Function discovery over every x86-64 ELF file of this machine's system directories, read as stripped.

    python benchmarks/discovery_sweep.py [DIR ...]        (default: /usr/bin /usr/sbin /usr/lib/x86_64-linux-gnu)

Each file is read with its symbols ignored (Binary(ignore_symbols=True)), so that functions are found as in a
stripped copy, and the exported functions its .dynsym names (sized FUNC symbols in executable sections) must
all be among them. Errors are counted by kind; a file taking over 120 s counts as a timeout. Files over 40 MB
are left out. Writes benchmarks/results/discovery-sweep.md.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections import Counter
from pathlib import Path

from symbridge.binary import Binary
from symbridge.elf.image import load_image
from symbridge.evaluation import truth_starts

HERE = Path(__file__).resolve().parent
DIRS = ("/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu")
MAX_SIZE = 40 << 20
LIMIT_S = 120


class Timeout(Exception):
    pass


def _alarm(*_) -> None:
    raise Timeout


def elf_files(dirs: list[str]):
    seen = set()
    for d in dirs:
        for p in sorted(Path(d).iterdir()):
            try:
                if not p.is_file() or p.is_symlink() or p.stat().st_size > MAX_SIZE or p.resolve() in seen:
                    continue
                with open(p, "rb") as f:
                    head = f.read(20)
            except OSError:
                continue
            if head[:4] == b"\x7fELF" and len(head) == 20 and head[4] == 2 and head[18] == 0x3E:
                seen.add(p.resolve())
                yield p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="*", default=list(DIRS))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "discovery-sweep.md")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGALRM, _alarm)
    files = functions = exports = missed = 0
    errors: Counter = Counter()
    misses: list[str] = []
    slowest = (0.0, "")
    t_all = time.time()
    for p in elf_files(a.dirs):
        files += 1
        t0 = time.time()
        signal.alarm(LIMIT_S)
        try:
            truth = truth_starts(load_image(p))
            found = {f.address for f in Binary(p, ignore_symbols=True).functions}
            functions += len(found)
            exports += len(truth)
            lost = truth - found
            missed += len(lost)
            if lost:
                misses.append(f"{p}: {len(lost)} of {len(truth)}")
        except Timeout:
            errors["timeout"] += 1
        except Exception as exc:  # noqa: BLE001 - every failure is counted by its kind
            kind = " (a relocatable object: no target)" if "relocatable" in str(exc) else ""
            errors[type(exc).__name__ + kind] += 1
        finally:
            signal.alarm(0)
        slowest = max(slowest, (time.time() - t0, str(p)))
    lines = ["# Function discovery over this machine's system ELF files, read as stripped", "",
             f"Command `python benchmarks/discovery_sweep.py {' '.join(a.dirs)}`; {time.strftime('%Y-%m-%d')}.", "",
             "| x86-64 ELF files | read | functions found | exported functions | exported functions not found | "
             "refused or failed | seconds in all | slowest file |", "|---|---|---|---|---|---|---|---|",
             f"| {files} | {files - sum(errors.values())} | {functions} | {exports} | {missed} | "
             f"{', '.join(f'{k}: {v}' for k, v in sorted(errors.items())) or 'none'} | {time.time() - t_all:.0f} | "
             f"{slowest[1]} ({slowest[0]:.1f} s) |"]
    if misses:
        lines += ["", "Files with exported functions not found:", ""] + [f"- {m}" for m in misses]
    text = "\n".join(lines) + "\n"
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
