"""A second view of the code, unlike the model's, for the matcher's agreement evidence: TF-IDF of each
function's mnemonic 1- to 3-grams (the benchmarks' baseline), hashed into DIM buckets, in NumPy."""

from __future__ import annotations

import zlib

import numpy as np

DIM = 1024
_LEVEL = [np.uint64(k * 0x9E3779B97F4A7C15 % 2**64) for k in range(3)]  # keeps 1-, 2- and 3-grams apart


def _mix(x: np.ndarray) -> np.ndarray:
    """A 64-bit mix of each value (splitmix64's finaliser): n-gram codes -> well-spread hashes."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def ngram_counts(functions: list, dim: int = DIM) -> np.ndarray:
    """(len(functions), dim) counts of each function's hashed mnemonic 1-, 2- and 3-grams."""
    ids: dict[str, int] = {}
    seqs = [[ids.setdefault(x, zlib.crc32(x.encode()) + 1) for x in f.facts.mnemonics] for f in functions]
    a = np.fromiter((v for q in seqs for v in q), np.uint64)
    row = np.repeat(np.arange(len(functions)), [len(q) for q in seqs])
    two = row[:-1] == row[1:]  # n-grams stay within a function
    three = two[:-1] & two[1:]
    grams = [(a, row), ((_mix(a[:-1]) ^ a[1:])[two], row[:-1][two]),
             ((_mix(_mix(a[:-2]) ^ a[1:-1]) ^ a[2:])[three], row[:-2][three])]
    flat = [r * dim + (_mix(g + _LEVEL[level]) % np.uint64(dim)).astype(np.int64)
            for level, (g, r) in enumerate(grams)]
    counts = np.bincount(np.concatenate(flat), minlength=len(functions) * dim) if len(a) else np.zeros(
        len(functions) * dim)
    return counts.astype(np.float32).reshape(len(functions), dim)


def tfidf_vectors(*sides: list, dim: int = DIM) -> list[np.ndarray]:
    """Unit TF-IDF vectors (sublinear term frequency; document frequency over all functions given) of each
    list of functions."""
    counts = [ngram_counts(fs, dim) for fs in sides]
    n = sum(len(c) for c in counts)
    df = sum((c > 0).sum(axis=0) for c in counts) if counts else np.zeros(dim)
    idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
    out = []
    for c in counts:
        tf = np.where(c > 0, 1.0 + np.log(np.maximum(c, 1.0)), 0.0).astype(np.float32) * idf
        out.append(tf / np.maximum(np.linalg.norm(tf, axis=1, keepdims=True), 1e-12))
    return out
