"""Lifting, featurizing and embedding on several cores: forked children take parts of the functions.

Lifting and feature counting are pure Python and take most of an embedding's time; the network is NumPy.
Each child inherits the parent's loaded binaries through ``fork`` (nothing is re-read), lifts, featurizes
and embeds its part, and sends back the facts (so that matching does not lift them again) and the vectors.
Where ``fork`` is missing, only one core is usable, the work is small, or ``SYMBRIDGE_WORKERS=1``, or a child
fails, the parent does that part itself: the output is the same either way.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

MIN_FUNCTIONS = 1500  # below this the fork (of a large process) and the transfer back cost about what they save
MAX_WORKERS = 8  # processes used by default, at most (SYMBRIDGE_WORKERS may ask for more)
POLL = 0.25  # seconds between looks at the children's progress while this process waits for them

T = TypeVar("T")
_TASKS: list[Callable[[], Any]] = []  # the forked children's work: inherited, never pickled
_READ_ENDS: list = []  # the parent's ends of the children's pipes so far: each child closes its copies


def cpus() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workers() -> int:
    """How many processes may work at once: SYMBRIDGE_WORKERS if set, else the CPUs this process may use, up to
    MAX_WORKERS."""
    env = os.environ.get("SYMBRIDGE_WORKERS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(cpus(), MAX_WORKERS))


def memory_available() -> int | None:
    """Bytes of memory available to new work (MemAvailable of /proc/meminfo); None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def affordable(each: int) -> int:
    """How many more processes needing `each` bytes fit in three quarters of the available memory (at least
    one: a child that dies for memory only costs time)."""
    avail = memory_available()
    if avail is None or each <= 0:
        return 1 << 30
    return max(1, int(0.75 * avail) // each)


def can_fork() -> bool:
    """Two processes are allowed and a child can be forked."""
    return workers() >= 2 and "fork" in mp.get_all_start_methods()


def _run_task(k: int) -> Any:
    return _TASKS[k]()


def _die_with_parent(parent: int) -> None:
    """Have Linux kill this child when its parent dies (the OOM killer takes the parent, the largest process):
    a child left alone would run on for nothing."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before that took hold
        os._exit(1)


def _child_main(k: int, conn, parent: int) -> None:
    """A forked child: run job k and send back (True, result), or (False, None) where it raised. It forks no
    children of its own, and closes its copies of the parent's ends of the pipes (with those open, a dead
    parent's pipe would never break and the child would wait to send for ever)."""
    _die_with_parent(parent)
    for end in _READ_ENDS:
        end.close()
    os.environ["SYMBRIDGE_WORKERS"] = "1"
    try:
        result = (True, _run_task(k))
    except Exception:
        result = (False, None)
    try:
        conn.send(result)
    finally:
        conn.close()


def spread(jobs: Sequence[Callable[[], Any]], here: Callable[[], T],
           wait: Callable[[], None] | None = None) -> tuple[T, list[Any]]:
    """here() in this process while a forked child runs each of jobs (which inherit everything and are never
    pickled; only their results come back): (here's result, each job's, or None where its child failed or
    died; one child's death costs only its own job). Once here() is done, wait() is called every POLL seconds
    until the children are (a progress display). Meanwhile each process keeps to one BLAS thread:
    processes with a BLAS thread per core each fight over the cores (matching libcrypto took 44 s so, 32 s with
    one thread each, on two cores)."""
    global _TASKS, _READ_ENDS
    ctx = mp.get_context("fork")
    _TASKS = list(jobs)
    _READ_ENDS = []
    children = []
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            for k in range(len(jobs)):
                mine_end, their_end = ctx.Pipe(duplex=False)
                _READ_ENDS.append(mine_end)
                proc = ctx.Process(target=_child_main, args=(k, their_end, os.getpid()), daemon=True)
                try:
                    proc.start()
                except OSError:  # no more processes (limits, memory): the jobs left come back as None
                    mine_end.close()
                    break
                finally:
                    their_end.close()  # the child holds it: a child that dies leaves EOF here
                children.append((proc, mine_end))
            mine = here()
            theirs = []
            for _, conn in children:
                try:
                    while wait is not None and not conn.poll(POLL):  # a dead child's pipe polls ready (EOF)
                        wait()
                    ok, got = conn.recv()
                except (EOFError, OSError):  # the child died (memory, a signal)
                    ok, got = False, None
                theirs.append(got if ok else None)
            theirs += [None] * (len(jobs) - len(children))
    finally:
        _TASKS, _READ_ENDS = [], []
        for proc, conn in children:
            conn.close()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return mine, theirs


def parts(n: int, min_part: int) -> list[tuple[int, int]]:
    """[lo, hi) bounds splitting n items over as many processes as workers() allows, each part at least
    min_part items long (one part where forking is not possible)."""
    k = max(1, min(workers() if can_fork() else 1, n // max(min_part, 1)))
    bounds = [n * j // k for j in range(k + 1)]
    return list(zip(bounds, bounds[1:]))


def in_parts(items: Sequence, compute: Callable[[Sequence], Any]) -> Any:
    """compute(items) as one array, split over forked children where there are MIN_FUNCTIONS items or more and
    more processes are allowed (a part whose child fails is done here). compute must give rows that do not
    depend on the other items."""
    import numpy as np

    if len(items) < MIN_FUNCTIONS:
        return compute(items)
    (lo, hi), *rest = parts(len(items), MIN_FUNCTIONS // 2)
    if not rest:
        return compute(items)
    jobs = [lambda a=a, b=b: compute(items[a:b]) for a, b in rest]
    mine, theirs = spread(jobs, lambda: compute(items[lo:hi]))
    return np.concatenate([mine, *(t if t is not None else compute(items[a:b]) for t, (a, b) in zip(theirs, rest))])


def _child(model, part: Sequence, done=None, slot: int = 0) -> tuple:
    """Facts and own-code vectors of a part, counting the functions embedded so far in done[slot]."""
    def count(k: int) -> None:
        done[slot] += k

    return [f.facts for f in part], model.embed_own(part, count if done is not None else None)


def _counters(n: int):
    """n integers in memory shared with forked children (each child writes its own); None where the system
    gives no shared memory (the children's progress then shows when each is done)."""
    try:
        return mp.get_context("fork").RawArray("q", n)
    except (OSError, ImportError):
        return None


def _skipping(progress: Callable[[int], None], first: int) -> Callable[[int], None]:
    """progress, less its first `first` functions (shown already: a failed child's, whose part runs here)."""
    left = [first]

    def report(k: int) -> None:
        skip = min(k, left[0])
        left[0] -= skip
        if k > skip:
            progress(k - skip)
    return report


def embed(model, functions: Sequence, chunk: Callable[[Sequence, Callable[[int], None] | None], Any],
          progress: Callable[[int], None] | None = None) -> Any:
    """The vectors of all functions, all parts but the first computed in forked children; None where this
    does not apply (the caller then embeds alone). ``chunk(part, report)`` embeds a slice in this process,
    passing report the functions it has done as it goes. ``progress`` hears every process's functions: the
    children count theirs in shared memory, which this process reads as it reports its own and while it
    waits."""
    import numpy as np

    from ..binary import Function

    n = len(functions)
    if n < MIN_FUNCTIONS:
        return None
    (lo, hi), *rest = parts(n, MIN_FUNCTIONS // 2)  # one part where no child can be forked
    if not rest or not all(isinstance(f, Function) for f in functions):  # their facts could not be handed back
        return None
    if sum(f._facts is None for f in functions[hi:]) < MIN_FUNCTIONS // 2:  # lifted already
        return None
    done = _counters(len(rest)) if progress else None
    seen = [0] * len(rest)

    def catch_up() -> None:  # the children's functions done since the last look, onto the display
        for j in range(len(rest)):
            new = done[j] - seen[j]
            if new > 0:
                seen[j] += new
                progress(new)

    def report(k: int) -> None:
        progress(k)
        catch_up()

    live = done is not None  # counted only where there is a display
    jobs = [lambda a=a, b=b, j=j: _child(model, functions[a:b], done, j) for j, (a, b) in enumerate(rest)]
    mine, theirs = spread(jobs, lambda: chunk(functions[lo:hi], report if live else progress),
                          catch_up if live else None)
    if live:
        catch_up()
    out = [mine]
    for j, (got, (a, b)) in enumerate(zip(theirs, rest)):
        if got is None:  # this child's part is done here; what it showed is not shown twice
            out.append(chunk(functions[a:b], _skipping(progress, seen[j]) if progress else None))
            continue
        facts, vectors = got
        for f, fx in zip(functions[a:b], facts):
            if f._facts is None:
                f._facts = fx
                f.binary.spend_lift_budget(len(fx.mnemonics))
        if progress and b - a > seen[j]:
            progress(b - a - seen[j])
        out.append(vectors)
    return np.concatenate(out)
