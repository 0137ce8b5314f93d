"""Independent matcher runs on several cores: forked children take agreement runs of match_both_ways from a
shared counter while this process does the first matching, then all take the rest as they come free (the
runs differ in cost: the TF-IDF view is 1,024-dimensional, a member's 128).

The children inherit the sides through ``fork`` (nothing is pickled but their answers: which reference function
each target function got). Where ``fork`` is missing, only one core is usable, the binaries are small, or
``SYMBRIDGE_WORKERS=1``, this process runs everything itself; a run whose child fails runs here afterwards. The
output is the same either way.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..model.parallel import affordable, can_fork, spread, workers

# both sides together; below this the runs are over in a fraction of a second either way. Since the two processes
# keep to one BLAS thread each (parallel.spread), two take 0.57 to 0.68 of one's time on pairs of 181 to 1,422
# functions (3,000 before)
MIN_FUNCTIONS = 1000
RUN_BYTES = 16 << 10  # memory a child's run takes a function of both sides (about 12 KB measured on libcrypto)
LOCK_WAIT = 30.0  # seconds: the counter's lock is held for an increment, so a longer wait means its holder died

T = TypeVar("T")


def run_all(first: Callable[[], T], jobs: Sequence[Callable[[], dict[int, int]]], size: int,
            announce: Callable[[int, int], None] | None = None) -> tuple[T, list[dict[int, int]]]:
    """first() and each job's answer (a matching: target index -> reference index), in the order of jobs;
    forked children (up to parallel.workers() - 1, and as many as the available memory holds) take jobs from a
    shared counter when `size` (the functions of both sides) is large enough to pay for it. A job a child took
    and did not answer (it failed or died) runs here. ``announce(k, n)`` hears, in this process, that k of the
    n jobs are done (in any process; the children mark theirs in shared memory, read as this process finishes
    one and while it waits): a progress display for large binaries, where each job takes minutes."""
    tell = announce or (lambda k, n: None)

    def alone() -> tuple[T, list[dict[int, int]]]:
        out, answers = first(), []
        for k, job in enumerate(jobs):
            answers.append(job())
            tell(k + 1, len(jobs))
        return out, answers

    if size < MIN_FUNCTIONS or len(jobs) < 2 or not can_fork():
        return alone()
    try:
        ctx = mp.get_context("fork")
        counter = ctx.Value("i", 0)  # the next job to take, inherited by the children
        finished = ctx.RawArray("b", len(jobs))  # 1 for each job done, by whichever process
    except (OSError, ImportError):  # no shared memory or semaphores here (some sandboxes): one process
        return alone()
    told = [0]

    def show() -> None:  # how many jobs are done, where that changed
        k = sum(finished)
        if k != told[0]:
            told[0] = k
            tell(k, len(jobs))

    def drain(here: bool) -> dict[int, dict[int, int]]:
        done = {}
        lock = counter.get_lock()
        while lock.acquire(timeout=LOCK_WAIT):  # a child killed while holding it leaves the rest to the end
            k = counter.value
            counter.value += 1
            lock.release()
            if k >= len(jobs):
                break
            done[k] = jobs[k]()
            finished[k] = 1
            if here:
                show()
        return done

    children = min(workers() - 1, len(jobs), affordable(size * RUN_BYTES))
    (out, mine), theirs = spread([lambda: drain(False)] * children, lambda: (first(), drain(True)), show)
    show()
    answers = dict(mine)
    for got in theirs:
        answers.update(got or {})
    for k in range(len(jobs)):  # those a failed child took, here
        if k not in answers:
            answers[k] = jobs[k]()
            finished[k] = 1
            show()
    return out, [answers[k] for k in range(len(jobs))]
