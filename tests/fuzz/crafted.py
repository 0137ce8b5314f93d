"""Hand-made hostile inputs, built from a seed at test time (too big or too regular to commit as files)."""

from __future__ import annotations

import struct

from tests.fuzz.harness import CORPUS_DIR


def _seed(name: str = "hello_plt-O0-pie") -> bytes:
    return (CORPUS_DIR / name).read_bytes()


def many_sections(n: int = 4097) -> bytes:
    """The seed's section headers repeated n times (every table read n times over): over MAX_SECTIONS."""
    seed = _seed()
    shoff, = struct.unpack_from("<Q", seed, 40)
    shnum, = struct.unpack_from("<H", seed, 60)
    shdrs = [seed[shoff + 64 * i: shoff + 64 * i + 64] for i in range(shnum)]
    data = bytearray(seed[:shoff]) + b"".join(shdrs[i % shnum] for i in range(n))
    struct.pack_into("<H", data, 60, n & 0xFFFF)
    if n > 0xFFFF:  # extended numbering: e_shnum 0, the count in section 0's sh_size
        struct.pack_into("<Q", data, shoff + 32, n)
    return bytes(data)


def overlapping_tables(copies: int = 2000) -> bytes:
    """Section headers that all describe the same relocation and note bytes, within MAX_SECTIONS."""
    seed = _seed()
    shoff, = struct.unpack_from("<Q", seed, 40)
    shnum, = struct.unpack_from("<H", seed, 60)
    shdrs = [seed[shoff + 64 * i: shoff + 64 * i + 64] for i in range(shnum)]
    tables = [h for h in shdrs if struct.unpack_from("<I", h, 4)[0] in (4, 6, 7)]  # RELA, DYNAMIC, NOTE
    extra = b"".join(tables[i % len(tables)] for i in range(copies))
    data = bytearray(seed[:shoff]) + b"".join(shdrs) + extra
    struct.pack_into("<H", data, 60, shnum + copies)
    return bytes(data)


def _text(data: bytes) -> tuple[int, int, int]:
    """(file offset, address, size) of .text."""
    shoff, = struct.unpack_from("<Q", data, 40)
    shnum, shstrndx = struct.unpack_from("<HH", data, 60)
    hdr = [struct.unpack_from("<IIQQQQ", data, shoff + 64 * i) for i in range(shnum)]
    names = data[hdr[shstrndx][4]:]
    for name, _t, _f, addr, off, size in hdr:
        if names[name:name + 6] == b".text\0":
            return off, addr, size
    raise AssertionError("no .text")


def self_calls(stem: str = "tiny-O1-static-nostdlib-nounwind") -> bytes:
    """.text full of `call next`: every 5 bytes a new function that runs into all the others."""
    data = bytearray(_seed(stem))
    off, _addr, size = _text(data)
    data[off: off + size] = (b"\xe8\x00\x00\x00\x00" * (size // 5 + 1))[:size]
    return bytes(data)


def jump_loops(stem: str = "tiny-O1-static-nostdlib-nounwind") -> bytes:
    """.text of short backward jumps and conditional jumps into themselves."""
    data = bytearray(_seed(stem))
    off, _addr, size = _text(data)
    data[off: off + size] = (b"\x74\xfe\x75\xfa\xeb\xfe\x90" * (size // 7 + 1))[:size]
    return bytes(data)


def huge_symbol_sizes(stem: str = "tiny-O0-pie") -> bytes:
    """Every function symbol as large as the address space and .text a nop sled: overlapping functions."""
    data = bytearray(_seed(stem))
    off, addr, size = _text(data)
    data[off: off + size] = b"\x90" * size
    shoff, = struct.unpack_from("<Q", data, 40)
    shnum, = struct.unpack_from("<H", data, 60)
    k = 0
    for i in range(shnum):
        typ, = struct.unpack_from("<I", data, shoff + 64 * i + 4)
        if typ not in (2, 11):
            continue
        soff, ssize = struct.unpack_from("<QQ", data, shoff + 64 * i + 24)
        for j in range(ssize // 24):
            p = soff + 24 * j
            if data[p + 4] & 0xF == 2:  # STT_FUNC
                struct.pack_into("<HQQ", data, p + 6, 1, addr + k % max(size, 1), 0xFFFFFFFFFFFFFFF0)
                k += 1
    return bytes(data)


CRAFTED = {
    "many-sections": many_sections,
    "many-sections-extended": lambda: many_sections(70000),
    "overlapping-tables": overlapping_tables,
    "self-calls": self_calls,
    "jump-loops": jump_loops,
    "huge-symbol-sizes": huge_symbol_sizes,
}
