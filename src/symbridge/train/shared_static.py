"""Pairs of the seed's setting for the confidence fit: a package's shared library as the reference (names of its
exports only) and a static program that links the same package's archive with glibc as the target.

    python -m symbridge.train.shared_static --suite bookworm

For each static-dev row of the manifest in that suite (packages no model was trained on), it downloads the
-dev package of that version and links a program with glibc (`-static`) whose `main` takes the addresses of 8
of the archive's functions (drawn with the row's path as the seed), so that the linker takes their objects and
what they call, as a small program using a library would; undefined symbols stay undefined, for the program
is never run. It goes beside the row, under static-prog/ instead of static-dev/. `pairs()` gives each program
with the shared library of its name from the same package and suite. Most of such a target has no
counterpart (glibc), and the reference's code is position-independent where the archive's is not:
`fit_matcher --shared-static K` puts K of them a package and suite in the fit.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .apt_suites import SuiteApt
from .dataset import read_list, read_manifest

USED = 8  # library functions a program uses: the linker takes their objects and what those call


def program_of(relpath: str) -> str:
    """Where the program built from a static-dev row's archive goes (relative to the corpus)."""
    return relpath.replace("/static-dev/", "/static-prog/").removesuffix(".elf") + ".prog"


def archive_stem(relpath: str) -> str:
    """The archive's name without .a: static-dev rows are named PACKAGE__STEM.elf."""
    return Path(relpath).stem.split("__", 1)[-1]


def shared_of(row: dict, rows: list[dict]) -> dict | None:
    """The official shared library of the archive's name (libacl.a -> libacl.so.1.1.2301), same package and
    suite."""
    stem = archive_stem(row["relpath"])
    for r in rows:
        name = Path(r["relpath"]).name
        if (r["origin"] == "official" and r["source_package"] == row["source_package"]
                and r["suite"] == row["suite"] and name.startswith(stem + ".so")):
            return r
    return None


def pairs(rows: list[dict], corpus: Path, seen: set[str]) -> list[tuple[Path, Path]]:
    """(shared library, static program) of every built program of a package outside `seen`."""
    out = []
    for r in rows:
        if r["origin"] != "static-dev" or r["source_package"] in seen:
            continue
        prog, lib = corpus / program_of(r["relpath"]), shared_of(r, rows)
        if lib is not None and prog.is_file() and (corpus / lib["relpath"]).is_file():
            out.append((corpus / lib["relpath"], prog))
    return out


def choose(found: list[tuple[Path, Path]], per_group: int, seed: int) -> list[tuple[Path, Path]]:
    """`per_group` pairs (drawn with `seed`) of each package and suite: packages with many archives (libnl3 has
    seven) do not crowd out the others."""
    groups: dict[tuple[str, str], list] = {}
    for lib, prog in found:
        groups.setdefault((prog.parts[-4], prog.parts[-3]), []).append((lib, prog))
    rng = random.Random(seed)
    return [pair for key in sorted(groups) for pair in rng.sample(groups[key], min(per_group, len(groups[key])))]


def exported_functions(archive: Path) -> list[str]:
    """The global functions the archive defines (nm: T), sorted."""
    res = subprocess.run(["nm", "--defined-only", "-g", str(archive)], capture_output=True, text=True)
    fields = (ln.split() for ln in res.stdout.splitlines())
    return sorted({f[2] for f in fields if len(f) == 3 and f[1] == "T"})


def program_source(functions: list[str]) -> str:
    """A main that takes the address of each function, so that the linker pulls in their objects (and what
    they call) and nothing else of the archive."""
    decls = "".join(f"extern void {f}(void);\n" for f in functions)
    table = ", ".join(f"(void *){f}" for f in functions) or "0"
    return f"{decls}void *volatile used[] = {{{table}}};\nint main(void) {{ return used[0] != 0; }}\n"


def link(archive: Path, out: Path, work: Path, functions: list[str]) -> bool:
    """Link the objects of the archive that define `functions` (and what they need) with glibc into a static
    program; False if the linker refuses."""
    stub = work / "main.c"
    stub.write_text(program_source(functions))
    base = ["gcc", "-static", "-w", "-o", str(out), str(stub), str(archive), "-Wl,--unresolved-symbols=ignore-all"]
    for cmd in (base, base + ["-Wl,--allow-multiple-definition"]):
        if subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0 and out.is_file():
            return True
    out.unlink(missing_ok=True)
    return False


def build(rows: list[dict], corpus: Path, suite: str, seen: set[str], log=print) -> int:
    """Build the missing programs of `suite`; returns how many exist afterwards."""
    apt = SuiteApt(corpus / "apt", suite)
    if not apt.is_updated():
        apt.update()
    done = 0
    todo = [r for r in rows if r["origin"] == "static-dev" and r["suite"] == suite
            and r["source_package"] not in seen and shared_of(r, rows) is not None]
    for k, r in enumerate(todo, 1):
        out = corpus / program_of(r["relpath"])
        if out.is_file():
            done += 1
            continue
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            try:
                apt.download(f"{r['binary_package']}={r['version']}", work)
            except RuntimeError as exc:
                log(f"[{k}/{len(todo)}] {r['relpath']}: download failed: {str(exc)[-160:]}")
                continue
            deb = next(work.glob("*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
            archive = next((work / "x").rglob(archive_stem(r["relpath"]) + ".a"), None)
            if archive is None:
                log(f"[{k}/{len(todo)}] {r['relpath']}: no archive in {deb.name}")
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            partial = out.with_suffix(".part")
            exported = exported_functions(archive)
            rng = random.Random(r["relpath"])  # the same program on every machine
            if link(archive, partial, work, rng.sample(exported, min(USED, len(exported)))):
                shutil.move(partial, out)
                done += 1
                log(f"[{k}/{len(todo)}] {program_of(r['relpath'])}")
            else:
                log(f"[{k}/{len(todo)}] {r['relpath']}: link failed")
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="bookworm", help="The suite whose archives to link (default: bookworm).")
    ap.add_argument("--manifest", type=Path, default=Path("corpus/manifest-train.jsonl"))
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--model-packages", type=Path, default=Path("corpus/model-train-packages.txt"),
                    help="Packages a model was trained on: left out, as fit_matcher leaves them out.")
    a = ap.parse_args(argv)
    rows = read_manifest(a.manifest)
    n = build(rows, a.corpus, a.suite, read_list(a.model_packages), log=lambda s: print(s, file=sys.stderr,
                                                                                         flush=True))
    print(f"{n} static programs in {a.suite}; {len(pairs(rows, a.corpus, read_list(a.model_packages)))} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
