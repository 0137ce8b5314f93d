"""The approximate-nearest-neighbour index (hnswlib, cosine) kept beside the database.

Files: ``DB.hnsw`` (the hnswlib graph, labels = ``functions.id``) and ``DB.hnsw.json`` (dimension, count,
largest id, model). Both are written to a temporary file and renamed, only after the rows they describe are
committed; on open, a missing, unreadable or stale index (its count or largest id disagrees with SQLite) is
rebuilt from the vectors in SQLite, so SQLite is always the source of truth.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path

import hnswlib
import numpy as np

from .db import function_count

M = 16
EF_CONSTRUCTION = 200
EF_SEARCH = 128


def index_paths(db: Path) -> tuple[Path, Path]:
    return Path(str(db) + ".hnsw"), Path(str(db) + ".hnsw.json")


def _replace_atomic(dest: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


class AnnIndex:
    """hnswlib index over every stored function vector; ``query`` gives (ids, cosine similarities)."""

    def __init__(self, db: Path, dim: int, model_name: str):
        self.db = Path(db)
        self.path, self.sidecar = index_paths(self.db)
        self.dim = dim
        self.model_name = model_name
        self.index: hnswlib.Index | None = None
        self.count = 0
        self.max_id = 0
        self.rebuilt = False

    # ------------------------------------------------------------------ open / rebuild
    def open(self, con: sqlite3.Connection) -> AnnIndex:
        """Load the index file if it agrees with SQLite, else rebuild it from the stored vectors."""
        n, top = function_count(con)
        if not self._load(n, top):
            self.rebuild(con)
        return self

    def _load(self, n: int, top: int) -> bool:
        try:
            side = json.loads(self.sidecar.read_text())
            if (side.get("dim"), side.get("count"), side.get("max_id"), side.get("model")) != \
                    (self.dim, n, top, self.model_name):
                return False
            if n == 0:
                self._fresh(0)
                return True
            idx = hnswlib.Index(space="cosine", dim=self.dim)
            idx.load_index(str(self.path), max_elements=n)
            if idx.get_current_count() != n:
                return False
        except (OSError, ValueError, RuntimeError, TypeError, AttributeError):
            return False
        idx.set_ef(EF_SEARCH)
        self.index, self.count, self.max_id = idx, n, top
        return True

    def _fresh(self, capacity: int) -> None:
        idx = hnswlib.Index(space="cosine", dim=self.dim)
        idx.init_index(max_elements=max(capacity, 16), M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
        idx.set_ef(EF_SEARCH)
        self.index, self.count, self.max_id = idx, 0, 0

    def rebuild(self, con: sqlite3.Connection, batch: int = 20000) -> None:
        """Build the index from every vector in SQLite and save it."""
        n, _ = function_count(con)
        self._fresh(n)
        last = 0
        while True:
            rows = con.execute("SELECT id, vector FROM functions WHERE id > ? ORDER BY id LIMIT ?",
                               (last, batch)).fetchall()
            if not rows:
                break
            ids = np.array([r[0] for r in rows], np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), self.dim)
            self._add(vecs, ids)
            last = int(ids[-1])
        self.rebuilt = True
        self.save()

    def _add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        assert self.index is not None
        need = self.count + len(ids)
        if need > self.index.get_max_elements():
            self.index.resize_index(max(need, 2 * self.index.get_max_elements()))
        self.index.add_items(np.ascontiguousarray(vectors, np.float32), ids)
        self.count = need
        self.max_id = max(self.max_id, int(ids.max()))

    # ------------------------------------------------------------------ updates
    def extend(self, con: sqlite3.Connection, vectors: np.ndarray, ids: np.ndarray, save: bool = True) -> None:
        """After a commit: add the new rows (or rebuild when another writer changed SQLite) and save; with `save`
        False the file is left as it was (a later `save_if_current`; until then, its sidecar no longer vouches
        for it, and another process rebuilds it from SQLite)."""
        n, top = function_count(con)
        if self.index is None or self.count + len(ids) != n or (len(ids) and int(ids.max()) != top):
            self.rebuild(con)
            return
        if len(ids):
            self._add(vectors, ids)
        if save:
            self.save()

    def save_if_current(self, con: sqlite3.Connection) -> None:
        """Save, if this index still holds every row of SQLite (another writer may have saved a newer one)."""
        if self.index is not None and function_count(con) == (self.count, self.max_id):
            self.save()

    def save(self) -> None:
        """Write the index then its sidecar, each atomically (the sidecar last: it vouches for the index)."""
        assert self.index is not None
        try:
            if self.count:
                _replace_atomic(self.path, lambda tmp: self.index.save_index(tmp))
            else:
                self.path.unlink(missing_ok=True)
            side = {"format": "symbridge-ann", "dim": self.dim, "count": self.count, "max_id": self.max_id,
                    "model": self.model_name, "space": "cosine", "M": M, "ef_construction": EF_CONSTRUCTION}
            _replace_atomic(self.sidecar, lambda tmp: Path(tmp).write_text(json.dumps(side) + "\n"))
        except OSError:
            pass  # a read-only location: the in-memory index still serves this process

    # ------------------------------------------------------------------ queries
    def query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels, cosine similarities), each (N, min(k, count)), best first."""
        k = min(k, self.count)
        if k == 0 or len(vectors) == 0 or self.index is None:
            return np.zeros((len(vectors), 0), np.int64), np.zeros((len(vectors), 0), np.float32)
        self.index.set_ef(max(EF_SEARCH, 2 * k))
        labels, dist = self.index.knn_query(np.ascontiguousarray(vectors, np.float32), k=k)
        return labels.astype(np.int64), (1.0 - dist).astype(np.float32)
