"""The function-embedding model: NumPy inference over a bag of hashed features.

Two kinds share one file format (safetensors, metadata ``kind``):
  ``bag-mlp``     learned: an embedding table summed over the features, LayerNorm, a two-layer MLP
  ``projection``  untrained: a fixed random projection of the TF-weighted features (the first embedding)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .features import N_BUCKETS, featurize

DEFAULT_WEIGHTS = "symbridge-default.safetensors"
FORMAT = "symbridge-model"


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return (x / n).astype(np.float32)


class Model:
    """Embeds functions: ``Model.default().embed(binary.functions) -> (N, D) float32``, unit rows."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict, source: str = "<memory>"):
        self.meta = meta
        self.kind = meta.get("kind", "bag-mlp")
        self.code_only = bool(meta.get("code_only", False))
        self.source = source
        self.n_buckets = int(meta.get("n_buckets", N_BUCKETS))
        self._check(tensors)
        self.t = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}

    # ------------------------------------------------------------------ loading
    def _check(self, t: dict[str, np.ndarray]) -> None:
        need = {"projection": ["embedding"], "bag-mlp": ["embedding", "ln_g", "ln_b", "w1", "b1", "w2", "b2"]}
        if self.kind not in need:
            raise ModelError(f"{self.source}: unknown model kind {self.kind!r}")
        missing = [k for k in need[self.kind] if k not in t]
        if missing:
            raise ModelError(f"{self.source}: model file lacks tensors {', '.join(missing)}")
        e = t["embedding"]
        if e.ndim != 2 or e.shape[0] != self.n_buckets or self.n_buckets != N_BUCKETS:
            raise ModelError(f"{self.source}: embedding table shape {e.shape} does not fit {N_BUCKETS} buckets")
        if self.kind == "bag-mlp":
            h = e.shape[1]
            if t["ln_g"].shape != (h,) or t["w1"].shape[0] != h or t["w2"].shape[0] != t["w1"].shape[1] or \
                    t["b1"].shape != (t["w1"].shape[1],) or t["b2"].shape != (t["w2"].shape[1],):
                raise ModelError(f"{self.source}: inconsistent layer shapes")
        for k, v in t.items():
            if not np.all(np.isfinite(v)):
                raise ModelError(f"{self.source}: tensor {k} holds NaN or infinity")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Model:
        """Load a model file (safetensors, or .npz without pickles) and validate it."""
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"{p}: model file not found")
        try:
            if p.suffix == ".npz":
                with np.load(p, allow_pickle=False) as z:
                    tensors = {k: z[k] for k in z.files if k != "__meta__"}
                    meta = json.loads(bytes(z["__meta__"]).decode()) if "__meta__" in z.files else {}
            else:
                from safetensors import safe_open

                with safe_open(str(p), framework="numpy") as f:
                    meta_raw = (f.metadata() or {}).get("symbridge", "{}")
                    tensors = {k: f.get_tensor(k) for k in f.keys()}
                meta = json.loads(meta_raw)
        except ModelError:
            raise
        except Exception as exc:  # any parse failure of a user-supplied file is bad input
            raise ModelError(f"{p}: not a symbridge model file ({type(exc).__name__}: {exc})") from None
        if meta.get("format", FORMAT) != FORMAT:
            raise ModelError(f"{p}: not a symbridge model file")
        return cls(tensors, meta, str(p))

    def save(self, path: str | os.PathLike, half: bool = True) -> None:
        from safetensors.numpy import save_file

        tensors = {k: (v.astype(np.float16) if half and k == "embedding" else v) for k, v in self.t.items()}
        meta = dict(self.meta, format=FORMAT)
        tmp = Path(str(path) + ".tmp")
        save_file(tensors, str(tmp), metadata={"symbridge": json.dumps(meta)})
        os.replace(tmp, path)

    @classmethod
    def projection(cls, dim: int = 256, seed: int = 1) -> Model:
        """The untrained feature model: a fixed random projection of the weighted features."""
        rng = np.random.default_rng(seed)
        e = rng.standard_normal((N_BUCKETS, dim), dtype=np.float32) / np.sqrt(dim)
        return cls({"embedding": e}, {"kind": "projection", "n_buckets": N_BUCKETS, "name": "projection"},
                   "<projection>")

    @classmethod
    def default(cls) -> Model:
        """The model shipped in the package (the random projection if none is shipped)."""
        ref = resources.files("symbridge.model") / "weights" / DEFAULT_WEIGHTS
        with resources.as_file(ref) as p:
            if Path(p).is_file():
                return cls.load(p)
        return cls.projection()

    # ------------------------------------------------------------------ inference
    @property
    def dim(self) -> int:
        return int(self.t["w2"].shape[1] if self.kind == "bag-mlp" else self.t["embedding"].shape[1])

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.kind))

    def forward(self, bags: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Embeddings of featurized functions (a list of (ids, weights))."""
        if not bags:
            return np.zeros((0, self.dim), np.float32)
        lengths = np.array([len(i) for i, _ in bags])
        ids = np.concatenate([i for i, _ in bags])
        w = np.concatenate([x for _, x in bags])
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        e = self.t["embedding"]
        h = np.add.reduceat(e[ids] * w[:, None], offsets, axis=0)
        if self.kind == "bag-mlp":
            t = self.t
            x = _layer_norm(h, t["ln_g"], t["ln_b"])
            z = np.maximum(x @ t["w1"] + t["b1"], 0.0)
            h = z @ t["w2"] + t["b2"]
        return _normalize(h)

    def featurize(self, functions: Sequence) -> list[tuple[np.ndarray, np.ndarray]]:
        return [featurize(f.facts, self.code_only) for f in functions]

    def embed(self, functions: Sequence, progress: Callable[[int], None] | None = None,
              batch: int = 2048) -> np.ndarray:
        """(N, D) float32 unit vectors for the functions, in order."""
        out = []
        for i in range(0, len(functions), batch):
            chunk = functions[i:i + batch]
            out.append(self.forward(self.featurize(chunk)))
            if progress:
                progress(len(chunk))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
