"""ELF files without section headers (sstrip, or headers dropped to hinder analysis) are read from their
program headers as the sections would have told (elf.sectionless)."""

import json
import shutil
import struct

import pytest

from symbridge.binary import Binary
from symbridge.elf.image import load_image
from symbridge.errors import InputWarning
from tests.conftest import run_cli
from tests.fixtures.build import build, strip_copy


def without_section_headers(src, dest):
    """A copy whose ELF header points to no section headers (e_shoff, e_shnum and e_shstrndx 0), as sstrip
    leaves a file; the bytes are otherwise the same."""
    shutil.copy(src, dest)
    with open(dest, "r+b") as f:
        f.seek(0x28)
        f.write(struct.pack("<Q", 0))
        f.seek(0x3C)
        f.write(struct.pack("<HH", 0, 0))
    return dest


@pytest.mark.parametrize("kind, extra", [("pie", ()), ("pie", ("-fcf-protection=full", "-Wl,-z,now")),
                                         ("nopie", ()), ("shared", ()), ("static", ()),
                                         ("static", ("-fcf-protection=full",))])
def test_a_stripped_file_without_section_headers_has_the_same_functions(tmp_path, kind, extra):
    """Starts, sizes and PLT names as with the headers: .eh_frame from PT_GNU_EH_FRAME (or found by its first
    record in a static program), imports from the dynamic table's relocations, each PLT where its stubs are."""
    src = strip_copy(build(["libbig.c"] if kind == "shared" else "prog_big.c", opt="-O2", kind=kind, extra=extra))
    bare = without_section_headers(src, tmp_path / "bare")
    img = load_image(bare)
    assert not [s for s in img.sections if not s.name.startswith(("[", "."))]
    assert img.section(".eh_frame") is not None
    want = [(f.address, f.size, f.name) for f in Binary(src, ignore_symbols=True).functions]
    got = [(f.address, f.size, f.name) for f in Binary(bare, ignore_symbols=True).functions]
    assert got == want
    if kind != "static":
        assert any(n and n.endswith("@plt") for _, _, n in got)
        assert img.needed == load_image(src).needed and img.needed
    assert img.build_id == load_image(src).build_id and img.build_id


def test_names_transfer_to_a_target_without_section_headers_as_to_the_file_itself(tmp_path):
    ref = build("prog_big.c", opt="-O2")
    tgt = strip_copy(build("prog_big.c", opt="-O3"))
    bare = without_section_headers(tgt, tmp_path / "bare")
    names = {}
    for label, path in (("file", tgt), ("bare", bare)):
        out = tmp_path / f"{label}.json"
        r = run_cli("transfer", ref, path, "--json", out, "-q")
        assert r.returncode == 0, r.stderr
        names[label] = {f["address"]: f["name"] for f in json.loads(out.read_text())["functions"] if f["name"]}
    assert len(names["file"]) > 100
    assert names["bare"] == names["file"]


def test_a_library_without_section_headers_names_its_exports_from_the_dynamic_table(tmp_path):
    lib = build(["libbig.c"], opt="-O2", kind="shared")
    bare = without_section_headers(lib, tmp_path / "bare.so")
    exported = {s.address: s.name for s in load_image(lib).symbols
                if s.table == "dynsym" and s.defined and s.kind == "STT_FUNC"}
    named = {f.address: f.name for f in Binary(bare).functions if f.name and not f.name.endswith("@plt")}
    assert exported and named == exported


@pytest.mark.parametrize("field, fmt, value", [(0x28, "<Q", 1 << 40),  # e_shoff past the end of the file
                                               (0x28, "<Q", 0x2000),  # e_shoff into the code
                                               (0x3C, "<H", 0xFFFF),  # e_shnum
                                               (0x3E, "<H", 0x7FFF)])  # e_shstrndx
def test_garbled_section_headers_are_set_aside_with_a_warning(tmp_path, field, fmt, value):
    """Section headers broken to stop disassemblers (the loader never reads them): the program is read from its
    program headers, as without them, and the command says so on one line."""
    src = strip_copy(build("prog_big.c", opt="-O2"))
    bad = tmp_path / "bad"
    shutil.copy(src, bad)
    with open(bad, "r+b") as f:
        f.seek(field)
        f.write(struct.pack(fmt, value))
    want = [(f.address, f.size, f.name) for f in Binary(src, ignore_symbols=True).functions]
    with pytest.warns(InputWarning, match="program headers"):
        got = [(f.address, f.size, f.name) for f in Binary(bad, ignore_symbols=True).functions]
    assert got == want
    r = run_cli("functions", bad)
    assert r.returncode == 0 and len([x for x in r.stderr.splitlines() if "warning" in x]) == 1


def test_a_truncated_file_stays_an_error(tmp_path):
    src = strip_copy(build("prog_big.c", opt="-O2"))
    cut = tmp_path / "cut"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])  # its loaded segments end past the file
    r = run_cli("functions", cut)
    assert r.returncode == 2 and r.stderr.startswith("symbridge: error:") and len(r.stderr.splitlines()) == 1
