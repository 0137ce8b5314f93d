"""The training sampler: rebuilt functions are paired across optimisation levels or compilers."""

import pytest

pytest.importorskip("torch")

from symbridge.train.train import Sampler, build_of  # noqa: E402


class FakeCorpus:
    """Two groups: one rebuilt at three levels by two compilers, one only from official builds."""

    def __init__(self):
        metas = [{"origin": "rebuild", "compiler": cc, "flags": f"{o} -g0"} for cc in ("gcc", "clang")
                 for o in ("-O0", "-O2", "-O3")] + [{"origin": "official", "compiler": "", "flags": ""}] * 2
        self.bins = [{"meta": m} for m in metas]
        self.groups = {("pkg", "lib", "f"): [(b, 0) for b in range(6)],
                       ("pkg", "lib", "g"): [(6, 1), (7, 1)]}

    def bag(self, b, k):
        return b, k


def test_build_of_reads_compiler_and_level_of_rebuilds_only():
    assert build_of({"origin": "rebuild", "compiler": "clang", "flags": "-O3 -g0"}) == ("clang", "-O3")
    assert build_of({"origin": "official", "compiler": "", "flags": ""}) == ("", "")


def test_rebuilt_pairs_differ_in_compiler_or_pair_O0_with_another_level():
    c = FakeCorpus()
    s = Sampler(c, seed=1, rebuild_share=0.5)
    assert s.rebuilt == [("pkg", "lib", "f")]
    for _ in range(200):
        (b1, _), (b2, _) = s.pair(("pkg", "lib", "f"), across=True)
        (cc1, o1), (cc2, o2) = build_of(c.bins[b1]["meta"]), build_of(c.bins[b2]["meta"])
        assert cc1 != cc2 or (o1 != o2 and "-O0" in (o1, o2))


def test_batches_hold_each_group_once():
    s = Sampler(FakeCorpus(), seed=0, rebuild_share=0.5)
    a, b = s.batch(4)
    assert len(a) == len(b) == 2
