"""The inlined view: which callees fold into a caller, which side gets the view, and that the matcher uses it."""

from types import SimpleNamespace

import numpy as np
import pytest

from symbridge.binary import Binary
from symbridge.demo import demo_files
from symbridge.match.inline import inline_groups, inline_side, inlined_vectors
from symbridge.match.matcher import Matcher, Params
from symbridge.model.model import Model
from tests.match.test_matcher import side


@pytest.fixture(scope="module")
def demo_functions():
    ref, _, _ = demo_files()
    return Binary(ref).code_functions


def test_the_less_optimised_side_is_the_one_with_markedly_more_functions():
    assert inline_side(100, 60, 0.85) == "ref"  # the target lost functions to inlining
    assert inline_side(60, 100, 0.85) == "tgt"
    assert inline_side(100, 90, 0.85) is None  # about the same: no view
    assert inline_side(100, 60, 0.0) is None  # switched off
    assert inline_side(0, 10, 0.85) is None


def test_callees_with_one_caller_or_a_small_body_fold_into_their_callers():
    fns = [SimpleNamespace(size=s) for s in (200, 500, 40, 500)]
    callees = [[1, 2, 3], [], [], []]
    callers = [[], [0], [0, 3], [0, 2]]
    # 1: one caller; 2: two callers but small; 3: two callers and big; a function never folds into itself
    assert inline_groups(fns, callees, callers, max_size=64) == [[0, 1, 2], [1], [2], [3]]


def test_inlined_view_embeds_a_caller_with_its_callees_and_leaves_the_rest(demo_functions):
    m = Model.default()
    fns = demo_functions[:3]
    plain = m.embed_own(fns)  # the matcher compares own code
    view = inlined_vectors(m, fns, plain, [[1], [], []], [[], [0], []], max_size=64)
    assert np.array_equal(view[1:], plain[1:])
    assert np.allclose(view[0], m.embed_merged(fns, [[0, 1]])[0])
    assert not np.allclose(view[0], plain[0])


def test_embedding_functions_one_by_one_merged_is_plain_embedding(demo_functions):
    m = Model.default()
    fns = demo_functions[:20]
    assert np.allclose(m.embed_merged(fns, [[k] for k in range(len(fns))]), m.embed_own(fns), atol=1e-6)


def test_the_matcher_compares_the_optimised_function_with_the_inlined_view():
    """Target 0 is reference 0 with its helper (reference 1) inlined: the plain vectors put it next to the
    helper, the inlined view next to its own reference function."""
    a, h, c = np.eye(3, dtype=np.float32)
    ref = side([a, h, c], callees=[[1], [], []])
    tgt = side([0.5 * a + 0.85 * h, c])
    assert Matcher(ref, tgt, Params()).run().matches[0].s == 1
    ref.inlined = np.stack([(a + h) / np.sqrt(2), h, c]).astype(np.float32)
    assert Matcher(ref, tgt, Params()).run().matches[0].s == 0
