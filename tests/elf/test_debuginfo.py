"""Reference names come from a separate debug file (given, or found by .gnu_debuglink) and from DWARF."""

import shutil

from symbridge.binary import Binary
from tests.fixtures.build import build, debug_split


def test_names_come_from_a_debug_file_given_explicitly(tmp_path):
    stripped, debugfile = debug_split(build("prog_big.c", extra=("-g",)))
    b = Binary(stripped, debug_file=debugfile)
    assert b["md5_process"].size > 100
    plain = {f.name for f in Binary(stripped, use_debug_files=False).functions if f.name and not f.is_plt}
    assert "md5_process" not in plain


def test_debug_file_is_found_by_debuglink(tmp_path):
    stripped, debugfile = debug_split(build("prog_big.c", extra=("-g",)))
    exe = tmp_path / "prog"
    shutil.copy(stripped, exe)
    shutil.copy(debugfile, tmp_path / debugfile.name)
    b = Binary(exe)
    assert b["md5_init"].address == Binary(build("prog_big.c", extra=("-g",)))["md5_init"].address


def test_dwarf_names_alone_name_functions(tmp_path):
    full = build("prog_big.c", extra=("-g",))
    only_dwarf = tmp_path / "prog"
    import subprocess

    subprocess.run(["objcopy", "--strip-symbol=md5_process", "--strip-symbol=md5_init", str(full), str(only_dwarf)],
                   check=True)
    b = Binary(only_dwarf, use_debug_files=False)
    assert b["md5_process"].address == Binary(full)["md5_process"].address
