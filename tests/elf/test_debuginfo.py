"""Reference names come from a separate debug file (given, or found by .gnu_debuglink) and from DWARF."""

import shutil

from symbridge.binary import Binary
from tests.fixtures.build import build, debug_split, strip_copy


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


def _with_mini_debuginfo(full, dest, payload: bytes | None = None):
    """A stripped copy of `full` with a MiniDebugInfo section, made as Fedora makes them: the .symtab of the
    functions .dynsym lacks, in a debug-only ELF, xz-compressed into .gnu_debugdata (`payload`: other bytes)."""
    import lzma
    import subprocess

    from symbridge.elf.image import load_image

    dynamic = {s.name for s in load_image(full).symbols if s.table == "dynsym"}
    keep = dest.with_suffix(".keep")
    keep.write_text("\n".join(sorted({s.name for s in load_image(full).symbols if s.table == "symtab"
                                      and s.kind == "STT_FUNC" and s.defined and s.name not in dynamic})) + "\n")
    debug, mini = dest.with_suffix(".debug"), dest.with_suffix(".mini")
    subprocess.run(["objcopy", "--only-keep-debug", str(full), str(debug)], check=True)
    subprocess.run(["objcopy", "-S", "--remove-section", ".comment", f"--keep-symbols={keep}", str(debug), str(mini)],
                   check=True)
    xz = dest.with_suffix(".xz")
    xz.write_bytes(lzma.compress(mini.read_bytes(), format=lzma.FORMAT_XZ) if payload is None else payload)
    subprocess.run(["strip", "--strip-all", "-o", str(dest), str(full)], check=True)
    subprocess.run(["objcopy", f"--add-section=.gnu_debugdata={xz}", str(dest)], check=True)
    return dest


def test_names_come_from_mini_debuginfo(tmp_path):
    full = build("prog_big.c")
    named = {f.address: f.name for f in Binary(full).code_functions}
    b = Binary(_with_mini_debuginfo(full, tmp_path / "prog"), use_debug_files=False)
    assert b["md5_process"].address == Binary(full)["md5_process"].address  # a static function
    assert {f.address: f.name for f in b.code_functions} == named
    assert "debug" in b["md5_process"].source
    assert not any(f.name for f in Binary(b.path, ignore_symbols=True).code_functions)
    assert Binary(strip_copy(b.path))["md5_process"]  # strip --strip-all keeps the section, and its names


def test_unreadable_mini_debuginfo_is_left_out_with_a_warning(tmp_path, monkeypatch):
    import lzma

    import pytest

    import symbridge.elf.debuginfo as dbg
    from symbridge.errors import InputWarning
    from tests.conftest import run_cli

    full = build("prog_big.c")
    broken = _with_mini_debuginfo(full, tmp_path / "broken", payload=b"\xfd7zXZ\x00 not xz at all")
    with pytest.warns(InputWarning, match=r"\.gnu_debugdata \(MiniDebugInfo\) cannot be read"):
        b = Binary(broken)
    assert "md5_process" not in {f.name for f in b.functions}
    r = run_cli("functions", broken, "--json", tmp_path / "f.json")
    assert r.returncode == 0 and r.stderr.count("\n") == 1 and r.stderr.startswith("symbridge: warning:")
    not_elf = _with_mini_debuginfo(full, tmp_path / "notelf", payload=lzma.compress(b"plain text, no ELF"))
    with pytest.warns(InputWarning, match=r"cannot be read \(a text file, not an ELF file\)"):
        Binary(not_elf)
    monkeypatch.setattr(dbg, "MAX_MINI_DEBUGINFO", 4096)  # a bomb: more than it may inflate to
    with pytest.warns(InputWarning, match="inflates past"):
        assert "md5_process" not in {f.name for f in Binary(_with_mini_debuginfo(full, tmp_path / "big")).functions}


def test_benchmarks_strip_mini_debuginfo_too(tmp_path):
    from symbridge.evaluation import anonymize

    copy = anonymize(_with_mini_debuginfo(build("prog_big.c"), tmp_path / "prog"), tmp_path / "anon")
    assert not any(f.name for f in Binary(copy).code_functions)


def test_dwarf_compressed_in_a_way_it_cannot_read_gives_a_warning(tmp_path):
    import subprocess
    import warnings

    import pytest

    from symbridge.errors import InputWarning

    only_dwarf = tmp_path / "prog"
    subprocess.run(["objcopy", "--strip-symbol=md5_process", str(build("prog_big.c", extra=("-g",))), str(only_dwarf)],
                   check=True)
    zstd = tmp_path / "prog.zstd"
    if subprocess.run(["objcopy", "--compress-debug-sections=zstd", str(only_dwarf), str(zstd)],
                      capture_output=True).returncode:
        pytest.skip("this objcopy cannot compress with zstd")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        named = {f.name for f in Binary(zstd, use_debug_files=False).functions}
    said = [w for w in caught if issubclass(w.category, InputWarning)]
    if "md5_process" not in named:  # pyelftools 0.33 reads no zstd: say so (a later one may read it: no warning)
        assert len(said) == 1 and "objcopy --decompress-debug-sections" in str(said[0].message)
    else:
        assert not said
    assert Binary(only_dwarf, use_debug_files=False)["md5_process"]
