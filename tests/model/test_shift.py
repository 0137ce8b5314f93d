"""The analogy's shift filter (model.shift): keep what pairs of builds share, drop an anchor's own part."""

import numpy as np
import pytest

from symbridge.errors import ModelError
from symbridge.model.model import Model
from symbridge.model.shift import ShiftFilter, beside, model_key
from symbridge.train.fit_analogy import fit


def synthetic_shifts(seed: int = 0, pairs: int = 12, dim: int = 16, functions: int = 200) -> list[np.ndarray]:
    """Pairs whose functions all move along direction 0 by the pair's own amount, each function also moving
    by noise of its own in every direction."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(pairs):
        m = np.zeros(dim)
        m[0] = rng.normal(0.0, 1.0)
        out.append(m + rng.normal(0.0, 0.5, (functions, dim)))
    return out


def test_filter_keeps_the_shift_pairs_share_and_drops_an_anchors_own():
    f = fit(synthetic_shifts(), rank=4, key="k")
    assert abs(f.basis[0, 0]) > 0.95  # the first direction is the one the pairs move along
    one = np.zeros(16)
    one[0], one[5] = 1.0, 1.0  # a shift along the shared direction and along one of noise alone
    out = f.apply(one, 1)
    assert 0.3 < out[0] < 1.0  # kept, shrunk by what one anchor can tell
    assert abs(out[5]) < 0.2  # mostly dropped
    assert f.gains(10)[0] > f.gains(1)[0]  # ten anchors are trusted more than one
    rows = np.stack([one, 2 * one])
    assert np.allclose(f.apply(rows, 1), np.stack([out, 2 * out]), atol=1e-6)


def test_filter_file_round_trips_and_bad_files_are_rejected(tmp_path):
    f = fit(synthetic_shifts(), rank=4, key="some-model")
    p = tmp_path / "shift.npz"
    f.save(p)
    g = ShiftFilter.load(p)
    assert g.model == "some-model" and np.array_equal(g.basis, f.basis) and np.allclose(g.noise, f.noise)
    assert not list(tmp_path.glob("*.tmp*"))
    np.savez(tmp_path / "nan.npz", basis=f.basis, signal=f.signal, noise=f.noise * np.nan, model=np.array("m"))
    with pytest.raises(ModelError, match="out of range"):
        ShiftFilter.load(tmp_path / "nan.npz")
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    with pytest.raises(ModelError, match="not an analogy shift filter"):
        ShiftFilter.load(tmp_path / "junk.npz")


def test_shipped_filter_belongs_to_the_shipped_model_only():
    d = Model.default()
    f = ShiftFilter.for_model(d)
    assert f is not None and f.model == model_key(d) and f.basis.shape[0] == d.dim, \
        "the shipped filter was fitted for another model: python -m symbridge.train.fit_analogy"
    assert np.allclose(f.basis.T @ f.basis, np.eye(f.basis.shape[1]), atol=1e-4)
    assert np.all(f.gains(1) < 1.0)
    # the same tables with other context weights make other vectors: the filter does not apply to them
    other = Model(d.t, dict(d.meta, context_weight=0.25))
    assert ShiftFilter.for_model(other) is None
    assert ShiftFilter.for_model(Model(d.t, dict(d.meta, caller_weight=d.caller_weight + 0.25))) is None
    assert ShiftFilter.for_model(Model.projection()) is None


def test_a_model_file_finds_the_filter_fitted_beside_it(tmp_path):
    path = tmp_path / "mine.safetensors"
    Model.projection().save(path)
    m = Model.load(path)
    assert ShiftFilter.for_model(m) is None  # none fitted for it; the shipped one belongs to another model
    f = fit(synthetic_shifts(dim=m.dim), rank=4, key=model_key(m))
    f.save(beside(str(path)))
    assert beside(str(path)).name == "mine.shift.npz"
    g = ShiftFilter.for_model(m)
    assert g is not None and np.array_equal(g.basis, f.basis)
    fit(synthetic_shifts(dim=m.dim), rank=4, key="another model").save(beside(str(path)))
    assert ShiftFilter.for_model(m) is None  # a filter of another model is not used
