"""`symbridge index add/list` and `symbridge identify` as other tools call them, and SIGKILL during add."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from symbridge.store import open_store
from symbridge.store.ann import index_paths

pytestmark = pytest.mark.skipif(shutil.which("symbridge") is None, reason="symbridge is not installed")


def run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["symbridge", *map(str, args)], check=False, capture_output=True, text=True,
                          timeout=120, **kw)


def test_a_bad_file_among_several_is_left_out_and_the_others_added(fixtures, db, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a binary\n")
    r = run("index", "add", db, fixtures["ref"], text, fixtures["other"])
    assert r.returncode == 2
    assert f"warning: {text}: a text file" in r.stderr and "1 of 3 files left out" in r.stderr
    assert "Traceback" not in r.stderr
    listed = run("index", "list", db).stdout.splitlines()
    assert [line.split()[-1] for line in listed] == [str(fixtures["ref"]), str(fixtures["other"])]
    alone = run("index", "add", db, text)  # one file: its own one-line error, as before
    assert alone.returncode == 2 and alone.stderr.strip().splitlines() == [f"symbridge: error: {text}: a text file, "
                                                                           "not an ELF file"]


def test_cli_add_list_identify(fixtures, db, tmp_path):
    r = run("index", "add", db, fixtures["ref"], fixtures["other"])
    assert r.returncode == 0, r.stderr
    assert all(f"{fixtures[k]}: added " in r.stderr for k in ("ref", "other")) and "of them named" in r.stderr
    r = run("index", "add", "-q", db, fixtures["ref"])
    assert r.returncode == 0 and r.stderr == ""
    r = run("index", "list", db)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[-1] == str(fixtures["ref"]) and lines[1].split()[-1] == str(fixtures["other"])
    total = sum(int(line.split()[1]) for line in lines)
    assert r.stderr.startswith(f"2 binaries, {total:,} functions")  # the summary goes to stderr
    out = tmp_path / "res.json"
    listed = run("index", "list", db, "--json", "-")
    assert listed.returncode == 0 and listed.stderr == ""
    js = json.loads(listed.stdout)
    assert js["library"] == str(db) and [b["path"] for b in js["binaries"]] == [str(fixtures["ref"]),
                                                                              str(fixtures["other"])]
    assert [(b["sha256"][:12], b["functions"], b["named"]) for b in js["binaries"]] == [
        (line.split()[0], int(line.split()[1]), int(line.split()[2])) for line in lines]
    assert {"build_id", "model", "added_at"} <= set(js["binaries"][0])
    r = run("identify", db, fixtures["target"], "--json", out)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["reference"] == str(db) and res["target"] == str(fixtures["target"])
    code = [f for f in res["functions"] if "import" not in f["via"]]
    assert code and all(c["binary"] in (str(fixtures["ref"]), str(fixtures["other"]))
                        for f in code for c in f["candidates"])
    named = sum(1 for f in code if f["name"])
    assert named >= len(code) // 3
    assert r.stderr.strip().startswith(f"named {named} of {len(code)} functions of {fixtures['target']}")
    r = run("identify", db, fixtures["target"], "--json", "-")
    assert r.returncode == 0 and json.loads(r.stdout) == res
    r = run("identify", "-q", db, fixtures["target"], "--json", out)
    assert r.returncode == 0 and r.stderr == ""


def test_cli_identify_points_an_old_library_to_index_upgrade(fixtures, db):
    """A library whose binaries lack wrapper status (made by an earlier version) gets a one-line hint, and
    `index upgrade` fills the status in from the binaries' paths."""
    assert run("index", "add", "-q", db, fixtures["ref"]).returncode == 0
    con = sqlite3.connect(str(db))
    con.execute("UPDATE functions SET wrapper = NULL")
    con.commit()
    con.close()
    r = run("identify", db, fixtures["target"], "--json", os.devnull)
    assert r.returncode == 0 and f"symbridge index upgrade {db}" in r.stderr
    r = run("index", "upgrade", db)
    assert r.returncode == 0 and r.stderr.startswith(f"{fixtures['ref']}: ") and "marked" in r.stderr, r.stderr
    r = run("identify", db, fixtures["target"], "--json", os.devnull)
    assert r.returncode == 0 and "index upgrade" not in r.stderr
    r = run("index", "upgrade", db)
    assert r.returncode == 0 and "nothing to upgrade" in r.stderr


@pytest.mark.parametrize("db_arg", ["postgresql://user@localhost/symbols", "{tmp}/no/such/dir/x.db",
                                    "{tmp}/missing.db", "{ref}"])
def test_cli_bad_db_is_exit_2_one_line(fixtures, tmp_path, db_arg):
    arg = db_arg.format(tmp=tmp_path, ref=fixtures["ref"])
    for cmd in (["index", "list", arg], ["identify", arg, str(fixtures["target"])]):
        r = run(*cmd, env=dict(os.environ, COLUMNS="400"))
        assert r.returncode == 2, (cmd, r.stderr)
        assert r.stdout == ""
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("symbridge: error:"), r.stderr
    if arg.startswith("postgresql://"):  # short enough to stay one line at any terminal width
        r = run("index", "add", arg, fixtures["ref"])
        assert r.returncode == 2
        assert r.stderr == "symbridge: error: PostgreSQL backends are not supported in this build\n"


def test_cli_stripped_binary_is_exit_2(fixtures, db):
    r = run("index", "add", db, fixtures["stripped"], env=dict(os.environ, COLUMNS="400"))
    assert r.returncode == 2 and "has no function names to add" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def _state(db) -> tuple[set[str], int]:
    con = sqlite3.connect(str(db))
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        paths = {r[0] for r in con.execute("SELECT path FROM binaries")}
        n = con.execute("SELECT count(*) FROM functions").fetchone()[0]
        per = dict(con.execute("SELECT path, n_functions FROM binaries"))
        counts = dict(con.execute("SELECT b.path, count(f.id) FROM binaries b LEFT JOIN functions f "
                                  "ON f.binary_id = b.id GROUP BY b.id"))
        assert per == counts  # never a binary with part of its functions
        return paths, n
    finally:
        con.close()


KILL_ITERATIONS = int(os.environ.get("SYMBRIDGE_KILL_ITERATIONS", "20"))  # benchmarks/kill_test.sh: 220


def test_sigkill_during_add(fixtures, tmp_path):
    """SIGKILL `index add` at random times: the DB always holds exactly the completed adds (plus, at most,
    the one in flight when its COMMIT had already happened), opens cleanly, and its ANN index heals."""
    rng = random.Random(1234)
    data = fixtures["ref"].read_bytes()
    bins = []
    for i in range(KILL_ITERATIONS + 4):  # distinct files (sha256) with the same code: trailing bytes after the ELF
        p = tmp_path / f"bin{i:02d}"
        p.write_bytes(data + i.to_bytes(4, "little") * (i % 7 + 1))
        bins.append(p)
    db = tmp_path / "kill.db"
    marker = tmp_path / "completed.txt"
    completed: list[str] = []
    durations = []
    for b in bins[:2]:  # two complete adds: how long one takes (the first also creates the DB)
        t0 = time.monotonic()
        r = run("index", "add", "-q", db, b)
        assert r.returncode == 0, r.stderr
        durations.append(time.monotonic() - t0)
        completed.append(str(b))
        marker.write_text("\n".join(completed))
    duration = min(durations)
    nxt, kills = 2, 0
    for _ in range(KILL_ITERATIONS):
        if nxt >= len(bins):
            break
        b = bins[nxt]
        proc = subprocess.Popen(["symbridge", "index", "add", "-q", str(db), str(b)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=rng.uniform(0.3, 1.15) * duration)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if proc.returncode == 0:
            completed.append(str(b))
            marker.write_text("\n".join(completed))
            nxt += 1
        paths, _ = _state(db)
        done = set(marker.read_text().split("\n"))
        assert paths in (done, done | {str(b)}), (paths - done, done - paths)
        if paths == done | {str(b)} and str(b) not in done:
            completed.append(str(b))  # killed after COMMIT: the add is in, the index may be stale
            marker.write_text("\n".join(completed))
            nxt += 1
    assert kills >= KILL_ITERATIONS // 4
    print(f"{kills} kills in {KILL_ITERATIONS} runs; {len(completed)} adds completed; database consistent after each")
    paths, n = _state(db)
    assert paths == set(completed)
    with open_store(str(db)) as s:  # index heals: rebuilt if stale, then agrees with SQLite
        assert s.ann.count == n
        assert len(s.binaries()) == len(completed)
    side = json.loads(index_paths(db)[1].read_text())
    assert side["count"] == n


def test_identify_takes_function_starts_from_a_disassembler_export(fixtures, db, tmp_path):
    from symbridge.binary import Binary

    assert run("index", "add", db, fixtures["ref"]).returncode == 0
    f = max(Binary(fixtures["target"]).code_functions, key=lambda f: f.size)
    inside = f.disassembly()[1][0]  # its second instruction: no function starts there
    starts = tmp_path / "starts.txt"
    starts.write_text(f"FUN_{inside:08x} {inside:#x}\n")  # Ghidra's `name address` lines
    out = tmp_path / "res.json"
    assert run("identify", db, fixtures["target"], "--json", out).returncode == 0
    assert inside not in {r["address"] for r in json.loads(out.read_text())["functions"]}
    r = run("identify", db, fixtures["target"], "--target-functions", starts, "--json", out)
    assert r.returncode == 0, r.stderr
    assert inside in {r["address"] for r in json.loads(out.read_text())["functions"]}
