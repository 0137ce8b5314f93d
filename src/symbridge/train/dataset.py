"""Training data: featurized named functions of every corpus binary, cached per binary, and the groups of
functions that are the same source function compiled differently (same package, same unit, same name).

    python -m symbridge.train.dataset --corpus /work/data/corpus --cache /work/data/features
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from ..binary import Binary
from ..errors import SymbridgeError
from ..model.features import FEATURE_SETS, featurize

MAX_FUNCS_PER_BINARY = 20000


def read_list(path: Path | None) -> set[str]:
    """The names in a list file (one a line, # comments); empty when there is no file."""
    if path is None or not path.exists():
        return set()
    return {ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")}


def read_manifest(path: Path) -> list[dict]:
    """The rows of a corpus manifest (JSON lines)."""
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def unit_of(relpath: str) -> str:
    """The library or program a binary is, independent of version and packaging."""
    base = relpath.rsplit("/", 1)[-1]
    base = base.split("__", 1)[-1]
    base = re.sub(r"\.elf$", "", base)
    base = re.sub(r"\.so(\.[0-9.]+)?$", "", base)
    base = re.sub(r"\.a$", "", base)
    return base


def code_key(tokens: list[str]) -> int:
    """A hash of the normalised code that is stable across processes."""
    digest = hashlib.blake2b("\n".join(tokens).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFFFFFFFFFF


def featurize_binary(path: Path, feature_set: int = 1) -> dict | None:
    """Arrays of the named non-PLT functions of one binary (None if it cannot be read)."""
    try:
        b = Binary(path, use_debug_files=False)
    except SymbridgeError:
        return None
    funcs = [f for f in b.functions if f.name and not f.is_plt][:MAX_FUNCS_PER_BINARY]
    ids, ws, lens, names, keys, addrs, sizes = [], [], [], [], [], [], []
    for f in funcs:
        i, w = featurize(f.facts, feature_set=feature_set)
        ids.append(i)
        ws.append(w)
        lens.append(len(i))
        names.append(f.name)
        keys.append(code_key(f.facts.tokens))
        addrs.append(f.address)
        sizes.append(len(f.facts.tokens))
    if not funcs:
        return None
    return {"ids": np.concatenate(ids).astype(np.int32), "w": np.concatenate(ws).astype(np.float16),
            "lens": np.array(lens, np.int32), "names": np.array(names, dtype=str),
            "keys": np.array(keys, np.int64), "addrs": np.array(addrs, np.uint64),
            "ninstr": np.array(sizes, np.int32)}


def _job(args: tuple[str, str, int]) -> tuple[str, int]:
    src, dst, feature_set = args
    out = Path(dst)
    if out.exists():
        return dst, -1
    if not Path(src).exists():  # not built or downloaded on this machine (yet): no .skip, a later run takes it
        return dst, 0
    data = featurize_binary(Path(src), feature_set)
    if data is None:
        out.with_suffix(".skip").write_text("unreadable or no named functions\n")
        return dst, 0
    tmp = out.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(out)
    return dst, len(data["lens"])


def cache_feature_set(cache: Path) -> int:
    """The feature set a cache directory holds (1 where it does not say)."""
    f = cache / "FEATURE_SET"
    return int(f.read_text()) if f.exists() else 1


def build_cache(corpus: Path, cache: Path, manifests: list[Path], workers: int = 2, feature_set: int = 1) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    if any(cache.glob("*.npz")) and cache_feature_set(cache) != feature_set:
        raise SystemExit(f"{cache} holds feature set {cache_feature_set(cache)}, not {feature_set}: use another")
    (cache / "FEATURE_SET").write_text(str(feature_set))
    jobs, queued = [], set()
    for m in manifests:
        for line in m.read_text().splitlines():
            r = json.loads(line)
            dst = cache / f"{r['sha256']}.npz"
            if not dst.exists() and not dst.with_suffix(".skip").exists() and str(dst) not in queued:
                queued.add(str(dst))  # a binary shipped twice (same sha256) is featurized once
                jobs.append((str(corpus / r["relpath"]), str(dst), feature_set))
    t0 = time.time()
    total = 0
    with Pool(workers) as pool:
        for k, (_, n) in enumerate(pool.imap_unordered(_job, jobs), 1):
            total += max(n, 0)
            if k % 10 == 0 or k == len(jobs):
                print(f"[{time.time() - t0:6.0f}s] {k}/{len(jobs)} binaries, {total} functions", flush=True)


class Corpus:
    """The cached features of a split, grouped for contrastive training."""

    def __init__(self, manifest: Path, cache: Path, exclude_keys: set[int] | None = None, min_instr: int = 4):
        self.bins: list[dict] = []
        self.groups: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)
        exclude_keys = exclude_keys or set()
        seen_sha = set()
        dropped = 0
        for line in manifest.read_text().splitlines():
            r = json.loads(line)
            f = cache / f"{r['sha256']}.npz"
            if r["sha256"] in seen_sha or not f.exists():
                continue
            seen_sha.add(r["sha256"])
            with np.load(f, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
            d["offsets"] = np.concatenate([[0], np.cumsum(d["lens"])]).astype(np.int64)
            d["meta"] = r
            b = len(self.bins)
            self.bins.append(d)
            unit = unit_of(r["relpath"])
            for k, name in enumerate(d["names"]):
                if d["ninstr"][k] < min_instr:
                    continue
                if int(d["keys"][k]) in exclude_keys:
                    dropped += 1
                    continue
                self.groups[(r["source_package"], unit, str(name))].append((b, k))
        self.dropped = dropped
        self.groups = {g: m for g, m in self.groups.items() if len(m) >= 2}

    def bag(self, b: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        d = self.bins[b]
        lo, hi = d["offsets"][k], d["offsets"][k + 1]
        return d["ids"][lo:hi], d["w"][lo:hi].astype(np.float32)

    def summary(self) -> dict:
        return {"binaries": len(self.bins), "functions": int(sum(len(d["lens"]) for d in self.bins)),
                "groups": len(self.groups), "pairs_members": int(sum(len(m) for m in self.groups.values())),
                "packages": len({g[0] for g in self.groups}), "dropped_as_eval_duplicates": self.dropped}


def eval_keys(manifest: Path, cache: Path) -> set[int]:
    """Code keys of every function of the evaluation binaries (to drop their twins from training)."""
    keys: set[int] = set()
    for line in manifest.read_text().splitlines():
        f = cache / f"{json.loads(line)['sha256']}.npz"
        if f.exists():
            with np.load(f, allow_pickle=False) as z:
                keys.update(int(k) for k in z["keys"])
    return keys


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--cache", type=Path, default=Path("/work/data/features"))
    ap.add_argument("--manifests", type=Path, nargs="+",
                    default=[Path("corpus/manifest-dev-eval.jsonl"), Path("corpus/manifest-train.jsonl")])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--feature-set", type=int, default=1, choices=FEATURE_SETS,
                    help="Which features (symbridge.model.features); each set needs its own --cache.")
    a = ap.parse_args(argv)
    build_cache(a.corpus, a.cache, a.manifests, a.workers, a.feature_set)


if __name__ == "__main__":
    sys.exit(main())
