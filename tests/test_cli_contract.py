"""The command-line contract of DESIGN.md: JSON shapes, -o read back by nm and gdb, analogy vs embed."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from symbridge.model.model import Model
from symbridge.model.shift import ShiftFilter
from tests.conftest import run_cli, truth_of


def test_functions_json_contract(tmp_path, pair_o2_o3):
    ref, stripped, _ = pair_o2_o3
    out = tmp_path / "f.json"
    assert run_cli("functions", stripped, "--json", out).returncode == 0
    d = json.loads(out.read_text())
    assert d["binary"] == str(stripped)
    assert len(d["functions"]) > 150
    for f in d["functions"]:
        assert set(f) == {"address", "size", "name", "source"}
        assert isinstance(f["address"], int) and isinstance(f["size"], int) and f["size"] > 0
        assert f["name"] is None or f["name"].endswith("@plt")
        assert f["source"] and all(isinstance(s, str) for s in f["source"])


def test_functions_lists_quietly_with_q_after_the_command_as_before_it(pair_o2_o3):
    _, stripped, _ = pair_o2_o3
    loud = run_cli("functions", stripped)
    assert loud.returncode == 0 and "functions in" in loud.stderr
    for args in (("functions", stripped, "-q"), ("-q", "functions", stripped)):
        r = run_cli(*args)
        assert r.returncode == 0 and r.stderr == "" and r.stdout == loud.stdout


def test_transfer_json_contract_and_accuracy(tmp_path, pair_o2_o3):
    ref, stripped, full = pair_o2_o3
    out = tmp_path / "t.json"
    r = run_cli("transfer", ref, stripped, "--json", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["reference"] == str(ref) and d["target"] == str(stripped)
    n_found = len(json.loads(run_cli("functions", stripped, "--json", "-").stdout)["functions"])
    assert len(d["functions"]) == n_found  # one entry per target function
    truth = truth_of(full)
    named = right = 0
    for f in d["functions"]:
        assert {"address", "size", "name", "confidence", "reference_address", "via", "candidates"} <= set(f)
        assert 0.0 <= f["confidence"] <= 1.0
        if "import" not in f["via"]:
            assert len(f["candidates"]) >= 5
            assert all({"name", "address", "score"} <= set(c) for c in f["candidates"])
        if f["name"]:
            assert f["confidence"] >= d["min_confidence"]
            if "import" not in f["via"]:
                named += 1
                right += f["name"] in truth.get(f["address"], ())
    assert named >= 100
    assert right / named >= 0.95
    names = [f["name"] for f in d["functions"] if f["name"]]
    assert len(names) == len(set(names))  # one-to-one


def test_min_confidence_controls_naming(tmp_path, pair_o2_o3):
    ref, stripped, _ = pair_o2_o3
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run_cli("transfer", ref, stripped, "--json", a, "--min-confidence", "0", check=True)
    run_cli("transfer", ref, stripped, "--json", b, "--min-confidence", "1", check=True)
    na = sum(1 for f in json.loads(a.read_text())["functions"] if f["name"] and "import" not in f["via"])
    nb = sum(1 for f in json.loads(b.read_text())["functions"] if f["name"] and "import" not in f["via"])
    assert na > nb


def test_named_output_is_read_by_nm_and_gdb(tmp_path, pair_o2_o3):
    ref, stripped, full = pair_o2_o3
    out = tmp_path / "named"
    before = stripped.read_bytes()
    r = run_cli("transfer", ref, stripped, "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    assert stripped.read_bytes() == before  # the original is never modified
    nm = subprocess.run(["nm", str(out)], capture_output=True, text=True, check=True).stdout
    syms = {line.split()[2]: int(line.split()[0], 16) for line in nm.splitlines() if len(line.split()) == 3}
    want = {n: a for a, ns in truth_of(full).items() for n in ns}
    assert syms["md5_process"] == want["md5_process"]
    if shutil.which("gdb"):
        g = subprocess.run(["gdb", "-batch", "-nx", "-ex", "info address md5_process", "-ex", "break md5_init",
                            str(out)], capture_output=True, text=True, timeout=120)
        assert f"{want['md5_process']:#x}" in g.stdout
        assert "Breakpoint 1 at" in g.stdout


def test_analogy_matches_a_recomputation_from_embed_output(tmp_path, pair_o2_o3):
    ref, stripped, full = pair_o2_o3
    anchor = next(a for a, n in truth_of(full).items() if "md5_init" in n)
    res = tmp_path / "a.json"
    r = run_cli("analogy", ref, stripped, "--anchor", f"md5_init={anchor:#x}", "--query", "md5_process",
                "--top", "5", "--raw-shift", "--json", res)
    assert r.returncode == 0, r.stderr
    assert json.loads(res.read_text())["shift"] == "raw"  # the seed's formula, as written
    got = [x["address"] for x in json.loads(res.read_text())["results"]]
    es, ep = tmp_path / "s.npz", tmp_path / "p.npz"
    run_cli("embed", ref, "-o", es, check=True)
    run_cli("embed", stripped, "-o", ep, check=True)
    S, P = np.load(es), np.load(ep)
    assert S["vectors"].dtype == np.float32 and S["addresses"].dtype == np.uint64
    assert np.allclose(np.linalg.norm(S["vectors"], axis=1), 1.0, atol=1e-5)
    own = int(S["own_dim"])  # the own-code columns come first, the context after them
    assert 0 < own <= S["vectors"].shape[1] == Model.default().dim and own == Model.default().own_dim
    names = list(S["names"])
    pa = list(P["addresses"]).index(anchor)
    q = S["vectors"][names.index("md5_process")] - S["vectors"][names.index("md5_init")] + P["vectors"][pa]
    order = [k for k in np.argsort(-(P["vectors"] @ (q / np.linalg.norm(q))), kind="stable") if k != pa][:5]
    assert [int(P["addresses"][k]) for k in order] == got and anchor not in got  # the anchor is left out
    md5_process = next(a for a, n in truth_of(full).items() if "md5_process" in n)
    assert got[0] == md5_process
    plain = P["vectors"] @ S["vectors"][names.index("md5_process")]  # no shift: plain nearest neighbour
    near = next(k for k in np.argsort(-plain, kind="stable") if k != pa)
    assert json.loads(res.read_text())["nearest"]["address"] == int(P["addresses"][near])


def test_analogy_says_what_it_asked_and_what_plain_nearest_neighbour_gives(pair_o2_o3):
    ref, stripped, full = pair_o2_o3
    anchor = next(a for a, n in truth_of(full).items() if "md5_init" in n)
    r = run_cli("analogy", ref, stripped, "--anchor", f"md5_init={anchor:#x}", "--query", "md5_process", "--top", "3")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 3  # stdout keeps one line a result, for scripts
    assert "md5_process of" in r.stderr and f"md5_init = {anchor:#x}" in r.stderr
    assert "plain nearest neighbour (no shift):" in r.stderr
    quiet = run_cli("-q", "analogy", ref, stripped, "--anchor", f"md5_init={anchor:#x}", "--query", "md5_process")
    assert quiet.returncode == 0 and quiet.stderr == ""
    after = run_cli("analogy", ref, stripped, "--anchor", f"md5_init={anchor:#x}", "--query", "md5_process", "-q")
    assert after.returncode == 0 and after.stderr == "" and after.stdout == quiet.stdout


def test_analogy_with_several_anchors_uses_their_mean_shift_through_the_filter(tmp_path, pair_o2_o3):
    ref, stripped, full = pair_o2_o3
    truth = truth_of(full)
    at = {n: a for a, ns in truth.items() for n in ns}
    res = tmp_path / "a.json"
    r = run_cli("analogy", ref, stripped, "--anchor", f"md5_init={at['md5_init']:#x}", "--anchor",
                f"md5_finish={at['md5_finish']:#x}", "--query", "md5_process", "--top", "5", "--json", res)
    assert r.returncode == 0, r.stderr
    d = json.loads(res.read_text())
    assert [a["name"] for a in d["anchors"]] == ["md5_init", "md5_finish"]
    es, ep = tmp_path / "s.npz", tmp_path / "p.npz"
    run_cli("embed", ref, "-o", es, check=True)
    run_cli("embed", stripped, "-o", ep, check=True)
    S, P = np.load(es), np.load(ep)
    names, paddr = list(S["names"]), list(P["addresses"])
    shift = np.mean([P["vectors"][paddr.index(at[n])] - S["vectors"][names.index(n)]
                     for n in ("md5_init", "md5_finish")], axis=0)
    assert d["shift"] == "filtered"  # the shipped model's filter, for two anchors
    q = S["vectors"][names.index("md5_process")] + ShiftFilter.for_model(Model.default()).apply(shift, 2)
    anchors = {paddr.index(at[n]) for n in ("md5_init", "md5_finish")}
    order = [k for k in np.argsort(-(P["vectors"] @ (q / np.linalg.norm(q))), kind="stable") if k not in anchors]
    assert [int(P["addresses"][k]) for k in order[:5]] == [x["address"] for x in d["results"]]
    assert d["results"][0]["address"] == at["md5_process"]


def test_demo_runs_offline_and_reports_right_names():
    r = run_cli("demo")
    assert r.returncode == 0, r.stderr
    assert "right" in r.stdout and "symbridge transfer" in r.stdout
    # the seed's query on the demo pair, anchored where transfer put md5_init, finds md5_process
    line = next(x for x in r.stdout.splitlines() if x.startswith("The seed's analogy"))
    assert line.endswith(": md5_process"), line


@pytest.mark.parametrize("args", [["--help"], ["transfer", "--help"], ["index", "--help"]])
def test_help_texts(args):
    r = run_cli(*args)
    assert r.returncode == 0 and "Usage" in r.stdout


def test_help_in_an_80_column_terminal_shows_every_option_name_whole():
    from symbridge.cli import app
    from typer.main import get_command

    def commands(group, path):
        for name, cmd in getattr(group, "commands", {}).items():
            yield path + [name]
            yield from commands(cmd, path + [name])

    import sys

    env = dict(os.environ, COLUMNS="80")
    for path in commands(get_command(app), []):
        r = subprocess.run([sys.executable, "-m", "symbridge", *path, "--help"], capture_output=True, text=True,
                           env=env, timeout=120)
        assert r.returncode == 0 and "…" not in r.stdout, (path, r.stdout)


def test_python_dash_m_symbridge_is_the_same_command():
    import sys

    r = subprocess.run([sys.executable, "-m", "symbridge", "transfer", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "Usage" in r.stdout and "--min-confidence" in r.stdout
    r = subprocess.run([sys.executable, "-m", "symbridge", "functions", "/nonexistent"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("symbridge: error:") and "Traceback" not in r.stderr


def test_the_summary_counts_named_matches_just_under_the_threshold(capsys):
    from pathlib import Path

    from symbridge import cli

    def row(address, name, confidence, ref_name, via=("embedding",)):
        return {"address": address, "name": name, "confidence": confidence, "via": list(via),
                "reference_address": 0x100 + address, "candidates": [{"address": 0x100 + address, "name": ref_name}]}

    result = {"min_confidence": 0.6, "functions": [
        row(1, "f", 0.9, "f"), row(2, None, 0.5, "g"), row(3, None, 0.45, "h"),
        row(4, None, 0.5, "sub_1234"),  # a match to an unnamed reference function gives no name at any threshold
        row(5, None, 0.1, "k"), row(6, "puts@plt", 1.0, "puts@plt", via=("import",))]}
    cli.STATE["quiet"] = False
    cli._summary(result, Path("t"), None)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == ("named 1 of 5 functions of t (min confidence 0.6; by their confidence about 90.0 % of the "
                        "names transferred are right)")  # the calibrated confidence's mean over the names given
    assert lines[1].startswith("2 more matched with confidence 0.3 to 0.6: --min-confidence 0.3 names them")
    result["functions"] = result["functions"][:1]
    cli._summary(result, Path("t"), None)
    assert len(capsys.readouterr().err.splitlines()) == 1  # no hint when there is nothing under the threshold
    result["functions"] = [row(2, None, 0.5, "g")]
    cli._summary(result, Path("t"), None)
    assert capsys.readouterr().err.splitlines()[0] == "named 0 of 1 functions of t (min confidence 0.6)"


def test_analogy_with_a_model_without_a_filter_says_it_adds_the_raw_shift(tmp_path, pair_o2_o3):
    ref, stripped, full = pair_o2_o3
    anchor = next(a for a, n in truth_of(full).items() if "md5_init" in n)
    model = tmp_path / "projection.safetensors"
    Model.projection().save(model)
    res = tmp_path / "a.json"
    r = run_cli("analogy", ref, stripped, "--anchor", f"md5_init={anchor:#x}", "--query", "md5_process",
                "--model", model, "--json", res)
    assert r.returncode == 0, r.stderr
    assert "no shift filter" in r.stderr and json.loads(res.read_text())["shift"] == "raw"


@pytest.mark.parametrize("args, words", [(["transfer", "a", "b", "--bogus"], "No such option"),
                                         (["analogy", "a", "b", "--anchor", "x=0x10"], "Missing option"),
                                         (["nosuchcommand"], "No such command"),
                                         (["transfer", "a", "b", "--min-confidence", "1.5"], "not between 0 and 1"),
                                         (["identify", "db", "t", "--min-confidence", "nan"], "not between 0 and 1")])
def test_usage_errors_show_usage_and_exit_2(args, words):
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    assert words in r.stderr and "Usage:" in r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr


def test_a_stripped_reference_gets_a_warning_and_the_job_still_runs(tmp_path, pair_o2_o3):
    ref, stripped, _ = pair_o2_o3
    r = run_cli("transfer", stripped, ref, "--json", tmp_path / "out.json")
    assert r.returncode == 0, r.stderr
    assert "have names (stripped?)" in r.stderr and "--reference-names" in r.stderr
    assert "have names" not in run_cli("transfer", ref, stripped, "--json", tmp_path / "out2.json").stderr
    assert "have names" not in run_cli("transfer", stripped, ref, "--json", tmp_path / "out3.json", "-q").stderr


def test_transfer_leaves_the_targets_separate_debug_file_unread(tmp_path):
    """A stripped target whose debug file sits where gdb would find it (here: beside it, by .gnu_debuglink) is
    still named by matching, not from that file."""
    from symbridge.binary import Binary
    from tests.fixtures.build import build, debug_split

    full = build("prog_big.c", extra=("-g",))
    stripped, debugfile = debug_split(full)
    target = tmp_path / "prog"
    shutil.copy(stripped, target)
    shutil.copy(debugfile, tmp_path / debugfile.name)
    assert Binary(target)["md5_process"]  # the file is there to be found
    out = tmp_path / "t.json"
    assert run_cli("transfer", full, target, "--json", out).returncode == 0
    rows = json.loads(out.read_text())["functions"]
    assert not [r for r in rows if "symbol" in r["via"]]
    assert sum(1 for r in rows if r["name"] and "import" not in r["via"]) >= 100


def test_the_progress_clock_runs_on_once_the_bar_is_full():
    """The steps after embedding show on a full bar: its clock must not stop when the bar fills."""
    from rich.progress import Progress

    from symbridge.cli import Clock

    now = [100.0]
    bar = Progress(get_time=lambda: now[0])
    task = bar.add_task("embedding", total=10)
    bar.update(task, completed=10)  # full: Rich's own elapsed column stops here
    now[0] += 75
    assert bar.tasks[0].finished
    assert Clock().render(bar.tasks[0]).plain == "0:01:15"


@pytest.mark.skipif(shutil.which("g++") is None or shutil.which("c++filt") is None,
                    reason="g++ and c++filt (binutils) are needed")
def test_demangle_flag_prints_cpp_names_readable_and_json_keeps_them_mangled(tmp_path):
    from tests.fixtures.build import build

    binary = build("landing_pad.cc", compiler="g++")
    mangled = "_Z4joinRKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEES6_"
    plain = run_cli("functions", binary)
    readable = run_cli("functions", binary, "-C")
    assert plain.returncode == readable.returncode == 0
    assert mangled in plain.stdout and "join(std::" not in plain.stdout
    assert "join(std::__cxx11::basic_string<char" in readable.stdout and mangled not in readable.stdout
    assert run_cli("functions", binary, "-C", "--json", tmp_path / "f.json").returncode == 0
    assert mangled in {f["name"] for f in json.loads((tmp_path / "f.json").read_text())["functions"]}


@pytest.mark.parametrize("args", [
    ["transfer", "{missing}", "{missing}", "-o", "{nodir}/named"],
    ["transfer", "{missing}", "{missing}", "--json", "{nodir}/out.json"],
    ["identify", "{missing}.db", "{missing}", "--json", "{nodir}/out.json"],
    ["analogy", "{missing}", "{missing}", "--anchor", "f=0x10", "--query", "g", "--json", "{nodir}/a.json"],
    ["embed", "{missing}", "-o", "{nodir}/v.npz"],
    ["functions", "{missing}", "--json", "{nodir}/f.json"],
    ["report", "{missing}.json", "-o", "{nodir}/r.html"],
    ["export", "{missing}.json", "--format", "csv", "-o", "{nodir}/n.csv"],
])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, args):
    """The inputs here do not exist either: the error names the output's folder, so the check ran first (on a
    large binary the work before writing takes minutes)."""
    filled = [a.format(missing=tmp_path / "absent", nodir=tmp_path / "no-such-dir") for a in args]
    r = run_cli(*filled)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"symbridge: error: {tmp_path / 'no-such-dir'}: no such directory"]


def test_outputs_never_overwrite_an_input_or_each_other(tmp_path):
    ref, target, db, res = (tmp_path / n for n in ("ref", "t", "known.db", "res.json"))
    for f in (ref, target, db, res):
        f.write_bytes(b"\x7fELF not really")
    cases = [(["transfer", ref, target, "-o", target], "refusing to overwrite the target"),
             (["transfer", ref, target, "-o", ref], "refusing to overwrite an input"),
             (["transfer", ref, target, "-o", tmp_path / "x", "--json", tmp_path / "x"], "given for two outputs"),
             (["diff", ref, target, "--json", target], "refusing to overwrite the target"),
             (["diff", ref, target, "--json", ref], "refusing to overwrite an input"),
             (["identify", db, target, "-o", db], "refusing to overwrite an input"),
             (["identify", db, target, "--json", f"{db}.hnsw"], "refusing to overwrite an input"),
             (["report", res, "-o", res], "refusing to overwrite an input"),
             (["export", res, "--format", "csv", "-o", res], "refusing to overwrite an input"),
             (["embed", ref, "-o", tmp_path / "v.npz"], "")]  # a fine output: the bad input is what fails
    for args, words in cases:
        r = run_cli(*args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert words in r.stderr, (args, r.stderr)
    assert all(f.read_bytes() == b"\x7fELF not really" for f in (ref, target, db, res))


def test_version_names_the_package_and_the_shipped_model():
    import symbridge

    r = run_cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"symbridge {symbridge.__version__}, model {Model.default().name}"
    from importlib.metadata import version

    assert version("symbridge") == symbridge.__version__  # pyproject.toml and the package say the same


def test_a_warning_says_when_the_work_may_need_more_memory_than_is_available(capsys, monkeypatch):
    import symbridge.model.parallel as parallel
    from symbridge import cli

    monkeypatch.setitem(cli.STATE, "quiet", False)
    monkeypatch.setattr(parallel, "memory_available", lambda: 4 << 30)
    cli._warn_if_memory_short(1_400_000, cli.TRANSFER_BYTES, "matching")  # two Chromiums
    err = capsys.readouterr().err
    assert err.startswith("warning: matching of 1,400,000 functions needs about 69.4 GB of memory and 4.0 GB are "
                          "available") and len(err.splitlines()) == 1
    cli._warn_if_memory_short(20_000, cli.TRANSFER_BYTES, "matching")  # 1 GB
    monkeypatch.setattr(parallel, "memory_available", lambda: None)  # unknown: nothing to say
    cli._warn_if_memory_short(1_400_000, cli.TRANSFER_BYTES, "matching")
    assert capsys.readouterr().err == ""


def test_a_large_binary_shows_a_spinner_on_a_terminal_while_its_functions_are_found(monkeypatch, pair_o2_o3):
    import io

    from rich.console import Console

    from symbridge import cli

    _, stripped, _ = pair_o2_o3
    shown = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=shown, force_terminal=True, stderr=True))
    monkeypatch.setitem(cli.STATE, "quiet", False)
    monkeypatch.setattr(cli, "BIG_FILE", stripped.stat().st_size + 1)
    assert cli.open_binary(stripped).functions and shown.getvalue() == ""  # a small one: no spinner
    monkeypatch.setattr(cli, "BIG_FILE", 1)
    assert cli.open_binary(stripped).functions and f"finding the functions of {stripped.name}" in shown.getvalue()
    monkeypatch.setitem(cli.STATE, "quiet", True)
    shown.seek(0)
    shown.truncate()
    cli.open_binary(stripped)
    assert shown.getvalue() == ""


def test_every_command_takes_q_after_its_name():
    """-q (--quiet) is an option of every command, as of the program itself, so that it can follow the command."""
    commands = [("functions",), ("transfer",), ("diff",), ("analogy",), ("embed",), ("export",), ("report",), ("demo",),
                ("identify",), ("index", "add"), ("index", "list"), ("index", "upgrade")]
    for cmd in commands:
        r = run_cli(*cmd, "--help")
        assert r.returncode == 0 and "--quiet" in r.stdout, (cmd, r.stdout[-400:])
