"""Rust programs: names from one program with symbols onto another, stripped, that links the same standard
library (the seed's setting: two programs that share code they did not write).

    python benchmarks/field_rust.py [--toolchain +nightly] [--model PATH]

Builds benchmarks/field/wordstat.rs (reference, symbols kept) and logscan.rs (target) with this machine's
rustc: the target at -C opt-level=3 and =s, and with --toolchain also by that other rustc (for example
`+nightly` under rustup: another build of the standard library). The programs are built, never run. Each
target is anonymized (stripped); its own symbols are the truth. Names are compared as they read demangled,
without Rust's hashes (legacy `::h0123...` and v0 crate disambiguators), which differ between builds of one
function. A target function has a counterpart when one of its names is a name of the reference; a name given
anywhere else is a false positive. Names of one function that the standard library renamed between the two
builds (`drop_in_place` became `drop_glue`) count as wrong; a column counts the wrong names that look like
renames (the name given is nowhere in the target, the target's name nowhere in the reference).

The model was trained on C and C++ only (Debian's gcc and clang builds): rustc's code is new to it.
Writes benchmarks/results/field-rust.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from accuracy import THRESHOLD, operating_points  # benchmarks/ is on the path when run as a script

from symbridge.binary import Binary
from symbridge.demangle import demangle
from symbridge.evaluation import anonymize, source_name, truth_names
from symbridge.match.transfer import transfer
from symbridge.model.model import Model

HERE = Path(__file__).resolve().parent
_LEGACY_HASH = re.compile(r"::h[0-9a-f]{16}$")


class Keys:
    """A name's key: demangled (v0 crate hashes dropped by symbridge.demangle), the legacy hash dropped."""

    def __init__(self) -> None:
        self.readable: dict[str, str] = {}

    def learn(self, names) -> None:
        names = {source_name(n) for n in names if n} - self.readable.keys()
        self.readable.update({n: n for n in names})
        self.readable.update(demangle(names))

    def __call__(self, name: str) -> str:
        base = source_name(name)
        return _LEGACY_HASH.sub("", self.readable.get(base, base))


def rustc(toolchain: str | None, source: Path, out: Path, opt: str) -> Path:
    cmd = ["rustc"] + ([toolchain] if toolchain else []) + ["-C", f"opt-level={opt}", "-o", str(out), str(source)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"field_rust: {' '.join(cmd)} failed:\n{res.stderr.strip()}")
    return out


def version(toolchain: str | None) -> str:
    cmd = ["rustc"] + ([toolchain] if toolchain else []) + ["--version"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split(" (")[0].strip()


def score(ref: Path, tgt: Path, work: Path, model: Model) -> dict:
    anon = anonymize(tgt, work / (tgt.name + ".anon"))
    t0 = time.time()
    S = Binary(ref, use_debug_files=False)
    P = Binary(anon, ignore_symbols=True)
    r = transfer(S, P, model, min_confidence=0.0)
    secs = time.time() - t0
    truth = truth_names(tgt)
    key = Keys()
    key.learn([f.name for f in S.code_functions] + [n for ns in truth.values() for n in ns])
    ref_keys = {key(f.name) for f in S.code_functions if f.name}
    tgt_keys = {key(n) for ns in truth.values() for n in ns}
    truth_keys = {a: {key(n) for n in ns} for a, ns in truth.items()}
    has = {a for a, ks in truth_keys.items() if ks & ref_keys}
    curve, named, right, renamed = [], 0, 0, 0
    for f in r["functions"]:
        if "import" in f["via"]:
            continue
        ref_name = next((c["name"] for c in f["candidates"] if c["address"] == f["reference_address"]), None)
        if not ref_name or ref_name.startswith("sub_"):
            continue
        ks = truth_keys.get(f["address"], set())
        ok = key(ref_name) in ks
        curve.append((f["confidence"], ok, f["address"] in has, False))
        if f["confidence"] >= THRESHOLD:
            named += 1
            right += ok
            # a rename: the name given is found nowhere in the target, the target's name nowhere in the reference
            renamed += not ok and bool(ks) and key(ref_name) not in tgt_keys and not ks & ref_keys
    p95, r99 = operating_points(curve, len(has))
    return {"functions": len(P.code_functions), "has": len(has), "named": named, "right": right,
            "recall": sum(1 for c, ok, h, _ in curve if ok and h and c >= THRESHOLD) / max(len(has), 1),
            "p95": p95, "r99": r99, "renamed": renamed, "secs": secs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--toolchain", help="another rustc for one more target, as rustup names it (+nightly)")
    ap.add_argument("--model", type=Path)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "field-rust.md")
    a = ap.parse_args(argv)
    if shutil.which("rustc") is None:
        raise SystemExit("field_rust: rustc is not installed (https://rustup.rs or apt-get install rustc)")
    model = Model.load(a.model) if a.model else Model.default()
    rows = []
    with tempfile.TemporaryDirectory(prefix="field-rust-") as tmp:
        work = Path(tmp)
        ref = rustc(None, HERE / "field" / "wordstat.rs", work / "wordstat", "3")
        here = version(None)
        builds = [(None, "3"), (None, "s")] + ([(a.toolchain, "3")] if a.toolchain else [])
        for toolchain, opt in builds:
            tgt = rustc(toolchain, HERE / "field" / "logscan.rs", work / f"logscan-{opt}-{len(rows)}", opt)
            s = score(ref, tgt, work, model)
            s["target"] = f"logscan, {version(toolchain)}, opt-level={opt}"
            rows.append(s)
            print(s, file=sys.stderr, flush=True)
    lines = ["# Rust programs sharing the standard library (reference's symbols; the target's hidden)", "",
             f"Model `{model.name}`; command `python benchmarks/field_rust.py"
             + (f" --toolchain {a.toolchain}" if a.toolchain else "") + "`. Reference: wordstat, "
             f"{here}, opt-level=3. Names compared demangled without Rust's hashes. Named at the calibrated "
             f"threshold {THRESHOLD}; P@R0.95 is the best precision of any threshold that reaches recall 0.95, "
             "R@P0.99 the best recall at precision 0.99 (nan: never reached). Seconds on this machine (2 cores), "
             "loading to result.", "",
             "| target | functions | with counterpart | named | right | precision | recall | P@R0.95 | R@P0.99 | "
             "wrong that look like renames | precision without them | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in rows:
        lines.append(f"| {s['target']} | {s['functions']} | {s['has']} | {s['named']} | {s['right']} | "
                     f"{s['right'] / max(s['named'], 1):.3f} | {s['recall']:.3f} | {s['p95']:.3f} | {s['r99']:.3f} | "
                     f"{s['renamed']} | {s['right'] / max(s['named'] - s['renamed'], 1):.3f} | {s['secs']:.1f} |")
    text = "\n".join(lines) + "\n"
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
