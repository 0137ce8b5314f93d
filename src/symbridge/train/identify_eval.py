"""`identify` against a library of many shared libraries, on held-out train programs: the check of a library
change before it goes near dev-eval.

    python -m symbridge.train.identify_eval --work /work/data/identify --programs 24

The library holds the official shared library (names of its exports only) of every static program that
`symbridge.train.shared_static` linked for a package no model was trained on; each of those programs (glibc
plus part of one library, stripped) is then identified against the whole library. A target function has a
counterpart when one of its names is a name in the library; a name given anywhere else is wrong. Prints, over
all programs, names given, right, precision and recall, and the same for `transfer` from the program's own
shared library (what identify could reach if it knew which library to match). The library is kept in --work
and reused: after a change to what `index add` stores, give a new --work.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from ..binary import Binary
from ..errors import SymbridgeError
from ..evaluation import anonymize, name_right, source_name, truth_names
from ..match.transfer import transfer
from ..model.model import Model
from ..store.store import open_store
from . import shared_static
from .dataset import read_list, read_manifest


def score(result: dict, truth: dict[int, set[str]], known: set[str],
          threshold: float = 0.0, partial: bool = False) -> tuple[int, int, int, int]:
    """(names given, right, target functions with a counterpart, of them named right) of one result; known:
    the source names (evaluation.source_name) of the library's names. Names count at or above `threshold`.
    With `partial` truth (an official shared library: only its exports have names) a function without a name
    is not judged."""
    named = right = has = right_cp = 0
    for f in result["functions"]:
        if "import" in f["via"]:
            continue
        names = truth.get(f["address"], set())
        if partial and not names:
            continue
        counterpart = any(source_name(n) in known for n in names)
        has += counterpart
        if f["name"] and (threshold <= 0 or f["confidence"] >= threshold):
            ok = name_right(f["name"], names)
            named += 1
            right += ok
            right_cp += ok and counterpart
    return named, right, has, right_cp


def line(label: str, t: list[int]) -> str:
    named, right, has, right_cp = t
    return (f"{label:9s} named {named:5d}  right {right:5d}  precision {right / max(named, 1):.3f}  "
            f"recall {right_cp / max(has, 1):.3f}  (counterparts {has})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, default=Path("corpus/manifest-train.jsonl"))
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--work", type=Path, default=Path("/work/data/identify"))
    ap.add_argument("--model-packages", type=Path, default=Path("corpus/model-train-packages.txt"))
    ap.add_argument("--programs", type=int, default=0, help="Identify this many programs (drawn; 0: all).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-transfer", action="store_true", help="Skip the transfer from each program's library.")
    a = ap.parse_args(argv)
    rows = read_manifest(a.manifest)
    found = shared_static.pairs(rows, a.corpus, read_list(a.model_packages))
    if not found:
        raise SystemExit(f"identify_eval: no static programs of packages outside {a.model_packages} under {a.corpus} "
                         "(symbridge.train.shared_static; the shipped model was trained on every train package since "
                         "session 46)")
    libs = sorted({lib for lib, _ in found})
    a.work.mkdir(parents=True, exist_ok=True)
    model = Model.default()
    db = a.work / "library.db"
    t0 = time.time()
    known: set[str] = set()
    with open_store(str(db), model) as store:
        for lib in libs:
            store.add(lib)  # a no-op for a binary already in the library
        known = {source_name(n) for n in store.names()}
    print(f"[{time.time() - t0:4.0f}s] library: {len(libs)} shared libraries, {len(known)} names", flush=True)
    chosen = random.Random(a.seed).sample(found, a.programs) if 0 < a.programs < len(found) else found
    tot_id, tot_tr = [0] * 4, [0] * 4
    for lib, prog in chosen:
        try:
            anon = anonymize(prog, a.work / (prog.parent.parent.parent.name + "__" + prog.name))
            target = Binary(anon, ignore_symbols=True)
            truth = truth_names(prog)
            with open_store(str(db), model, create=False) as store:
                res = store.identify(target)
            s_id = score(res, truth, known)
            s_tr = [0] * 4
            if not a.no_transfer:
                s_tr = list(score(transfer(Binary(lib), target, model), truth, known))
        except (SymbridgeError, OSError) as exc:
            print(f"skip {prog}: {exc}", file=sys.stderr)
            continue
        tot_id = [x + y for x, y in zip(tot_id, s_id)]
        tot_tr = [x + y for x, y in zip(tot_tr, s_tr)]
        print(f"[{time.time() - t0:4.0f}s] {prog.name:40s} identify named {s_id[0]:4d} right {s_id[1]:4d} "
              f"of {s_id[2]:4d}; transfer named {s_tr[0]:4d} right {s_tr[1]:4d}", flush=True)
    print(line("identify", tot_id))
    if not a.no_transfer:
        print(line("transfer", tot_tr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
