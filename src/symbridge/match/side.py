"""One binary's functions as the matcher sees them (Side), and the views of a side that the agreement runs
match: one ensemble member's columns, another view's vectors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..binary import cold_parts
from .keys import (callee_addresses, code_keys, data_keys, exported_addresses, field_shapes, pointer_tables,
                   stored_slots, table_keys)


@dataclass
class Side:
    """One binary's functions as the matcher sees them."""

    addrs: list[int]
    sizes: list[int]
    vectors: np.ndarray
    callees: list[list[int]]
    callers: list[list[int]]
    strings: list[set[str]]
    code_key: list[int | None]
    names: list[str | None]
    inlined: np.ndarray | None = None  # the inlined view of the vectors (match.inline), when it is compared
    exported: np.ndarray | None = None  # bool per function: in .dynsym (an address, even with its name blanked)
    tables: list[list[int]] = field(default_factory=list)  # runs of code pointers in data (pointer_tables)
    data_key: list[int | None] = field(default_factory=list)  # the constants each function reads (data_keys)
    cold: np.ndarray | None = None  # bool per function: a part split off another function (binary.cold_parts)
    neighbours: list[set[int]] | None = None  # callers and callees of each function (views share their side's)
    unfold: np.ndarray | None = None  # the inlined view, for the unfold pass only (a reference's, see unfold)
    slots: list[list[dict]] = field(default_factory=list)  # struct field or call argument -> function put there
    shapes: list[tuple | None] = field(default_factory=list)  # (shape, field offsets) of each (keys.field_shapes)

    def __post_init__(self) -> None:
        if self.neighbours is None:
            self.neighbours = [set(a) | set(b) for a, b in zip(self.callees, self.callers)]


def build_side(functions: list, vectors: np.ndarray, use_names: bool = False, cet_blind: bool = True) -> Side:
    """The matcher's view of a binary's functions (vectors: their own-code vectors); `cet_blind`: identical code
    whether or not it begins with `endbr64` (keys.code_keys), as transfer compares two binaries; identify
    compares keys as its library stored them (with endbr64 before schema version 8)."""
    addrs = [f.address for f in functions]
    index = {a: i for i, a in enumerate(addrs)}
    callees: list[list[int]] = []
    callers: list[list[int]] = [[] for _ in functions]
    strings = []
    targets = callee_addresses(functions)
    registered = table_keys(functions)
    for i, f in enumerate(functions):
        fx = f.facts
        seen: list[int] = []
        for t in targets[i]:
            j = index.get(t)
            if j is not None and j != i and j not in seen:
                seen.append(j)
        callees.append(seen)
        for j in seen:
            callers[j].append(i)
        strings.append(set(fx.strings) | registered[i])
    names = [f.name for f in functions] if use_names else [None] * len(functions)
    exported = None
    if functions:
        dyn = exported_addresses(functions[0].binary)
        exported = np.array([a in dyn for a in addrs], bool)
    cold = np.zeros(len(functions), bool)
    cold[[c for c, _ in cold_parts(functions)]] = True
    return Side(addrs, [f.size for f in functions], vectors, callees, callers, strings,
                code_keys(functions, cet_blind), names,
                exported=exported, tables=pointer_tables(functions), data_key=data_keys(functions), cold=cold,
                slots=stored_slots(functions), shapes=field_shapes(functions))


def blend_thunks(side: Side, wrapper: Sequence[bool]) -> int:
    """A thunk or a short tail-calling wrapper (`wrapper`: is_wrapper, per function) with one callee is known by
    where it jumps: its vector becomes the normalised sum of its own and its callee's, so that two wrappers are
    as close as their callees are (all such functions look alike to the model). Returns how many were
    blended."""
    thunks = [(i, side.callees[i][0]) for i, w in enumerate(wrapper) if w and len(side.callees[i]) == 1]
    if not thunks:
        return 0
    rows, targets = np.array([i for i, _ in thunks]), np.array([j for _, j in thunks])
    v = side.vectors.astype(np.float32, copy=True)
    mixed = v[rows] + v[targets]
    norms = np.linalg.norm(mixed, axis=1, keepdims=True)
    v[rows] = mixed / np.maximum(norms, 1e-12)
    side.vectors = v
    return len(thunks)


def code_and_data(side: Side) -> list[tuple[int, int] | None]:
    """Each function's code key with its data key (None where either is): seed_identical's second key."""
    return [(k, d) if k is not None and d is not None else None for k, d in zip(side.code_key, side.data_key)]


def exports_agree(ref: Side, tgt: Side, ratio: float) -> bool:
    """Both sides are libraries that export about the same functions (a shared library's exported functions
    stay exported from one build to the next, its internal ones stay internal): export status then tells
    counterparts apart. Not so between a library and a program that links it."""
    if ref.exported is None or tgt.exported is None:
        return False
    a, b = int(ref.exported.sum()), int(tgt.exported.sum())
    return a > 0 and b > 0 and min(a, b) >= ratio * max(a, b)


def column_view(side: Side, columns: np.ndarray) -> Side:
    """The side with only these columns of its vectors (renormalised): one ensemble member's own view."""
    def cut(v: np.ndarray | None) -> np.ndarray | None:
        if v is None:
            return None
        w = v[:, columns]
        return (w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    view = replace(side, vectors=cut(side.vectors))
    view.inlined, view.unfold = cut(side.inlined), cut(side.unfold)
    return view


def vector_view(side: Side, vectors: np.ndarray) -> Side:
    """The side with other vectors of the same functions (another view of their code), no inlined view."""
    view = replace(side, vectors=np.asarray(vectors, np.float32))
    view.inlined = view.unfold = None
    return view
