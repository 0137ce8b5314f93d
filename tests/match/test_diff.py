"""Patch diffing (symbridge diff): a fixed function is changed, untouched ones unchanged, new and dropped ones
found, on a stripped new build."""

import json

import pytest

from symbridge import Binary, diff
from tests.conftest import run_cli, truth_of
from tests.fixtures.build import build, have_clang, strip_copy

UNTOUCHED = {"parse_id", "scale_weight", "print_record", "compare_records", "checksum", "usage"}


def builds(compiler="gcc", opt="-O2"):
    old = build("patched.c", compiler=compiler, opt=opt)
    new = build("patched.c", compiler=compiler, opt=opt, extra=("-DV2",))
    return old, new


@pytest.mark.parametrize("compiler,opt", [("gcc", "-O0"), ("gcc", "-O2"), ("clang", "-O2")])
def test_the_fixed_function_is_changed_and_the_untouched_ones_are_not(compiler, opt):
    if compiler == "clang" and not have_clang():
        pytest.skip("clang not installed")
    old, new = builds(compiler, opt)
    address_of = {next(iter(ns)): a for a, ns in truth_of(new).items()}
    r = diff(Binary(old), Binary(strip_copy(new), ignore_symbols=True))
    changed = {p["name"]: p for p in r["changed"]}
    unchanged = {p["name"]: p for p in r["unchanged"]}
    assert UNTOUCHED <= set(unchanged)
    assert all(unchanged[n]["new_address"] == address_of[n] for n in UNTOUCHED)
    fixed = changed["copy_field"]
    assert fixed["new_address"] == address_of["copy_field"] and fixed["new_size"] > fixed["old_size"]
    # the dropped function is gone, or paired with the new one in its place as far less alike than the fix
    gone = {f["name"] for f in r["removed"]}
    assert "legacy_hash" in gone or changed["legacy_hash"]["similarity"] < fixed["similarity"]
    assert "legacy_hash" not in unchanged
    added = {f["address"] for f in r["added"]}
    assert address_of["checked_sum"] in added or changed.get("legacy_hash", {}).get("new_address") == \
        address_of["checked_sum"]
    sims = [p["similarity"] for p in r["changed"]]
    assert sims == sorted(sims)


def test_a_build_against_itself_has_no_differences():
    old, _ = builds()
    r = diff(Binary(old), Binary(strip_copy(old), ignore_symbols=True))
    assert r["changed"] == [] and r["added"] == [] and r["removed"] == []
    assert UNTOUCHED | {"copy_field", "legacy_hash", "main"} <= {p["name"] for p in r["unchanged"]}


def test_diff_command_prints_the_tables_and_writes_json(tmp_path):
    old, new = builds()
    target = strip_copy(new)
    r = run_cli("diff", old, target)
    assert r.returncode == 0, r.stderr
    assert "changed, least similar first" in r.stdout and "copy_field" in r.stdout
    assert "unchanged" in r.stderr and "changed" in r.stderr
    out = tmp_path / "diff.json"
    r = run_cli("diff", old, target, "--json", out, "-q")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    data = json.loads(out.read_text())
    assert set(data) >= {"old", "new", "model", "min_confidence", "changed", "added", "removed", "unchanged"}
    assert "copy_field" in {p["name"] for p in data["changed"]}
    # the report and the exports read it as a transfer's result (its matches are in it)
    r = run_cli("report", out, "-o", tmp_path / "d.html", "-q")
    assert r.returncode == 0 and "copy_field" in (tmp_path / "d.html").read_text(), r.stderr
    r = run_cli("export", out, "--format", "csv", "-o", tmp_path / "d.csv", "-q")
    assert r.returncode == 0 and "copy_field" in (tmp_path / "d.csv").read_text(), r.stderr


def test_diff_of_something_that_is_no_binary_is_one_line_and_exit_2(tmp_path):
    old, _ = builds()
    bad = tmp_path / "notes.txt"
    bad.write_text("not a binary\n")
    r = run_cli("diff", old, bad)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_with_the_new_builds_symbols_a_dropped_and_an_added_function_are_no_pair():
    old, new = builds()
    r = diff(Binary(old), Binary(new))
    assert "legacy_hash" in {f["name"] for f in r["removed"]}
    assert "checked_sum" in {f["name"] for f in r["added"]}
    assert {p["name"] for p in r["changed"]} >= {"copy_field"}


def test_a_stricter_confidence_pairs_fewer_functions():
    old, new = builds()
    target = Binary(strip_copy(new), ignore_symbols=True)
    default, strict = diff(Binary(old), target), diff(Binary(old), target, min_confidence=0.9999)
    assert strict["min_confidence"] == 0.9999 and default["min_confidence"] < 0.9999
    paired = [len(r["changed"]) + len(r["unchanged"]) for r in (default, strict)]
    assert paired[1] < paired[0] and len(strict["added"]) > len(default["added"])


def test_two_versions_of_a_static_archive_diff_as_their_linked_copies(tmp_path):
    import shutil
    import subprocess

    from tests.fixtures.build import SRC_DIR

    if not shutil.which("ar"):
        pytest.skip("ar not installed")
    archives = []
    for name, flags in (("old", []), ("new", ["-DV2"])):
        obj, lib = tmp_path / f"{name}.o", tmp_path / f"lib{name}.a"
        subprocess.run(["gcc", "-O2", "-c", *flags, str(SRC_DIR / "patched.c"), "-o", str(obj)], check=True)
        subprocess.run(["ar", "rcs", str(lib), str(obj)], check=True)
        archives.append(lib)
    r = run_cli("diff", *archives, "--json", tmp_path / "d.json", "-q")
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "d.json").read_text())
    assert "copy_field" in {p["name"] for p in data["changed"]}
    assert "legacy_hash" in {f["name"] for f in data["removed"]}
    assert "checked_sum" in {f["name"] for f in data["added"]}
    assert UNTOUCHED <= {p["name"] for p in data["unchanged"]}
    r = run_cli("diff", archives[0], archives[0])
    assert r.returncode == 0 and "changed, least similar first: none" in r.stdout, r.stdout
