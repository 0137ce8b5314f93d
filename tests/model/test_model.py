"""The shipped model: NumPy inference matches the training framework, is deterministic, validates files."""

import json
from pathlib import Path

import numpy as np
import pytest

from symbridge.binary import Binary
from symbridge.demo import demo_files
from symbridge.errors import ModelError
from symbridge.model.model import Model, quantize_rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_functions():
    ref, _, _ = demo_files()
    return [f for f in Binary(ref).functions if not f.is_plt]


def test_default_model_is_the_learned_one_and_small():
    m = Model.default()
    assert m.kind == "bag-mlp", "the package must ship the trained model"
    from importlib import resources

    w = resources.files("symbridge.model") / "weights" / "symbridge-default.safetensors"
    assert w.stat().st_size < 20 * 1024 * 1024


def test_embeddings_are_unit_rows_and_deterministic(demo_functions):
    m = Model.default()
    a = m.embed(demo_functions)
    b = Model.default().embed(list(demo_functions))
    assert a.dtype == np.float32 and a.shape == (len(demo_functions), m.dim)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, b)
    # batching does not change the result, not even in the last bits
    assert np.array_equal(m.embed_own(demo_functions, batch=7), m.embed_own(demo_functions))


def test_a_function_has_one_vector_wherever_it_sits_among_the_others(demo_functions):
    """BLAS computes a row of a matrix product differently by its place among the rows (OpenBLAS on AVX-512):
    the model's products go one row at a time, so that identical code has identical vectors, as the matcher's
    ties and the library's named copies take them."""
    m = Model.default()
    f = max(demo_functions, key=lambda g: g.size)
    rows = m.embed_own([f] + demo_functions[:40] + [f] * 24)
    assert all(np.array_equal(rows[0], r) for r in rows[41:])


def test_numpy_forward_matches_torch(demo_functions):
    pytest.importorskip("torch")
    from symbridge.train.torch_reference import torch_forward

    shipped = Model.default()
    m = Model(shipped.t, dict(shipped.meta, identifier_weight=0.0))  # the trained part alone
    bags, _ = m.featurize(demo_functions)
    assert np.abs(m.forward(bags) - torch_forward(shipped, demo_functions)).max() < 1e-4


def test_numpy_forward_matches_the_committed_torch_forward():
    """Where PyTorch is not installed (the product does not need it): its forward pass of the shipped model on
    the demo's first functions, written by `python -m symbridge.train.torch_reference` when the model ships."""
    from symbridge.model.model import model_fingerprint
    from symbridge.train.torch_reference import FUNCTIONS, OUT, demo_functions

    ref = np.load(ROOT / OUT, allow_pickle=False)
    shipped = Model.default()
    assert str(ref["model"]) == model_fingerprint(shipped), \
        "the shipped model changed: rerun python -m symbridge.train.torch_reference"
    m = Model(shipped.t, dict(shipped.meta, identifier_weight=0.0))
    bags, _ = m.featurize(demo_functions())
    assert ref["forward"].shape[0] == FUNCTIONS
    assert np.abs(m.forward(bags) - ref["forward"]).max() < 1e-4


def test_an_ensemble_scores_the_mean_of_its_members_similarities(demo_functions):
    shipped = Model.default()
    single = Model({k: v for k, v in shipped.parts[0].items()},
                   {k: v for k, v in shipped.meta.items()
                    if k not in ("members", "identifier_weight", "context_weight", "data_weight", "caller_weight")})
    rng = np.random.default_rng(0)
    other = Model({k: v + rng.normal(scale=0.05, size=v.shape).astype(np.float32) for k, v in single.t.items()},
                  single.meta)
    both = Model.ensemble([single, other])
    a, b, e = single.embed(demo_functions), other.embed(demo_functions), both.embed(demo_functions)
    assert e.shape[1] == a.shape[1] + b.shape[1] and both.n_members == 2
    assert np.allclose(e @ e.T, (a @ a.T + b @ b.T) / 2, atol=1e-5)


def test_member_columns_view_each_member_with_the_identifier_sketch(demo_functions):
    """A member's columns of the ensemble's vectors rank like that member alone (with the same sketch)."""
    shipped = Model.default()
    cols = shipped.member_columns()
    n = shipped.n_members
    assert n >= 2 and len(cols) == n
    width = int(shipped.parts[0]["w2"].shape[1])
    sketch = set(range(n * width, shipped.own_dim))
    for k in range(n):
        assert set(cols[k]) == set(range(k * width, (k + 1) * width)) | sketch
    v = shipped.embed(demo_functions)
    alone = Model(dict(shipped.parts[1]), {k: val for k, val in shipped.meta.items() if k != "members"})
    w = alone.embed(demo_functions)  # member 1 with the sketch: its own part weighs sqrt(n) more here
    view = v[:, cols[1]] / np.linalg.norm(v[:, cols[1]], axis=1, keepdims=True)
    own = view[:, :width] / np.linalg.norm(view[:, :width], axis=1, keepdims=True)
    assert np.allclose(own, w[:, :width] / np.linalg.norm(w[:, :width], axis=1, keepdims=True), atol=1e-5)
    single = Model(dict(shipped.parts[0]), {k: val for k, val in shipped.meta.items()
                                            if k not in ("members", "identifier_weight")})
    assert single.member_columns() == []


def test_an_ensemble_round_trips_through_its_file(tmp_path, demo_functions):
    shipped = Model.default()
    single = Model(dict(shipped.parts[0]), {k: v for k, v in shipped.meta.items() if k != "members"})
    both = Model.ensemble([single, single])
    both.save(tmp_path / "e.safetensors")
    back = Model.load(tmp_path / "e.safetensors")
    assert back.n_members == 2
    assert np.allclose(back.embed(demo_functions), both.embed(demo_functions), atol=2e-3)  # fp16 tables


def test_an_ensemble_file_missing_a_member_is_rejected(tmp_path):
    shipped = Model.default()
    single = Model(dict(shipped.parts[0]), {k: v for k, v in shipped.meta.items() if k != "members"})
    both = Model.ensemble([single, single])
    with pytest.raises(ModelError):
        Model(dict(both.t), dict(both.meta, members=3))
    for bad in ("2", 0, -1, 2.0, True):  # the count itself must be a small integer
        with pytest.raises(ModelError):
            Model(dict(both.t), dict(both.meta, members=bad))


@pytest.mark.parametrize("content", [b"", b"not a model", b"\x80\x04\x95pickle"])
def test_bad_model_files_are_rejected(tmp_path, content):
    p = tmp_path / "m.safetensors"
    p.write_bytes(content)
    with pytest.raises(ModelError):
        Model.load(p)


def test_model_with_wrong_shapes_is_rejected(tmp_path):
    m = Model.default()
    bad = dict(m.t)
    w2 = next(k for k in bad if k.endswith("w2"))  # "w2", or "m0.w2" in an ensemble
    bad[w2] = bad[w2][:3]
    with pytest.raises(ModelError):
        Model(bad, m.meta)


def test_model_with_a_text_tensor_is_rejected(tmp_path):
    p = tmp_path / "m.npz"
    np.savez(p, embedding=np.array(["not", "numbers"]))
    with pytest.raises(ModelError, match="not numeric"):
        Model.load(p)


def test_npz_with_pickled_objects_is_refused(tmp_path):
    p = tmp_path / "m.npz"
    np.savez(p, embedding=np.array([object()], dtype=object))
    with pytest.raises(ModelError):
        Model.load(p)


def test_saved_model_round_trips(tmp_path, demo_functions):
    m = Model.default()
    p = tmp_path / "copy.safetensors"
    m.save(p)
    m2 = Model.load(p)
    assert np.allclose(m2.embed(demo_functions), m.embed(demo_functions), atol=1e-5)


def test_cli_model_option_validates(tmp_path):
    from tests.conftest import run_cli

    ref, tgt, _ = demo_files()
    bad = tmp_path / "bad.safetensors"
    bad.write_text("x")
    r = run_cli("transfer", ref, tgt, "--model", bad)
    assert r.returncode == 2 and "model" in r.stderr.lower() and len(r.stderr.strip().splitlines()) == 1


def test_model_of_an_unknown_feature_set_is_rejected():
    m = Model.default()
    with pytest.raises(ModelError, match="feature set"):
        Model(m.t, dict(m.meta, feature_set=99))


def test_feature_set_2_adds_optimisation_robust_groups(demo_functions):
    from symbridge.model.features import core_ops, feature_counts

    f = max(demo_functions, key=lambda f: len(f.facts.mnemonics))
    one, two = feature_counts(f.facts), feature_counts(f.facts, feature_set=2)
    assert not any(k[0] in "DKL" for k in one)
    assert {k[0] for k in two} >= {"D", "L"} and set(one) <= set(two)
    assert core_ops(["push", "mov", "add", "jne", "cmovle", "setg", "jmp", "ret"]) == \
        ["add", "jcc", "cmov", "set", "jmp", "ret"]
    # code_only drops the import pairs with the imports
    assert not any(k[0] in "KIS" for k in feature_counts(f.facts, code_only=True, feature_set=2))


def test_feature_set_3_fills_two_buckets_per_feature_with_the_same_norm(demo_functions):
    from symbridge.model.features import N_BUCKETS, featurize, hash_feature, hash_pair

    f = max(demo_functions, key=lambda f: len(f.facts.mnemonics))
    ids2, w2 = featurize(f.facts, feature_set=2)
    ids3, w3 = featurize(f.facts, feature_set=3)
    n = len(ids2)
    assert len(ids3) == 2 * n and np.array_equal(ids3[:n], ids2)
    assert np.allclose(w3[:n], w2 / np.sqrt(2)) and np.allclose(w3[n:], w3[:n])
    assert abs(float(np.linalg.norm(w3)) - 1.0) < 1e-5
    assert not np.array_equal(ids3[n:], ids3[:n])  # the second hash is another function
    second = hash_pair("Tret") // N_BUCKETS
    assert second == hash_pair("Tret") // N_BUCKETS != hash_feature("Tret")
    assert hash_pair("Tret") % N_BUCKETS == hash_feature("Tret")


def test_bags_do_not_depend_on_the_feature_memo_filling_up(demo_functions, monkeypatch):
    from symbridge.model import features as ft

    counts = [ft.feature_counts(f.facts, feature_set=3) for f in demo_functions[:60]]
    before = [ft.bag_of(c, hashes=2) for c in counts]
    monkeypatch.setattr(ft, "_ROWS", ft._Rows(limit=50))  # cleared again and again
    after = [ft.bag_of(c, hashes=2) for c in counts]
    for (i1, w1), (i2, w2) in zip(before, after):
        assert np.array_equal(i1, i2) and np.array_equal(w1, w2)
    # the buckets are those of hash_pair and the weights follow the group weights
    c = counts[0]
    ids, w = ft.bag_of(c, hashes=2)
    pairs = [ft.hash_pair(f) for f in c]
    assert ids.tolist() == [p % ft.N_BUCKETS for p in pairs] + [p >> ft._BITS for p in pairs]
    g = np.array([ft.GROUP_WEIGHT.get(f[0], 1.0) for f in c]) * (1 + np.log(np.array(list(c.values()), float)))
    assert np.allclose(w[:len(c)], g / np.linalg.norm(g) / np.sqrt(2), atol=1e-6)


@pytest.mark.parametrize("bits,share", [(8, 0.3), (4, 0.17)])
def test_quantized_tables_round_trip_close_and_smaller(tmp_path, demo_functions, bits, share):
    shipped = Model.default()
    single = Model(dict(shipped.parts[0]), {k: v for k, v in shipped.meta.items() if k not in ("members",)})
    single.save(tmp_path / "f32.safetensors", half=False, bits=0)
    single.save(tmp_path / "q.safetensors", bits=bits)
    back = Model.load(tmp_path / "q.safetensors")
    assert back.bits == bits and back.n_members == 1
    table = single.parts[0]["embedding"]
    step = np.abs(table).max(axis=1, keepdims=True) / (2 ** (bits - 1) - 1)
    assert (np.abs(back.parts[0]["embedding"] - table) <= step / 2 + 1e-6).all()
    assert np.abs(back.embed(demo_functions) - single.embed(demo_functions)).max() < (0.02 if bits == 8 else 0.1)
    assert (tmp_path / "q.safetensors").stat().st_size < share * (tmp_path / "f32.safetensors").stat().st_size
    back.save(tmp_path / "again.safetensors")  # loaded quantized: saved the same way again, unchanged
    again = Model.load(tmp_path / "again.safetensors")
    assert again.bits == bits
    assert np.allclose(again.parts[0]["embedding"], back.parts[0]["embedding"], atol=1e-6)


def test_four_bit_packing_keeps_every_value_and_its_column():
    from symbridge.model.model import pack4, unpack4

    q = np.array([[-7, 7, 0, 1], [3, -3, -1, 6]], np.int8)
    assert unpack4(pack4(q)).tolist() == q.tolist()
    with pytest.raises(ValueError, match="even"):
        quantize_rows(np.ones((2, 3), np.float32), bits=4)


@pytest.mark.parametrize("suffix,dtype", [(".q", np.int8), (".q4", np.uint8)])
def test_a_quantized_table_without_its_scales_is_rejected(tmp_path, suffix, dtype):
    from safetensors.numpy import save_file

    m = Model.default()
    t = {k: v for k, v in m.parts[0].items() if k != "embedding"}
    t["embedding" + suffix] = np.zeros((m.n_buckets, t["ln_g"].shape[0]), dtype)
    save_file(t, str(tmp_path / "m.safetensors"))
    with pytest.raises(ModelError, match="scale"):
        Model.load(tmp_path / "m.safetensors")


@pytest.mark.parametrize("key, value", [("context_weight", "abc"), ("data_weight", -1.0), ("identifier_weight", 1e9),
                                        ("context_weight", True), ("context_members", "x"), ("context_members", 0),
                                        ("caller_weight", -0.5), ("caller_weight", "1")])
def test_model_metadata_that_is_no_weight_or_count_is_rejected(tmp_path, key, value):
    from safetensors.numpy import save_file

    shipped = Model.default()
    single = {k: v for k, v in shipped.parts[0].items()}
    meta = {k: v for k, v in shipped.meta.items() if k not in ("members", "member_runs")}
    with pytest.raises(ModelError, match=key):
        Model(single, dict(meta, **{key: value}))
    path = tmp_path / "bad.safetensors"  # the same through a file, as --model reads it
    save_file({k: v.astype(np.float16 if k == "embedding" else np.float32) for k, v in single.items()}, str(path),
              metadata={"symbridge": json.dumps(dict(meta, format="symbridge-model", **{key: value}))})
    with pytest.raises(ModelError, match=key):
        Model.load(path)
