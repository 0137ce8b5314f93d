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
from pathlib import Path
from typing import Any

import numpy as np

from symbridge.export._atomic import atomic_write

MAX_POINTS = 5000
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
    """Each binary opened at most once; failures remembered as a reason string."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, bool], Any] = {}
        self.errors: dict[str, str] = {}

    def get(self, path: str | None, *, stripped: bool = False):
        if not path:
            return None
        key = (path, stripped)
        if key not in self._open:
            from symbridge.binary import Binary

            try:
                if not Path(path).is_file():
                    raise FileNotFoundError(f"{path}: no such file")
                self._open[key] = Binary(path, ignore_symbols=stripped)
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
    ref_path, tgt_path = _str(result.get("reference")), _str(result.get("target"))
    S = bins.get(ref_path)
    P = bins.get(tgt_path, stripped=True)
    if S is None or P is None:
        missing = [f"{side}: {p or 'no path in the result'}" for side, p, b in
                   (("reference", ref_path, S), ("target", tgt_path, P)) if b is None]
        return {"note": "Embedding map skipped: binary not available (" + "; ".join(missing) + ")."}
    try:
        from symbridge.model.model import Model

        model = Model.default()
        wanted = _str(result.get("model"))
        note = ""
        if wanted and wanted != model.name:
            note = f"The result names model {wanted!r}; the map uses the default model {model.name!r}. "
        s_code, p_code = S.code_functions, P.code_functions
        if not s_code or not p_code:
            return {"note": "Embedding map skipped: no functions to embed."}
        xs, xp = model.embed(s_code), model.embed(p_code)
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
    ns = len(s_code)
    s_xy, p_xy = xy[:ns], xy[ns:]

    s_index = {f.address: i for i, f in enumerate(s_code)}
    p_index = {f.address: i for i, f in enumerate(p_code)}
    by_addr = {r["address"]: r for r in rows}
    pairs = []  # (target idx, reference idx, confidence)
    for r in rows:
        if r["reference_address"] is not None and r["address"] in p_index and r["reference_address"] in s_index:
            pairs.append((p_index[r["address"]], s_index[r["reference_address"]], r["confidence"]))

    # keep at most MAX_POINTS: half the budget for the target, matched references first
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

    def side(funcs, coords, keep, labels):
        return {"x": [round(float(coords[i, 0]), 4) for i in keep], "y": [round(float(coords[i, 1]), 4) for i in keep],
                "n": [labels(funcs[i]) for i in keep], "a": [f"{funcs[i].address:x}" for i in keep]}

    def p_label(f):
        r = by_addr.get(f.address)
        return (r and r["name"]) or f"sub_{f.address:x}"

    return {"note": note + f"PCA of {ns} reference and {len(p_code)} target embeddings "
                           f"(first two components, {explained:.0%} of the variance)"
                           + (f"; {len(keep_s) + len(keep_p)} points drawn." if total > MAX_POINTS else "."),
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


def build_report(result: dict, *, max_disasm: int = 400) -> str:
    """The report's HTML text (see write_report)."""
    if not isinstance(result, dict):
        raise TypeError("result must be a dict (the transfer JSON)")
    max_disasm = max(1, int(max_disasm))
    rows = _rows(result)
    summary = _summary(result, rows)
    bins = _Binaries()
    ref_default = _str(result.get("reference"))
    tgt = bins.get(_str(result.get("target")), stripped=True)

    tgt_names = {r["address"]: r["name"] or f"sub_{r['address']:x}" for r in rows}
    ref_names: dict[str, dict[int, str]] = {}

    def names_of(path: str | None, b) -> dict[int, str]:
        if path not in ref_names:
            ref_names[path] = {f.address: f.name or f"sub_{f.address:x}" for f in b.functions}
        return ref_names[path]

    tgt_dis: dict[str, dict] = {}
    ref_dis: dict[str, dict] = {}
    table = []
    for r in rows:
        ref_addr = r["reference_address"]
        ref_bin_path = r["binary"] or ref_default
        shown_ref, shown_ref_bin, is_candidate = ref_addr, ref_bin_path, False
        if ref_addr is None and r["candidates"] and r["candidates"][0]["address"] is not None:
            c = r["candidates"][0]
            shown_ref, shown_ref_bin, is_candidate = c["address"], c["binary"] or ref_default, True
        key = f"{shown_ref_bin or ''}|{_hex(shown_ref)}" if shown_ref is not None else None
        if key is not None and key not in ref_dis:
            b = bins.get(shown_ref_bin)
            ref_dis[key] = (_disasm(b, shown_ref, 0, max_disasm, names_of(shown_ref_bin, b)) if b is not None
                            else {"error": "binary not available" + (f": {shown_ref_bin}" if shown_ref_bin else "")})
        if tgt is not None:
            tgt_dis[_hex(r["address"])] = _disasm(tgt, r["address"], r["size"], max_disasm, tgt_names)
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

    plot = _plot(result, rows, bins)
    data = {"summary": summary, "rows": table, "tgt_error": tgt_error, "max_disasm": max_disasm,
            "plot": plot, "binary_errors": bins.errors}
    disasm = {"tgt": tgt_dis, "ref": ref_dis}
    title = "symbridge report"
    if summary["target"]:
        title += " — " + Path(summary["target"]).name
    return (_TEMPLATE.replace("{{TITLE}}", html.escape(title))
            .replace("{{CSS}}", _CSS).replace("{{JS}}", _JS)
            .replace("{{DISASM}}", _json_for_html(disasm))
            .replace("{{DATA}}", _json_for_html(data)))


def write_report(result: dict, output: Path, *, max_disasm: int = 400) -> None:
    """Write a self-contained HTML report of a transfer result to output (atomically).

    Binaries named in the result are opened (once each) for the disassembly and the embedding map; when one
    is gone the page says "binary not available" there instead of failing.
    """
    text = build_report(result, max_disasm=max_disasm)
    atomic_write(Path(output), text.encode("utf-8"))


# ------------------------------------------------------------------------------------------- the page
_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{{TITLE}}</title>
<style>{{CSS}}</style>
</head>
<body>
<header><h1>symbridge report</h1><div id="paths"></div></header>
<main>
<section id="summary-section">
  <div id="cards" class="cards"></div>
  <div class="two">
    <div class="panel"><h2>Evidence (<code>via</code>)</h2><table id="via-table" class="mini"></table></div>
    <div class="panel"><h2>Confidence <span class="hint">(PLT imports excluded)</span></h2>
      <table id="band-table" class="mini"></table></div>
  </div>
</section>
<section class="panel" id="plot-section">
  <h2>Embedding space</h2>
  <div class="legend"><span class="dot ref"></span>reference <span class="dot tgt"></span>target
    <span class="line"></span>matched pair <span class="hint">— hover a point for its name, click to filter the table
    </span></div>
  <div id="plot-wrap"><canvas id="plot" width="900" height="480"></canvas><div id="tip" hidden></div></div>
  <p id="plot-note" class="hint"></p>
</section>
<section class="panel" id="table-section">
  <h2>Target functions</h2>
  <div class="controls">
    <input id="filter" type="search" placeholder="Filter: name, address, evidence, candidate…" autocomplete="off">
    <label><input id="hide-imports" type="checkbox" checked> hide PLT imports</label>
    <label><input id="named-only" type="checkbox"> named only</label>
    <span id="count" class="hint"></span>
    <span class="pager"><button id="prev" type="button">‹ prev</button><span id="page"></span>
      <button id="next" type="button">next ›</button>
      <select id="page-size"><option>50</option><option selected>100</option><option>250</option>
      <option>1000</option></select></span>
  </div>
  <table id="functions" class="grid">
    <thead><tr>
      <th data-key="a" class="num">address</th><th data-key="n">name</th><th data-key="c" class="num">confidence</th>
      <th data-key="v">via</th><th data-key="r" class="num">reference address</th><th data-key="b">best candidate</th>
    </tr></thead>
    <tbody id="rows"></tbody>
  </table>
</section>
</main>
<script type="application/json" id="report-data">{{DATA}}</script>
<script type="application/json" id="report-disasm">{{DISASM}}</script>
<script>{{JS}}</script>
</body>
</html>
"""

_CSS = r"""
:root { --fg:#1d2430; --muted:#667085; --line:#e3e7ee; --bg:#f6f7f9; --panel:#fff; --ref:#2f6fdb; --tgt:#e0652b;
  --good:#1f9d55; --ok:#8bbf3f; --meh:#e0a526; --bad:#d9534f; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
  color:var(--fg); background:var(--bg); }
header { padding:14px 24px; background:#1d2430; color:#fff; }
header h1 { margin:0 0 4px; font-size:20px; font-weight:600; }
#paths { font:12px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; color:#c9d1dd; word-break:break-all; }
#paths b { color:#fff; font-weight:600; font-family:system-ui,sans-serif; }
main { padding:16px 24px 40px; max-width:1600px; margin:0 auto; }
h2 { font-size:15px; margin:0 0 8px; font-weight:600; }
.hint { color:var(--muted); font-weight:normal; font-size:12px; }
.panel { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 16px; margin-top:14px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(150px,1fr)); gap:10px; }
.card { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.card .v { font-size:22px; font-weight:600; }
.card .k { color:var(--muted); font-size:12px; }
.two { display:grid; grid-template-columns:1fr 1fr; gap:14px; }
@media (max-width:900px) { .two { grid-template-columns:1fr; } }
table.mini { border-collapse:collapse; width:100%; }
table.mini td { padding:3px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
table.mini td.n { text-align:right; font-variant-numeric:tabular-nums; width:60px; }
table.mini td.bar { width:60%; }
.barfill { height:10px; border-radius:3px; background:var(--ref); min-width:1px; }
code, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px; }
.legend { font-size:12px; color:var(--fg); margin-bottom:6px; }
.dot { display:inline-block; width:10px; height:10px; border-radius:50%; margin:0 4px 0 10px; vertical-align:-1px; }
.dot.ref { background:var(--ref); } .dot.tgt { border:2px solid var(--tgt); width:11px; height:11px; }
.line { display:inline-block; width:22px; height:0; border-top:2px solid rgba(90,90,90,.45); margin:0 4px 3px 12px; }
#plot-wrap { position:relative; }
#plot { width:100%; height:480px; border:1px solid var(--line); border-radius:6px; background:#fcfcfd;
  cursor:crosshair; display:block; }
#tip { position:absolute; pointer-events:none; background:#1d2430; color:#fff; padding:3px 7px; border-radius:4px;
  font:12px ui-monospace,Menlo,Consolas,monospace; white-space:pre; max-width:600px; overflow:hidden; }
.controls { display:flex; flex-wrap:wrap; gap:10px 16px; align-items:center; margin-bottom:8px; }
#filter { flex:1 1 320px; padding:6px 10px; border:1px solid #c8ced8; border-radius:6px; font-size:14px; }
.pager { margin-left:auto; display:flex; gap:6px; align-items:center; }
.pager button, .pager select { padding:3px 8px; border:1px solid #c8ced8; border-radius:5px; background:#fff;
  font-size:13px; cursor:pointer; }
.pager button:disabled { opacity:.4; cursor:default; }
table.grid { border-collapse:collapse; width:100%; table-layout:fixed; }
table.grid th { text-align:left; background:#eef1f5; padding:6px 8px; border-bottom:2px solid var(--line);
  cursor:pointer; user-select:none; white-space:nowrap; font-weight:600; position:sticky; top:0; z-index:1; }
table.grid th:nth-child(1) { width:110px; } table.grid th:nth-child(3) { width:170px; }
table.grid th:nth-child(4) { width:150px; } table.grid th:nth-child(5) { width:150px; }
table.grid th:hover { background:#e2e7ee; }
table.grid th.asc::after { content:" ▲"; font-size:10px; } table.grid th.desc::after { content:" ▼"; font-size:10px; }
table.grid td { padding:4px 8px; border-bottom:1px solid var(--line); overflow:hidden; text-overflow:ellipsis;
  white-space:nowrap; }
tr.fn { cursor:pointer; } tr.fn:hover { background:#f3f6fb; } tr.fn.open { background:#eaf1fd; }
tr.fn td:first-child::before { content:"▸ "; color:var(--muted); } tr.fn.open td:first-child::before { content:"▾ "; }
td.addr { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px; }
.none { color:var(--muted); font-style:italic; }
.conf { display:flex; align-items:center; gap:6px; font-variant-numeric:tabular-nums; }
.conf .track { flex:1; height:6px; background:#edf0f4; border-radius:3px; overflow:hidden; }
.conf .track i { display:block; height:100%; }
.tag { display:inline-block; padding:0 6px; margin-right:3px; border-radius:9px; font-size:11.5px; background:#eef1f5;
  border:1px solid #dde2ea; }
.tag.import { background:#f1ecfb; border-color:#ddd2f3; } .tag.identical { background:#e5f5ec; border-color:#c6e8d4; }
.tag.embedding { background:#e9f0fd; border-color:#cddcf7; } .tag.callgraph { background:#fdf1e6; border-color:#f6dbc0; }
.tag.string { background:#fcf6dd; border-color:#f0e3a8; } .tag.order { background:#f0f0f0; }
.tag.structure { background:#f6eefa; border-color:#e6d3ef; } .tag.cold-part { background:#eaf4f8; border-color:#cde3ec; }
td.detail { background:#fafbfc; padding:10px 14px 14px; white-space:normal; cursor:default; }
.cands { border-collapse:collapse; margin-bottom:10px; }
.cands th, .cands td { padding:2px 10px 2px 0; text-align:left; font-size:12.5px; border:none; }
.cands th { color:var(--muted); font-weight:600; }
.cands tr.chosen td { font-weight:600; }
.disasm { display:grid; grid-template-columns:1fr 1fr; gap:12px; }
.disasm h3 { font-size:12.5px; margin:0 0 4px; font-weight:600; overflow:hidden; text-overflow:ellipsis; }
.disasm h3 .side { display:inline-block; width:9px; height:9px; border-radius:50%; margin-right:5px; }
.disasm pre { margin:0; max-height:420px; overflow:auto; background:#fff; border:1px solid var(--line);
  border-radius:5px; padding:6px 8px; font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; }
.disasm pre .ad { color:#98a2b3; } .disasm pre .mn { color:#1d4ed8; } .disasm pre .cl { color:#b45309; }
.unavailable { color:var(--bad); font-style:italic; padding:6px 0; }
"""

_JS = r"""
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var DIS = null;  // parsed on the first expansion
  function disasm() {
    if (DIS === null) DIS = JSON.parse(document.getElementById("report-disasm").textContent);
    return DIS;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function hex(h) { return h === null || h === undefined ? "" : "0x" + h; }
  function cmpHex(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    return (a.length - b.length) || (a < b ? -1 : 1);
  }
  function confColor(c) {
    return c >= 0.9 ? "var(--good)" : c >= 0.7 ? "var(--ok)" : c >= 0.5 ? "var(--meh)" : "var(--bad)";
  }

  // ----------------------------------------------------------------------------- summary
  var S = DATA.summary;
  (function () {
    var p = document.getElementById("paths");
    [["reference", S.reference], ["target", S.target]].forEach(function (kv) {
      var d = el("div"); d.appendChild(el("b", null, kv[0] + ": ")); d.appendChild(document.createTextNode(kv[1] || "—"));
      p.appendChild(d);
    });
    var cards = document.getElementById("cards");
    var pct = S.code ? " (" + Math.round(100 * S.named / S.code) + "%)" : "";
    [["functions found", S.functions], ["code functions", S.code], ["PLT imports", S.imports],
     ["matched", S.matched], ["named", S.named + pct], ["min_confidence", String(+S.min_confidence.toFixed(3))],
     ["model", S.model || "—"]].forEach(function (kv) {
      var c = el("div", "card"); c.appendChild(el("div", "v", kv[1])); c.appendChild(el("div", "k", kv[0]));
      cards.appendChild(c);
    });
    function mini(id, pairs, colors) {
      var t = document.getElementById(id), max = 1;
      pairs.forEach(function (kv) { max = Math.max(max, kv[1]); });
      pairs.forEach(function (kv, i) {
        var tr = el("tr"); tr.appendChild(el("td", null, kv[0])); tr.appendChild(el("td", "n", kv[1]));
        var td = el("td", "bar"), f = el("div", "barfill");
        f.style.width = (100 * kv[1] / max) + "%";
        if (colors) f.style.background = colors[i];
        td.appendChild(f); tr.appendChild(td); t.appendChild(tr);
      });
      if (!pairs.length) { var tr = el("tr"); tr.appendChild(el("td", "none", "no functions")); t.appendChild(tr); }
    }
    mini("via-table", S.via);
    mini("band-table", S.bands, ["var(--good)", "var(--ok)", "var(--meh)", "var(--bad)"]);
  })();

  // ----------------------------------------------------------------------------- table
  var ROWS = DATA.rows;
  ROWS.forEach(function (r, i) {
    r._i = i;
    r._hay = [hex(r.a), r.n || "", r.v.join(" "), hex(r.r), r.b || ""].join("\u0001").toLowerCase();
  });
  var state = { key: null, dir: 1, page: 0, size: 100, view: ROWS.slice(), open: {} };
  var tbody = document.getElementById("rows");
  var filterBox = document.getElementById("filter");
  var hideImports = document.getElementById("hide-imports");
  var namedOnly = document.getElementById("named-only");

  function cmp(key) {
    if (key === "a" || key === "r") return function (x, y) { return cmpHex(x[key], y[key]); };
    if (key === "c") return function (x, y) { return x.c - y.c; };
    if (key === "v") return function (x, y) {
      var a = x.v.join(","), b = y.v.join(",");
      if (!a !== !b) return a ? -1 : 1;
      return a < b ? -1 : a > b ? 1 : 0;
    };
    return function (x, y) {
      var a = x[key], b = y[key];
      if (!a !== !b) return a ? -1 : 1;   // missing names last
      a = (a || "").toLowerCase(); b = (b || "").toLowerCase();
      return a < b ? -1 : a > b ? 1 : 0;
    };
  }
  function applyView() {
    var q = filterBox.value.trim().toLowerCase(), terms = q ? q.split(/\s+/) : [];
    var hide = hideImports.checked, named = namedOnly.checked;
    var v = ROWS.filter(function (r) {
      if (hide && r.v.indexOf("import") >= 0) return false;
      if (named && !r.n) return false;
      for (var i = 0; i < terms.length; i++) if (r._hay.indexOf(terms[i]) < 0) return false;
      return true;
    });
    if (state.key) {
      var c = cmp(state.key), d = state.dir;
      v.sort(function (x, y) { return d * c(x, y) || x._i - y._i; });
    }
    state.view = v;
    render();
  }
  function confCell(c) {
    var w = el("div", "conf"), t = el("div", "track"), i = el("i");
    i.style.width = Math.max(0, Math.min(100, 100 * c)) + "%"; i.style.background = confColor(c);
    t.appendChild(i); w.appendChild(el("span", null, c.toFixed(2))); w.appendChild(t);
    return w;
  }
  function render() {
    var n = state.view.length, pages = Math.max(1, Math.ceil(n / state.size));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * state.size, end = Math.min(n, start + state.size);
    var frag = document.createDocumentFragment();
    for (var i = start; i < end; i++) {
      var r = state.view[i], tr = el("tr", "fn");
      tr.dataset.idx = r._i;
      tr.appendChild(el("td", "addr", hex(r.a)));
      var nm = el("td", r.n ? null : "none", r.n || "—"); nm.title = r.n || ""; tr.appendChild(nm);
      var cc = el("td"); cc.dataset.value = r.c; cc.appendChild(confCell(r.c)); tr.appendChild(cc);
      var vv = el("td");
      if (!r.v.length) vv.appendChild(el("span", "none", "unmatched"));
      r.v.forEach(function (t) { vv.appendChild(el("span", "tag " + t.replace(/[^a-z0-9_-]/gi, ""), t)); });
      tr.appendChild(vv);
      tr.appendChild(el("td", "addr", r.r ? hex(r.r) : ""));
      var bc = el("td", null, r.b ? r.b + "  (" + r.bs.toFixed(3) + ")" : ""); bc.title = r.b || ""; tr.appendChild(bc);
      frag.appendChild(tr);
      if (state.open[r._i]) { tr.classList.add("open"); frag.appendChild(detailRow(r)); }
    }
    tbody.textContent = "";
    tbody.appendChild(frag);
    document.getElementById("count").textContent = n + " of " + ROWS.length + " functions";
    document.getElementById("page").textContent = "page " + (state.page + 1) + " / " + pages;
    document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = state.page >= pages - 1;
    document.querySelectorAll("#functions th").forEach(function (th) {
      th.classList.remove("asc", "desc");
      if (th.dataset.key === state.key) th.classList.add(state.dir > 0 ? "asc" : "desc");
    });
  }
  function pre(d) {
    var p = el("pre");
    var base = BigInt("0x" + d.b);
    for (var i = 0; i < d.t.length; i++) {
      p.appendChild(el("span", "ad", (base + BigInt(d.o[i])).toString(16).padStart(8, " ") + "  "));
      var t = d.t[i], sp = t.indexOf(" "), mn = sp < 0 ? t : t.slice(0, sp);
      p.appendChild(el("span", /^(call|j)/.test(mn) ? "cl" : "mn", mn));
      p.appendChild(document.createTextNode((sp < 0 ? "" : t.slice(sp)) + "\n"));
    }
    if (d.more) p.appendChild(el("span", "ad", "… truncated at " + DATA.max_disasm + " instructions\n"));
    return p;
  }
  function pane(title, color, d, fallback) {
    var w = el("div"), h = el("h3"), dot = el("span", "side");
    dot.style.background = color; h.appendChild(dot); h.appendChild(document.createTextNode(title)); h.title = title;
    w.appendChild(h);
    if (!d) w.appendChild(el("div", "unavailable", fallback));
    else if (d.error) w.appendChild(el("div", "unavailable", d.error));
    else w.appendChild(pre(d));
    return w;
  }
  function detailRow(r) {
    var tr = el("tr", "detail-row"), td = el("td", "detail");
    td.colSpan = 6;
    var ct = el("table", "cands"), hr = el("tr");
    var multi = r.cand.some(function (c) { return c[3]; });
    ["candidate", "address", "score"].concat(multi ? ["binary"] : []).forEach(function (h) { hr.appendChild(el("th", null, h)); });
    ct.appendChild(hr);
    r.cand.forEach(function (c) {
      var row = el("tr", c[1] && c[1] === r.r ? "chosen" : null);
      row.appendChild(el("td", null, c[0])); row.appendChild(el("td", "addr", hex(c[1])));
      row.appendChild(el("td", null, c[2].toFixed(4)));
      if (multi) row.appendChild(el("td", null, c[3] || ""));
      ct.appendChild(row);
    });
    if (!r.cand.length) { var e = el("tr"); e.appendChild(el("td", "none", "no candidates")); ct.appendChild(e); }
    td.appendChild(ct);
    var D = disasm(), grid = el("div", "disasm");
    var rd = r.k ? D.ref[r.k] : null;
    var rname = rd && rd.name ? rd.name : (r.kc ? r.b : (r.n || ""));
    var rtitle = r.k ? (r.kc ? "best candidate (not matched): " : "reference: ") + (rname || "") + " @ " +
      hex(r.k.slice(r.k.lastIndexOf("|") + 1)) : "reference";
    grid.appendChild(pane(rtitle, "var(--ref)", rd, r.k ? "binary not available" : "no reference function"));
    var td2 = DATA.tgt_error ? { error: DATA.tgt_error } : disasm().tgt[r.a];
    grid.appendChild(pane("target: " + (r.n || "sub_" + r.a) + " @ " + hex(r.a), "var(--tgt)", td2,
      "binary not available"));
    td.appendChild(grid);
    tr.appendChild(td);
    return tr;
  }
  tbody.addEventListener("click", function (ev) {
    var tr = ev.target.closest("tr.fn");
    if (!tr) return;
    var i = +tr.dataset.idx;
    if (state.open[i]) delete state.open[i]; else state.open[i] = true;
    render();
  });
  document.querySelectorAll("#functions th").forEach(function (th) {
    th.addEventListener("click", function () {
      var k = th.dataset.key;
      if (state.key === k) state.dir = -state.dir; else { state.key = k; state.dir = 1; }
      applyView();
    });
  });
  var timer = null;
  filterBox.addEventListener("input", function () {
    clearTimeout(timer); timer = setTimeout(function () { state.page = 0; applyView(); }, 120);
  });
  hideImports.addEventListener("change", function () { state.page = 0; applyView(); });
  namedOnly.addEventListener("change", function () { state.page = 0; applyView(); });
  document.getElementById("prev").addEventListener("click", function () { state.page--; render(); });
  document.getElementById("next").addEventListener("click", function () { state.page++; render(); });
  document.getElementById("page-size").addEventListener("change", function (ev) {
    state.size = +ev.target.value; state.page = 0; render();
  });
  applyView();

  // ----------------------------------------------------------------------------- plot
  var P = DATA.plot, canvas = document.getElementById("plot"), tip = document.getElementById("tip");
  document.getElementById("plot-note").textContent = P.note || "";
  if (!P.ref) { document.getElementById("plot-wrap").hidden = true; return; }
  var pts = [];  // {x, y, side, i}
  var sx, sy, W, H;
  function layout() {
    var rect = canvas.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    W = Math.max(200, rect.width); H = Math.max(200, rect.height);
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    var all = P.ref.x.concat(P.tgt.x), allY = P.ref.y.concat(P.tgt.y);
    var x0 = Math.min.apply(null, all), x1 = Math.max.apply(null, all);
    var y0 = Math.min.apply(null, allY), y1 = Math.max.apply(null, allY);
    var pad = 16, spanX = (x1 - x0) || 1, spanY = (y1 - y0) || 1;
    sx = function (v) { return pad + (v - x0) / spanX * (W - 2 * pad); };
    sy = function (v) { return H - pad - (v - y0) / spanY * (H - 2 * pad); };
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }
  function draw() {
    var ctx = layout();
    ctx.clearRect(0, 0, W, H);
    ctx.lineWidth = 0.8;
    P.links.forEach(function (l) {
      var t = l[0], r = l[1];
      ctx.strokeStyle = "rgba(80,80,80," + (0.12 + 0.3 * l[2]) + ")";
      ctx.beginPath(); ctx.moveTo(sx(P.tgt.x[t]), sy(P.tgt.y[t])); ctx.lineTo(sx(P.ref.x[r]), sy(P.ref.y[r]));
      ctx.stroke();
    });
    pts = [];
    // reference: filled dots; target: rings on top, so that coinciding pairs still show both colours
    [["ref", "rgba(47,111,219,0.75)", true], ["tgt", "rgba(224,101,43,0.9)", false]].forEach(function (s) {
      var side = P[s[0]];
      ctx.fillStyle = s[1]; ctx.strokeStyle = s[1]; ctx.lineWidth = 1.4;
      for (var i = 0; i < side.x.length; i++) {
        var x = sx(side.x[i]), y = sy(side.y[i]);
        ctx.beginPath(); ctx.arc(x, y, s[2] ? 3 : 3.6, 0, 2 * Math.PI);
        if (s[2]) ctx.fill(); else ctx.stroke();
        pts.push({ x: x, y: y, side: s[0], i: i });
      }
    });
  }
  function nearest(ev) {
    var rect = canvas.getBoundingClientRect(), mx = ev.clientX - rect.left, my = ev.clientY - rect.top;
    var best = null, bd = 64;
    pts.forEach(function (p) {
      var d = (p.x - mx) * (p.x - mx) + (p.y - my) * (p.y - my);
      if (d < bd) { bd = d; best = p; }
    });
    return best && { p: best, mx: mx, my: my };
  }
  canvas.addEventListener("mousemove", function (ev) {
    var n = nearest(ev);
    if (!n) { tip.hidden = true; return; }
    var side = P[n.p.side];
    tip.textContent = (n.p.side === "ref" ? "reference " : "target ") + hex(side.a[n.p.i]) + "  " + side.n[n.p.i];
    tip.hidden = false;
    tip.style.left = Math.min(n.mx + 12, W - 200) + "px"; tip.style.top = (n.my + 12) + "px";
  });
  canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
  canvas.addEventListener("click", function (ev) {
    var n = nearest(ev);
    if (!n) return;
    var side = P[n.p.side];
    filterBox.value = n.p.side === "tgt" ? hex(side.a[n.p.i]) : side.n[n.p.i];
    state.page = 0; applyView();
    document.getElementById("table-section").scrollIntoView({ behavior: "smooth" });
  });
  var rt = null;
  window.addEventListener("resize", function () { clearTimeout(rt); rt = setTimeout(draw, 150); });
  draw();
})();
"""
