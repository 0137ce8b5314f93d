"""The seed's setting for the confidence fit: a library's shared build against a static program holding it."""

import shutil
import subprocess

import pytest

from symbridge.binary import Binary
from symbridge.train.shared_static import archive_stem, exported_functions, link, pairs, program_of, shared_of


def _row(relpath, origin, package="acl", suite="bookworm"):
    return {"relpath": relpath, "origin": origin, "source_package": package, "suite": suite}


ARCHIVE = "train/acl/bookworm/static-dev/libacl1-dev__libacl.elf"
SHARED = "train/acl/bookworm/official/libacl1/usr/lib/x86_64-linux-gnu/libacl.so.1.1.2301"


def test_a_static_dev_row_names_its_program_and_its_archive():
    assert program_of(ARCHIVE) == "train/acl/bookworm/static-prog/libacl1-dev__libacl.prog"
    assert archive_stem(ARCHIVE) == "libacl"


def test_the_shared_library_of_the_archives_name_same_package_and_suite_is_the_reference():
    rows = [_row(ARCHIVE, "static-dev"),
            _row("train/acl/bookworm/official/acl/bin/getfacl", "official"),
            _row(SHARED.replace("bookworm", "trixie"), "official", suite="trixie"),
            _row(SHARED.replace("libacl.so", "libaclx.so"), "official"),
            _row(SHARED, "official")]
    assert shared_of(rows[0], rows)["relpath"] == SHARED


def test_pairs_need_both_files_and_leave_out_packages_a_model_saw(tmp_path):
    rows = [_row(ARCHIVE, "static-dev"), _row(SHARED, "official")]
    assert pairs(rows, tmp_path, seen=set()) == []  # nothing built yet
    for rel in (program_of(ARCHIVE), SHARED):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"\x7fELF")
    assert pairs(rows, tmp_path, seen=set()) == [(tmp_path / SHARED, tmp_path / program_of(ARCHIVE))]
    assert pairs(rows, tmp_path, seen={"acl"}) == []


@pytest.mark.skipif(not shutil.which("gcc") or not shutil.which("ar"), reason="needs gcc and ar")
def test_a_program_takes_the_objects_of_the_functions_it_uses_and_glibc_even_with_undefined_symbols(tmp_path):
    for name, code in (("a", "extern int elsewhere(int);\nint lib_twice(int x) { return elsewhere(x) * 2; }\n"),
                       ("b", "int lib_unused(const char *s) { return s[0] == 'x'; }\n")):
        (tmp_path / f"{name}.c").write_text(code)
        subprocess.run(["gcc", "-O2", "-c", "-o", str(tmp_path / f"{name}.o"), str(tmp_path / f"{name}.c")], check=True)
    subprocess.run(["ar", "rcs", str(tmp_path / "libt.a"), str(tmp_path / "a.o"), str(tmp_path / "b.o")], check=True)
    assert exported_functions(tmp_path / "libt.a") == ["lib_twice", "lib_unused"]
    out = tmp_path / "t.prog"
    if not link(tmp_path / "libt.a", out, tmp_path, ["lib_twice"]):
        pytest.skip("no static glibc here")
    names = {f.name for f in Binary(out).functions}
    assert {"lib_twice", "main"} <= names and "lib_unused" not in names  # only the objects it uses
    assert len(names) > 100  # and glibc's code: most of the program has no counterpart in the library


def test_the_draw_takes_at_most_k_pairs_of_each_package_and_suite_and_is_repeatable(tmp_path):
    from symbridge.train.shared_static import choose

    found = [(tmp_path / f"lib{i}.so", tmp_path / "train" / pkg / suite / "static-prog" / f"x{i}.prog")
             for i, (pkg, suite) in enumerate([("nl", "bookworm")] * 7 + [("nl", "trixie")] * 3 + [("acl", "trixie")])]
    picked = choose(found, 2, seed=0)
    groups = [(prog.parts[-4], prog.parts[-3]) for _, prog in picked]
    assert sorted(groups) == [("acl", "trixie"), ("nl", "bookworm"), ("nl", "bookworm"), ("nl", "trixie"),
                              ("nl", "trixie")]
    assert picked == choose(found, 2, seed=0) and set(picked) <= set(found)
