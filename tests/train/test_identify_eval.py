"""The held-out identify check: a function has a counterpart when one of its names is in the library."""

from symbridge.train.identify_eval import score


def test_score_counts_names_right_and_recall_over_functions_whose_name_the_library_holds():
    truth = {0x10: {"lz4_a"}, 0x20: {"lz4_b"}, 0x30: {"memcpy"},
             0x40: {"lz4_c.isra.0", "lz4_c"}}  # as truth_names gives them
    result = {"functions": [
        {"address": 0x10, "name": "lz4_a", "via": ["embedding"]},  # right
        {"address": 0x20, "name": None, "via": []},  # a counterpart left unnamed
        {"address": 0x30, "name": "lz4_b", "via": ["order"]},  # wrong: memcpy is not in the library
        {"address": 0x40, "name": "lz4_c", "via": ["callgraph"]},  # right: lz4_c.isra.0 is a copy of lz4_c
        {"address": 0x50, "name": "memcpy@plt", "via": ["import"]},  # PLT stubs are not judged
    ]}
    named, right, has, right_cp = score(result, truth, {"lz4_a", "lz4_b", "lz4_c"})
    assert (named, right, has, right_cp) == (3, 2, 3, 2)


def test_score_counts_only_the_names_at_or_above_the_threshold():
    """A result made with every name given (min_confidence 0), judged at the calibrated threshold."""
    truth = {0x10: {"lz4_a"}, 0x20: {"lz4_b"}}
    result = {"functions": [{"address": 0x10, "name": "lz4_a", "confidence": 0.9, "via": ["embedding"]},
                            {"address": 0x20, "name": "lz4_b", "confidence": 0.3, "via": ["order"]}]}
    assert score(result, truth, {"lz4_a", "lz4_b"}) == (2, 2, 2, 2)
    assert score(result, truth, {"lz4_a", "lz4_b"}, threshold=0.68) == (1, 1, 2, 1)
