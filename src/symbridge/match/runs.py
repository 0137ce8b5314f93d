"""Independent matcher runs on two cores: a forked child takes the second half of the agreement runs of
match_both_ways while this process does the first matching and the rest.

The child inherits the sides through ``fork`` (nothing is pickled but its answers: which reference function
each target function got). Where ``fork`` is missing, only one core is usable, the binaries are small, or
``SYMBRIDGE_WORKERS=1``, or the child fails, this process runs everything itself: the output is the same.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from ..model.parallel import workers

MIN_FUNCTIONS = 3000  # both sides together; below this a run takes about what the fork costs

T = TypeVar("T")
_JOBS: Sequence[Callable[[], dict[int, int]]] = ()  # for the forked child: inherited, never pickled


def _child(lo: int, hi: int) -> list[dict[int, int]]:
    return [job() for job in _JOBS[lo:hi]]


def run_all(first: Callable[[], T], jobs: Sequence[Callable[[], dict[int, int]]], size: int
            ) -> tuple[T, list[dict[int, int]]]:
    """first() and each job's answer (a matching: target index -> reference index), the second half of the
    jobs in a forked child when `size` (the functions of both sides) is large enough to pay for it."""
    global _JOBS
    if size < MIN_FUNCTIONS or len(jobs) < 2 or workers() < 2 or "fork" not in mp.get_all_start_methods():
        return first(), [job() for job in jobs]
    half = len(jobs) // 2
    _JOBS = jobs
    try:
        with ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
            res = pool.submit(_child, half, len(jobs))
            out = first()
            mine = [job() for job in jobs[:half]]
            try:
                theirs = res.result()
            except Exception:  # the child failed or died (memory, a signal): its half is done here
                theirs = None
    finally:
        _JOBS = ()
    if theirs is None:
        theirs = [job() for job in jobs[half:]]
    return out, mine + theirs
