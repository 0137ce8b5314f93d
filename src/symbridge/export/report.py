"""A self-contained HTML report of a transfer/identify result.

One file, no network: the CSS and the JavaScript are inlined, the data travels as JSON inside
``<script type="application/json">`` blocks (every ``<``, ``>`` and ``&`` escaped), and the page builds its
DOM with ``textContent`` only, so hostile function names stay text.  A Content-Security-Policy forbids every
fetch, so a mistake cannot leak out either.

The page holds: a summary (paths, model, threshold, counts by evidence and confidence band); a 2-D PCA map
of both binaries' embeddings with lines between matched pairs (canvas, at most ``MAX_POINTS`` points); and a
sortable, filterable, paginated table of the target's functions whose rows expand to the candidates and the
two functions' disassembly side by side (at most ``max_disasm`` instructions each).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from symbridge.demangle import demangle
from symbridge.export._atomic import atomic_write

MAX_POINTS = 5000
# instructions of disassembly a report holds in all (libcrypto's 13,000 functions a side take 1.2 million, a
# 37 MB page): the named functions' come first, and past this the rest go without (a browser opens the page)
MAX_REPORT_INSTRUCTIONS = 2_000_000
BANDS = (("≥ 0.9", 0.9, math.inf), ("0.7 – 0.9", 0.7, 0.9), ("0.5 – 0.7", 0.5, 0.7), ("< 0.5", -math.inf, 0.5))


# ---------------------------------------------------------------------------------------------- helpers
def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 1 << 64 else None
    if isinstance(value, str):
        try:
            v = int(value, 0)
        except ValueError:
            return None
        return v if 0 <= v < 1 << 64 else None
    return None


def _float(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) else 0.0


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:x}"


def _json_for_html(data: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>', '&' or line separators left raw."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _band(conf: float) -> int:
    for i, (_, lo, hi) in enumerate(BANDS):
        if lo <= conf < hi:
            return i
    return len(BANDS) - 1


# ------------------------------------------------------------------------------------- normalise rows
def _rows(result: dict) -> list[dict]:
    rows = []
    for f in result.get("functions") or []:
        if not isinstance(f, dict):
            continue
        addr = _int(f.get("address"))
        if addr is None:
            continue
        via = [str(v) for v in f.get("via") or [] if v is not None] if isinstance(f.get("via"), list) else []
        cands = []
        for c in f.get("candidates") or [] if isinstance(f.get("candidates"), list) else []:
            if not isinstance(c, dict):
                continue
            cands.append({"name": _str(c.get("name")) or "", "address": _int(c.get("address")),
                          "score": _float(c.get("score")), "binary": _str(c.get("binary"))})
        rows.append({"address": addr, "size": _int(f.get("size")) or 0, "name": _str(f.get("name")),
                     "confidence": _float(f.get("confidence")),
                     "reference_address": _int(f.get("reference_address")), "via": via, "candidates": cands,
                     "binary": _str(f.get("binary"))})
    return rows


# ------------------------------------------------------------------------------------------ binaries
class _Binaries:
    """Each binary opened at most once; failures remembered as a reason string. A relative path that is not
    found from the working directory is looked for from `base` (the result file's folder)."""

    def __init__(self, base: Path | None = None) -> None:
        self._open: dict[tuple[str, bool], Any] = {}
        self.errors: dict[str, str] = {}
        self.base = base

    def _find(self, path: str) -> Path:
        p = Path(path)
        if not p.is_file() and not p.is_absolute() and self.base is not None and (self.base / p).is_file():
            return self.base / p
        return p

    def get(self, path: str | None, *, stripped: bool = False):
        if not path:
            return None
        key = (path, stripped)
        if key not in self._open:
            from symbridge.binary import Binary

            try:
                found = self._find(path)
                if not found.is_file():
                    raise FileNotFoundError(f"{path}: no such file")
                self._open[key] = Binary(found, ignore_symbols=stripped, link=not stripped)
            except Exception as exc:  # noqa: BLE001 - a bad binary only costs the enrichment, not the report
                self._open[key] = None
                self.errors[path] = f"{type(exc).__name__}: {exc}"
        return self._open[key]


_HEX = re.compile(r"\b([0-9A-F]{5,})h\b")


def _tidy(text: str, names: dict[int, str]) -> str:
    """Shorter immediates (``0000000000002210h`` -> ``2210h``); call/jump targets named when known."""
    def short(m: re.Match) -> str:
        v = int(m.group(1), 16)
        h = f"{v:X}"
        return ("0" if h[0] > "9" else "") + h + "h"

    out = _HEX.sub(short, text)
    if text.startswith(("call", "j")):
        m = _HEX.search(text)
        if m:
            name = names.get(int(m.group(1), 16))
            if name:
                out += f"  <{name}>"
    return out


def _disasm(binary, address: int, size_hint: int, limit: int, names: dict[int, str]) -> dict:
    from symbridge.binary import Function

    try:
        f = binary.function_at(address)
        if f.address != address and size_hint > 0:
            f = Function(address, size_hint, None, [], binary)
        lines = f.disassembly(limit=limit + 1)
    except Exception as exc:  # noqa: BLE001 - one undecodable function must not sink the report
        return {"error": f"no disassembly: {type(exc).__name__}: {exc}"}
    more = len(lines) > limit
    lines = lines[:limit]
    return {"b": f"{f.address:x}", "name": f.name, "o": [a - f.address for a, _ in lines],
            "t": [_tidy(t, names) for _, t in lines], "more": more}


# ------------------------------------------------------------------------------------------- the plot
def _plot(result: dict, rows: list[dict], bins: _Binaries) -> dict:
    """PCA map of the functions' own-code vectors (those the matcher compares) with lines for the matches. At
    most MAX_POINTS functions are drawn, and only they are embedded: half the budget for the target, matched
    references first."""
    ref_path, tgt_path = _str(result.get("reference")), _str(result.get("target"))
    S = bins.get(ref_path)
    P = bins.get(tgt_path, stripped=True)
    if S is None or P is None:
        missing = [f"{side}: {p or 'no path in the result'}" for side, p, b in
                   (("reference", ref_path, S), ("target", tgt_path, P)) if b is None]
        return {"note": "Embedding map skipped: binary not available (" + "; ".join(missing) + ")."}
    s_code, p_code = S.code_functions, P.code_functions
    if not s_code or not p_code:
        return {"note": "Embedding map skipped: no functions to embed."}
    ns = len(s_code)
    s_index = {f.address: i for i, f in enumerate(s_code)}
    p_index = {f.address: i for i, f in enumerate(p_code)}
    by_addr = {r["address"]: r for r in rows}
    pairs = []  # (target idx, reference idx, confidence)
    for r in rows:
        if r["reference_address"] is not None and r["address"] in p_index and r["reference_address"] in s_index:
            pairs.append((p_index[r["address"]], s_index[r["reference_address"]], r["confidence"]))

    total = ns + len(p_code)
    rng = np.random.default_rng(0)
    if total <= MAX_POINTS:
        keep_p, keep_s = list(range(len(p_code))), list(range(ns))
    else:
        n_p = min(len(p_code), max(MAX_POINTS // 2, MAX_POINTS - ns))
        keep_p = sorted(rng.choice(len(p_code), n_p, replace=False).tolist())
        kp = set(keep_p)
        matched = sorted({si for pi, si, _ in pairs if pi in kp})[: MAX_POINTS - n_p]
        rest = [i for i in range(ns) if i not in set(matched)]
        n_rest = max(0, min(len(rest), MAX_POINTS - n_p - len(matched)))
        extra = rng.choice(len(rest), n_rest, replace=False).tolist() if n_rest else []
        keep_s = sorted(set(matched) | {rest[i] for i in extra})
    new_p = {old: new for new, old in enumerate(keep_p)}
    new_s = {old: new for new, old in enumerate(keep_s)}
    try:
        from symbridge.model.model import Model

        model = Model.default()
        wanted = _str(result.get("model"))
        note = ""
        if wanted and wanted != model.name:
            note = f"The result names model {wanted!r}; the map uses the default model {model.name!r}. "
        xs = model.embed_own([s_code[i] for i in keep_s])
        xp = model.embed_own([p_code[i] for i in keep_p])
    except Exception as exc:  # noqa: BLE001 - the map is optional; say why it is missing
        return {"note": f"Embedding map skipped: {type(exc).__name__}: {exc}"}
    x = np.concatenate([xs, xp]).astype(np.float64)
    x -= x.mean(axis=0)
    try:
        # PCA via the SVD of the small (D, D) scatter matrix: its right singular vectors are X's
        _, var, vt = np.linalg.svd(x.T @ x, hermitian=True)
    except np.linalg.LinAlgError as exc:
        return {"note": f"Embedding map skipped: PCA failed ({exc})."}
    xy = x @ vt[:2].T if vt.shape[0] >= 2 else np.zeros((len(x), 2))
    explained = (var[:2].sum() / var.sum()) if var.sum() > 0 else 0.0
    s_xy, p_xy = xy[:len(keep_s)], xy[len(keep_s):]

    def side(funcs, coords, keep, labels):
        return {"x": [round(float(v), 4) for v in coords[:, 0]], "y": [round(float(v), 4) for v in coords[:, 1]],
                "n": [labels(funcs[i]) for i in keep], "a": [f"{funcs[i].address:x}" for i in keep]}

    def p_label(f):
        r = by_addr.get(f.address)
        return (r and r["name"]) or f"sub_{f.address:x}"

    drawn = (f"{len(keep_s)} of {ns} reference and {len(keep_p)} of {len(p_code)} target functions"
             if total > MAX_POINTS else f"{ns} reference and {len(p_code)} target functions")
    return {"note": note + f"PCA of the own-code embeddings of {drawn} (first two components, {explained:.0%} of "
                           "the variance).",
            "ref": side(s_code, s_xy, keep_s, lambda f: f.name or f"sub_{f.address:x}"),
            "tgt": side(p_code, p_xy, keep_p, p_label),
            "links": [[new_p[pi], new_s[si], round(c, 3)] for pi, si, c in pairs if pi in new_p and si in new_s]}


# ---------------------------------------------------------------------------------------------- main
def _summary(result: dict, rows: list[dict]) -> dict:
    code = [r for r in rows if "import" not in r["via"]]
    via = Counter(v for r in code for v in r["via"])
    unmatched = sum(1 for r in code if not r["via"])
    bands = Counter(_band(r["confidence"]) for r in code)
    return {"reference": _str(result.get("reference")), "target": _str(result.get("target")),
            "model": _str(result.get("model")), "min_confidence": _float(result.get("min_confidence")),
            "functions": len(rows), "imports": len(rows) - len(code), "code": len(code),
            "named": sum(1 for r in code if r["name"]), "matched": sum(1 for r in code if r["reference_address"]
                                                                      is not None),
            "via": sorted(via.items(), key=lambda kv: (-kv[1], kv[0])) + ([("(none)", unmatched)] if unmatched
                                                                           else []),
            "bands": [[label, bands.get(i, 0)] for i, (label, _, _) in enumerate(BANDS)]}


def _asset(name: str) -> str:
    """The page's template, style sheet or script (export/assets), which the report inlines."""
    return resources.files("symbridge.export").joinpath("assets", name).read_text(encoding="utf-8")


def _shown_reference(r: dict, ref_default: str | None) -> tuple[int | None, str | None, bool]:
    """(address, binary, whether it is only the best candidate) of the reference function a row shows: its
    match, else its best candidate."""
    if r["reference_address"] is None and r["candidates"] and r["candidates"][0]["address"] is not None:
        c = r["candidates"][0]
        return c["address"], c["binary"] or ref_default, True
    return r["reference_address"], r["binary"] or ref_default, False


def build_report(result: dict, *, max_disasm: int = 400, base: Path | None = None,
                 progress: Callable[[int], None] | None = None, stage: Callable[[str], None] | None = None,
                 budget: int = MAX_REPORT_INSTRUCTIONS) -> str:
    """The report's HTML text (see write_report); `budget`: the instructions of disassembly it holds in all."""
    if not isinstance(result, dict):
        raise TypeError("result must be a dict (the transfer JSON)")
    max_disasm = max(1, int(max_disasm))
    rows = _rows(result)
    summary = _summary(result, rows)
    bins = _Binaries(base)
    ref_default = _str(result.get("reference"))
    tgt = bins.get(_str(result.get("target")), stripped=True)

    # readable C++ and Rust names for display (the table keeps the names as written; the page shows these)
    shown = demangle([r["name"] for r in rows] + [c["name"] for r in rows for c in r["candidates"]])
    tgt_names = {r["address"]: shown.get(r["name"], r["name"]) or f"sub_{r['address']:x}" for r in rows}
    ref_names: dict[str, dict[int, str]] = {}

    def names_of(path: str | None, b) -> dict[int, str]:
        if path not in ref_names:
            more = demangle(f.name for f in b.functions)
            shown.update(more)
            ref_names[path] = {f.address: more.get(f.name, f.name) or f"sub_{f.address:x}" for f in b.functions}
        return ref_names[path]

    tgt_dis: dict[str, dict] = {}
    ref_dis: dict[str, dict] = {}
    shown_refs = [_shown_reference(r, ref_default) for r in rows]
    keys = [f"{b or ''}|{_hex(a)}" if a is not None else None for a, b, _ in shown_refs]
    left = [budget]
    spent = {"error": f"disassembly left out: the report holds {budget:,} instructions at most, and the functions "
                      "named went first"}

    def disasm(binary, address: int, size_hint: int, names: dict[int, str]) -> dict:  # within the budget
        if left[0] <= 0:
            return spent
        d = _disasm(binary, address, size_hint, max_disasm, names)
        left[0] -= len(d.get("o", ()))
        return d

    for i in sorted(range(len(rows)), key=lambda i: not rows[i]["name"]):  # named functions first
        r, (shown_ref, shown_ref_bin, _), key = rows[i], shown_refs[i], keys[i]
        if key is not None and key not in ref_dis:
            b = bins.get(shown_ref_bin)
            if b is None:
                ref_dis[key] = {"error": "binary not available" + (f": {shown_ref_bin}" if shown_ref_bin else "")}
            else:
                ref_dis[key] = disasm(b, shown_ref, 0, names_of(shown_ref_bin, b))
        if tgt is not None:
            tgt_dis[_hex(r["address"])] = disasm(tgt, r["address"], r["size"], tgt_names)
        if progress is not None:
            progress(1)
    table = []
    for r, (_, _, is_candidate), key in zip(rows, shown_refs, keys):
        ref_addr = r["reference_address"]
        best = r["candidates"][0] if r["candidates"] else None
        table.append({"a": _hex(r["address"]), "s": r["size"], "n": r["name"], "c": r["confidence"], "v": r["via"],
                      "r": _hex(ref_addr), "b": best and best["name"], "bs": best and best["score"],
                      "k": key, "kc": is_candidate, "rb": r["binary"],
                      "cand": [[c["name"], _hex(c["address"]), c["score"], c["binary"]] for c in r["candidates"]]})
    if tgt is None:
        tgt_path = _str(result.get("target"))
        tgt_error = "binary not available" + (f": {tgt_path}" if tgt_path else "")
    else:
        tgt_error = None

    if stage is not None:
        stage("drawing the embedding map")
    plot = _plot(result, rows, bins)
    if stage is not None:
        stage("writing the page")
    used = {n for t in table for n in [t["n"], t["b"]] + [c[0] for c in t["cand"]] if n}
    used |= {d["name"] for d in ref_dis.values() if d.get("name")}
    used |= {n for side in ("ref", "tgt") for n in (plot.get(side) or {}).get("n", [])}
    shown.update(demangle(used - shown.keys()))
    data = {"summary": summary, "rows": table, "tgt_error": tgt_error, "max_disasm": max_disasm,
            "plot": plot, "binary_errors": bins.errors, "dm": {n: shown[n] for n in sorted(used) if n in shown}}
    disasm = {"tgt": tgt_dis, "ref": ref_dis}
    title = "symbridge report"
    if summary["target"]:
        title += " — " + Path(summary["target"]).name
    return (_asset("report.html").replace("{{TITLE}}", html.escape(title))
            .replace("{{CSS}}", _asset("report.css")).replace("{{JS}}", _asset("report.js"))
            .replace("{{DISASM}}", _json_for_html(disasm))
            .replace("{{DATA}}", _json_for_html(data)))


def write_report(result: dict, output: Path, *, max_disasm: int = 400, base: Path | None = None,
                 progress: Callable[[int], None] | None = None, stage: Callable[[str], None] | None = None,
                 budget: int = MAX_REPORT_INSTRUCTIONS) -> None:
    """Write a self-contained HTML report of a transfer result to output (atomically).

    Binaries named in the result are opened (once each) for the disassembly and the embedding map; a relative
    path is tried from the working directory, then from `base` (give the result file's folder). When one is
    gone the page says "binary not available" there instead of failing. C++ and Rust names are shown
    demangled where c++filt is installed (the mangled name is the cell's tooltip).
    """
    text = build_report(result, max_disasm=max_disasm, base=base, progress=progress, stage=stage, budget=budget)
    atomic_write(Path(output), text.encode("utf-8"))
