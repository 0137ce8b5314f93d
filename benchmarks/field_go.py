"""Go programs across releases: names from one release's `.gopclntab` onto the next release's functions, whose
own table names are hidden (the target is read as stripped of every name: Binary(ignore_symbols=True)).

    python benchmarks/field_go.py REFERENCE TARGET [--out FILE]

for example the kubectl releases that the Google Cloud SDK installs side by side:

    python benchmarks/field_go.py /usr/lib/google-cloud-sdk/bin/kubectl.1.31 /usr/lib/google-cloud-sdk/bin/kubectl.1.32

or one Go program from two Debian releases (bullseye's Go 1.15 builds against bookworm's Go 1.19: another
function-table layout, and another calling convention since Go 1.17 passes arguments in registers), which
--debian downloads (with a private apt state per suite, under benchmarks/work/apt) and unpacks:

    python benchmarks/field_go.py --debian gron
    python benchmarks/field_go.py --debian fzf

Truth: the target's own `.gopclntab` names. A target function has a counterpart when its name is a name of the
reference; a name given to any other table function is a false positive. Functions outside the table (the C
code of cgo programs) have no truth: names given there are counted apart, not judged. Wrong names that look
like renames (the name given is nowhere in the target's table, the target's name nowhere in the reference, as
crypto/elliptic.p256Mul became crypto/internal/nistec.p256Mul) count as wrong; a column counts them. The model
was trained on C and C++ only (Debian's gcc and clang builds): Go's code is new to it. Appends a row to
benchmarks/results/field-go.md.
"""

from __future__ import annotations

import argparse
import datetime
import re
import subprocess
import time
from pathlib import Path

from symbridge.binary import Binary
from symbridge.elf.gopclntab import go_functions
from symbridge.match.transfer import transfer
from symbridge.model.model import Model

HERE = Path(__file__).resolve().parent


def label(path: Path) -> str:
    """The file's name, with the Go release that built it (the runtime's version string) when it has one."""
    m = re.search(rb"go1\.\d+(?:\.\d+)?", path.read_bytes())
    return f"{path.name} ({m.group().decode()})" if m else path.name


def debian_program(package: str, suite: str) -> Path:
    """/usr/bin/PACKAGE of the Debian package from `suite`, downloaded and unpacked under benchmarks/work."""
    from symbridge.train.apt_suites import SuiteApt

    work = HERE / "work" / "go" / suite
    found = sorted(work.glob(f"{package}_*/usr/bin/{package}"))
    if not found:
        apt = SuiteApt(HERE / "work" / "apt", suite)
        if not apt.is_updated():
            apt.update()
        apt.download(package, work)
        deb = sorted(work.glob(f"{package}_*.deb"))[-1]
        subprocess.run(["dpkg-deb", "-x", str(deb), str(deb.with_suffix(""))], check=True)
        found = sorted(work.glob(f"{package}_*/usr/bin/{package}"))
    if not found:
        raise SystemExit(f"field_go: {package} from {suite} has no /usr/bin/{package}")
    return found[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reference", type=Path, nargs="?")
    ap.add_argument("target", type=Path, nargs="?")
    ap.add_argument("--debian", metavar="PACKAGE", help="the package's /usr/bin/PACKAGE from bullseye (reference) "
                                                        "and bookworm (target) instead of REFERENCE TARGET")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "field-go.md")
    a = ap.parse_args(argv)
    if a.debian:
        a.reference, a.target = debian_program(a.debian, "bullseye"), debian_program(a.debian, "bookworm")
    elif a.target is None:
        ap.error("give REFERENCE and TARGET, or --debian PACKAGE")
    t0 = time.time()
    model = Model.default()
    S = Binary(a.reference)
    P = Binary(a.target, ignore_symbols=True)
    truth = {addr: name for addr, _, name in go_functions(P.image)}
    if not truth:
        raise SystemExit(f"field_go: {a.target} has no Go function table")
    r = transfer(S, P, model)
    ref_names = {f.name for f in S.code_functions if f.name}
    has = {addr for addr, name in truth.items() if name in ref_names}
    given = [f for f in r["functions"] if f["name"] and "import" not in f["via"]]
    named = [f for f in given if f["address"] in truth]
    right = [f for f in named if truth[f["address"]] == f["name"]]
    names = set(truth.values())
    renamed = sum(1 for f in named if truth[f["address"]] != f["name"] and f["name"] not in names
                  and truth[f["address"]] not in ref_names)
    secs = time.time() - t0
    row = (f"| {label(a.reference)} | {label(a.target)} | {len(P.code_functions)} | {len(has)} | {len(named)} | "
           f"{len(right)} | {len(right) / max(len(named), 1):.3f} | "
           f"{sum(f['address'] in has for f in right) / max(len(has), 1):.3f} | {renamed} | "
           f"{len(right) / max(len(named) - renamed, 1):.3f} | {len(given) - len(named)} | {secs:.0f} |")
    print(row)
    if not a.out.exists():
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text("# Go programs across releases (the reference's .gopclntab names; the target's hidden)\n\n"
                         f"Model `{model.name}`; command `python benchmarks/field_go.py REFERENCE TARGET` "
                         "(gron and fzf: "
                         "`--debian gron`, `--debian fzf`, Debian bullseye's build against bookworm's; kubectl: the "
                         "Google Cloud SDK's kubectl.1.31 and kubectl.1.32). Seconds on "
                         "this machine (2 cores), loading to result.\n\n"
                         "| reference | target | target functions | with counterpart | named | right | precision | "
                         "recall | wrong that look like renames | precision without them | named outside the table "
                         "(not judged) | seconds |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    with a.out.open("a") as f:
        f.write(row + f" <!-- {datetime.date.today()} -->\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
