"""Lifting, featurizing and embedding on two cores: a forked child takes the second half of the functions.

Lifting and feature counting are pure Python and take most of an embedding's time; the network is NumPy.
The child inherits the parent's loaded binaries through ``fork`` (nothing is re-read), lifts, featurizes
and embeds its half, and sends back the facts (so that matching does not lift them again) and the vectors. Where
``fork`` is missing, only one core is usable, the work is small, or ``SYMBRIDGE_WORKERS=1``, or the child
fails, the parent does everything itself: the output is the same either way.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

MIN_FUNCTIONS = 1500  # below this the fork (of a large process) and the transfer back cost about what they save

T = TypeVar("T")
_TASK: Callable[[], Any] | None = None  # the forked child's work: inherited, never pickled


def workers() -> int:
    """How many processes may featurize: SYMBRIDGE_WORKERS if set, else up to 2 of the CPUs this process may use."""
    env = os.environ.get("SYMBRIDGE_WORKERS", "").strip()
    if env.isdigit() and int(env) > 0:
        return min(int(env), 2)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return min(cpus, 2)


def can_fork() -> bool:
    """Two processes are allowed and a child can be forked."""
    return workers() >= 2 and "fork" in mp.get_all_start_methods()


def _run_task() -> Any:
    return _TASK()  # type: ignore[misc]


def beside(job: Callable[[], Any], here: Callable[[], T]) -> tuple[T, Any]:
    """here() in this process while a forked child runs job() (which inherits everything and is never
    pickled; only its result comes back): (here's result, job's, or None where the child failed or died).
    Meanwhile each of the two keeps to one BLAS thread: two processes with a BLAS thread per core each fight
    over the cores (matching libcrypto took 44 s so, 32 s with one thread each)."""
    global _TASK
    _TASK = job
    try:
        with threadpool_limits(limits=1, user_api="blas"), \
                ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
            res = pool.submit(_run_task)
            mine = here()
            try:
                theirs = res.result()
            except Exception:  # the child failed or died (memory, a signal)
                theirs = None
    finally:
        _TASK = None
    return mine, theirs


def in_halves(items: Sequence, compute: Callable[[Sequence], Any]) -> Any:
    """compute(items) as one array, the second half computed in a forked child where there are MIN_FUNCTIONS
    items or more and two processes are allowed (here, where the child fails). compute must give rows that do
    not depend on the other items."""
    import numpy as np

    if len(items) < MIN_FUNCTIONS or not can_fork():
        return compute(items)
    half = len(items) // 2
    mine, theirs = beside(lambda: compute(items[half:]), lambda: compute(items[:half]))
    return np.concatenate([mine, theirs if theirs is not None else compute(items[half:])])


def _child(model, part: Sequence) -> tuple:
    os.environ["SYMBRIDGE_WORKERS"] = "1"  # the child embeds its half alone (this is its own environment)
    return [f.facts for f in part], model.embed_own(part)


def embed(model, functions: Sequence, chunk: Callable[[Sequence], Any],
          progress: Callable[[int], None] | None = None) -> Any:
    """The vectors of all functions, the second half computed in a forked child; None where this does not
    apply (the caller then embeds alone). ``chunk`` embeds a slice in this process (with its progress
    reports)."""
    import numpy as np

    from ..binary import Function

    n = len(functions)
    if n < MIN_FUNCTIONS or not can_fork():
        return None
    if not all(isinstance(f, Function) for f in functions):  # their facts could not be handed back
        return None
    half = n // 2
    if sum(f._facts is None for f in functions[half:]) < MIN_FUNCTIONS // 2:  # the child's half is lifted already
        return None
    mine, theirs = beside(lambda: _child(model, functions[half:]), lambda: chunk(functions[:half]))
    if theirs is None:  # the child's half is done here
        return np.concatenate([mine, chunk(functions[half:])])
    facts, vectors = theirs
    for f, fx in zip(functions[half:], facts):
        if f._facts is None:
            f._facts = fx
            f.binary.spend_lift_budget(len(fx.mnemonics))
    if progress:
        progress(n - half)
    return np.concatenate([mine, vectors])
