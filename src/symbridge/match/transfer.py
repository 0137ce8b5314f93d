"""Name transfer from a reference binary to a target: the JSON result of DESIGN.md's contract."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..binary import Binary, Function, cold_parts, part_name
from .confidence import Calibrator, signature_agreement
from .inline import inline_side, inlined_vectors
from .agreement import match_both_ways
from .keys import wrappers
from .matcher import MatchResult, Params
from .side import Side, blend_thunks, build_side, column_view, vector_view
from .ngrams import tfidf_vectors

N_CANDIDATES = 5


def _label(f: Function) -> str:
    return f.name or f"sub_{f.address:x}"


def embed_binary(binary: Binary, model, progress: Callable[[int], None] | None = None,
                 own: bool = False) -> np.ndarray:
    """Embeddings of the binary's non-PLT functions, with their context (nearest neighbours, the analogy), or
    with `own` their own code alone (what the matcher compares); cached on the binary per model, the context
    added only when asked for."""
    cache = binary.__dict__.setdefault("_embeddings", {})  # keyed by the model object itself (identity)
    if model not in cache:
        cache[model] = {"own": model.embed_own(binary.code_functions, progress=progress)}
    got = cache[model]
    if not own and "full" not in got:
        got["full"] = model.add_context(got["own"], binary.code_functions)
    return got["own"] if own else got["full"]


def match_binaries(reference: Binary, target: Binary, model, params: Params | None = None,
                   progress: Callable[[int], None] | None = None,
                   stage: Callable[[str], None] | None = None) -> tuple[MatchResult, list, list]:
    """The match result of target's functions; `progress` counts functions embedded, `stage` hears when
    matching begins (a progress bar relabels itself)."""
    ref_side, tgt_side = match_sides(reference, target, model, params, progress)
    if stage:
        stage("matching")
    announce = (lambda k, n: stage(f"matching, {k} of {n} agreement runs done")) if stage else None
    result = match_both_ways(ref_side, tgt_side, params, model.member_columns(),
                             code_views(ref_side, tgt_side, reference.code_functions, target.code_functions, model),
                             announce)
    return result, reference.code_functions, target.code_functions


def code_views(ref_side: Side, tgt_side: Side, ref_code: list, tgt_code: list, model) -> list[tuple[Side, Side]]:
    """Other views of both binaries' code, whose matchings are evidence where they agree (match_both_ways):
    TF-IDF of mnemonic n-grams (match.ngrams), and the model's identifier sketch alone where it has one."""
    ref_tfidf, tgt_tfidf = tfidf_vectors(ref_code, tgt_code)
    views = [(vector_view(ref_side, ref_tfidf), vector_view(tgt_side, tgt_tfidf))]
    sketch = model.sketch_columns()
    if sketch is not None:
        views.append((column_view(ref_side, sketch), column_view(tgt_side, sketch)))
    return views


def match_sides(reference: Binary, target: Binary, model, params: Params | None = None,
                progress: Callable[[int], None] | None = None, unfold: bool | None = None) -> tuple[Side, Side]:
    """Both binaries as the matcher sees them, with the inlined view of the less optimised one when the
    function counts tell one build from the other (match.inline), and the reference's for the unfold pass
    (`unfold`: always or never; by default where params.unfold_margin asks for the pass)."""
    p = params or Params.default()
    s_code, p_code = reference.code_functions, target.code_functions
    ref_side = build_side(s_code, embed_binary(reference, model, progress, own=True), use_names=True)
    tgt_side = build_side(p_code, embed_binary(target, model, progress, own=True),
                          use_names=not target.ignore_symbols)
    blend_thunks(ref_side, wrappers(s_code))
    blend_thunks(tgt_side, wrappers(p_code))
    which = inline_side(len(s_code), len(p_code), p.inline_ratio)
    if which:
        side, code = (ref_side, s_code) if which == "ref" else (tgt_side, p_code)
        side.inlined = inlined_vectors(model, code, side.vectors, side.callees, side.callers, p.inline_max_size)
    if unfold is None:
        unfold = p.unfold_margin > 0
    if unfold:
        ref_side.unfold = ref_side.inlined if which == "ref" else inlined_vectors(
            model, s_code, ref_side.vectors, ref_side.callees, ref_side.callers, p.inline_max_size)
    return ref_side, tgt_side


def transfer(reference: Binary, target: Binary, model=None, *, min_confidence: float | None = None,
             params: Params | None = None, calibrator: Calibrator | None = None,
             progress: Callable[[int], None] | None = None, stage: Callable[[str], None] | None = None) -> dict:
    """Names for every function of target, from reference. Returns the transfer JSON as a dict."""
    from ..model.model import Model

    model = model or Model.default()
    cal = calibrator or Calibrator.default()
    thr = cal.threshold if min_confidence is None else min_confidence
    res, s_code, p_code = match_binaries(reference, target, model, params, progress, stage)
    s_plt = {f.name: f for f in reference.functions if f.is_plt and f.name}
    rows: list[dict] = []
    feats, owners = [], []
    for i, f in enumerate(p_code):
        cands = [{"name": _label(s_code[int(j)]), "address": s_code[int(j)].address, "score": round(float(v), 4)}
                 for j, v in zip(res.cand_idx[i][:N_CANDIDATES], res.cand_val[i][:N_CANDIDATES])]
        row = {"address": f.address, "size": f.size, "name": None, "confidence": 0.0,
               "reference_address": None, "via": [], "candidates": cands}
        m = res.matches.get(i)
        if m is not None:
            s = s_code[m.s]
            feats.append(res.features(i, f.size, s.size, signature_agreement(f.facts, s.facts)))
            owners.append((row, s))
            row["reference_address"] = s.address
            row["via"] = list(m.via)
            if not any(c["address"] == s.address for c in cands):
                cands.insert(0, {"name": _label(s), "address": s.address, "score": round(m.sim, 4)})
        rows.append(row)
    if feats:
        probs = cal.probability(np.array(feats))
        for (row, s), p in zip(owners, probs):
            row["confidence"] = round(float(p), 4)
            if p >= thr and s.name:
                row["name"] = s.name
    name_target_cold_parts(rows, p_code, cal.threshold, reference.part_bases)
    rows += [plt_row(f, s_plt.get(f.name) if f.name else None) for f in target.functions if f.is_plt]
    rows.sort(key=lambda r: r["address"])
    return {"reference": str(reference.path), "target": str(target.path), "model": model.name,
            "min_confidence": thr, "functions": rows}


def name_target_cold_parts(rows: list[dict], p_code: list[Function], weak: float = 0.0,
                           bases: dict[int, str] | None = None) -> int:
    """Target functions left unnamed that are cold parts of named ones (binary.cold_parts) take the owner's
    name with ``.cold`` and its confidence (``via`` cold-part): a reference without them (a shared library's
    unnamed internals, another compiler's build) has nothing to name them with. The name is the one gcc gives
    parts where the reference says which alias that is (`bases`: reference address -> Binary.part_bases; glibc's
    `fflush` has its part named `_IO_fflush.cold`). So do those named by a match of their own under `weak` (the
    calibrated threshold, where a caller asks for every name) and under the owner's confidence: with nothing
    to pair with, a part is left the reference's leftovers. A part named as the part of a function that is
    matched elsewhere (`bar.cold` on the part of `foo`, `bar` named too: small parts that call abort look alike)
    loses that name first. rows: one per p_code function, in the same order. Returns how many were named."""
    parts = cold_parts(p_code)
    named_at: dict[str, set[int]] = {}  # name -> the rows named so (a static function can be in twice)
    for k, r in enumerate(rows):
        if r["name"]:
            named_at.setdefault(r["name"], set()).add(k)
    for c, x in parts:  # a part named as the part of a function matched elsewhere: unnamed
        own = rows[c]["name"]
        if own and own.endswith(".cold") and x not in named_at.get(own[:-5], {x}):
            rows[c]["name"] = None
    taken = {r["name"] for r in rows if r["name"]}
    named = 0
    for c, x in parts:
        part, owner = rows[c], rows[x]
        if not owner["name"] or owner["name"].endswith(".cold"):
            continue
        base = (bases or {}).get(owner["reference_address"], owner["name"])
        name = part_name(f"{base}.cold")
        if name in taken:
            continue
        if part["name"] and not part["confidence"] < min(weak, owner["confidence"]):
            continue
        taken.discard(part["name"])
        part.update(name=name, confidence=owner["confidence"], reference_address=None, via=["cold-part"])
        if "binary" in owner:  # identify: the library binary the owner's name came from
            part["binary"] = owner["binary"]
        taken.add(name)
        named += 1
    return named


def plt_row(f, ref=None) -> dict:
    """The result row of a PLT stub: named by its import (``name@plt``), with the reference's stub of the same
    import as its counterpart when there is one."""
    return {"address": f.address, "size": f.size, "name": f.name, "confidence": 1.0 if f.name else 0.0,
            "reference_address": ref.address if ref else None, "via": ["import"] if f.name else [],
            "candidates": [{"name": ref.name, "address": ref.address, "score": 1.0}] if ref else []}


def analogy(reference: Binary, target: Binary, anchor: str, anchor_address: int, query: str, model=None,
            top: int = 10, more_anchors: Sequence[tuple[str, int]] = (), raw_shift: bool = False) -> dict:
    """The seed's query: emb_S(query) - emb_S(anchor) + emb_P(anchor), cosine nearest over target. With
    ``more_anchors`` (name, target address) the shift is the mean over all anchors, which measures better
    than one anchor (benchmarks/results/accuracy.md). The shift goes through the model's filter
    (`model.shift`: the part that tells how the whole target was built, fitted on train pairs) unless
    ``raw_shift`` or the model has none. The anchors' own target functions are left out of the results (as
    word-analogy tests leave out the question's words): the query adds emb_P(anchor), which pulls it towards
    the anchor, and the anchor is already known not to be the answer. ``nearest`` is the query's plain nearest
    neighbour (no shift, the anchors left out too), to compare with."""
    from ..errors import UsageError
    from ..model.model import Model
    from ..model.shift import ShiftFilter

    model = model or Model.default()
    s_code, p_code = reference.code_functions, target.code_functions
    xs, xp = embed_binary(reference, model), embed_binary(target, model)
    s_index = {f.name: i for i, f in enumerate(s_code) if f.name}
    anchors = [(anchor, anchor_address), *more_anchors]
    for name in [query] + [a for a, _ in anchors]:
        if name not in s_index:
            raise UsageError(f"{reference.path}: no function named {name!r} in the reference")
    placed = []
    for name, address in anchors:
        p_at = target.function_at(address)
        if p_at.is_plt:
            raise UsageError(f"{target.path}: {address:#x} is a PLT stub, not a function to anchor on")
        placed.append((name, p_at))
    shift = np.mean([xp[p_code.index(p_at)] - xs[s_index[name]] for name, p_at in placed], axis=0)
    filt = None if raw_shift else ShiftFilter.for_model(model)
    if filt is not None:
        shift = filt.apply(shift, len(placed))
    q = xs[s_index[query]] + shift
    q = q / (np.linalg.norm(q) or 1.0)
    scores = xp @ q
    known = {p_code.index(p_at) for name, p_at in placed if name != query}
    order = [k for k in np.argsort(-scores, kind="stable") if int(k) not in known][:top]
    plain = xp @ xs[s_index[query]]  # the query without the shift: plain nearest neighbour, for comparison
    near = next((int(k) for k in np.argsort(-plain, kind="stable") if int(k) not in known), None)
    return {"reference": str(reference.path), "target": str(target.path), "anchor": anchor,
            "anchor_address": placed[0][1].address, "query": query,
            "anchors": [{"name": name, "address": p_at.address} for name, p_at in placed],
            "shift": "raw" if filt is None else "filtered",
            "results": [{"address": p_code[int(k)].address, "name": p_code[int(k)].name,
                         "score": round(float(scores[int(k)]), 4)} for k in order],
            "nearest": None if near is None else {"address": p_code[near].address, "name": p_code[near].name,
                                                  "score": round(float(plain[near]), 4)}}
