"""`symbridge demo`: the whole job on two small binaries shipped in the package, offline.

The binaries come from tests/fixtures/src/prog_big.c (scripts/build_demo.sh): the reference built by gcc -O2
with its symbols, the target by clang -O2 and stripped. demo-truth.json holds the target's real names.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table


def demo_files() -> tuple[Path, Path, Path]:
    base = resources.files("symbridge.demo")
    return (Path(str(base / "demo-reference")), Path(str(base / "demo-target")), Path(str(base / "demo-truth.json")))


def run_demo(out: Console, err: Console) -> dict:
    from ..binary import Binary
    from ..evaluation import name_right
    from ..match.transfer import transfer
    from ..model.model import Model

    ref_path, tgt_path, truth_path = demo_files()
    truth_doc = json.loads(truth_path.read_text())
    truth = {int(a): n for a, n in truth_doc["names"].items()}
    S = Binary(ref_path)
    P = Binary(tgt_path, ignore_symbols=True)
    model = Model.default()
    result = transfer(S, P, model)
    rows = [f for f in result["functions"] if "import" not in f["via"]]
    t = Table(title=f"symbridge demo: {ref_path.name} (gcc -O2, symbols) -> {tgt_path.name} "
                    f"({truth_doc['compiler']}, stripped)", show_edge=False, header_style="bold")
    for col in ("address", "transferred name", "confidence", "evidence", "right?"):
        t.add_column(col)
    right = wrong = 0
    for f in rows:
        if not f["name"]:
            continue
        own = truth.get(f["address"])
        ok = name_right(f["name"], {own} if own else ())  # gcc's copy `foo.part.0` of clang's `foo` counts
        right += ok
        wrong += not ok
        verdict = "[green]yes[/]" + ("" if f["name"] == own else " (copy)") if ok else \
            f"[red]no[/] ({own or 'unnamed'})"
        t.add_row(f"{f['address']:#x}", f["name"], f"{f['confidence']:.2f}", ",".join(f["via"]), verdict)
    out.print(t)
    have = sum(1 for f in rows if truth.get(f["address"]))
    out.print(f"\nModel {model.name}: named {right + wrong} of {len(rows)} target functions; "
              f"{right} right, {wrong} wrong (precision {right / max(right + wrong, 1):.2f}, "
              f"recall {right / max(have, 1):.2f}); PLT stubs named from imports: "
              f"{sum(1 for f in result['functions'] if 'import' in f['via'])}.", highlight=False)
    seed = seed_analogy(S, P, model, rows, truth)
    if seed:
        out.print(seed, highlight=False)
    out.print("\nYour own binaries:\n"
              "  symbridge transfer REFERENCE TARGET -o TARGET.named   # names into .symtab (nm, gdb, Ghidra, IDA)\n"
              "  symbridge transfer REFERENCE TARGET --json out.json && symbridge report out.json -o report.html\n"
              "  symbridge analogy REFERENCE TARGET --anchor NAME=ADDR --query OTHER_NAME\n"
              "  symbridge transfer /usr/lib/x86_64-linux-gnu/libc.a STATIC_TARGET   # a static archive as reference\n"
              "  symbridge diff OLD_BUILD NEW_BUILD   # patch diff: changed, new and dropped functions\n"
              "  symbridge --help", highlight=False)
    return {"right": right, "wrong": wrong, "total": len(rows)}


def seed_analogy(S, P, model, rows: list[dict], truth: dict[int, str], anchor: str = "md5_init",
                 query: str = "md5_process") -> str | None:
    """The founding text's query on the demo pair: the anchor where transfer placed it (no truth used), then
    emb_S(query) - emb_S(anchor) + emb_P(anchor), cosine nearest in the target; checked against the truth."""
    from ..match.transfer import analogy

    placed = next((f["address"] for f in rows if f["name"] == anchor), None)
    if placed is None:
        return None
    res = analogy(S, P, anchor, placed, query, model, top=2)
    if not res["results"]:
        return None
    first, *rest = res["results"]
    ok = truth.get(first["address"]) == query
    nxt = f", next {rest[0]['score']:.2f}" if rest else ""
    return (f"\nThe seed's analogy: with {anchor} at {placed:#x} (where transfer put it), "
            f"emb_S({query}) - emb_S({anchor}) + emb_P({anchor}) is nearest to {first['address']:#x} "
            f"(score {first['score']:.2f}{nxt}): " + (f"[green]{query}[/]" if ok else
                                                     f"[red]not {query}[/] ({truth.get(first['address'], 'unnamed')})")
            + f"\n  symbridge analogy {S.path} {P.path} --anchor {anchor}={placed:#x} --query {query}")
