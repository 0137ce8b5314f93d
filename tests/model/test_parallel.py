"""Lifting, featurizing and embedding on several cores gives the same vectors and facts as one core."""

import os

import numpy as np

from symbridge.binary import Binary
from symbridge.demo import demo_files
from symbridge.model import parallel
from symbridge.model.model import Model


def fresh_functions():
    ref, _, _ = demo_files()
    b = Binary(ref)
    return b, [f for f in b.functions if not f.is_plt]


def one_process_then_two(monkeypatch):
    """Vectors (and binary, functions) embedded in one process; then SYMBRIDGE_WORKERS=2 for what follows."""
    monkeypatch.setattr(parallel, "MIN_FUNCTIONS", 8)
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "1")
    b, fs = fresh_functions()
    vectors = Model.default().embed(fs)
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "2")
    return vectors, b, fs


def test_two_processes_embed_like_one(monkeypatch):
    one, b1, f1 = one_process_then_two(monkeypatch)
    b2, f2 = fresh_functions()
    reports = []
    two = Model.default().embed(f2, progress=reports.append)
    assert np.array_equal(one, two)
    assert sum(reports) == len(f2)
    # the child's facts came back: nothing is lifted again, and the lift budget counts them
    assert all(f._facts is not None for f in f2)
    assert [f.facts.tokens for f in f2] == [f.facts.tokens for f in f1]
    assert b2._lift_left == b1._lift_left


def test_small_sets_and_one_worker_stay_in_process(monkeypatch):
    _, fs = fresh_functions()
    assert parallel.embed(Model.default(), fs, lambda part, report: None) is None  # under MIN_FUNCTIONS
    monkeypatch.setattr(parallel, "MIN_FUNCTIONS", 8)
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "1")
    assert parallel.workers() == 1
    assert parallel.embed(Model.default(), fs, lambda part, report: None) is None


def test_a_helper_that_dies_costs_time_not_the_result(monkeypatch):
    one, _, _ = one_process_then_two(monkeypatch)
    monkeypatch.setattr(parallel, "_child", lambda *a: os._exit(3))  # killed, as by the OOM killer
    _, f2 = fresh_functions()
    reports = []
    assert np.array_equal(Model.default().embed(f2, progress=reports.append), one)
    assert sum(reports) == len(f2)


def test_a_child_that_dies_midway_is_not_counted_twice(monkeypatch):
    one, _, _ = one_process_then_two(monkeypatch)

    def dies_midway(model, part, done, slot):
        done[slot] += 5  # shown on the progress bar, then killed
        os._exit(3)
    monkeypatch.setattr(parallel, "_child", dies_midway)
    _, f2 = fresh_functions()
    reports = []
    assert np.array_equal(Model.default().embed(f2, progress=reports.append), one)
    assert 5 in reports and sum(reports) == len(f2)


def test_the_progress_shows_a_childs_functions_before_it_is_done(monkeypatch):
    """A child counts its functions in shared memory; this process shows them while it waits."""
    import multiprocessing as mp

    one, _, _ = one_process_then_two(monkeypatch)
    shown = mp.get_context("fork").Event()
    real = parallel._child

    def holds_on(model, part, done, slot):
        done[slot] += 1
        shown.wait(20)  # until this process has shown that one function (20 s and a failure if never)
        return real(model, part)
    monkeypatch.setattr(parallel, "_child", holds_on)
    _, f2 = fresh_functions()
    reports = []

    def show(k: int) -> None:
        reports.append(k)
        if k == 1:
            shown.set()
    assert np.array_equal(Model.default().embed(f2, progress=show), one)
    assert shown.is_set() and sum(reports) == len(f2)


def test_two_processes_keep_to_one_blas_thread_each_and_restore_it_after():
    """Two processes with a BLAS thread per core each would fight over the cores."""
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    assert before, "NumPy's BLAS is not visible to threadpoolctl"
    here, (child,) = parallel.spread([blas_threads], blas_threads)
    assert here == [1] * len(before) and child == [1] * len(before)
    assert blas_threads() == before


def test_merged_groups_split_over_two_processes_embed_like_one(monkeypatch):
    """The matcher's inlined view (Model.embed_merged): the same rows with a forked child as without."""
    _, fs = fresh_functions()
    groups = [[i, (i + 1) % len(fs), (i * 7) % len(fs)] for i in range(len(fs))]
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "1")
    one = Model.default().embed_merged(fs, groups)
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "2")
    monkeypatch.setattr(parallel, "MIN_FUNCTIONS", 8)
    assert len(groups) >= 8
    assert np.array_equal(Model.default().embed_merged(fs, groups), one)
    monkeypatch.setattr(parallel, "_run_task", lambda k: os._exit(3))  # the child dies: its half is done here
    assert np.array_equal(Model.default().embed_merged(fs, groups), one)


def test_four_processes_embed_like_one(monkeypatch):
    one, b1, f1 = one_process_then_two(monkeypatch)
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "4")
    assert len(parallel.parts(len(f1), parallel.MIN_FUNCTIONS // 2)) == 4
    b4, f4 = fresh_functions()
    reports = []
    assert np.array_equal(Model.default().embed(f4, progress=reports.append), one)
    assert sum(reports) == len(f4)
    assert [f.facts.tokens for f in f4] == [f.facts.tokens for f in f1]
    assert b4._lift_left == b1._lift_left


def test_parts_cover_the_items_once_and_are_never_shorter_than_asked(monkeypatch):
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "8")
    for n, least in [(0, 5), (4, 5), (10, 5), (11, 5), (100, 7), (1000, 3)]:
        bounds = parallel.parts(n, least)
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert len(bounds) <= 8 and (len(bounds) == 1 or all(hi - lo >= least for lo, hi in bounds))
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "1")
    assert parallel.parts(1000, 3) == [(0, 1000)]


def test_one_dead_child_costs_only_its_own_job():
    pid = os.getpid()

    def job(k):
        def run():
            if k == 1:
                os._exit(3)  # killed, as by the OOM killer
            if k == 2:
                raise ValueError("a job that fails")
            return (k, os.getpid() != pid)
        return run

    here, theirs = parallel.spread([job(k) for k in range(4)], lambda: "here")
    assert here == "here"
    assert theirs == [(0, True), None, None, (3, True)]


def test_without_a_setting_the_workers_follow_the_cpus_up_to_the_cap(monkeypatch):
    monkeypatch.delenv("SYMBRIDGE_WORKERS", raising=False)
    monkeypatch.setattr(parallel, "cpus", lambda: 64)
    assert parallel.workers() == parallel.MAX_WORKERS
    monkeypatch.setattr(parallel, "cpus", lambda: 3)
    assert parallel.workers() == 3
    monkeypatch.setenv("SYMBRIDGE_WORKERS", "12")
    assert parallel.workers() == 12


def test_memory_bounds_the_children_but_leaves_at_least_one(monkeypatch):
    monkeypatch.setattr(parallel, "memory_available", lambda: 8 << 30)
    assert parallel.affordable(1 << 30) == 6
    assert parallel.affordable(64 << 30) == 1
    monkeypatch.setattr(parallel, "memory_available", lambda: None)
    assert parallel.affordable(1 << 30) > 1000


def test_a_fork_that_fails_leaves_the_jobs_left_to_the_caller(monkeypatch):
    import multiprocessing.context as ctx

    started = []
    real = ctx.ForkProcess.start

    def start(self):
        if started:
            raise OSError("Resource temporarily unavailable")  # as fork() under a process limit
        started.append(self)
        real(self)

    monkeypatch.setattr(ctx.ForkProcess, "start", start)
    here, theirs = parallel.spread([lambda: 1, lambda: 2, lambda: 3], lambda: "here")
    assert here == "here" and theirs == [1, None, None]


def test_children_die_with_a_killed_parent():
    """The OOM killer takes the parent (the largest process): its children must not run on, or wait for ever
    to hand back their answers."""
    import subprocess
    import sys
    import time

    script = ("import multiprocessing as mp, os, time\n"
              "from symbridge.model import parallel\n"
              "os.environ['SYMBRIDGE_WORKERS'] = '2'\n"
              "def here():\n"
              "    print(*[p.pid for p in mp.active_children()], flush=True)\n"
              "    time.sleep(0.5)\n"
              "    os.kill(os.getpid(), 9)\n"
              "parallel.spread([lambda: time.sleep(60)], here)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == -9
    (child,) = [int(x) for x in run.stdout.split()]

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/status") as f:
                return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
        except FileNotFoundError:
            return False
    deadline = time.time() + 10
    while alive(child) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(child)
