"""A side's export status, and thunks and short wrappers known by where they jump (match.side)."""

import numpy as np

from tests.match.test_matcher import side


def test_export_status_counts_only_between_libraries_of_about_the_same_interface():
    from symbridge.match.side import exports_agree

    def s(flags):
        out = side(np.eye(len(flags), dtype=np.float32))
        out.exported = np.array(flags, bool)
        return out

    assert exports_agree(s([1, 1, 0, 0]), s([1, 0, 1, 0]), 0.5)
    assert not exports_agree(s([1, 1, 1, 1]), s([1, 0, 0, 0]), 0.5)  # a library bundled into another
    assert not exports_agree(s([1, 0]), s([0, 0]), 0.5)


def test_one_jump_functions_are_known_by_where_they_jump():
    """Two thunks look the same to the model; after blend_thunks each is closest to the thunk whose target is
    closest to its own target."""
    from types import SimpleNamespace

    from symbridge.match.keys import wrappers

    from symbridge.match.side import blend_thunks

    a, b, t = np.eye(3, dtype=np.float32)
    fns = [SimpleNamespace(facts=SimpleNamespace(mnemonics=m)) for m in (["jmp"], ["jmp"], ["push", "ret"],
                                                                           ["push", "ret"])]
    ref = side([t, t, a, b], callees=[[2], [3], [], []])  # ref 0 jumps to a, ref 1 to b
    tgt = side([t, t, b, a], callees=[[2], [3], [], []])  # target 0 jumps to b, target 1 to a
    assert blend_thunks(ref, wrappers(fns)) == 2 and blend_thunks(tgt, wrappers(fns)) == 2
    sims = tgt.vectors[:2] @ ref.vectors[:2].T
    assert sims[0, 1] > 0.99 and sims[1, 0] > 0.99 and sims[0, 0] < 0.8
    assert np.allclose(ref.vectors[2:], [a, b])  # other functions keep their vectors


def test_short_tail_calling_wrappers_are_blended_like_thunks_and_other_code_is_not():
    """apr_pollset_create is ``xor ecx, ecx; jmp apr_pollset_create_ex``: to the model it is every other
    two-instruction wrapper, so it is known by its callee, as a thunk is. Branching, calling or longer code
    keeps its own vector."""
    from types import SimpleNamespace

    from symbridge.match.keys import WRAPPER_MAX_LEN, is_wrapper, wrappers

    from symbridge.match.side import blend_thunks

    assert is_wrapper(["jmp"]) and is_wrapper(["xor", "jmp"]) and is_wrapper(["mov", "mov", "mov", "jmp"])
    assert not is_wrapper(["mov"] * WRAPPER_MAX_LEN + ["jmp"])  # too long
    assert not is_wrapper(["test", "je", "jmp"]) and not is_wrapper(["call", "jmp"]) and not is_wrapper(["ret"])
    assert not is_wrapper([])
    a, b, t = np.eye(3, dtype=np.float32)
    kinds = (["xor", "jmp"], ["test", "jne", "jmp"], ["xor", "jmp"], ["push", "ret"])
    fns = [SimpleNamespace(facts=SimpleNamespace(mnemonics=m)) for m in kinds]
    s = side([t, t, t, a], callees=[[3], [3], [3, 1], []])  # the third has two callees: not known by one
    assert blend_thunks(s, wrappers(fns)) == 1
    assert np.allclose(s.vectors[0], (t + a) / np.linalg.norm(t + a)) and np.allclose(s.vectors[1:3], [t, t])
