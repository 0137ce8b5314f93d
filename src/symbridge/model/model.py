"""The function-embedding model: NumPy inference over a bag of hashed features.

Two kinds share one file format (safetensors, metadata ``kind``):
  ``bag-mlp``     learned: an embedding table summed over the features, LayerNorm, a two-layer MLP
  ``projection``  untrained: a fixed random projection of the TF-weighted features (the first embedding)

A ``bag-mlp`` model may be an ensemble (metadata ``members`` > 1, tensors ``m0.embedding``, ``m1.embedding``...):
members trained alike from different seeds, whose unit outputs are concatenated (so cosine similarity is the
mean of the members' similarities).

A ``bag-mlp`` model may add an identifier sketch (metadata ``identifier_weight`` > 0): a fixed random
projection of the function's imports, strings and constants only, concatenated to the learned vector
with that weight. Exact identifiers are an open vocabulary that a table trained on a corpus cannot know;
the sketch keeps their evidence for the nearest-neighbour search.

A ``bag-mlp`` model may append context (metadata ``context_weight``, ``data_weight``, ``caller_weight`` > 0;
``model.context``): the sum of the own vectors of the functions each one calls, a sketch of the read-only data
it reads, and the sum of the own vectors of the functions that call it.
``embed`` returns vectors with it, ``embed_own`` without, ``embed_both`` both; the first ``own_dim`` columns
of the first are the second.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..gcpause import gc_paused
from .features import FEATURE_SETS, HASHES, IDENTIFIER_GROUPS, N_BUCKETS, bag_of, feature_counts, featurize

DEFAULT_WEIGHTS = "symbridge-default.safetensors"
FORMAT = "symbridge-model"


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _matmul_rows(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w one row at a time (a stack of 1-row products, looped over in C), so that a row's result depends on
    that row alone: BLAS picks its kernels by the matrices' shapes, and where a row sits among the others
    matters too (OpenBLAS 0.3.31 on an AVX-512 machine gave one function's vector different last bits when its
    binary's functions were split over two processes, and two identical functions different vectors by their
    places in the batch). About 1.5 times the time of one product, a small part of embedding's."""
    return (x[:, None, :] @ w)[:, 0, :]


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return (x / n).astype(np.float32)


def quantize_rows(x: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Rows of signed integers and their float32 scales (largest magnitude / (2**(bits-1) - 1)):
    x ~ q * scale[:, None]. int8 for 8 bits; for 4 bits two values a byte (`pack4`)."""
    x = np.asarray(x, np.float32)
    if bits == 4 and x.shape[1] % 2:
        raise ValueError("4-bit rows pack two values a byte: the width must be even")
    top = 2 ** (bits - 1) - 1
    scale = np.abs(x).max(axis=1) / top
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(x / scale[:, None]), -top, top).astype(np.int8)
    return (q if bits == 8 else pack4(q)), scale.astype(np.float32)


def pack4(q: np.ndarray) -> np.ndarray:
    """int8 values in [-7, 7], an even number a row, as uint8 bytes of two (low nibble first, stored + 8)."""
    u = (q.astype(np.int16) + 8).astype(np.uint8)
    return (u[:, 0::2] | (u[:, 1::2] << 4)).astype(np.uint8)


def unpack4(b: np.ndarray) -> np.ndarray:
    out = np.empty((b.shape[0], b.shape[1] * 2), np.int8)
    out[:, 0::2] = (b & 0x0F).astype(np.int8) - 8
    out[:, 1::2] = (b >> 4).astype(np.int8) - 8
    return out


QUANT_SUFFIX = {8: ".q", 4: ".q4"}


def dequantize(tensors: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Tensors stored as quantized rows (`NAME.q`: int8, or `NAME.q4`: two 4-bit values a byte; each with
    `NAME.scale`, see Model.save) back as float32 `NAME`."""
    quantized = tuple(QUANT_SUFFIX.values())
    out = {k: v for k, v in tensors.items() if not k.endswith((*quantized, ".scale"))}
    for k in tensors:
        if k.endswith(quantized):
            name, four = k.rsplit(".", 1)[0], k.endswith(QUANT_SUFFIX[4])
            q, scale = tensors[k], tensors.get(name + ".scale")
            dtype = np.uint8 if four else np.int8
            if scale is None or q.dtype != dtype or q.ndim != 2 or scale.shape != (q.shape[0],):
                raise ModelError(f"{source}: quantized tensor {name} lacks a scale a row")
            out[name] = (unpack4(q) if four else q).astype(np.float32) * scale.astype(np.float32)[:, None]
    return out


def model_fingerprint(model) -> str:
    """A short hash of the model's kind, dimension, inputs and weights (a sample of each tensor)."""
    h = hashlib.sha256(f"{model.kind}:{model.own_dim}:{model.feature_set}:{model.code_only}:"
                       f"{model.identifier_weight}".encode())
    for k in sorted(model.t):
        v = np.ascontiguousarray(model.t[k])
        h.update(k.encode() + str(v.shape).encode())
        flat = v.reshape(-1)
        h.update(flat[:4096].tobytes() + flat[-4096:].tobytes())
    return h.hexdigest()[:16]


class Model:
    """Embeds functions: ``Model.default().embed(binary.functions) -> (N, D) float32``, unit rows."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict, source: str = "<memory>"):
        self.meta = meta
        self.kind = meta.get("kind", "bag-mlp")
        self.code_only = bool(meta.get("code_only", False))
        self.source = source
        self.n_buckets = int(meta.get("n_buckets", N_BUCKETS))
        self.feature_set = meta.get("feature_set", 1)
        if self.feature_set not in FEATURE_SETS:
            raise ModelError(f"{source}: feature set {self.feature_set!r} is not one this version knows "
                             f"({', '.join(map(str, FEATURE_SETS))})")
        self.hashes = HASHES[self.feature_set]  # buckets a feature fills in the model's input
        members = meta.get("members", 1) if self.kind == "bag-mlp" else 1
        if not isinstance(members, int) or isinstance(members, bool) or not 1 <= members <= 16:
            raise ModelError(f"{source}: ensemble members {members!r} is not a count from 1 to 16")
        self.n_members = members
        try:
            self.t = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{source}: a tensor is not numeric ({exc})") from None
        self.parts = [self.member(self.t, k) for k in range(self.n_members)] if self.kind == "bag-mlp" else []
        self._check(self.t)
        bag = self.kind == "bag-mlp"
        self.identifier_weight = self._weight("identifier_weight") if bag else 0.0
        self.context_weight = self._weight("context_weight") if bag else 0.0
        self.data_weight = self._weight("data_weight") if bag else 0.0
        self.caller_weight = self._weight("caller_weight") if bag else 0.0
        k = meta.get("context_members", 2)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 16:
            raise ModelError(f"{source}: context_members {k!r} is not a count from 1 to 16")
        self.context_members = min(k, self.n_members)  # a member taken alone out of an ensemble keeps its meta
        self.bits = 0  # the embedding tables came from quantized rows of this many bits (Model.load), else 0
        self._sketch: np.ndarray | None = None

    def _weight(self, key: str) -> float:
        """A weight from the metadata: a number from 0 to 100 (0 when absent)."""
        v = self.meta.get(key, 0.0)
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 100.0:
            raise ModelError(f"{self.source}: {key} {v!r} is not a weight from 0 to 100")
        return float(v)

    # ------------------------------------------------------------------ loading
    MLP_TENSORS = ("embedding", "ln_g", "ln_b", "w1", "b1", "w2", "b2")

    def member(self, t: dict[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
        """The tensors of ensemble member k (the plain names when the model is a single network)."""
        prefix = f"m{k}." if self.n_members > 1 else ""
        return {name: t[prefix + name] for name in self.MLP_TENSORS if prefix + name in t}

    def _check(self, t: dict[str, np.ndarray]) -> None:
        if self.kind not in ("projection", "bag-mlp"):
            raise ModelError(f"{self.source}: unknown model kind {self.kind!r}")
        parts = self.parts or [t]
        need = self.MLP_TENSORS if self.kind == "bag-mlp" else ("embedding",)
        for k, part in enumerate(parts):
            prefix = f"m{k}." if self.n_members > 1 else ""
            missing = [prefix + name for name in need if name not in part]
            if missing:
                raise ModelError(f"{self.source}: model file lacks tensors {', '.join(missing)}")
            e = part["embedding"]
            if e.ndim != 2 or e.shape[0] != self.n_buckets or self.n_buckets != N_BUCKETS:
                raise ModelError(f"{self.source}: embedding table shape {e.shape} does not fit {N_BUCKETS} buckets")
            if self.kind == "bag-mlp":
                h = e.shape[1]
                if part["ln_g"].shape != (h,) or part["w1"].shape[0] != h or \
                        part["w2"].shape[0] != part["w1"].shape[1] or part["b1"].shape != (part["w1"].shape[1],) or \
                        part["b2"].shape != (part["w2"].shape[1],):
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
        m = cls(dequantize(tensors, str(p)), meta, str(p))
        m.bits = next((b for b, suf in QUANT_SUFFIX.items() if any(k.endswith(suf) for k in tensors)), 0)
        return m

    def save(self, path: str | os.PathLike, half: bool = True, bits: int | None = None) -> None:
        """Write the model as safetensors. The embedding tables, most of the file, are stored as float16 (`half`),
        or with `bits` 8 or 4 as rows of integers and a float32 scale a row (`NAME.q` int8, or `NAME.q4` two
        4-bit values a byte; `NAME.scale`): a quarter or an eighth of float32. `bits=None` keeps the way the
        model was loaded, 0 stores no quantized tables."""
        from safetensors.numpy import save_file

        bits = self.bits if bits is None else bits
        if bits not in (0, 4, 8):
            raise ValueError(f"tables are stored in 8 or 4 bits (or 0: not quantized), not {bits}")
        tensors = {}
        for k, v in self.t.items():
            if bits and k.endswith("embedding"):
                tensors[k + QUANT_SUFFIX[bits]], tensors[k + ".scale"] = quantize_rows(v, bits)
            else:
                tensors[k] = v.astype(np.float16) if half and k.endswith("embedding") else v
        meta = dict(self.meta, format=FORMAT)
        tmp = Path(str(path) + ".tmp")
        save_file(tensors, str(tmp), metadata={"symbridge": json.dumps(meta)})
        os.replace(tmp, path)

    @classmethod
    def ensemble(cls, models: Sequence[Model]) -> Model:
        """One model of several single bag-mlp networks (same features), their outputs concatenated."""
        if len(models) < 2 or any(m.kind != "bag-mlp" or m.n_members != 1 for m in models):
            raise ModelError("an ensemble is made of two or more single bag-mlp models")
        if len({m.feature_set for m in models}) != 1:
            raise ModelError("ensemble members must read the same feature set")
        tensors = {f"m{k}.{name}": v for k, m in enumerate(models) for name, v in m.parts[0].items()}
        first = models[0].meta
        meta = dict(first, members=len(models), name=f"{first.get('name', 'bag-mlp')}-x{len(models)}",
                    member_runs=[m.source for m in models])
        return cls(tensors, meta, "<ensemble>")

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
    SKETCH_DIM = 128
    SKETCH_SEED = 7

    @property
    def own_dim(self) -> int:
        """The width of the own-code part of the vectors (the members' outputs and the identifier sketch)."""
        if self.kind == "bag-mlp":
            sketch = self.SKETCH_DIM if self.identifier_weight > 0 else 0
            return sum(int(p["w2"].shape[1]) for p in self.parts) + sketch
        return int(self.t["embedding"].shape[1])

    @property
    def member_width(self) -> int:
        """The columns a callee or caller adds up: the outputs of the first `context_members` members."""
        return sum(int(p["w2"].shape[1]) for p in self.parts[:self.context_members])

    @property
    def context_width(self) -> int:
        """The callees' columns (0 without them)."""
        return self.member_width if self.context_weight > 0 else 0

    @property
    def caller_width(self) -> int:
        """The callers' columns, the last of the vector (0 without them)."""
        return self.member_width if self.caller_weight > 0 else 0

    @property
    def dim(self) -> int:
        from .context import DATA_DIM

        return self.own_dim + self.context_width + (DATA_DIM if self.data_weight > 0 else 0) + self.caller_width

    @property
    def has_context(self) -> bool:
        return self.context_weight > 0 or self.data_weight > 0 or self.caller_weight > 0

    def member_columns(self) -> list[np.ndarray]:
        """For an ensemble, the columns of each member's own embedding within the model's vectors (its output
        and the identifier sketch): the matcher matches with each member alone for evidence. [] otherwise."""
        if self.kind != "bag-mlp" or self.n_members < 2:
            return []
        widths = [int(p["w2"].shape[1]) for p in self.parts]
        total = sum(widths)
        sketch = np.arange(total, self.own_dim)
        starts = np.cumsum([0] + widths[:-1])
        return [np.concatenate([np.arange(a, a + w), sketch]) for a, w in zip(starts, widths)]

    def sketch_columns(self) -> np.ndarray | None:
        """The columns of the identifier sketch (strings, imports, callee names) within the model's vectors, or
        None when it has none: the matcher matches with the sketch alone for evidence."""
        if self.kind != "bag-mlp" or self.identifier_weight <= 0:
            return None
        return np.arange(self.own_dim - self.SKETCH_DIM, self.own_dim)

    def sketch_table(self) -> np.ndarray:
        if self._sketch is None:
            rng = np.random.default_rng(self.SKETCH_SEED)
            self._sketch = rng.standard_normal((N_BUCKETS, self.SKETCH_DIM), dtype=np.float32)
        return self._sketch

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.kind))

    @staticmethod
    def _bag_matrix(bags: Sequence[tuple[np.ndarray, np.ndarray]], n_buckets: int):
        """The bags as one sparse matrix (a row a function, its weights in its buckets' columns)."""
        from scipy.sparse import csr_matrix

        lens = np.fromiter((len(ids) for ids, _ in bags), np.int64, len(bags))
        indptr = np.concatenate([[0], np.cumsum(lens)])
        ids = np.concatenate([ids for ids, _ in bags]).astype(np.int32) if indptr[-1] else np.zeros(0, np.int32)
        w = np.concatenate([w for _, w in bags]).astype(np.float32) if indptr[-1] else np.zeros(0, np.float32)
        return csr_matrix((w, ids, indptr), shape=(len(bags), n_buckets))

    @staticmethod
    def _bag_sum(table: np.ndarray, bags) -> np.ndarray:
        """Each function's weighted sum of table rows (`bags`: a list of (ids, weights), or _bag_matrix's)."""
        if isinstance(bags, list | tuple):
            bags = Model._bag_matrix(bags, table.shape[0])
        return np.asarray(bags @ table, dtype=np.float32)  # one sparse product: no loop over functions

    def add_context(self, own: np.ndarray, functions: Sequence) -> np.ndarray:
        """The full vectors of `functions` from their own vectors (`embed_own`): context appended."""
        from .context import with_context

        if not self.has_context:
            return own
        if not len(own):
            return np.zeros((0, self.dim), np.float32)
        return with_context(own, functions, self.member_width, self.context_weight, self.data_weight,
                            read_data=not self.code_only, caller_weight=self.caller_weight)

    def forward(self, bags: Sequence[tuple[np.ndarray, np.ndarray]],
                identifier_bags: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
        """Embeddings of featurized functions (lists of (ids, weights): all features, identifiers only)."""
        if not bags:
            return np.zeros((0, self.own_dim), np.float32)
        if self.kind == "projection":
            return _normalize(self._bag_sum(self.t["embedding"], bags))
        outs = []
        x_bags = self._bag_matrix(bags, self.n_buckets)  # built once, used by every member
        for t in self.parts:
            x = _layer_norm(self._bag_sum(t["embedding"], x_bags), t["ln_g"], t["ln_b"])
            z = np.maximum(_matmul_rows(x, t["w1"]) + t["b1"], 0.0)
            outs.append(_normalize(_matmul_rows(z, t["w2"]) + t["b2"]))
        out = outs[0] if len(outs) == 1 else (np.concatenate(outs, axis=1) / np.sqrt(len(outs))).astype(np.float32)
        if self.identifier_weight > 0:
            if identifier_bags is None:
                raise ValueError("this model needs the identifier features too (Model.featurize gives both)")
            sketch = _normalize(self._bag_sum(self.sketch_table(), identifier_bags))
            out = _normalize(np.concatenate([out, self.identifier_weight * sketch], axis=1))
        return out

    def featurize(self, functions: Sequence) -> tuple[list, list | None]:
        """The model's inputs for the functions: all features, and the identifier features if needed."""
        if self.identifier_weight <= 0:
            return [featurize(f.facts, self.code_only, feature_set=self.feature_set) for f in functions], None
        # the identifier groups are the same in every feature set: one count serves both inputs
        groups = "C" if self.code_only else IDENTIFIER_GROUPS
        bags, id_bags = [], []
        for f in functions:  # one function at a time: its feature strings die young (faster than all at once)
            c = feature_counts(f.facts, self.code_only, self.feature_set)
            bags.append(bag_of(c, hashes=self.hashes))
            id_bags.append(bag_of(c, groups))  # the identifier sketch keeps one bucket a feature
        return bags, id_bags

    def embed_merged(self, functions: Sequence, groups: Sequence[Sequence[int]]) -> np.ndarray:
        """(len(groups), own_dim): each row embeds the features of several functions together, as if their code
        were one function (a caller with the callees a compiler would inline into it); own code, no context
        (the matcher's inlined view). Many groups are split over forked children (`model.parallel`)."""
        from . import parallel

        return parallel.in_parts(groups, lambda part: self._merged(functions, part))

    def _merged(self, functions: Sequence, groups: Sequence[Sequence[int]]) -> np.ndarray:
        counts = {k: feature_counts(functions[k].facts, self.code_only, self.feature_set)
                  for k in sorted({k for g in groups for k in g})}  # only the functions some group holds
        merged = []
        for g in groups:
            c = Counter()
            for k in g:
                c.update(counts[k])
            merged.append(c)
        bags = [bag_of(c, hashes=self.hashes) for c in merged]
        if self.identifier_weight <= 0:
            return self.forward(bags)
        ids = "C" if self.code_only else IDENTIFIER_GROUPS
        return self.forward(bags, [bag_of(c, ids) for c in merged])

    def embed(self, functions: Sequence, progress: Callable[[int], None] | None = None,
              batch: int = 2048) -> np.ndarray:
        """(N, D) float32 unit vectors for the functions, in order. Large sets are lifted, featurized and
        embedded on several cores (`model.parallel`); the vectors are the same. With context, a function's
        callees and callers are looked up among `functions`: pass all of a binary's functions, not a few."""
        return self.embed_both(functions, progress, batch)[1]

    def embed_both(self, functions: Sequence, progress: Callable[[int], None] | None = None,
                   batch: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """(own-code vectors, full vectors) of the functions, the first computed once for both. The matcher and
        the library work on the own-code vectors (they bring the call graph themselves); nearest-neighbour
        uses take the full ones."""
        own = self.embed_own(functions, progress, batch)
        return own, self.add_context(own, functions)

    def embed_own(self, functions: Sequence, progress: Callable[[int], None] | None = None,
                  batch: int = 2048) -> np.ndarray:
        """(N, own_dim) unit vectors of the functions' own code, without context."""
        if not functions:
            return np.zeros((0, self.own_dim), np.float32)
        with gc_paused():
            return self._embed(functions, progress, batch)

    def _embed(self, functions: Sequence, progress: Callable[[int], None] | None, batch: int) -> np.ndarray:
        from . import parallel

        def here(part: Sequence, report: Callable[[int], None] | None) -> np.ndarray:
            out = []
            for i in range(0, len(part), batch):
                out.append(self.forward(*self.featurize(part[i:i + batch])))
                if report:
                    report(len(part[i:i + batch]))
            return np.concatenate(out)

        vectors = parallel.embed(self, functions, here, progress)
        return vectors if vectors is not None else here(functions, progress)
