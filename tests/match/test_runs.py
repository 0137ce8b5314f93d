"""match_both_ways's agreement runs on two cores give what one process gives."""

import os
import time

import numpy as np
import pytest

from symbridge.match import runs
from symbridge.match.agreement import match_both_ways
from symbridge.match.matcher import Matcher, Params
from tests.match.test_agreement import noisy_views
from tests.match.test_matcher import noisy_pair

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def evidence(res):
    return {i: (m.s, m.reverse_agrees, m.plain_agrees, m.members_agree, m.views_agree) for i, m in res.matches.items()}


def pair_with_views():
    ref, tgt = noisy_pair(3, n=200, families=30, noise=0.6)
    return ref, tgt, [np.arange(0, 8), np.arange(8, 16)], noisy_views(ref, tgt, 2, 0.3, seed=1)


def note_pids(monkeypatch, path, delay=lambda here: 0.0):
    """Matcher.run notes which process runs each matching (after a delay: delay(run in this process))."""
    parent, real = os.getpid(), Matcher.run

    def run(self, candidates=None):
        time.sleep(delay(os.getpid() == parent))
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")
        return real(self, candidates)

    monkeypatch.setattr(Matcher, "run", run)


@pytest.mark.parametrize("workers, least", [(2, 1), (4, 3)])
def test_forked_children_give_the_same_evidence_as_one_process(monkeypatch, tmp_path, workers, least):
    ref, tgt, members, views = pair_with_views()
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "1")
    alone = evidence(match_both_ways(ref, tgt, Params(), members, views))
    monkeypatch.setenv("SYMBRIDGE_WORKERS", str(workers))
    monkeypatch.setattr(runs, "MIN_FUNCTIONS", 0)
    note_pids(monkeypatch, tmp_path / "pids", lambda here: 1.0 if here else 0.3)  # each run takes a while
    assert evidence(match_both_ways(ref, tgt, Params(), members, views)) == alone
    pids = (tmp_path / "pids").read_text().split()
    # the first matching here, the six agreement runs shared with the forked children as each comes free
    assert len(pids) == 7 and least <= len(set(pids)) - 1 <= workers - 1 and str(os.getpid()) in pids


def test_the_child_takes_agreement_runs_while_this_process_does_the_first_matching(monkeypatch, tmp_path):
    ref, tgt, members, views = pair_with_views()
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "2")
    monkeypatch.setattr(runs, "MIN_FUNCTIONS", 0)
    parent, real, calls = os.getpid(), Matcher.run, []

    def run(self, candidates=None):
        if os.getpid() == parent and not calls:  # the first matching takes a while
            calls.append(1)
            time.sleep(2.0)
        with open(tmp_path / "pids", "a") as f:
            f.write(f"{os.getpid()}\n")
        return real(self, candidates)

    monkeypatch.setattr(Matcher, "run", run)
    match_both_ways(ref, tgt, Params(), members, views)
    pids = (tmp_path / "pids").read_text().split()
    assert len(pids) == 7 and len(pids) - pids.count(str(parent)) >= 3  # the child did at least half


def test_a_failing_child_leaves_its_runs_to_this_process(monkeypatch):
    ref, tgt, members, views = pair_with_views()
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "1")
    alone = evidence(match_both_ways(ref, tgt, Params(), members, views))
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "2")
    monkeypatch.setattr(runs, "MIN_FUNCTIONS", 0)

    parent, real = os.getpid(), Matcher.run

    def run(self, candidates=None):
        if os.getpid() != parent:
            os._exit(3)  # the child dies, as one killed for memory would
        return real(self, candidates)

    monkeypatch.setattr(Matcher, "run", run)
    assert evidence(match_both_ways(ref, tgt, Params(), members, views)) == alone


@pytest.mark.parametrize("workers", ["1", "2", "4"])
def test_progress_hears_how_many_agreement_runs_are_done_in_every_process(monkeypatch, workers):
    ref, tgt, members, views = pair_with_views()
    heard = []
    monkeypatch.setenv("SYMBRIDGE_WORKERS", workers)
    monkeypatch.setattr(runs, "MIN_FUNCTIONS", 0)
    match_both_ways(ref, tgt, Params(), members, views, announce=lambda k, n: heard.append((k, n)))
    ks = [k for k, _ in heard]  # the count rises to all six (reverse, plain, two members, two views)
    assert ks == sorted(set(ks)) and ks[-1] == 6 and all(n == 6 and 1 <= k for k, n in heard)
    if workers == "1":
        assert ks == [1, 2, 3, 4, 5, 6]


def test_children_are_held_to_what_memory_allows(monkeypatch, tmp_path):
    ref, tgt, members, views = pair_with_views()
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "4")
    monkeypatch.setattr(runs, "MIN_FUNCTIONS", 0)
    monkeypatch.setattr(runs, "affordable", lambda each: 1)
    note_pids(monkeypatch, tmp_path / "pids")
    match_both_ways(ref, tgt, Params(), members, views)
    assert len(set((tmp_path / "pids").read_text().split())) <= 2
