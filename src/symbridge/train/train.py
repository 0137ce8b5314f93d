"""Contrastive training of the bag-of-features embedding model (needs the `train` extra: PyTorch).

    python -m symbridge.train.train --minutes 40 --out /work/data/runs/r1
    python -m symbridge.train.train --resume /work/data/runs/r1 --minutes 20   # goes on from the checkpoint

Positives: the same source function (same package, library/program and name) from two different builds
(other suite, compiler or optimisation level). Negatives: the rest of the batch; half of every batch comes
from one package, so that the negatives are the hard ones (siblings from the same library).
Loss: symmetric InfoNCE. Checkpoints are safetensors files with the shipped format, so the last checkpoint
is always a usable model.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..model.features import N_BUCKETS
from ..model.model import Model
from .dataset import Corpus, cache_feature_set, eval_keys, read_list


class BagMLP(nn.Module):
    def __init__(self, hidden: int = 128, ff: int = 256, dim: int = 128):
        super().__init__()
        self.emb = nn.EmbeddingBag(N_BUCKETS, hidden, mode="sum")
        nn.init.normal_(self.emb.weight, std=0.1)
        self.ln = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, ff)
        self.fc2 = nn.Linear(ff, dim)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids, offsets, per_sample_weights=weights)
        z = F.relu(self.fc1(self.ln(h)))
        return F.normalize(self.fc2(z), dim=1)

    def to_model(self, meta: dict) -> Model:
        t = {"embedding": self.emb.weight.detach().numpy().copy(), "ln_g": self.ln.weight.detach().numpy(),
             "ln_b": self.ln.bias.detach().numpy(), "w1": self.fc1.weight.detach().numpy().T.copy(),
             "b1": self.fc1.bias.detach().numpy(), "w2": self.fc2.weight.detach().numpy().T.copy(),
             "b2": self.fc2.bias.detach().numpy()}
        return Model(t, dict(meta, kind="bag-mlp", n_buckets=N_BUCKETS))

    def load_model(self, m: Model, member: int = 0) -> None:
        """Take the weights of a single model, or of one member of an ensemble."""
        t = m.parts[member]
        with torch.no_grad():
            self.emb.weight.copy_(torch.from_numpy(t["embedding"]))
            self.ln.weight.copy_(torch.from_numpy(t["ln_g"]))
            self.ln.bias.copy_(torch.from_numpy(t["ln_b"]))
            self.fc1.weight.copy_(torch.from_numpy(t["w1"].T.copy()))
            self.fc1.bias.copy_(torch.from_numpy(t["b1"]))
            self.fc2.weight.copy_(torch.from_numpy(t["w2"].T.copy()))
            self.fc2.bias.copy_(torch.from_numpy(t["b2"]))


def drop_features(bags: list, rate: float, rng: np.random.Generator) -> list:
    """Augmentation: each feature of each bag is dropped with probability rate (weights renormalised)."""
    out = []
    for ids, w in bags:
        keep = rng.random(len(ids)) >= rate
        if not keep.any():
            keep[rng.integers(len(ids))] = True
        w2 = w[keep]
        out.append((ids[keep], w2 / (np.linalg.norm(w2) or 1.0)))
    return out


def collate(bags: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lens = [len(i) for i, _ in bags]
    ids = torch.from_numpy(np.concatenate([i for i, _ in bags]).astype(np.int64))
    w = torch.from_numpy(np.concatenate([x for _, x in bags]).astype(np.float32))
    offsets = torch.tensor([0] + list(np.cumsum(lens)[:-1]), dtype=torch.int64)
    return ids, offsets, w


def build_of(meta: dict) -> tuple[str, str]:
    """(compiler, optimisation level) of a rebuild, ("", "") for official builds."""
    if meta.get("origin") != "rebuild":
        return "", ""
    opt = next((f for f in meta.get("flags", "").split() if f.startswith("-O")), "")
    return meta.get("compiler", ""), opt


class Sampler:
    """Batches of pairs: half of a batch from one package (hard in-batch negatives), and `rebuild_share` of
    it from rebuilt groups, paired across optimisation levels or compilers (the hardest pairs)."""

    def __init__(self, corpus: Corpus, seed: int, rebuild_share: float = 0.0):
        self.c = corpus
        self.rng = random.Random(seed)
        self.keys = list(corpus.groups)
        self.share = rebuild_share
        self.by_pkg: dict[str, list] = {}
        for g in self.keys:
            self.by_pkg.setdefault(g[0], []).append(g)
        self.pkgs = [p for p, gs in self.by_pkg.items() if len(gs) >= 8]
        self.build = [build_of(d["meta"]) for d in corpus.bins]  # per binary, read once
        self.rebuilt = [g for g in self.keys if len({self.build[b] for b, _ in corpus.groups[g]} - {("", "")}) >= 2]

    def pair(self, g: tuple, across: bool) -> tuple:
        m = self.c.groups[g]
        if across:
            builds = [self.build[b] for b, _ in m]
            reb = [k for k, bd in enumerate(builds) if bd != ("", "")]
            for _ in range(8):
                i, j = self.rng.sample(reb, 2)
                other_compiler = builds[i][0] != builds[j][0]
                o0_vs_other = builds[i][1] != builds[j][1] and "-O0" in (builds[i][1], builds[j][1])
                if other_compiler or o0_vs_other:
                    return m[i], m[j]
        return tuple(self.rng.sample(m, 2))

    def batch(self, size: int) -> tuple[list, list]:
        half = size // 2
        n_reb = int(size * self.share) if self.rebuilt else 0
        pkg = self.rng.choice(self.pkgs) if self.pkgs else None
        hard = self.rng.sample(self.by_pkg[pkg], min(half, len(self.by_pkg[pkg]))) if pkg else []
        reb = self.rng.sample(self.rebuilt, min(n_reb, len(self.rebuilt)))
        rest = self.rng.sample(self.keys, max(0, min(size - len(hard) - len(reb), len(self.keys))))
        across = set(reb)
        chosen = list(dict.fromkeys(hard + reb + rest))
        a, b = [], []
        for g in chosen:
            x, y = self.pair(g, g in across)
            a.append(self.c.bag(*x))
            b.append(self.c.bag(*y))
        return a, b


def recall_at_1(model: BagMLP, corpus: Corpus, groups: list, n: int = 2000, seed: int = 0) -> float:
    """Top-1 among n held-out groups: member 0 against member 1 of every group."""
    rng = random.Random(seed)
    gs = rng.sample(groups, min(n, len(groups)))
    if not gs:
        return 0.0
    with torch.no_grad():
        a = model(*collate([corpus.bag(*corpus.groups[g][0]) for g in gs]))
        b = model(*collate([corpus.bag(*corpus.groups[g][1]) for g in gs]))
    return float((torch.argmax(a @ b.T, dim=1) == torch.arange(len(gs))).float().mean())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", type=Path, default=Path("corpus/manifest-train.jsonl"))
    ap.add_argument("--eval-manifest", type=Path, default=Path("corpus/manifest-dev-eval.jsonl"))
    ap.add_argument("--cache", type=Path, default=Path("/work/data/features"))
    ap.add_argument("--out", type=Path, default=Path("/work/data/runs/latest"))
    ap.add_argument("--resume", type=Path, default=None, help="A run directory to go on from.")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--ff", type=int, default=256)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--feat-drop", type=float, default=0.2, help="Feature dropout (augmentation).")
    ap.add_argument("--decay", action="store_true", help="Decay the learning rate linearly over --minutes.")
    ap.add_argument("--max-steps", type=int, default=0, help="Stop after this many steps (0: only --minutes).")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rebuild-share", type=float, default=0.0,
                    help="Share of each batch drawn from rebuilt functions, paired across -O levels/compilers.")
    ap.add_argument("--packages", type=Path, default=None,
                    help="Train only on the source packages listed in this file (one a line, # comments).")
    ap.add_argument("--exclude-packages", type=Path, default=None,
                    help="Never train on these packages (keep them for fitting the matcher and confidence).")
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    out = a.resume or a.out
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "train.log", "a")

    def say(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    excl = eval_keys(a.eval_manifest, a.cache) if a.eval_manifest.exists() else set()
    corpus = Corpus(a.manifest, a.cache, exclude_keys=excl)
    if a.packages:
        keep = read_list(a.packages)
        corpus.groups = {g: m for g, m in corpus.groups.items() if g[0] in keep}
    if a.exclude_packages:
        drop = read_list(a.exclude_packages)
        corpus.groups = {g: m for g, m in corpus.groups.items() if g[0] not in drop}
    say(f"corpus {json.dumps(corpus.summary())}")
    pkgs = sorted({g[0] for g in corpus.groups})
    rng = random.Random(a.seed)
    held = set(rng.sample(pkgs, max(1, len(pkgs) // 10)))
    val_groups = [g for g in corpus.groups if g[0] in held]
    train_groups = {g: m for g, m in corpus.groups.items() if g[0] not in held}
    say(f"held-out packages for validation: {sorted(held)} ({len(val_groups)} groups)")
    (out / "packages.txt").write_text("# source packages in this run's gradient steps\n"
                                      + "\n".join(sorted(set(pkgs) - held)) + "\n")
    full_groups = corpus.groups
    corpus.groups = train_groups
    sampler = Sampler(corpus, a.seed, a.rebuild_share)
    say(f"{len(sampler.rebuilt)} rebuilt groups; {a.rebuild_share:.0%} of each batch from them")
    model = BagMLP(a.hidden, a.ff, a.dim)
    state = {"step": 0, "seconds": 0.0, "best_val": -1.0}
    fs = cache_feature_set(a.cache)
    meta = {"name": f"bag-mlp-{a.hidden}-{a.ff}-{a.dim}" + (f"-fs{fs}" if fs != 1 else ""), "feature_set": fs,
            "hidden": a.hidden, "ff": a.ff, "dim": a.dim,
            "tau": a.tau, "batch": a.batch, "lr": a.lr, "train_manifest": str(a.manifest)}
    if a.resume and (out / "last.safetensors").exists():
        model.load_model(Model.load(out / "last.safetensors"))
        state.update(json.loads((out / "state.json").read_text()))
        say(f"resumed at step {state['step']}")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    nprng = np.random.default_rng(a.seed + state["step"])
    t0 = start = time.time()
    deadline = t0 + a.minutes * 60
    losses = []
    while time.time() < deadline and not (a.max_steps and state["step"] >= a.max_steps):
        xa, xb = sampler.batch(a.batch)
        if a.feat_drop:
            xa, xb = drop_features(xa, a.feat_drop, nprng), drop_features(xb, a.feat_drop, nprng)
        if a.decay:  # linear decay of the learning rate over the time budget, to a tenth
            frac = min(1.0, (time.time() - start) / (a.minutes * 60))
            for group in opt.param_groups:
                group["lr"] = a.lr * (1.0 - 0.9 * frac)
        ea, eb = model(*collate(xa)), model(*collate(xb))
        logits = ea @ eb.T / a.tau
        target = torch.arange(len(xa))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        state["step"] += 1
        if state["step"] % 200 == 0 or time.time() >= deadline or state["step"] == a.max_steps:
            corpus.groups = full_groups
            model.eval()
            val = recall_at_1(model, corpus, val_groups)
            model.train()
            corpus.groups = train_groups
            state["seconds"] += time.time() - t0
            t0 = time.time()
            say(f"step {state['step']} loss {np.mean(losses[-200:]):.4f} val_r@1 {val:.4f} "
                f"({state['seconds'] / 60:.1f} min)")
            m = model.to_model(dict(meta, steps=state["step"], val_recall_at_1=val,
                                    train_minutes=round(state["seconds"] / 60, 1)))
            m.save(out / "last.safetensors")
            if val > state["best_val"]:
                state["best_val"] = val
                m.save(out / "best.safetensors")
            (out / "state.json").write_text(json.dumps(state))
    say(f"done: best held-out recall@1 {state['best_val']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
