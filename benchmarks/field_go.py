"""Go programs across releases: names from one release's `.gopclntab` onto the next release's functions, whose
own table names are hidden (the target is read as stripped of every name: Binary(ignore_symbols=True)).

    python benchmarks/field_go.py REFERENCE TARGET [--out FILE]

for example the kubectl releases that the Google Cloud SDK installs side by side:

    python benchmarks/field_go.py /usr/lib/google-cloud-sdk/bin/kubectl.1.31 /usr/lib/google-cloud-sdk/bin/kubectl.1.32

Truth: the target's own `.gopclntab` names. A target function has a counterpart when its name is a name of the
reference; a name given anywhere else is a false positive. The model was trained on C and C++ only (Debian's
gcc and clang builds): Go's code is new to it. Appends a row to benchmarks/results/field-go.md.
"""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

from symbridge.binary import Binary
from symbridge.elf.gopclntab import go_functions
from symbridge.match.transfer import transfer
from symbridge.model.model import Model

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reference", type=Path)
    ap.add_argument("target", type=Path)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "field-go.md")
    a = ap.parse_args(argv)
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
    named = [f for f in r["functions"] if f["name"] and "import" not in f["via"]]
    right = [f for f in named if truth.get(f["address"]) == f["name"]]
    secs = time.time() - t0
    row = (f"| {a.reference.name} | {a.target.name} | {len(P.code_functions)} | {len(has)} | {len(named)} | "
           f"{len(right)} | {len(right) / max(len(named), 1):.3f} | "
           f"{sum(f['address'] in has for f in right) / max(len(has), 1):.3f} | {secs:.0f} |")
    print(row)
    if not a.out.exists():
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text("# Go programs across releases (the reference's .gopclntab names; the target's hidden)\n\n"
                         f"Model `{model.name}`; command `python benchmarks/field_go.py REFERENCE TARGET`. Seconds on "
                         "this machine (2 cores), loading to result.\n\n"
                         "| reference | target | target functions | with counterpart | named | right | precision | "
                         "recall | seconds |\n|---|---|---|---|---|---|---|---|---|\n")
    with a.out.open("a") as f:
        f.write(row + f" <!-- {datetime.date.today()} -->\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
