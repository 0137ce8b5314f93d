"""Feature sets: set 4 adds exact field offsets and small immediates, set 5 the parameters a function reads,
set 6 access widths and returned values; the earlier sets' input is unchanged."""

from symbridge.analysis.lift import Facts
from symbridge.model.features import feature_counts, featurize


def facts() -> Facts:
    return Facts(tokens=["mov r32,[r64+d]", "cmp r32,i8", "ret"], mnemonics=["mov", "cmp", "ret"],
                 offsets=[0x34, 0x34], small=[0x2F], params=[(1, 4), (0, 8), (6, 16)],
                 widths=[4, 8], returns=[4, -1])


def test_feature_set_4_counts_field_offsets_and_small_immediates():
    c = feature_counts(facts(), feature_set=4)
    assert c["F34"] == 2 and c["Q2f"] == 1


def test_earlier_feature_sets_ignore_them():
    for fs in (1, 2, 3):
        assert not any(f[0] in "FQA" for f in feature_counts(facts(), feature_set=fs))
    assert not any(f[0] == "A" for f in feature_counts(facts(), feature_set=4))
    assert not any(f[0] == "R" or ":" in f for f in feature_counts(facts(), feature_set=5) if f[0] in "FR")


def test_feature_set_5_counts_the_parameters_read_first():
    c = feature_counts(facts(), feature_set=5)
    assert c["Aint2"] == 1 and c["Aflt1"] == 1  # the highest integer register read (rsi) gives two
    assert c["A0:8"] == 1 and c["A1:4"] == 1 and c["A6:16"] == 1


def test_feature_set_4_bag_fills_two_buckets_a_feature():
    ids, w = featurize(facts(), feature_set=4)
    n = len(feature_counts(facts(), feature_set=4))
    assert len(ids) == 2 * n and abs(float((w ** 2).sum()) - 1.0) < 1e-5


def test_feature_set_6_counts_access_widths_and_returned_values():
    c = feature_counts(facts(), feature_set=6)
    assert c["F34:4"] == 1 and c["F34:8"] == 1 and c["F34"] == 2
    assert c["R4"] == 1 and c["R-1"] == 1
