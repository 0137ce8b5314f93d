"""The seed's own setting: two different programs that link the same dev-eval library statically.

    python benchmarks/partial_overlap.py [--model PATH]

Builds benchmarks/partial/compress_tool.c (reference, symbols kept) and roundtrip_check.c (target) against
Debian's static liblz4.a (liblz4-dev, a dev-eval package; downloaded with apt-get into benchmarks/work),
both with -static (so glibc is shared code too), at -O2 and -O3. A third row takes Debian's shared build of
the same liblz4 (liblz4-1) as the reference: position-independent code, and names for its exports only; two
more do the same for hash_tool.c with Nettle's libnettle.a and deflate_tool.c with libdeflate.a (dev-eval
packages too). Three more take the static archives themselves as the reference (symbridge links them
first: elf.link), whose names include the libraries' internal functions. The programs are built, never run.
Each target is anonymized (stripped). Names belong only on the functions the reference shares with it; a name
on any other function is a false positive.
Prints precision and recall over all target functions at the default threshold, and at the two operating
points of benchmarks/accuracy.py (the best precision of any threshold reaching recall 0.95, the best recall
at precision 0.99), and writes the table to benchmarks/results/partial-overlap.md. A second table puts the
three shared libraries into one library of known functions (`symbridge index add`), then Debian's
libcrypto.so.3 (a large library the targets do not link) and compress_tool too, and identifies each static
program against all of it (`symbridge identify`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from accuracy import THRESHOLD, operating_points, score_transfer  # benchmarks/ is on the path when run as a script

from symbridge.binary import Binary
from symbridge.evaluation import anonymize, name_right, source_name, truth_names
from symbridge.match.transfer import transfer
from symbridge.model.model import Model
from symbridge.store.store import open_store
from symbridge.train.identify_eval import score

HERE = Path(__file__).resolve().parent


# dev-eval libraries with a static build in their -dev package: (-dev package, static library, the packages
# that may hold the shared build of the same version, the shared library's file name pattern)
LIBRARIES = {
    "lz4": ("liblz4-dev", "liblz4.a", ("liblz4-1", "liblz4-1t64"), "liblz4.so.*.*"),
    "nettle": ("nettle-dev", "libnettle.a", ("libnettle8", "libnettle8t64"), "libnettle.so.*.*"),
    "libdeflate": ("libdeflate-dev", "libdeflate.a", ("libdeflate0",), "libdeflate.so.0"),
}


def extract(work: Path, package: str) -> Path | None:
    """Download one Debian package (``name`` or ``name=version``) into work and unpack it; None if apt has none."""
    name = package.split("=")[0]
    target = work / name
    if not target.exists():
        work.mkdir(parents=True, exist_ok=True)
        if subprocess.run(["apt-get", "download", package], cwd=work, capture_output=True).returncode:
            return None
        deb = sorted(work.glob(f"{name}_*.deb"))[-1]
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    return target


def library(work: Path, lib: str) -> tuple[Path, Path]:
    """The static library (from the -dev package) and Debian's shared build of the same version."""
    dev, static, shared_packages, pattern = LIBRARIES[lib]
    dev_dir = extract(work, dev)
    if dev_dir is None:
        raise SystemExit(f"partial_overlap: apt-get download {dev} failed")
    version = sorted(work.glob(f"{dev}_*.deb"))[-1].name.split("_")[1]
    for package in shared_packages:
        shared_dir = extract(work, f"{package}={version}")
        if shared_dir is not None:
            break
    else:
        raise SystemExit(f"partial_overlap: none of {', '.join(shared_packages)} {version} could be downloaded")
    so = next(f for f in shared_dir.rglob(pattern) if f.is_file() and not f.is_symlink())
    return next(dev_dir.rglob(static)), so


def build(src: Path, out: Path, lib: Path, opt: str) -> Path:
    inc = lib.parents[2] / "include"
    subprocess.run(["gcc", opt, "-static", f"-I{inc}", "-o", str(out), str(src), str(lib)], check=True)
    return out


def score_identify(r: dict, truth: dict[int, set[str]], known: set[str], threshold: float = 0.0) -> dict:
    """Names given and right (symbridge.train.identify_eval.score: a target function has a counterpart when one
    of its names is in the library, known: their source names), and the operating-point curve: the name a
    match stands for is its library function's (binary, address; sub_ADDRESS where the library has none),
    or the name given without one (a cold part). Names count at or above `threshold` (accuracy.score_transfer)."""
    funcs = [f for f in r["functions"] if "import" not in f["via"]]
    named, right, counterparts, right_cp = score(r, truth, known, threshold)
    names_at = {(c["binary"], c["address"]): c["name"] for f in funcs for c in f["candidates"]}
    curve = []
    for f in funcs:
        names = truth.get(f["address"], set())
        ref = (names_at.get((f["binary"], f["reference_address"])) if f["reference_address"] is not None
               else f["name"])
        if ref is not None and not ref.startswith("sub_"):  # a library function without a name names nothing
            has = any(source_name(n) in known for n in names)
            curve.append((f["confidence"], name_right(ref, names), has, False))
    return {"functions": len(funcs), "named": named, "right": right, "right_counterparts": right_cp,
            "counterparts": counterparts, "curve": curve}


def table_row(cells: list[str], functions: int, sc: dict, recalled: int) -> str:
    """One row of either table: the leading cells, then target functions, those with a counterpart, names given
    and right, precision, recall (`recalled` right names of counterparts) and the two operating points."""
    named, right, counterparts = sc["named"], sc["right"], sc["counterparts"]
    p95, r99 = operating_points(sc["curve"], counterparts)
    return "| " + " | ".join(cells + [str(functions), str(counterparts), str(named), str(right),
                                      f"{right / max(named, 1):.3f}", f"{recalled / max(counterparts, 1):.3f}",
                                      f"{p95:.3f}", f"{r99:.3f}"]) + " |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=HERE / "work" / "partial")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "partial-overlap.md")
    a = ap.parse_args(argv)
    model = Model.load(a.model) if a.model else Model.default()
    lz4, lz4_shared = library(a.work, "lz4")
    nettle, nettle_shared = library(a.work, "nettle")
    deflate, deflate_shared = library(a.work, "libdeflate")
    rows = ["| reference | target | target functions | with counterpart | named | right | precision | recall | "
            "precision at recall 0.95 | recall at precision 0.99 |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    program = build(HERE / "partial" / "compress_tool.c", a.work / "compress_tool-O2", lz4, "-O2")
    # (reference's label, reference, target's source, static library it links, optimisation)
    references = [("compress_tool -O2", program, "roundtrip_check", lz4, "-O2"),
                  ("compress_tool -O2", program, "roundtrip_check", lz4, "-O3"),
                  (f"Debian's {lz4_shared.name} (exports only)", lz4_shared, "roundtrip_check", lz4, "-O2"),
                  (f"Debian's {nettle_shared.name} (exports only)", nettle_shared, "hash_tool", nettle, "-O2"),
                  (f"Debian's {deflate_shared.name} (exports only)", deflate_shared, "deflate_tool", deflate, "-O2"),
                  (f"Debian's {lz4.name} (the static build itself)", lz4, "roundtrip_check", lz4, "-O2"),
                  (f"Debian's {nettle.name} (the static build itself)", nettle, "hash_tool", nettle, "-O2"),
                  (f"Debian's {deflate.name} (the static build itself)", deflate, "deflate_tool", deflate, "-O2")]
    for ref_label, ref, source, lib, tgt_opt in references:
        tgt = build(HERE / "partial" / f"{source}.c", a.work / f"{source}{tgt_opt}", lib, tgt_opt)
        anon = anonymize(tgt, a.work / f"{source}{tgt_opt}.anon")
        truth, ref_names = truth_names(tgt), {n for ns in truth_names(ref, link=True).values() for n in ns}
        t0 = time.time()
        r = transfer(Binary(ref, link=True), Binary(anon, ignore_symbols=True), model, min_confidence=0.0)
        secs = time.time() - t0
        funcs = [f for f in r["functions"] if "import" not in f["via"]]
        has = {f["address"] for f in funcs if truth.get(f["address"], set()) & ref_names}
        sc = score_transfer(r, truth, has, partial=False, threshold=THRESHOLD, reference_names=ref_names)
        rows.append(table_row([ref_label, f"{source} {tgt_opt}"], len(funcs), sc, sc["right"]))
        print(rows[-1], f"({secs:.1f} s)", file=sys.stderr)
    # the library of known functions: the three shared libraries, then libcrypto (a large distractor) and the
    # program too; each target identified against all of it (names belong on the functions whose name the
    # library holds)
    rows += ["", "`symbridge identify` against a library of Debian's liblz4.so, libnettle.so and libdeflate.so "
             "(exports only), then with OpenSSL's libcrypto.so.3 too (11,000 functions, none of them in the "
             "targets), then with compress_tool -O2 (with glibc) too: names belong on the target functions whose "
             "name is in the library.", "",
             "| library | target | target functions | with counterpart | named | right | precision | recall | "
             "precision at recall 0.95 | recall at precision 0.99 |", "|---|---|---|---|---|---|---|---|---|---|"]
    db = a.work / "library.db"
    for path in (db, Path(f"{db}.hnsw"), Path(f"{db}.hnsw.json")):
        path.unlink(missing_ok=True)
    crypto_dir = extract(a.work, "libssl3") or extract(a.work, "libssl3t64")
    if crypto_dir is None:
        raise SystemExit("partial_overlap: apt-get download libssl3 failed")
    crypto = next(f for f in crypto_dir.rglob("libcrypto.so.3") if f.is_file() and not f.is_symlink())
    with open_store(str(db), model) as store:
        for label, refs in (("3 shared libraries", (lz4_shared, nettle_shared, deflate_shared)),
                            ("3 shared libraries + libcrypto", (crypto,)),
                            ("3 shared libraries + libcrypto + compress_tool", (program,))):
            for ref in refs:
                store.add(ref)
            known = {source_name(n) for n in store.names()}
            for source, lib in (("roundtrip_check", lz4), ("hash_tool", nettle), ("deflate_tool", deflate)):
                tgt = build(HERE / "partial" / f"{source}.c", a.work / f"{source}-O2", lib, "-O2")
                anon = anonymize(tgt, a.work / f"{source}-O2.anon")
                t0 = time.time()
                r = store.identify(Binary(anon, ignore_symbols=True), min_confidence=0.0)
                secs = time.time() - t0
                sc = score_identify(r, truth_names(tgt), known, THRESHOLD)
                rows.append(table_row([label, f"{source} -O2"], sc["functions"], sc, sc["right_counterparts"]))
                print(rows[-1], f"({secs:.1f} s)", file=sys.stderr)
    text = ("# Partial overlap: static programs named from another program, the shared library or the static archive "
            f"({time.strftime('%Y-%m-%d')})\n\n"
            f"Model `{model.name}`; command `python benchmarks/partial_overlap.py`.\n\n" + "\n".join(rows) + "\n")
    print(text)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
