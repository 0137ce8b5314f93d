"""write_named_elf on real gcc builds: strip, write names back, check nm/readelf/objdump/gdb."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from symbridge.errors import (
    CorruptBinaryError,
    NotAnElfError,
    SymbridgeError,
    UnsupportedArchitectureError,
    UsageError,
)
from symbridge.export import _atomic
from symbridge.export.elf_symtab import write_named_elf

TOOLS = ("gcc", "nm", "strip", "readelf", "objdump", "gdb")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason="binutils/gcc/gdb missing")

C_SOURCE = r"""
#include <stdio.h>
__attribute__((noinline)) static int sb_helper(int x) { return x * 7 + (x >> 3); }
__attribute__((noinline)) int sb_compute(int a, int b) {
    int s = 0;
    for (int i = 0; i < a; i++) s += sb_helper(i ^ b);
    return s;
}
__attribute__((noinline)) long sb_other(long v) { return v ? v * sb_compute((int)v, 3) : 1; }
int main(int argc, char **argv) { printf("%ld\n", sb_other(argc + (argv[0] != 0))); return 0; }
"""
OURS = ("sb_helper", "sb_compute", "sb_other", "main")
VARIANTS = {
    "pie": ["-fPIE", "-pie"],
    "nopie": ["-fno-pie", "-no-pie"],
    "shared": ["-fPIC", "-shared"],
    "static": ["-static"],
}


def run(*cmd: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=False, capture_output=True, text=True, timeout=120)


def nm_symbols(path: Path) -> dict[str, tuple[int, int, str]]:
    """name -> (address, size, type) for defined symbols; the first of duplicate names wins."""
    out = {}
    for line in run("nm", "-S", "--defined-only", path).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            out.setdefault(parts[3], (int(parts[0], 16), int(parts[1], 16), parts[2]))
        elif len(parts) == 3:
            out.setdefault(parts[2], (int(parts[0], 16), 0, parts[1]))
    return out


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """variant -> (binary with symbols, stripped copy)."""
    d = tmp_path_factory.mktemp("elf")
    (d / "prog.c").write_text(C_SOURCE)
    out = {}
    for name, flags in VARIANTS.items():
        full, stripped = d / f"{name}.full", d / f"{name}.stripped"
        r = run("gcc", "-O1", *flags, "-o", full, d / "prog.c")
        if r.returncode:
            continue  # e.g. no static libc; the test for that variant skips
        shutil.copy2(full, stripped)
        assert run("strip", "--strip-all", stripped).returncode == 0
        out[name] = (full, stripped)
    return out


def get_build(builds, variant: str) -> tuple[Path, Path]:
    if variant not in builds:
        pytest.skip(f"gcc cannot build the {variant} variant here")
    return builds[variant]


def text_symbols(full: Path) -> list[tuple[str, int, int]]:
    return [(n, a, s) for n, (a, s, t) in nm_symbols(full).items() if t in "TtWw" and s > 0]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_names_written_back(builds, variant, tmp_path):
    full, stripped = get_build(builds, variant)
    truth = nm_symbols(full)
    assert all(n in truth for n in OURS)
    assert nm_symbols(stripped) == {}
    before = hashlib.sha256(stripped.read_bytes()).hexdigest()
    symbols = text_symbols(full)
    out = tmp_path / "named"
    warnings = write_named_elf(stripped, out, symbols)
    assert hashlib.sha256(stripped.read_bytes()).hexdigest() == before
    assert not warnings, warnings

    got = nm_symbols(out)
    for name, addr, size in symbols:
        assert got[name] == (addr, size, "T"), name

    r = run("readelf", "-a", "-W", out)
    assert r.returncode == 0 and r.stderr == ""
    r = run("readelf", "-s", "-W", out)
    assert ".symtab" in r.stdout and r.stderr == ""

    dis = run("objdump", "-d", out).stdout
    for name in OURS:
        assert f"{truth[name][0]:016x} <{name}>:" in dis

    cmd = ["gdb", "-batch", "-nx"]
    for name in OURS:
        cmd += ["-ex", f"info address {name}", "-ex", f"break {name}"]
    r = run(*cmd, out)
    infos = re.findall(r'Symbol "(\w+)" is at (0x[0-9a-f]+)', r.stdout)
    breaks = [int(b, 16) for b in re.findall(r"Breakpoint \d+ at (0x[0-9a-f]+)", r.stdout)]
    assert [(n, int(a, 16)) for n, a in infos] == [(n, truth[n][0]) for n in OURS], r.stdout + r.stderr
    for name, brk in zip(OURS, breaks, strict=True):
        addr, size, _ = truth[name]
        assert addr <= brk < addr + size  # gdb may break after the prologue


@pytest.mark.parametrize("variant", ["pie", "static"])
@pytest.mark.parametrize("headers", [(0x28, bytes(8)), (0x28, struct.pack("<Q", 1 << 40)),
                                     (0x28, struct.pack("<Q", 0x1000))], ids=["none", "past-the-end", "garbage"])
def test_names_written_into_a_file_without_usable_section_headers(builds, variant, headers, tmp_path):
    """No section headers (sstrip), or headers pointed past the end of the file or at code: the named copy
    gets sections made from the program headers (.text and the rest) and a .symtab there that nm, objdump and
    gdb read."""
    full, stripped = get_build(builds, variant)
    bare = tmp_path / "bare"
    data = bytearray(stripped.read_bytes())
    off, raw = headers
    data[off:off + len(raw)] = raw
    if not raw.strip(b"\0"):
        data[0x3C:0x40] = bytes(4)  # e_shnum, e_shstrndx too
    bare.write_bytes(bytes(data))
    symbols = text_symbols(full)
    out = tmp_path / "named"
    assert not write_named_elf(bare, out, symbols)
    got = nm_symbols(out)
    for name, addr, size in symbols:
        assert got[name] == (addr, size, "T"), name
    assert ".text" in run("readelf", "-S", "-W", out).stdout
    dis = run("objdump", "-d", out).stdout
    assert all(f"<{name}>:" in dis for name in OURS)
    r = run("gdb", "-batch", "-nx", "-ex", "info address sb_compute", out)
    assert f"is at {nm_symbols(full)['sb_compute'][0]:#x}" in r.stdout, r.stdout + r.stderr


def test_a_truncated_file_gets_no_named_copy(builds, tmp_path):
    _, stripped = get_build(builds, "pie")
    cut = tmp_path / "cut"
    cut.write_bytes(stripped.read_bytes()[: stripped.stat().st_size // 2])
    with pytest.raises(CorruptBinaryError, match="truncated|past the end"):
        write_named_elf(cut, tmp_path / "o", [])
    assert not (tmp_path / "o").exists()


def test_mode_bits_copied(builds, tmp_path):
    _, stripped = get_build(builds, "pie")
    src = tmp_path / "src"
    shutil.copy(stripped, src)
    os.chmod(src, 0o750)
    write_named_elf(src, tmp_path / "out", [])
    assert (tmp_path / "out").stat().st_mode & 0o7777 == 0o750
    assert run("readelf", "-a", "-W", tmp_path / "out").stderr == ""


def test_merge_with_existing_symtab(builds, tmp_path):
    full, _ = get_build(builds, "pie")
    truth = nm_symbols(full)
    addr, size, _ = truth["sb_helper"]
    out = tmp_path / "out"
    write_named_elf(full, out, [("renamed_helper", addr, size), ("sb_compute", *truth["sb_compute"][:2])])
    got = nm_symbols(out)
    assert got["renamed_helper"] == (addr, size, "T")
    assert "sb_helper" not in got
    assert got["sb_compute"] == (truth["sb_compute"][0], truth["sb_compute"][1], "T")
    assert got["main"] == truth["main"]
    assert got["frame_dummy"] == truth["frame_dummy"]  # old locals kept
    assert run("readelf", "-a", "-W", out).stderr == ""
    assert run("nm", out).stdout.count(" sb_compute\n") == 1


def test_skips_and_clamps(builds, tmp_path):
    full, stripped = get_build(builds, "pie")
    truth = nm_symbols(full)
    data_addr = next(a for n, (a, _, t) in truth.items() if t in "dDbB")
    text_end = max(a + s for a, s, t in truth.values() if t in "tT")
    warnings = write_named_elf(stripped, tmp_path / "out", [
        ("in_data", data_addr, 4), ("at_zero", 0, 1), ("main", *truth["main"][:2]),
        ("too_long", truth["main"][0], 1 << 40), ("main", truth["sb_other"][0], 4)])
    assert len(warnings) == 3 + 1  # two outside code, one clamped, one duplicate name
    got = nm_symbols(tmp_path / "out")
    assert "in_data" not in got and "at_zero" not in got
    assert got["main"][0] == truth["main"][0]
    assert got["too_long"][0] + got["too_long"][1] <= text_end + 0x1000


def test_error_midway_leaves_nothing(builds, tmp_path, monkeypatch):
    _, stripped = get_build(builds, "pie")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(_atomic.os, "replace", boom)
    with pytest.raises(OSError):
        write_named_elf(stripped, tmp_path / "out", [("main", 0x1139, 4)])
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs(builds, tmp_path):
    full, stripped = get_build(builds, "pie")
    text = tmp_path / "text"
    text.write_text("hello\n")
    with pytest.raises(NotAnElfError, match="text"):
        write_named_elf(text, tmp_path / "o", [])
    trunc = tmp_path / "trunc"
    trunc.write_bytes(stripped.read_bytes()[:4096])
    with pytest.raises(CorruptBinaryError, match="trunc"):
        write_named_elf(trunc, tmp_path / "o", [])
    elf32 = tmp_path / "elf32"
    elf32.write_bytes(stripped.read_bytes()[:4] + b"\x01" + stripped.read_bytes()[5:])
    with pytest.raises(UnsupportedArchitectureError):
        write_named_elf(elf32, tmp_path / "o", [])
    addr = nm_symbols(full)["main"][0]
    for bad in [("", addr, 1), ("a\0b", addr, 1), ("x", -1, 1), ("x", addr, True), ("x",)]:
        with pytest.raises(UsageError):
            write_named_elf(stripped, tmp_path / "o", [bad])
    with pytest.raises(UsageError, match="overwrite"):
        write_named_elf(stripped, stripped, [])
    assert not (tmp_path / "o").exists()


def test_mutated_headers_never_crash(builds, tmp_path):
    """Untrusted input: corrupting header fields gives a SymbridgeError or a valid write, nothing else."""
    full, stripped = get_build(builds, "pie")
    data = bytearray(stripped.read_bytes())
    shoff, shnum = struct.unpack_from("<Q", data, 0x28)[0], struct.unpack_from("<H", data, 0x3C)[0]
    fields = [0x28, 0x3A, 0x3C, 0x3E, 0x20, 0x36, 0x38]
    for i in range(shnum):
        fields += [shoff + i * 64 + k for k in (0, 4, 24, 32, 40, 56)]
    src, main = tmp_path / "m", nm_symbols(full)["main"]
    for n, off in enumerate(fields):
        for value in (0, 0xFF):
            mutated = bytearray(data)
            mutated[off] = value
            mutated[off + 1] ^= 0x40 if n % 2 else 0
            src.write_bytes(mutated)
            try:
                write_named_elf(src, tmp_path / "out", [("main", main[0], main[1])])
            except SymbridgeError:
                pass
