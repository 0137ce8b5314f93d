"""Context (model.context): what a function calls, the read-only data it reads and what calls it join its
vector."""

import numpy as np
import pytest

from symbridge.binary import Binary
from symbridge.model.context import DATA_DIM
from symbridge.model.model import Model
from tests.conftest import truth_of
from tests.fixtures.build import build, strip_copy

TWINS = ["wrap_parse", "wrap_count", "wrap_checksum", "lookup_prime", "lookup_square", "lookup_power"]
LEAVES = ["flag_one", "flag_two", "flag_four"]  # same code, call nothing, read nothing: only their callers differ
CONTEXT = ("context_weight", "data_weight", "caller_weight")


@pytest.fixture(scope="module")
def models():
    """The shipped networks without context, with callees and data, and with callers too."""
    d = Model.default()
    meta = {k: v for k, v in d.meta.items() if k not in CONTEXT}
    return Model(d.t, meta), Model(d.t, dict(meta, context_weight=0.5, data_weight=0.2, context_members=2))


@pytest.fixture(scope="module")
def with_callers(models):
    return Model(models[1].t, dict(models[1].meta, caller_weight=0.7))


@pytest.fixture(scope="module")
def wrappers():
    """wrappers.c at -O2 with symbols, at -O3 stripped; the -O3 names by address."""
    ref, full = build("wrappers.c", opt="-O2"), build("wrappers.c", opt="-O3")
    truth = {a: sorted(n)[0] for a, n in truth_of(full).items()}
    return Binary(ref).code_functions, Binary(strip_copy(full), ignore_symbols=True).code_functions, truth


def best_names(xs, xp, sc, pc, truth, name):
    s = xs[[f.name for f in sc].index(name)] @ xp.T
    return sorted(truth.get(pc[j].address, "?") for j in np.flatnonzero(s >= s.max() - 1e-6))


def test_twins_that_tie_on_their_own_code_are_told_apart_by_callees_and_data(models, wrappers):
    own, ctx = models
    sc, pc, truth = wrappers
    xs, xp = own.embed(sc), own.embed(pc)
    for name in TWINS:  # their own code is the same: each ties with its two siblings
        assert len(best_names(xs, xp, sc, pc, truth, name)) == 3, name
    xs, xp = ctx.embed(sc), ctx.embed(pc)
    for name in TWINS:
        assert best_names(xs, xp, sc, pc, truth, name) == [name]


def test_leaves_that_tie_on_their_own_code_are_told_apart_by_their_callers(models, with_callers, wrappers):
    own, ctx = models
    sc, pc, truth = wrappers
    for m in (own, ctx):  # no callee, no data: without callers they tie with their two siblings
        xs, xp = m.embed(sc), m.embed(pc)
        for name in LEAVES:
            assert len(best_names(xs, xp, sc, pc, truth, name)) == 3, name
    xs, xp = with_callers.embed(sc), with_callers.embed(pc)
    for name in LEAVES + TWINS:
        assert best_names(xs, xp, sc, pc, truth, name) == [name]


def test_callers_come_last_and_leave_the_rest_of_the_vector_as_it_was(models, with_callers, wrappers):
    _, ctx = models
    sc = wrappers[0]
    assert with_callers.caller_width == ctx.context_width and ctx.caller_width == 0
    assert with_callers.dim == ctx.dim + with_callers.caller_width
    v, before = with_callers.embed(sc), ctx.embed(sc)
    head = v[:, :ctx.dim]
    norms = np.linalg.norm(head, axis=1, keepdims=True)
    assert np.allclose(head / norms, before, atol=1e-5)
    names = [f.name for f in sc]
    assert not v[names.index("main"), ctx.dim:].any()  # nothing here calls main
    assert v[names.index("flag_one"), ctx.dim:].any()
    assert np.array_equal(with_callers.embed(sc), v)  # deterministic
    callee_only = Model(ctx.t, dict(ctx.meta, context_weight=0.0, data_weight=0.0, caller_weight=0.7))
    assert callee_only.dim == ctx.own_dim + ctx.context_width  # callers without callees keep their width
    assert callee_only.embed(sc)[names.index("flag_one"), ctx.own_dim:].any()


def test_context_is_appended_to_the_unchanged_own_vector(models, wrappers):
    own, ctx = models
    sc = wrappers[0]
    assert ctx.dim == own.dim + ctx.context_width + DATA_DIM and ctx.own_dim == own.dim
    assert ctx.context_width == 2 * int(own.parts[0]["w2"].shape[1])
    v, plain = ctx.embed(sc), own.embed(sc)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    head = v[:, :ctx.own_dim]
    assert np.allclose(head / np.linalg.norm(head, axis=1, keepdims=True), plain, atol=1e-5)
    leaf = [f.name for f in sc].index("count_spaces")  # calls nothing, reads no table
    assert not v[leaf, ctx.own_dim:].any()
    assert ctx.embed([]).shape == (0, ctx.dim) and ctx.embed_own([]).shape == (0, ctx.own_dim)
    assert np.array_equal(ctx.embed(sc), v)  # deterministic
    for cols in ctx.member_columns() + [ctx.sketch_columns()]:
        assert cols.max() < ctx.own_dim


def test_the_matcher_and_its_inlined_view_see_the_own_code_vectors(models, wrappers):
    """Context serves nearest neighbours; the matcher compares own code (and brings the call graph itself)."""
    from symbridge.match.transfer import embed_binary

    own, ctx = models
    sc = wrappers[0]
    binary = sc[0].binary
    o, full = ctx.embed_both(sc)
    assert np.array_equal(o, own.embed(sc)) and np.array_equal(full, ctx.embed(sc))
    assert np.array_equal(embed_binary(binary, ctx, own=True), o)
    assert np.array_equal(embed_binary(binary, ctx), full)
    merged = ctx.embed_merged(sc, [[0, 1], [2]])
    assert merged.shape == (2, ctx.own_dim) and np.allclose(merged[1], o[2], atol=1e-6)


def test_a_code_only_model_reads_callees_but_no_data(models, wrappers):
    _, ctx = models
    code = Model(ctx.t, dict(ctx.meta, code_only=True))
    sc = wrappers[0]
    v = code.embed(sc)
    assert v.shape[1] == ctx.dim and not v[:, -DATA_DIM:].any()
    assert v[[f.name for f in sc].index("wrap_parse"), ctx.own_dim:ctx.own_dim + ctx.context_width].any()
