"""Packed binaries are named as such (elf.packing): symbridge never runs them, so it cannot see their code."""

import os
import shutil
import struct
import subprocess
import warnings

import pytest

from symbridge.binary import Binary
from symbridge.elf.image import load_image
from symbridge.elf.packing import entropy, packing
from symbridge.errors import InputWarning
from tests.conftest import run_cli
from tests.fixtures.build import build


@pytest.mark.parametrize("kind", ["pie", "shared", "static"])
def test_a_compiled_program_does_not_look_packed(kind):
    path = build("prog_big.c", opt="-O2", kind=kind)
    assert packing(load_image(path)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        Binary(path)


def _copy_with(src, dest, offset: int, data: bytes):
    shutil.copy(src, dest)
    with open(dest, "r+b") as f:
        f.seek(offset)
        f.write(data)
    return dest


def test_code_that_reads_as_random_bytes_looks_packed(tmp_path):
    """A packer's compressed or encrypted payload has the entropy of random bytes; machine code far less."""
    src = build("prog_big.c", opt="-O2", kind="static")
    text = next(s for s in load_image(src).sections if s.name == ".text")
    packed = _copy_with(src, tmp_path / "packed", text.offset, os.urandom(text.size))
    assert entropy(os.urandom(1 << 16)) > 7.9 and entropy(b"\0" * 100) == 0.0
    why = packing(load_image(packed))
    assert why is not None and "compressed or encrypted" in why
    with pytest.warns(InputWarning, match="packed"):
        Binary(packed)


def test_upx_is_named_and_the_command_says_how_to_unpack(tmp_path):
    """UPX writes its mark right after the program headers: the warning names it and `upx -d`, on one line,
    and the command goes on (exit 0)."""
    src = build("prog_big.c", opt="-O2")
    head = open(src, "rb").read(64)
    phoff, = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    marked = _copy_with(src, tmp_path / "marked", phoff + phentsize * phnum, b"UPX!")
    assert "UPX" in packing(load_image(marked))
    r = run_cli("functions", marked)
    assert r.returncode == 0
    lines = [x for x in r.stderr.splitlines() if "warning" in x]
    assert len(lines) == 1 and "packed with UPX" in lines[0] and "upx -d" in lines[0]


def test_a_program_packed_by_upx_itself_is_named_packed(tmp_path):
    exe = shutil.which("upx") or shutil.which("upx-ucl")
    if exe is None:
        pytest.skip("upx is not installed")
    src = build("prog_big.c", opt="-O2", kind="static")
    out = tmp_path / "packed"
    subprocess.run([exe, "-q", "-o", str(out), str(src)], check=True, capture_output=True)
    assert "UPX" in packing(load_image(out))
