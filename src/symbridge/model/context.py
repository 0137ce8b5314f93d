"""What a function's vector carries beyond its own code: the functions it calls, the data it reads and the
functions that call it.

A wrapper that tail-calls one internal function, a `*_free` that calls its own destructor, a pair of
encoders that differ only in the table they pass: their own code is the same instruction for instruction, so
their own vectors tie exactly, and nearest neighbours must guess. What tells them apart is what they call
and what they read. A model with ``context_weight`` > 0 appends to each own vector (unit) the sum of its
callees' own vectors (the first members' columns, made unit), and with ``data_weight`` > 0 a fixed random
sketch of the read-only data it refers to (16 bytes at each address, or the strings a descriptor's pointers
lead to), each with its weight, and makes the whole unit again. One hop of calls, as Asm2Vec's callee
expansion: a callee is looked up among the functions embedded together (a binary's functions), never
matched or named. With ``caller_weight`` > 0 the sum of its callers' own vectors follows, last: leaf
functions (getters, comparators, one-line helpers) tie on their own code and call nothing; who calls them
tells them apart. Functions that call nothing, are called by none of the functions embedded with them and
read no data keep their own vector's direction.

The matcher and the library of known functions work on the own vectors (`Model.embed_both`): they bring the
call graph themselves, and inside the matcher context broke exact ties among look-alike families by noise
where address order had placed them right (gsl's `gsl_matrix_<type>_const_*`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from functools import cache

import numpy as np

DATA_DIM = 64
DATA_ROWS = 1 << 16
DATA_SEED = 5


@cache
def data_table() -> np.ndarray:
    return np.random.default_rng(DATA_SEED).standard_normal((DATA_ROWS, DATA_DIM)).astype(np.float32)


def data_hashes(f) -> list[int]:
    """Hashes of the read-only data a function refers to: the first 16 bytes at each data address in a
    read-only section, or, elsewhere, the strings behind the object's first pointers (ElfImage.referenced_data)."""
    img = f.binary.image
    out = []
    for a in f.facts.data_refs:
        if isinstance(d := img.referenced_data(a, 16), bytes):
            out.append(zlib.crc32(b"R" + d))
        elif d:
            out.append(zlib.crc32(("B" + "\0".join(d)).encode()))
    return out


def callee_rows(functions: Sequence) -> list[list[int]]:
    """For each function, the rows (in `functions`) of the functions it calls or tail-calls, itself aside."""
    at = {f.address: i for i, f in enumerate(functions)}
    return [[at[c] for c in dict.fromkeys(f.callees) if c in at and at[c] != i] for i, f in enumerate(functions)]


def caller_rows(called: list[list[int]]) -> list[list[int]]:
    """For each function, the rows of the functions that call or tail-call it, from each one's callees
    (`called[r]`: the rows r calls, as callee_rows or a library's call graph gives them), in row order."""
    out: list[list[int]] = [[] for _ in called]
    for r, cs in enumerate(called):
        for c in cs:
            out[c].append(r)
    return out


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """x's rows made unit in place (zero rows stay zero); float32."""
    n = np.sqrt(np.einsum("ij,ij->i", x, x))
    n[n == 0] = 1.0
    x /= n[:, None]
    return x


def _sum_rows(out: np.ndarray, own: np.ndarray, rows: list[list[int]], weight: float) -> None:
    """out's row r: the sum of own's rows rows[r] (out's width of columns), made unit, times weight."""
    width = out.shape[1]
    for r, rs in enumerate(rows):
        if rs:
            out[r] = own[rs, :width].sum(axis=0)
    _unit_rows(out)
    out *= weight


def with_context(own: np.ndarray, functions: Sequence, width: int, callee_weight: float, data_weight: float,
                 read_data: bool = True, caller_weight: float = 0.0) -> np.ndarray:
    """The own vectors of `functions` (unit rows, in order) with their context appended and made unit again:
    the sum of each one's callees' own vectors (their first `width` columns), the sketch of the data it reads,
    and with `caller_weight` the sum of its callers' own vectors. Without `read_data` (a code-only model) the
    data columns stay zero."""
    d = own.shape[1]
    n_cols = d + (width if callee_weight > 0 else 0) + (DATA_DIM if data_weight > 0 else 0) \
        + (width if caller_weight > 0 else 0)
    out = np.zeros((len(own), n_cols), np.float32)
    out[:, :d] = own
    at = d
    called = callee_rows(functions) if callee_weight > 0 or caller_weight > 0 else []
    if callee_weight > 0:
        _sum_rows(out[:, at:at + width], own, called, callee_weight)
        at += width
    if data_weight > 0 and read_data:
        table = data_table()
        sk = out[:, at:at + DATA_DIM]
        for r, f in enumerate(functions):
            if hs := set(data_hashes(f)):
                sk[r] = table[[h % DATA_ROWS for h in sorted(hs)]].sum(axis=0)
        _unit_rows(sk)
        sk *= data_weight
    if data_weight > 0:
        at += DATA_DIM
    if caller_weight > 0:
        _sum_rows(out[:, at:at + width], own, caller_rows(called), caller_weight)
    return _unit_rows(out)
