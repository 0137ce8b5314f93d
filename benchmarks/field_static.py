"""The analyst's everyday case on this machine's own libraries: a statically linked program, stripped, named
from the shared libraries that hold the same code, or from the static archives it was linked from.

    python benchmarks/field_static.py [--model PATH]

Builds benchmarks/field/evp.c against this system's static libcrypto (libssl-dev) and glibc (libc6-dev), and
benchmarks/field/words.cc against static libstdc++, with -O2 -static; strips them (anonymize); then names
them with `symbridge transfer` from libcrypto.so.3, libc.so.6 (and its debug file where libc6-dbg is
installed) and libstdc++.so.6, and with `symbridge identify` against a library of libc, libcrypto, libssl and
libz (and libstdc++). Then the same from the static archives themselves (libcrypto.a, libc.a, libstdc++.a,
which symbridge links before it reads them; their names include every internal function): the very objects
the programs were linked from. The programs are built, never run. A target function has a counterpart when
one of its names (aliases included) is a name of the reference (its symbols and debug file's, aliases
included); a name given anywhere else is a false positive. Writes benchmarks/results/field-static.md.

These are not held-out numbers: OpenSSL is one of the packages the model was trained on (Debian's official
builds, other versions); glibc and libstdc++ are in no list. They check the pipeline on real code: aliases,
descriptor tables, static-versus-shared builds of the same version.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from accuracy import THRESHOLD, score_transfer  # benchmarks/ is on the path when run as a script
from partial_overlap import score_identify, table_row

from symbridge.binary import Binary
from symbridge.elf.debuginfo import find_debug_file
from symbridge.elf.image import load_image
from symbridge.errors import SymbridgeError
from symbridge.evaluation import anonymize, source_name, truth_names
from symbridge.match.transfer import transfer
from symbridge.model.model import Model
from symbridge.store.store import open_store

HERE = Path(__file__).resolve().parent
LIB = Path("/usr/lib/x86_64-linux-gnu")
LIBS = {"libcrypto": LIB / "libcrypto.so.3", "libc": LIB / "libc.so.6", "libstdc++": LIB / "libstdc++.so.6",
        "libssl": LIB / "libssl.so.3", "libz": LIB / "libz.so.1",
        "libcrypto.a": LIB / "libcrypto.a", "libc.a": LIB / "libc.a", "libssl.a": LIB / "libssl.a",
        "libz.a": LIB / "libz.a",
        "libstdc++.a": Path(subprocess.run(["g++", "-print-file-name=libstdc++.a"], capture_output=True,
                                           text=True).stdout.strip() or "libstdc++.a")}


def all_names(path: Path) -> set[str]:
    """Every name of every function of a file and of its debug file (aliases too), with their source names."""
    img = load_image(path, link=True)
    syms = list(img.symbols)
    dbg = find_debug_file(img)
    if dbg is not None:
        syms += load_image(dbg, require_code=False).symbols
    names = {s.name for s in syms if s.defined and s.kind in ("STT_FUNC", "STT_GNU_IFUNC") and s.name}
    return names | {source_name(n) for n in names}


def version(package: str) -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True)
    return out.stdout.strip() or "not installed"


def build(work: Path) -> dict[str, Path]:
    """The two static programs (a missing static library: SystemExit naming the package to install)."""
    needs = {LIB / "libcrypto.a": "libssl-dev", LIB / "libc.a": "libc6-dev"}
    for path, package in needs.items():
        if not path.is_file():
            raise SystemExit(f"field_static: {path} is missing (apt-get install {package})")
    evp, words = work / "evp", work / "words"
    subprocess.run(["gcc", "-O2", "-static", "-o", str(evp), str(HERE / "field" / "evp.c"),
                    str(LIB / "libcrypto.a"), "-lpthread"], check=True, capture_output=True)
    subprocess.run(["g++", "-O2", "-static", "-o", str(words), str(HERE / "field" / "words.cc")],
                   check=True, capture_output=True)
    return {"evp": evp, "words": words}


def all_archives(work: Path, model, anon: dict[str, Path], truth: dict) -> list[str]:
    """Rows for both programs identified against a library of every static archive of the system; archives that
    hold no code (glibc's empty libdl.a and the like) or are linker scripts (libm.a) are left out."""
    archives = sorted(LIB.glob("*.a")) + sorted(LIBS["libstdc++.a"].parent.glob("*.a"))
    known: set[str] = set()
    added = 0
    t0 = time.time()
    with open_store(str(work / "all-archives.db"), model) as store:
        for path in archives:
            try:
                new = store.add(path, save_index=False)
            except SymbridgeError as exc:
                print(f"left out: {exc}", file=sys.stderr)
                continue
            known |= all_names(path)
            added += new > 0  # a second name of one file (a symlink) adds nothing
        store.save_index()
        print(f"{added} distinct archives added in {time.time() - t0:.0f} s", file=sys.stderr)
        return [identify_row(store, f"every archive of the system ({added} distinct)", anon[prog], prog,
                             truth[prog], known) for prog in ("evp", "words")]


def identify_row(store, label: str, target: Path, prog: str, truth: dict, known: set[str]) -> str:
    """One `library:` row: the stripped program identified against the store, scored against its truth."""
    t0 = time.time()
    r = store.identify(Binary(target, ignore_symbols=True), min_confidence=0.0)
    secs = time.time() - t0
    sc = score_identify(r, truth, known, THRESHOLD)
    row = table_row([f"library: {label}", prog], sc["functions"], sc, sc["right_counterparts"]) + f" {secs:.0f} |"
    print(row, file=sys.stderr)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "field-static.md")
    ap.add_argument("--all-archives", action="store_true",
                    help="also identify both programs against a library of every static archive of the system "
                         "(/usr/lib/x86_64-linux-gnu/*.a and gcc's; about 90,000 functions, 5 more minutes)")
    a = ap.parse_args(argv)
    missing = [str(p) for p in LIBS.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"field_static: missing {', '.join(missing)}")
    model = Model.load(a.model) if a.model else Model.default()
    head = ("| reference | target | target functions | with counterpart | named | right | precision | recall | "
            "precision at recall 0.95 | recall at precision 0.99 | seconds |")
    rows = [head, "|---|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="symbridge-field-") as tmp:
        work = Path(tmp)
        programs = build(work)
        anon = {k: anonymize(p, work / f"{k}.anon") for k, p in programs.items()}
        truth = {k: truth_names(p) for k, p in programs.items()}
        names = {k: all_names(p) for k, p in LIBS.items()}
        for lib, prog in (("libcrypto", "evp"), ("libc", "evp"), ("libstdc++", "words"),
                          ("libcrypto.a", "evp"), ("libc.a", "evp"), ("libstdc++.a", "words")):
            t0 = time.time()
            r = transfer(Binary(LIBS[lib], link=True), Binary(anon[prog], ignore_symbols=True), model,
                         min_confidence=0.0)
            secs = time.time() - t0
            funcs = [f for f in r["functions"] if "import" not in f["via"]]
            has = {f["address"] for f in funcs
                   if {n for x in truth[prog].get(f["address"], ()) for n in (x, source_name(x))} & names[lib]}
            sc = score_transfer(r, truth[prog], has, partial=False, threshold=THRESHOLD,
                                reference_names=names[lib])
            rows.append(table_row([f"{LIBS[lib].name}", prog], len(funcs), sc, sc["right"]) + f" {secs:.0f} |")
            print(rows[-1], file=sys.stderr)
        for db, sets in (("library.db", (("libc, libcrypto, libssl, libz", ("libc", "libcrypto", "libssl", "libz"),
                                           "evp"), ("the same and libstdc++", ("libstdc++",), "words"))),
                         ("archives.db", (("libc.a, libcrypto.a, libssl.a, libz.a",
                                           ("libc.a", "libcrypto.a", "libssl.a", "libz.a"), "evp"),
                                          ("the same and libstdc++.a", ("libstdc++.a",), "words")))):
            added: list[str] = []
            with open_store(str(work / db), model) as store:
                for label, libs, prog in sets:
                    for lib in libs:
                        store.add(LIBS[lib])
                        added.append(lib)
                    known = set().union(*(names[k] for k in added))
                    rows.append(identify_row(store, label, anon[prog], prog, truth[prog], known))
        if a.all_archives:
            rows += all_archives(work, model, anon, truth)
    versions = ", ".join(f"{p} {version(p)}" for p in ("libc6", "libc6-dbg", "libssl3", "libssl-dev", "libstdc++6"))
    text = ("# Field test: static programs named from this machine's shared libraries and static archives "
            f"({time.strftime('%Y-%m-%d')})\n\n"
            f"Model `{model.name}`; command `python benchmarks/field_static.py"
            f"{' --all-archives' if a.all_archives else ''}`; packages: {versions}. "
            "The rows with `library:` are `symbridge identify`; the others `symbridge transfer`. Not held-out "
            "numbers (OpenSSL is among the model's training packages): see the script's docstring.\n\n"
            + "\n".join(rows) + "\n")
    print(text)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
