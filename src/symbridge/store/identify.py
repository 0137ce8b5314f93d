"""Identify: name a target's functions from every binary in the library (the transfer JSON, plus "binary")."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from ..match.confidence import Calibrator, match_features

K_NEIGHBOURS = 20
N_CANDIDATES = 5


@dataclass(frozen=True)
class RefFunction:
    id: int
    binary: str
    address: int
    size: int
    name: str


def fetch_functions(con: sqlite3.Connection, ids: set[int], chunk: int = 900) -> dict[int, RefFunction]:
    """The stored functions with these ids (looked up by primary key, binaries joined in Python)."""
    paths = dict(con.execute("SELECT id, path FROM binaries"))
    out: dict[int, RefFunction] = {}
    ordered = sorted(ids)
    for i in range(0, len(ordered), chunk):
        part = ordered[i:i + chunk]
        marks = ",".join("?" * len(part))
        for fid, bid, addr, size, name in con.execute(
                f"SELECT id, binary_id, address, size, name FROM functions WHERE id IN ({marks})", part):
            out[fid] = RefFunction(fid, paths[bid], addr, size, name)
    return out


def assign_one_to_one(labels: np.ndarray, scores: np.ndarray, refs: dict[int, RefFunction]) -> dict[int, int]:
    """Greedy by score: each target function and each reference (binary, address) used at most once."""
    pairs = [(float(scores[i, j]), i, int(labels[i, j]))
             for i in range(labels.shape[0]) for j in range(labels.shape[1]) if int(labels[i, j]) in refs]
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    taken: set[tuple[str, int]] = set()
    match: dict[int, int] = {}
    for _, i, fid in pairs:
        if i in match:
            continue
        r = refs[fid]
        key = (r.binary, r.address)
        if key in taken:
            continue
        taken.add(key)
        match[i] = fid
    return match


def build_result(con: sqlite3.Connection, db: str, target, code: list, vectors: np.ndarray, ann, model_name: str,
                 min_confidence: float | None, calibrator: Calibrator | None = None) -> dict:
    """The transfer-shaped result for target's functions (code: its non-PLT functions, vectors: theirs)."""
    cal = calibrator or Calibrator.default()
    thr = cal.threshold if min_confidence is None else float(min_confidence)
    labels, scores = ann.query(vectors, K_NEIGHBOURS)
    refs = fetch_functions(con, {int(x) for x in labels.ravel()})
    match = assign_one_to_one(labels, scores, refs)
    rows: list[dict] = []
    feats: list[list[float]] = []
    owners: list[tuple[dict, RefFunction]] = []
    for i, f in enumerate(code):
        cand = [(float(scores[i, j]), refs[int(labels[i, j])]) for j in range(labels.shape[1])
                if int(labels[i, j]) in refs]
        cand.sort(key=lambda t: (-t[0], t[1].id))
        cands = [{"name": r.name, "address": r.address, "score": round(s, 4), "binary": r.binary}
                 for s, r in cand[:N_CANDIDATES]]
        row = {"address": f.address, "size": f.size, "name": None, "confidence": 0.0, "reference_address": None,
               "binary": None, "via": [], "candidates": cands}
        fid = match.get(i)
        if fid is not None:
            r = refs[fid]
            sim = next(s for s, c in cand if c.id == fid)
            other = [s for s, c in cand if c.name != r.name]
            margin = sim - (other[0] if other else 0.0)
            feats.append(match_features(sim, margin, 0, f.size, r.size, ["embedding"]))
            owners.append((row, r))
            row.update(reference_address=r.address, binary=r.binary, via=["embedding"])
            if not any(c["address"] == r.address and c["binary"] == r.binary for c in cands):
                # outside the top N: appended, so that the list stays best first
                cands.append({"name": r.name, "address": r.address, "score": round(sim, 4), "binary": r.binary})
        rows.append(row)
    if feats:
        for (row, r), p in zip(owners, cal.probability(np.array(feats))):
            row["confidence"] = round(float(p), 4)
            if p >= thr:
                row["name"] = r.name
    for f in target.functions:
        if f.is_plt:
            rows.append({"address": f.address, "size": f.size, "name": f.name,
                         "confidence": 1.0 if f.name else 0.0, "reference_address": None, "binary": None,
                         "via": ["import"] if f.name else [], "candidates": []})
    rows.sort(key=lambda r: r["address"])
    return {"reference": db, "target": str(target.path), "model": model_name, "min_confidence": thr,
            "functions": rows}
