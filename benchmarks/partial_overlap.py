"""The seed's own setting: two different programs that link the same dev-eval library statically.

    python benchmarks/partial_overlap.py [--model PATH]

Builds benchmarks/partial/compress_tool.c (reference, symbols kept) and roundtrip_check.c (target) against
Debian's static liblz4.a (liblz4-dev, a dev-eval package; downloaded with apt-get into benchmarks/work),
both with -static (so glibc is shared code too), at -O2 and -O3. The target is anonymized (stripped). Names
belong only on the functions the two programs share; a name on any other function is a false positive.
Prints precision and recall over all target functions and appends the table to
benchmarks/results/partial-overlap.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from symbridge.binary import Binary
from symbridge.evaluation import anonymize, name_right, truth_names
from symbridge.match.transfer import transfer
from symbridge.model.model import Model

HERE = Path(__file__).resolve().parent


def liblz4(work: Path) -> Path:
    dev = work / "liblz4-dev"
    found = list(dev.rglob("liblz4.a"))
    if found:
        return found[0]
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "liblz4-dev"], cwd=work, check=True, capture_output=True)
    deb = sorted(work.glob("liblz4-dev_*.deb"))[-1]
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dev)], check=True)
    return next(dev.rglob("liblz4.a"))


def build(src: Path, out: Path, lib: Path, opt: str) -> Path:
    inc = lib.parents[2] / "include"
    subprocess.run(["gcc", opt, "-static", f"-I{inc}", "-o", str(out), str(src), str(lib)], check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=HERE / "work" / "partial")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "partial-overlap.md")
    a = ap.parse_args(argv)
    model = Model.load(a.model) if a.model else Model.default()
    lib = liblz4(a.work)
    rows = ["| reference | target | target functions | with counterpart | named | right | precision | recall |",
            "|---|---|---|---|---|---|---|---|"]
    for ref_opt, tgt_opt in (("-O2", "-O2"), ("-O2", "-O3")):
        ref = build(HERE / "partial" / "compress_tool.c", a.work / f"compress_tool{ref_opt}", lib, ref_opt)
        tgt = build(HERE / "partial" / "roundtrip_check.c", a.work / f"roundtrip_check{tgt_opt}", lib, tgt_opt)
        anon = anonymize(tgt, a.work / f"roundtrip_check{tgt_opt}.anon")
        truth, ref_names = truth_names(tgt), {n for ns in truth_names(ref).values() for n in ns}
        t0 = time.time()
        r = transfer(Binary(ref), Binary(anon, ignore_symbols=True), model)
        secs = time.time() - t0
        funcs = [f for f in r["functions"] if "import" not in f["via"]]
        named = [f for f in funcs if f["name"]]
        right = sum(name_right(f["name"], truth.get(f["address"], ())) for f in named)
        counterparts = sum(1 for f in funcs if truth.get(f["address"], set()) & ref_names)
        rows.append(f"| compress_tool {ref_opt} | roundtrip_check {tgt_opt} | {len(funcs)} | {counterparts} | "
                    f"{len(named)} | {right} | {right / max(len(named), 1):.3f} | {right / max(counterparts, 1):.3f} |")
        print(rows[-1], f"({secs:.1f} s)", file=sys.stderr)
    text = (f"# Partial overlap: two programs statically linking liblz4 + glibc ({time.strftime('%Y-%m-%d')})\n\n"
            f"Model `{model.name}`; command `python benchmarks/partial_overlap.py`.\n\n" + "\n".join(rows) + "\n")
    print(text)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
