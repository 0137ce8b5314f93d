"""Independent matcher runs on two cores: a forked child takes the second half of the agreement runs of
match_both_ways while this process does the first matching and the rest.

The child inherits the sides through ``fork`` (nothing is pickled but its answers: which reference function
each target function got). Where ``fork`` is missing, only one core is usable, the binaries are small, or
``SYMBRIDGE_WORKERS=1``, or the child fails, this process runs everything itself: the output is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ..model.parallel import beside, can_fork

MIN_FUNCTIONS = 3000  # both sides together; below this a run takes about what the fork costs

T = TypeVar("T")


def run_all(first: Callable[[], T], jobs: Sequence[Callable[[], dict[int, int]]], size: int
            ) -> tuple[T, list[dict[int, int]]]:
    """first() and each job's answer (a matching: target index -> reference index), the second half of the
    jobs in a forked child when `size` (the functions of both sides) is large enough to pay for it."""
    if size < MIN_FUNCTIONS or len(jobs) < 2 or not can_fork():
        return first(), [job() for job in jobs]
    half = len(jobs) // 2
    (out, mine), theirs = beside(lambda: [job() for job in jobs[half:]],
                                 lambda: (first(), [job() for job in jobs[:half]]))
    if theirs is None:  # the child's half is done here
        theirs = [job() for job in jobs[half:]]
    return out, mine + theirs
