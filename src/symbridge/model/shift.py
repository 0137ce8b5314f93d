"""The analogy's shift, filtered: keep what one anchor tells about how the whole target was built.

The seed's query is emb_S(query) - emb_S(anchor) + emb_P(anchor). Its shift, emb_P(anchor) - emb_S(anchor),
holds a part every function of the pair shares (the build: another compiler, -O3) and a part of the anchor's
own (how that one function changed). In a space trained to put builds of one function together the shared
part is small, and one anchor's own part is noise that moves the query away from its answer. The filter keeps
the shift's component in the directions where pairs of builds differ as a whole (the principal directions of
the mean shifts of train pairs), each shrunk by signal / (signal + noise / anchors): the least-squares
estimate of the pair's mean shift from the anchors' mean, direction by direction. Fitted on train-sources
pairs by `python -m symbridge.train.fit_analogy`; it belongs to one model (its fingerprint and dimension).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .model import model_fingerprint

SHIFT_FILE = "analogy-shift.npz"


def model_key(model) -> str:
    """What the filter is bound to: the model's weights and everything that shapes its full vectors."""
    key = (f"{model_fingerprint(model)}:{model.dim}:{model.context_weight}:{model.data_weight}:"
           f"{model.context_members}")
    return key + (f":{model.caller_weight}" if model.caller_weight > 0 else "")


@dataclass(frozen=True)
class ShiftFilter:
    basis: np.ndarray  # (dim, r) orthonormal columns: the directions of train pairs' mean shifts
    signal: np.ndarray  # (r,) mean square of a pair's mean shift along each column
    noise: np.ndarray  # (r,) mean square of one anchor's shift about its pair's mean, along each column
    model: str  # model_key of the model it was fitted for

    def __post_init__(self):
        b, s, n = self.basis, self.signal, self.noise
        if b.ndim != 2 or s.shape != (b.shape[1],) or n.shape != (b.shape[1],):
            raise ModelError("analogy shift filter: inconsistent shapes")
        if not (np.all(np.isfinite(b)) and np.all(np.isfinite(s)) and np.all(np.isfinite(n))) \
                or np.any(s < 0) or np.any(n <= 0):
            raise ModelError("analogy shift filter: values out of range")

    def gains(self, anchors: int) -> np.ndarray:
        """Per direction, the share of the anchors' mean shift kept (more anchors, less noise, more kept)."""
        return self.signal / (self.signal + self.noise / max(anchors, 1))

    def apply(self, shift: np.ndarray, anchors: int) -> np.ndarray:
        """The filtered shift (same shape as `shift`, one vector or rows): `anchors` is how many were averaged."""
        return ((shift @ self.basis) * self.gains(anchors)) @ self.basis.T

    def save(self, path: Path) -> None:
        tmp = Path(str(path) + ".tmp.npz")
        np.savez(tmp, basis=self.basis.astype(np.float32), signal=self.signal.astype(np.float64),
                 noise=self.noise.astype(np.float64), model=np.array(self.model))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ShiftFilter:
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["basis"].astype(np.float32), z["signal"].astype(np.float64),
                           z["noise"].astype(np.float64), str(z["model"]))
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"{path}: not an analogy shift filter ({type(exc).__name__}: {exc})") from None

    @classmethod
    def for_model(cls, model) -> ShiftFilter | None:
        """The filter fitted for this model, else None (the shift is then used as it is): the file beside a
        model loaded from a file (`MODEL.shift.npz`), or the shipped one."""
        own = beside(model.source) if Path(model.source).is_file() else None
        if own is not None and own.is_file():
            f = cls.load(own)
        else:
            with resources.as_file(resources.files("symbridge.model") / "weights" / SHIFT_FILE) as p:
                if not Path(p).is_file():
                    return None
                f = cls.load(Path(p))
        return f if f.basis.shape[0] == model.dim and f.model == model_key(model) else None


def beside(model_path: str) -> Path:
    """Where the filter of a model file goes: MODEL.shift.npz."""
    p = Path(model_path)
    return p.with_name(p.stem + ".shift.npz")
