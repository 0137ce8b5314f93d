"""The seed's own setting: two different programs that link the same dev-eval library statically.

    python benchmarks/partial_overlap.py [--model PATH]

Builds benchmarks/partial/compress_tool.c (reference, symbols kept) and roundtrip_check.c (target) against
Debian's static liblz4.a (liblz4-dev, a dev-eval package; downloaded with apt-get into benchmarks/work),
both with -static (so glibc is shared code too), at -O2 and -O3. A third row takes Debian's shared build of
the same liblz4 (liblz4-1) as the reference: position-independent code, and names for its exports only. The
target is anonymized (stripped). Names belong only on the functions the reference shares with it; a name on
any other function is a false positive.
Prints precision and recall over all target functions at the default threshold, and at the two operating
points of benchmarks/accuracy.py (the best precision of any threshold reaching recall 0.95, the best recall
at precision 0.99), and writes the table to benchmarks/results/partial-overlap.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from accuracy import operating_points  # benchmarks/ is on the path when run as a script

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


def liblz4_shared(work: Path) -> Path:
    """Debian's shared build of the liblz4 version whose static library the programs link (liblz4-1, or
    liblz4-1t64 since trixie)."""
    found = list((work / "liblz4-1").rglob("liblz4.so.*.*"))
    if found:
        return found[0]
    version = sorted(work.glob("liblz4-dev_*.deb"))[-1].name.split("_")[1]
    for package in ("liblz4-1", "liblz4-1t64"):
        r = subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=work, capture_output=True)
        if r.returncode == 0:
            break
    deb = sorted(work.glob("liblz4-1*_*.deb"))[-1]
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "liblz4-1")], check=True)
    return next((work / "liblz4-1").rglob("liblz4.so.*.*"))


def build(src: Path, out: Path, lib: Path, opt: str) -> Path:
    inc = lib.parents[2] / "include"
    subprocess.run(["gcc", opt, "-static", f"-I{inc}", "-o", str(out), str(src), str(lib)], check=True)
    return out


def curve(r: dict, truth: dict[int, set[str]], ref_names: set[str]) -> list[tuple[float, bool, bool, bool]]:
    """(confidence, name right, has a counterpart, False) of every target function matched to a named
    reference function: what a lower or higher threshold than the default would name."""
    out = []
    for f in r["functions"]:
        if "import" in f["via"] or f["reference_address"] is None:
            continue
        ref = next((c["name"] for c in f["candidates"] if c["address"] == f["reference_address"]), None)
        if ref and not ref.startswith("sub_"):
            names = truth.get(f["address"], set())
            out.append((f["confidence"], name_right(ref, names), bool(names & ref_names), False))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=HERE / "work" / "partial")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "partial-overlap.md")
    a = ap.parse_args(argv)
    model = Model.load(a.model) if a.model else Model.default()
    lib = liblz4(a.work)
    rows = ["| reference | target | target functions | with counterpart | named | right | precision | recall | "
            "precision at recall 0.95 | recall at precision 0.99 |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    shared = liblz4_shared(a.work)
    program = build(HERE / "partial" / "compress_tool.c", a.work / "compress_tool-O2", lib, "-O2")
    references = [("compress_tool -O2", program, "-O2"), ("compress_tool -O2", program, "-O3"),
                  (f"Debian's {shared.name} (exports only)", shared, "-O2")]
    for ref_label, ref, tgt_opt in references:
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
        p95, r99 = operating_points(curve(r, truth, ref_names), counterparts)
        rows.append(f"| {ref_label} | roundtrip_check {tgt_opt} | {len(funcs)} | {counterparts} | "
                    f"{len(named)} | {right} | {right / max(len(named), 1):.3f} | {right / max(counterparts, 1):.3f} | "
                    f"{p95:.3f} | {r99:.3f} |")
        print(rows[-1], f"({secs:.1f} s)", file=sys.stderr)
    text = ("# Partial overlap: a static program named from another one or from the shared liblz4 "
            f"({time.strftime('%Y-%m-%d')})\n\n"
            f"Model `{model.name}`; command `python benchmarks/partial_overlap.py`.\n\n" + "\n".join(rows) + "\n")
    print(text)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
