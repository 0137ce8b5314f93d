"""Function starts, sizes and names from a Go program's ``.gopclntab``.

The Go toolchain writes no ``.eh_frame``, and `strip` leaves a program's ``.gopclntab``: the runtime needs it for stack
traces and the garbage collector. It holds a table of every function's entry (sorted, the last entry the end
of the code) and, for each, a record whose first fields repeat the entry and point at the function's name.
Three layouts are read, by the table's magic number:

- Go 1.2 to 1.15 (0xfffffffb): entries and record offsets are pointers; names are offsets into the table;
- Go 1.16 and 1.17 (0xfffffffa): a header of offsets to the name table and the function table;
- Go 1.18 and later (0xfffffff0, 0xfffffff1 from 1.20): as 1.16, with entries as 32-bit offsets from the
  start of the code, which the header gives.

Programs linked by the system's linker (cgo) keep the table inside ``.data.rel.ro``: where no section has
the name, read-only data sections are searched for a table header, and the first one that passes the checks
below is read; in a position-independent program the code start of its header is the target of a
relocation.

The table is checked whole before any of it is used: entries ascending inside executable code, each record's
own entry equal to its table entry, each name inside the name table. A table that fails any check gives
nothing (a crafted or unknown layout must not invent functions).
"""

from __future__ import annotations

import struct

from .image import ElfImage

MAX_FUNCS = 500_000  # as discovery's MAX_FUNCTIONS
MAX_NAME = 4096
MAX_TRIES = 64  # headers tried where the table must be searched for
_GO12, _GO116, _GO118, _GO120 = 0xFFFFFFFB, 0xFFFFFFFA, 0xFFFFFFF0, 0xFFFFFFF1
_HEADS = [struct.pack("<IHBB", m, 0, 1, 8) for m in (_GO12, _GO116, _GO118, _GO120)]


class _Table:
    """A table's bytes, read in place from the file: offsets from its start, up to the end of its section."""

    def __init__(self, data: bytes, start: int, end: int):
        self.data, self.start, self.size = data, start, end - start

    def unpack(self, fmt: str, pos: int) -> tuple:
        if not 0 <= pos <= self.size - struct.calcsize(fmt):
            raise ValueError("past the table")
        return struct.unpack_from(fmt, self.data, self.start + pos)

    def word(self, pos: int) -> int:
        return self.unpack("<Q", pos)[0]

    def c_string(self, pos: int, end: int) -> str | None:
        if not 0 <= pos < end <= self.size:
            return None
        at = self.start + pos
        stop = self.data.find(b"\0", at, self.start + min(end, pos + MAX_NAME))
        return self.data[at:stop].decode("utf-8", "replace") if stop > at else None


def _tables(img: ElfImage):
    """(table, its virtual address) of each place a table may start: the .gopclntab section, else each header
    found in a read-only data section (.rodata, .data.rel.ro; in a file without section headers, its segments:
    elf.sectionless), up to MAX_TRIES."""
    sec = img.section(".gopclntab")
    if sec is not None:
        if sec.type != "SHT_NOBITS" and sec.size >= 16 and sec.offset + sec.size <= len(img.data):
            yield _Table(img.data, sec.offset, sec.offset + sec.size), sec.addr
        return
    tries = 0
    for sec in img.sections:
        if sec.type == "SHT_NOBITS" or sec.executable or not sec.name.startswith((".rodata", ".data.rel.ro",
                                                                                   "[segment")):
            continue
        lo, hi = sec.offset, min(sec.offset + sec.size, len(img.data))
        for head in _HEADS:
            pos = img.data.find(head, lo, hi)
            while pos >= 0 and tries < MAX_TRIES:
                tries += 1
                yield _Table(img.data, pos, hi), sec.addr + pos - lo
                pos = img.data.find(head, pos + 1, hi)


def go_functions(img: ElfImage) -> list[tuple[int, int, str]]:
    """(start, size, name) of every function of a Go program's ``.gopclntab``, by address; [] where the file
    has none, or one this reader does not know or that fails its checks."""
    for table, addr in _tables(img):
        try:
            if found := _read(img, table, addr):
                return found
        except (struct.error, ValueError, IndexError, OverflowError):
            continue
    return []


def _read(img: ElfImage, t: _Table, addr: int) -> list[tuple[int, int, str]]:
    magic, pad, quantum, ptr = t.unpack("<IHBB", 0)
    if pad != 0 or quantum != 1 or ptr != 8 or magic not in (_GO12, _GO116, _GO118, _GO120):
        return []
    nfunc = t.word(8)
    if not 0 < nfunc <= min(MAX_FUNCS, t.size // 8):  # a function takes 8 bytes of the table at least
        return []
    entries: list[int] = []
    records: list[int] = []  # where each function's record starts in the table
    # pointer-sized entries; records counted from the table's start (1.2) or from the function table's (1.16,
    # whose header places the name table, the compilation-unit table right after it)
    if magic in (_GO12, _GO116):
        if magic == _GO12:
            names_at, names_end, tab, base = 0, t.size, 16, 0
        else:
            names_at, names_end, tab = t.word(24), t.word(32), t.word(56)
            base = tab
        for k in range(nfunc):
            entry, off = t.unpack("<QQ", tab + 16 * k)
            entries.append(entry)
            records.append(base + off)
        end = t.word(tab + 16 * nfunc)
        rec_entry = t.word
        name_field = 8
    else:
        text = t.word(24) or img.pointer_slots.get(addr + 24, 0)  # relocated in a position-independent program
        names_at, tab = t.word(32), t.word(64)
        names_end = t.word(40)
        for k in range(nfunc):
            entry, off = t.unpack("<II", tab + 8 * k)
            entries.append(text + entry)
            records.append(tab + off)
        end = text + t.unpack("<I", tab + 8 * nfunc)[0]

        def rec_entry(pos: int) -> int:
            return text + t.unpack("<I", pos)[0]
        name_field = 4
    if not 0 <= names_at < names_end <= t.size:
        return []
    starts = entries + [end]
    if any(b <= a for a, b in zip(starts, starts[1:])):
        return []
    if not (img.is_code(entries[0]) and img.is_code(end - 1)):
        return []
    out = []
    for k, (entry, rec) in enumerate(zip(entries, records)):
        if rec_entry(rec) != entry:
            return []
        name = t.c_string(names_at + t.unpack("<i", rec + name_field)[0], names_end)
        if name is None:
            return []
        out.append((entry, starts[k + 1] - entry, name))
    return out
