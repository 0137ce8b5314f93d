"""Function facts -> a bag of hashed features (the model's input).

Feature groups (the prefix of each feature string):
  T normalised instruction   B mnemonic bigram   G mnemonic trigram   N size/shape buckets
  I imported callee          S referenced string  W word of a string  C constant
Feature set 2 adds groups that change less between optimisation levels and compilers:
  D 2- and 3-grams of the computing instructions only (no moves, pushes, pops or nops, which -O0 spills
    and -O3 keeps in registers; conditions of jumps, cmovs and sets folded, which compilers invert)
  K pairs of imported callees in call order   L control-flow shape (cyclomatic number, returns)
Feature set 3 has set 2's features, each hashed into two buckets (a "hash embedding": two features share
both rows far more rarely than one, and the table keeps its size).
Feature set 4 adds to set 3 two groups of exact values that survive optimisation and compilers:
  F displacements off a pointer register (struct field offsets; stack slots excluded)
  Q exact small immediates (9 <= |v| < 256: characters, flags, sizes), which set 1 buckets as "i8"
Feature set 5 adds to set 4 the signature of the function:
  A the parameters read before written (how many integer and float registers; each one's width), as the
    -O0 spill of every parameter and the -O3 first use both show them
Feature set 6 adds to set 5 the width of each field access (F offset:bytes) and what each ret returns (R: the
  width of rax's last write, 16 for xmm0, -1 a callee's value, 0 none)
``code_only`` drops I, S, W and K (the ablation that shows what the model learns from code itself).
"""

from __future__ import annotations

import zlib
from collections import Counter

import numpy as np

from ..analysis.lift import Facts

N_BUCKETS = 1 << 15
_BITS = N_BUCKETS.bit_length() - 1  # hash_pair packs a feature's two buckets: first | second << _BITS
GROUPS = "TBGNISWC"
IDENTIFIER_GROUPS = "ISWC"  # exact-match evidence: imports, strings, string words, constants
GROUP_WEIGHT = {"T": 1.0, "B": 1.0, "G": 1.0, "N": 1.0, "I": 2.0, "S": 2.0, "W": 1.0, "C": 1.5,
                "D": 1.0, "K": 1.5, "L": 1.0, "F": 1.0, "Q": 1.0, "A": 1.0, "R": 1.0}
FEATURE_SETS = (1, 2, 3, 4, 5, 6)
HASHES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 2}  # buckets per feature
_MOVES = {"mov", "movzx", "movsx", "movsxd", "movss", "movsd", "movaps", "movups", "movdqa", "movdqu", "movq",
          "movd", "movapd", "movupd", "push", "pop", "nop", "endbr64", "cdqe", "cdq", "cqo", "cwde", "xchg"}


def core_ops(mnemonics: list[str]) -> list[str]:
    """The computing instructions of a function: data moves dropped, condition codes folded."""
    out = []
    for m in mnemonics:
        if m in _MOVES:
            continue
        if m.startswith("j") and m not in ("jmp",):
            m = "jcc"
        elif m.startswith("cmov"):
            m = "cmov"
        elif m.startswith("set"):
            m = "set"
        out.append(m)
    return out


def _bucket(n: int) -> int:
    return n.bit_length()


def feature_counts(facts: Facts, code_only: bool = False, feature_set: int = 1) -> Counter:
    """Counts of the feature strings of one function."""
    m = facts.mnemonics
    f = ["T" + t for t in facts.tokens]  # one list and one count: faster than many small updates
    f += [f"B{a} {b}" for a, b in zip(m, m[1:])]
    f += [f"G{a} {b} {e}" for a, b, e in zip(m, m[1:], m[2:])]
    f += (f"Nins{_bucket(len(m))}", f"Nbb{_bucket(facts.n_blocks)}",
          f"Ncall{_bucket(len(facts.calls) + len(facts.imports))}", f"Nref{_bucket(len(facts.data_refs))}")
    f += [f"C{v:x}" for v in facts.constants]
    if feature_set >= 2:
        d = core_ops(m)
        f += [f"D{a} {b}" for a, b in zip(d, d[1:])]
        f += [f"D{a} {b} {e}" for a, b, e in zip(d, d[1:], d[2:])]
        f += (f"Lcyc{_bucket(max(facts.n_edges - facts.n_blocks + 2, 0))}", f"Lret{min(m.count('ret'), 4)}")
        if not code_only:
            f += [f"K{a}>{b}" for a, b in zip(facts.imports, facts.imports[1:])]
    if feature_set >= 4:
        f += [f"F{v:x}" for v in facts.offsets]
        f += [f"Q{v:x}" for v in facts.small]
    if feature_set >= 5:
        ints = [k for k, _ in facts.params if k < 6]
        f += (f"Aint{max(ints) + 1 if ints else 0}", f"Aflt{len(facts.params) - len(ints)}")
        f += [f"A{k}:{w}" for k, w in facts.params]
    if feature_set >= 6:
        f += [f"F{v:x}:{w}" for v, w in zip(facts.offsets, facts.widths)]
        f += [f"R{v}" for v in facts.returns]
    if not code_only:
        f += ["I" + n for n in facts.imports]
        for s in facts.strings:
            f.append("S" + s[:120])
            f += ["W" + w for w in s.lower().split() if 2 < len(w) < 40]
    return Counter(f)


def hash_feature(f: str) -> int:
    """The bucket of a feature (crc32, stable across processes). Bags memoise it per feature (`_Rows`)."""
    return zlib.crc32(f.encode("utf-8", "surrogatepass")) % N_BUCKETS


def hash_pair(f: str) -> int:
    """Both buckets of a feature (feature set 3) in one int, first | second << _BITS; the second is crc32 of
    the feature after a salt byte."""
    second = zlib.crc32(b"\x01" + f.encode("utf-8", "surrogatepass")) % N_BUCKETS
    return hash_feature(f) | second << _BITS


def featurize(facts: Facts, code_only: bool = False, groups: str | None = None,
              feature_set: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(bucket ids int32, weights float32): sublinear counts, group weights, unit L2 norm.
    ``groups`` keeps only the features of those groups (e.g. "ISWC", the identifier-like ones)."""
    return bag_of(feature_counts(facts, code_only, feature_set), groups, HASHES[feature_set])


class _Rows:
    """Every feature seen so far as a row of NumPy arrays (its first and second bucket, its group weight), so
    that a bag needs one dict lookup a feature and the rest is array indexing. Cleared past `limit` rows."""

    def __init__(self, limit: int = 1 << 21):
        self.limit = limit
        self.clear()

    def clear(self) -> None:
        self.index: dict[str, int] = {}
        self.first = np.zeros(1024, np.int64)
        self.second = np.zeros(1024, np.int64)
        self.weight = np.zeros(1024, np.float64)

    def add(self, keys: list[str]) -> None:
        """Rows for the features of `keys` not seen yet."""
        new = [f for f in dict.fromkeys(keys) if f not in self.index]
        if len(self.index) + len(new) > self.limit:
            self.clear()
            new = list(dict.fromkeys(keys))
        n0, n = len(self.index), len(self.index) + len(new)
        if n > len(self.first):
            size = max(n, 2 * len(self.first))
            for name in ("first", "second", "weight"):
                grown = np.zeros(size, getattr(self, name).dtype)
                grown[:n0] = getattr(self, name)[:n0]
                setattr(self, name, grown)
        for k, f in enumerate(new, n0):
            self.index[f] = k
            pair = hash_pair(f)
            self.first[k], self.second[k] = pair & (N_BUCKETS - 1), pair >> _BITS
            self.weight[k] = GROUP_WEIGHT.get(f[0], 1.0)

    def rows(self, keys: list[str]) -> np.ndarray:
        get = self.index.get
        idx = [get(f, -1) for f in keys]
        if -1 in idx:
            self.add(keys)
            idx = [self.index[f] for f in keys]
        return np.array(idx, np.int64)


_ROWS = _Rows()


def bag_of(counts: Counter, groups: str | None = None, hashes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The model input of feature counts (see featurize); with ``hashes=2`` every feature fills two buckets,
    each with its weight over sqrt(2), so the norm stays 1."""
    if groups is not None:
        counts = Counter({f: n for f, n in counts.items() if f[0] in groups})
    if not counts:
        return np.zeros(1, np.int32), np.zeros(1, np.float32)
    keys = list(counts)
    rows = _ROWS.rows(keys)
    n = np.fromiter(counts.values(), np.float64, len(keys))
    w = ((1.0 + np.log(n)) * _ROWS.weight[rows]).astype(np.float32)
    w /= float(np.linalg.norm(w)) or 1.0
    if hashes == 2:
        ids = np.concatenate([_ROWS.first[rows], _ROWS.second[rows]]).astype(np.int32)
        return ids, np.concatenate([w, w]) * np.float32(np.sqrt(0.5))
    return _ROWS.first[rows].astype(np.int32), w
