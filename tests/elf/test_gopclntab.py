"""Go's function table (.gopclntab): starts and names of a stripped Go program, in the layouts of Go 1.2, 1.16
and 1.18+. The tables are written here for a C program built without unwind tables (no Go compiler needed):
each lists the program's functions under Go-style names."""

import shutil
import struct
import subprocess

import pytest

from symbridge.binary import Binary
from symbridge.elf.gopclntab import go_functions
from symbridge.elf.image import load_image
from tests.fixtures.build import NO_UNWIND, build

MAGIC = {"1.2": 0xFFFFFFFB, "1.16": 0xFFFFFFFA, "1.20": 0xFFFFFFF1}


def program_functions(path) -> list[tuple[int, int, str]]:
    """(start, size, name) of the sized functions of .text, by address, without overlaps."""
    img = load_image(path)
    text = img.section(".text")
    out, end = [], 0
    for s in sorted({(s.address, s.size, s.name) for s in img.symbols
                     if s.kind == "STT_FUNC" and s.size and text.contains(s.address)}):
        if s[0] >= end:
            out.append(s)
            end = s[0] + s[1]
    return out


def go_table(funcs: list[tuple[int, int, str]], version: str, corrupt: bool = False) -> bytes:
    """A .gopclntab in the given layout listing funcs (start, size, name) as main.<name>."""
    starts = [a for a, _, _ in funcs]
    end = funcs[-1][0] + funcs[-1][1]
    names = b""
    name_off = []
    for _, _, n in funcs:
        name_off.append(len(names))
        names += f"main.{n}".encode() + b"\0"
    head = struct.pack("<IHBB", MAGIC[version], 0, 1, 8)
    if version == "1.2":  # names and records are offsets from the table's start
        tab = 16
        names_at = tab + 16 * len(funcs) + 8
        rec_at = names_at + len(names) + (-(names_at + len(names)) % 8)
        recs = b"".join(struct.pack("<Qi4x", a, names_at + o) for a, o in zip(starts, name_off))
        ftab = b"".join(struct.pack("<QQ", a, rec_at + 16 * k) for k, a in enumerate(starts)) + struct.pack("<Q", end)
        body = head + struct.pack("<Q", len(funcs)) + ftab + names
        body += b"\0" * (rec_at - len(body)) + recs
    elif version == "1.16":  # header of offsets; entries are addresses, records offsets from the function table
        names_at = 64
        tab = names_at + len(names) + (-(names_at + len(names)) % 8)
        ftab_len = 16 * len(funcs) + 8
        ftab = b"".join(struct.pack("<QQ", a, ftab_len + 16 * k) for k, a in enumerate(starts)) + struct.pack("<Q", end)
        recs = b"".join(struct.pack("<Qi4x", a, o) for a, o in zip(starts, name_off))
        body = head + struct.pack("<7Q", len(funcs), 0, names_at, names_at + len(names), 0, 0, tab)
        body += names + b"\0" * (tab - names_at - len(names)) + ftab + recs
    else:  # 1.18+: entries are 32-bit offsets from the code start the header gives
        text = starts[0]
        names_at = 72
        tab = names_at + len(names) + (-(names_at + len(names)) % 8)
        ftab_len = 8 * len(funcs) + 8
        ftab = b"".join(struct.pack("<II", a - text, ftab_len + 8 * k) for k, a in enumerate(starts))
        ftab += struct.pack("<II", end - text, 0)
        recs = b"".join(struct.pack("<Ii", a - text, o) for a, o in zip(starts, name_off))
        body = head + struct.pack("<8Q", len(funcs), 0, text, names_at, names_at + len(names), 0, 0, tab)
        body += names + b"\0" * (tab - names_at - len(names)) + ftab + recs
    if corrupt:  # the last record's own entry no longer matches its table entry
        body = bytearray(body)
        size = 16 if version != "1.20" else 8
        body[len(body) - size] ^= 0x10
        body = bytes(body)
    return body


def go_program(tmp_path, version: str, section: str = ".gopclntab", corrupt: bool = False):
    """A stripped C program (no .eh_frame) carrying a Go function table of its functions; and the functions."""
    if shutil.which("objcopy") is None:
        pytest.skip("objcopy not installed")
    exe = build("prog_big.c", opt="-O2", kind="nopie", extra=NO_UNWIND)
    funcs = program_functions(exe)
    table = tmp_path / "table.bin"
    table.write_bytes(go_table(funcs, version, corrupt))
    out = tmp_path / f"go-{version}"
    subprocess.run(["objcopy", "--strip-all", "--remove-section=.eh_frame", "--remove-section=.eh_frame_hdr",
                    f"--add-section={section}={table}", str(exe), str(out)], check=True)
    return out, funcs


@pytest.mark.parametrize("version", ["1.2", "1.16", "1.20"])
def test_a_go_table_gives_every_function_its_start_and_name(tmp_path, version):
    path, funcs = go_program(tmp_path, version)
    got = go_functions(load_image(path))
    assert [(a, n) for a, _, n in got] == [(a, f"main.{n}") for a, _, n in funcs]
    assert all(size >= s for (_, size, _), (_, s, _) in zip(got, funcs))  # up to the next entry
    b = Binary(path)
    named = {f.address: f.name for f in b.functions if "pclntab" in f.source}
    assert named == {a: f"main.{n}" for a, _, n in funcs}
    sizes = {f.address: f.size for f in b.functions}
    assert all(0 < sizes[a] <= size for a, size, _ in got)  # trailing int3 padding aside


def test_a_stripped_go_target_keeps_the_starts_but_not_the_names_when_its_own_names_are_ignored(tmp_path):
    path, funcs = go_program(tmp_path, "1.20")
    b = Binary(path, ignore_symbols=True)
    starts = {f.address for f in b.functions if "pclntab" in f.source}
    assert starts == {a for a, _, _ in funcs}
    assert not any(f.name for f in b.code_functions)


def test_a_table_outside_its_own_section_is_found_in_read_only_data(tmp_path):
    """Programs linked by the system linker (cgo) keep the table inside .data.rel.ro."""
    path, funcs = go_program(tmp_path, "1.20", section=".data.rel.ro")
    assert [a for a, _, _ in go_functions(load_image(path))] == [a for a, _, _ in funcs]


@pytest.mark.parametrize("version", ["1.2", "1.20"])
def test_a_table_that_fails_its_checks_gives_nothing(tmp_path, version):
    path, _ = go_program(tmp_path, version, corrupt=True)
    assert go_functions(load_image(path)) == []
    assert not any("pclntab" in f.source for f in Binary(path).functions)


def test_programs_without_a_go_table_give_nothing():
    assert go_functions(load_image(build("prog_big.c", opt="-O2"))) == []


def test_a_go_program_without_section_headers_is_found_by_its_table_in_loaded_data(tmp_path):
    """A Go program whose section headers were dropped: its table is found in a read-only segment (the loader's
    view, elf.sectionless), with every function's start and name."""
    def with_table(size: int):
        src = tmp_path / f"table{size}.c"
        src.write_text(f"__attribute__((used, aligned(8))) const unsigned char go_table_bytes[{size}] = {{1}};\n")
        return build(["prog_big.c", str(src)], opt="-O2", kind="nopie", extra=NO_UNWIND)

    funcs = [f for f in program_functions(with_table(8)) if f[2] != "go_table_bytes"]
    size = len(go_table(funcs, "1.20"))
    exe = with_table(size)
    funcs = [f for f in program_functions(exe) if f[2] != "go_table_bytes"]
    table = go_table(funcs, "1.20")
    assert len(table) == size  # the code did not move: the table lies after it
    img = load_image(exe)
    at = next(s.address for s in img.symbols if s.name == "go_table_bytes")
    seg = next(g for g in img.segments if g.vaddr <= at < g.vaddr + g.filesz)
    data = bytearray(exe.read_bytes())
    data[seg.offset + at - seg.vaddr:seg.offset + at - seg.vaddr + size] = table
    data[0x28:0x30], data[0x3C:0x40] = bytes(8), bytes(4)  # no section headers: no .symtab, no .eh_frame either
    bare = tmp_path / "go-bare"
    bare.write_bytes(bytes(data))
    assert [(a, n) for a, _, n in go_functions(load_image(bare))] == [(a, f"main.{n}") for a, _, n in funcs]
    named = {f.address: f.name for f in Binary(bare).functions if "pclntab" in f.source}
    assert named == {a: f"main.{n}" for a, _, n in funcs}
