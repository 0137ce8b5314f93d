"""Accuracy on Debian packages that are in neither corpus list: the closest this team gets to the evaluation it
never sees (other packages, their own names removed).

    python benchmarks/field_release.py                      # default packages, bullseye -> trixie
    python benchmarks/field_release.py --packages expat zlib --suites bookworm trixie --out /tmp/field.md
    python benchmarks/field_release.py --download-only      # fetch now, measure later
    python benchmarks/field_release.py --rebuild            # bookworm's sources, gcc/clang -O0/-O2/-O3

Downloads the official amd64 builds of each source package from the two suites (Debian's archive, with the
corpus builder's private apt state under CORPUS/apt; resumable: a fetched package is not fetched again), pairs
their shared libraries, programs and linked static archives as the dev-eval pairs are paired
(`symbridge.train.corpus.official_pairs`), and measures them with `benchmarks/accuracy.py` (targets stripped
and anonymized, truth from their own symbols). Writes benchmarks/results/field-release.md.

With `--identify` it also adds every shared-library reference to one library (`symbridge index add`) and
identifies each target against all of it, a section of its own at the end of the results (a name is judged
where the target exports the function; a name from another library than the target's own is as wrong as any).

With `--rebuild` it builds bookworm's source of REBUILD_PACKAGES instead (the corpus builder's rebuilds: gcc
and clang at -O0, -O2 and -O3, symbols kept; a package whose build fails is logged and left out) and measures
the dev-eval rebuild kinds: gcc -O0 -> -O3, gcc -> clang at -O2, clang -O0 <-> gcc -O3. Writes
benchmarks/results/field-rebuild.md.

Measurement only: nothing of these packages may be fitted, tuned or trained on (DESIGN.md: code from a package
in neither list is kept for independent evaluation), and the default list is fixed before any was measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import accuracy  # benchmarks/ is on the path when run as a script

from symbridge.evaluation import anonymize, source_name, truth_names
from symbridge.model.model import Model
from symbridge.store.store import open_store
from symbridge.train.corpus import (EVAL_REBUILD_COMBOS, FORBIDDEN, Builder, Rebuilder, load_records,
                                    official_pairs, read_sources, rebuild_pairs)
from symbridge.train.identify_eval import score

HERE = Path(__file__).resolve().parent
SPLIT = "field"
# C libraries in Debian's bullseye and trixie, in neither list of ../shared/corpus (checked at run time)
PACKAGES = ["expat", "zlib", "json-c", "libyaml", "libzstd", "libsodium", "popt", "talloc", "libbsd", "libcap-ng",
            "libpsl", "lcms2", "libmaxminddb", "xxhash", "pcre2", "sqlite3", "libxml2", "libassuan", "libksba",
            "libtirpc", "userspace-rcu", "libsigsegv", "check", "cmocka", "libb2"]
# those of them small enough to build six times in a session, with the -dev packages their builds need
# (libbsd: libmd-dev; libassuan, libksba: libgpg-error-dev)
REBUILD_PACKAGES = ["zlib", "expat", "json-c", "libyaml", "popt", "libcap-ng", "lcms2", "libmaxminddb", "xxhash",
                    "libsigsegv", "cmocka", "libzstd", "pcre2", "libsodium", "libbsd", "libassuan", "libksba"]
REBUILD_KINDS = list(dict.fromkeys(kind for kind, _, _ in EVAL_REBUILD_COMBOS))


def listed() -> set[str]:
    """Source packages of both corpus lists (empty where ../shared is not there)."""
    names: set[str] = set(FORBIDDEN)
    for split in ("train", "dev-eval"):
        try:
            names |= set(read_sources(split))
        except OSError:
            pass
    return names


def fetch(packages: list[str], suites: tuple[str, str], corpus: Path, update: bool) -> None:
    builder = Builder(SPLIT, corpus)
    builder.download_suites = suites
    if update:
        for suite in suites:
            builder.apt[suite].update()
    builder.ensure_apt()
    for i, src in enumerate(packages, 1):
        print(f"[{i}/{len(packages)}] {src}", file=sys.stderr, flush=True)
        builder.fetch_official(src)


def rebuild(packages: list[str], corpus: Path) -> None:
    builder = Rebuilder(SPLIT, corpus)
    builder.suites, builder.download_suites = ["bookworm"], ("bookworm",)
    builder.ensure_apt()
    for i, src in enumerate(packages, 1):
        print(f"[{i}/{len(packages)}] rebuild {src}", file=sys.stderr, flush=True)
        builder.rebuild(src, ["-O0", "-O2", "-O3"])


def identify_section(pairs: list[dict], corpus: Path, work: Path) -> list[str]:
    """A library of every shared-library pair's reference, then each target (anonymized as accuracy.py does it)
    identified against all of it: names at the default threshold, judged on the functions the target exports."""
    pairs = [p for p in pairs if p["kind"] == "cross-release"]
    db = work / "field-library.db"
    for old in work.glob("field-library.db*"):
        old.unlink()
    model = Model.default()
    t0 = time.time()
    known: set[str] = set()
    with open_store(str(db), model) as store:
        for p in pairs:
            store.add(corpus / p["reference"], save_index=False)
            known |= {source_name(n) for ns in truth_names(corpus / p["reference"]).values() for n in ns}
        store.save_index()
        built = time.time() - t0
        L = ["## identify: every reference in one library", "",
             f"{len(pairs)} references added in {built:.0f} s; each target identified against all of them. Names at "
             "the default threshold; judged where the target exports the function (a name from another library "
             "counts as wrong).", "",
             "| target | exported functions with a counterpart | named | right | precision | recall | seconds |",
             "|---|---|---|---|---|---|---|"]
        total = [0, 0, 0, 0]
        for p in pairs:
            anon = anonymize(corpus / p["target"], work / "anon" / p["target"].replace("/", "__"))
            truth = truth_names(corpus / p["target"])
            t1 = time.time()
            r = store.identify(anon)
            secs = time.time() - t1
            named, right, has, right_cp = score(r, truth, known, partial=True)  # names as identify gave them
            for k, v in enumerate((has, named, right, right_cp)):
                total[k] += v
            L.append(f"| {p['target']} | {has} | {named} | {right} | {right / max(named, 1):.3f} "
                     f"| {right_cp / max(has, 1):.3f} | {secs:.1f} |")
            print(L[-1], file=sys.stderr, flush=True)
    has, named, right, right_cp = total
    L.append(f"| all | {has} | {named} | {right} | {right / max(named, 1):.3f} | {right_cp / max(has, 1):.3f} | |")
    return L


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packages", nargs="+", default=None,
                    help="Source packages (default: PACKAGES, or REBUILD_PACKAGES with --rebuild).")
    ap.add_argument("--suites", nargs=2, metavar=("REF", "TARGET"), default=("bullseye", "trixie"))
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--kinds", nargs="+", default=None,
                    help="Kinds to measure (default: the official ones, or the rebuild ones with --rebuild).")
    ap.add_argument("--rebuild", action="store_true", help="Rebuild bookworm's sources instead of downloading.")
    ap.add_argument("--max-pairs", type=int, default=0, help="At most this many pairs per kind (0: all).")
    ap.add_argument("--update", action="store_true", help="Refresh the two suites' package lists first.")
    ap.add_argument("--download-only", action="store_true", help="Fetch (or build) only; measure later.")
    ap.add_argument("--no-transfer", action="store_true", help="Skip whole-binary matching (faster).")
    ap.add_argument("--identify", action="store_true",
                    help="Also identify each target against a library of every reference (releases only).")
    ap.add_argument("--out", type=Path, default=None,
                    help="Default: results/field-release.md, or results/field-rebuild.md with --rebuild.")
    a = ap.parse_args(argv)
    a.packages = a.packages or (REBUILD_PACKAGES if a.rebuild else PACKAGES)
    a.kinds = a.kinds or (REBUILD_KINDS if a.rebuild else list(accuracy.RELEASE_KINDS))
    a.out = a.out or HERE / "results" / ("field-rebuild.md" if a.rebuild else "field-release.md")
    clash = sorted(set(a.packages) & listed())
    if clash:
        ap.error(f"in a corpus list, not a field package: {' '.join(clash)}")
    if a.rebuild:
        rebuild(a.packages, a.corpus)
    else:
        fetch(a.packages, tuple(a.suites), a.corpus, a.update)
    if a.download_only:
        return 0
    recs = [r for r in load_records(a.corpus / SPLIT) if r["source_package"] in a.packages]
    if a.rebuild:
        pairs = rebuild_pairs(recs, EVAL_REBUILD_COMBOS)
        pairs_file = a.corpus / SPLIT / "pairs-rebuild.json"
    else:
        pairs = official_pairs(recs, *a.suites)
        pairs_file = a.corpus / SPLIT / f"pairs-{a.suites[0]}-{a.suites[1]}.json"
    pairs_file.write_text(json.dumps(pairs, indent=1) + "\n")
    print(f"{len(pairs)} pairs from {len({p['source_package'] for p in pairs})} source packages "
          f"({pairs_file})", file=sys.stderr)
    if not a.rebuild:
        accuracy.release_titles(*a.suites)
    sources = " ".join(sorted({p["source_package"] for p in pairs}))
    args = ["--pairs", str(pairs_file), "--corpus", str(a.corpus), "--kinds", *a.kinds, "--out", str(a.out),
            "--title", f"Debian packages in neither corpus list ({sources})", "--by-pair"]
    if a.max_pairs:
        args += ["--max-pairs", str(a.max_pairs)]
    if a.no_transfer:
        args.append("--no-transfer")
    rc = accuracy.main(args)
    if rc == 0 and a.identify and not a.rebuild:
        lines = identify_section(pairs, a.corpus, HERE / "work")
        a.out.write_text(a.out.read_text() + "\n" + "\n".join(lines) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
