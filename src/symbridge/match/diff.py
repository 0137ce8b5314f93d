"""Patch diffing: which functions of an old build are unchanged, changed or gone in a new one, and which are
new. The pairs are transfer's matches at the calibrated confidence; a pair is unchanged where the two functions'
code, imports, strings and constants are the same (same_code_keys)."""

from __future__ import annotations

from collections.abc import Callable

from ..binary import Binary, cold_parts
from ..evaluation import source_name
from .confidence import Calibrator
from .keys import code_keys, stable_hash
from .transfer import _label, transfer


def same_code_keys(functions: list) -> list[int | None]:
    """A key per function that is equal for code that does the same: the normalised code with its imports and
    strings (keys.code_keys, CET-blind) and the exact numbers the normalisation leaves out: struct field offsets,
    small immediates and other constants that are no addresses. None for a function without instructions."""
    if not functions:
        return []
    img = functions[0].binary.image
    out: list[int | None] = []
    for key, f in zip(code_keys(functions, cet_blind=True), functions):
        fx = f.facts
        numbers = tuple(v for v in fx.constants if img.section_at(v) is None)
        out.append(None if key is None else stable_hash((key, tuple(fx.offsets), tuple(fx.small), numbers)))
    return out


def diff(old: Binary, new: Binary, model=None, *, min_confidence: float | None = None,
         progress: Callable[[int], None] | None = None, stage: Callable[[str], None] | None = None) -> dict:
    """The diff of two builds as a dict: `changed` (matched pairs whose code differs, least similar first),
    `added` (functions of new without a match at `min_confidence`, default the calibrated threshold, each
    with its best candidate in old), `removed` (functions of old that no function of new matches) and
    `unchanged` (matched pairs with the same code). PLT stubs and the cold parts gcc splits off functions
    are left out: they follow their imports and owners. Where new keeps its symbols, a pair whose names differ
    is no pair. The dict holds transfer's result too (`functions`, `reference`, `target`), so that `report` and
    `export` read it as they read a transfer's."""
    thr = Calibrator.default().threshold if min_confidence is None else min_confidence
    result = transfer(old, new, model, min_confidence=thr, progress=progress, stage=stage)
    o_code, n_code = old.code_functions, new.code_functions
    o_at = {f.address: i for i, f in enumerate(o_code)}
    n_at = {f.address: i for i, f in enumerate(n_code)}
    o_keys, n_keys = same_code_keys(o_code), same_code_keys(n_code)
    o_cold = {o_code[c].address for c, _ in cold_parts(o_code)}
    n_cold = {n_code[c].address for c, _ in cold_parts(n_code)}
    changed, unchanged, added, matched = [], [], [], set()
    for row in result["functions"]:
        if "import" in row["via"] or row["address"] not in n_at or row["address"] in n_cold:
            continue
        ref = row["reference_address"]
        own = n_code[n_at[row["address"]]].name
        theirs = o_code[o_at[ref]].name if ref in o_at else None
        # both builds have names, and they differ: a function dropped and another one added
        renamed = bool(own and theirs) and source_name(own) != source_name(theirs)
        if ref not in o_at or row["confidence"] < thr or renamed:
            best = row["candidates"][0] if row["candidates"] else None
            added.append({"address": row["address"], "name": own, "size": row["size"],
                          "best_candidate": best and {"name": best["name"], "address": best["address"],
                                                      "score": best["score"]}})
            continue
        matched.add(ref)
        i, j = n_at[row["address"]], o_at[ref]
        name = theirs or own or _label(o_code[j])
        pair = {"name": name, "old_address": ref, "new_address": row["address"], "old_size": o_code[j].size,
                "new_size": row["size"], "confidence": row["confidence"], "via": row["via"]}
        if n_keys[i] == o_keys[j] and n_keys[i] is not None:
            unchanged.append(pair)
        else:
            score = next((c["score"] for c in row["candidates"] if c["address"] == ref), None)
            changed.append(dict(pair, similarity=score))
    removed = [{"name": _label(f), "address": f.address, "size": f.size}
               for f in o_code if f.address not in matched and f.address not in o_cold]
    changed.sort(key=lambda p: (p["similarity"] if p["similarity"] is not None else 0.0, p["new_address"]))
    return dict(result, old=str(old.path), new=str(new.path), changed=changed, added=added, removed=removed,
                unchanged=unchanged)
