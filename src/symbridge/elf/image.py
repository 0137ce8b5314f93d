"""Checked reading of one x86-64 ELF file: sections, segments, symbols, imports, relocations.

pyelftools parses the structures; every offset and size it hands us is checked against the file
before use, and any parser failure becomes a one-line ``CorruptBinaryError``.
"""

from __future__ import annotations

import bisect
import io
import os
import re
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.construct.core import ConstructError
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_ST_INFO_BIND, ENUM_ST_INFO_TYPE

from ..errors import (
    CorruptBinaryError,
    InputFileError,
    InputWarning,
    NoCodeError,
    NotAnElfError,
    ResourceLimitError,
    SymbridgeError,
    UnsupportedArchitectureError,
)
from .link import ARCHIVE_MAGIC, linkable, linked_bytes

MAX_FILE_SIZE = 512 * 1024 * 1024
REFERENCE_ONLY = "which can be a reference (it is linked first) but not a target"
MAX_SYMBOLS = 2_000_000
MAX_RELOCATIONS = 4_000_000
MAX_SECTIONS = 4096  # section headers; linked programs and libraries have a few dozen
MAX_SEGMENTS = 4096  # program headers
# Tables parsed from the file (relocations, notes, dynamic, PLT) may not add up to more than this many
# times the file's size: tables that overlap each other would otherwise multiply the work.
MAX_TABLE_BYTES_FACTOR = 2

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
PF_X = 0x1
PF_W = 0x2

_MACHINES = {3: "x86 (i386)", 40: "ARM", 183: "AArch64", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64",
             43: "SPARC v9", 243: "RISC-V", 22: "S/390", 258: "LoongArch"}
# Relocation types of x86-64 that we read.
R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT, R_X86_64_RELATIVE, R_X86_64_IRELATIVE = 1, 6, 7, 8, 37


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    type: str
    flags: int
    addr: int
    offset: int
    size: int
    entsize: int

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR) and bool(self.flags & SHF_ALLOC)

    def contains(self, addr: int) -> bool:
        return self.addr <= addr < self.addr + self.size


@dataclass(frozen=True, slots=True)
class Segment:
    vaddr: int
    memsz: int
    offset: int
    filesz: int
    flags: int


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    address: int
    size: int
    kind: str  # STT_FUNC, STT_OBJECT, STT_GNU_IFUNC, ...
    bind: str
    defined: bool
    table: str  # "symtab" | "dynsym"
    # an old version kept for programs linked against it (`memcpy@GLIBC_2.2.5`, not `memcpy@@GLIBC_2.14`): the
    # hidden bit of its .gnu.version entry, or a single `@` in a .symtab name; no program links it now
    compat: bool = False


@dataclass
class ElfImage:
    """The raw facts of one ELF file, validated; no analysis."""

    path: Path
    data: bytes
    elf_type: str
    entry: int
    sections: list[Section] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    symbols: list[Symbol] = field(default_factory=list)
    plt: dict[int, str] = field(default_factory=dict)  # stub address -> import name
    got: dict[int, str] = field(default_factory=dict)  # GOT slot -> import name
    got_local: dict[int, int] = field(default_factory=dict)  # PLT GOT slot -> function this file defines
    plt_local: dict[int, int] = field(default_factory=dict)  # stub address -> function this file defines
    got_code: dict[int, int] = field(default_factory=dict)  # GOT slot (GLOB_DAT) -> function this file defines
    got_data: dict[int, int] = field(default_factory=dict)  # GOT slot (GLOB_DAT) -> object this file defines
    code_pointers: set[int] = field(default_factory=set)  # relocated pointers into code
    pointer_slots: dict[int, int] = field(default_factory=dict)  # relocated slot -> the code it points to
    data_slots: dict[int, int] = field(default_factory=dict)  # relocated slot -> the data it points to
    needed: list[str] = field(default_factory=list)
    build_id: str | None = None
    debuglink: str | None = None
    has_dwarf: bool = False
    interp: str | None = None
    _code_cache: tuple[tuple, list[tuple[int, int]], list[int]] | None = field(default=None, repr=False,
                                                                               compare=False)
    _seg_cache: tuple | None = field(default=None, repr=False, compare=False)
    _c_strings: dict[tuple[int, int], str | None] = field(default_factory=dict, repr=False, compare=False)
    _pointer_cache: tuple | None = field(default=None, repr=False, compare=False)

    # ---------------------------------------------------------------- address space
    def read(self, addr: int, size: int) -> bytes:
        """Bytes at a virtual address from the file image ('' past the file-backed part)."""
        key = (id(self.segments), len(self.segments))
        if self._seg_cache is None or self._seg_cache[0] != key:
            segs = sorted((g for g in self.segments if g.filesz), key=lambda g: g.vaddr)
            disjoint = all(a.vaddr + a.filesz <= b.vaddr for a, b in zip(segs, segs[1:]))
            self._seg_cache = (key, segs if disjoint else None, [g.vaddr for g in segs])
        segs, starts = self._seg_cache[1], self._seg_cache[2]
        if segs is not None:  # the usual case: no two segments overlap, so at most one holds addr
            i = bisect.bisect_right(starts, addr) - 1
            candidates = segs[i:i + 1] if i >= 0 else []
        else:
            candidates = self.segments
        for seg in candidates:
            if seg.vaddr <= addr < seg.vaddr + seg.filesz:
                off = seg.offset + (addr - seg.vaddr)
                end = min(off + size, seg.offset + seg.filesz, len(self.data))
                return self.data[off:end] if off < end else b""
        return b""

    def section_at(self, addr: int) -> Section | None:
        for s in self.sections:
            if s.flags & SHF_ALLOC and s.contains(addr):
                return s
        return None

    def read_only_data(self, addr: int, size: int) -> bytes | None:
        """Bytes at addr when it lies in a loaded, read-only, non-executable section with file contents
        (.rodata: constants that are the same in every build), else None."""
        sec = self.section_at(addr)
        if sec is None or sec.executable or sec.flags & SHF_WRITE or sec.type == "SHT_NOBITS":
            return None
        return self.read(addr, min(size, sec.addr + sec.size - addr))

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def _code_index(self) -> tuple[list[tuple[int, int]], list[int]]:
        key = (id(self.sections), len(self.sections), id(self.segments), len(self.segments))
        if self._code_cache is None or self._code_cache[0] != key:
            ranges = [(s.addr, s.addr + s.size) for s in self.sections
                      if s.executable and s.type != "SHT_NOBITS" and s.size]
            if not ranges:
                ranges = [(g.vaddr, g.vaddr + g.filesz) for g in self.segments if g.flags & PF_X and g.filesz]
            merged: list[tuple[int, int]] = []
            for a, b in sorted(ranges):  # overlapping ranges (only in broken files) become one
                if merged and a < merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], b))
                else:
                    merged.append((a, b))
            self._code_cache = (key, merged, [a for a, _ in merged])
        return self._code_cache[1], self._code_cache[2]

    @property
    def code_ranges(self) -> list[tuple[int, int]]:
        """(start, end) of executable code: executable sections, or X segments without sections."""
        return list(self._code_index()[0])

    def is_code(self, addr: int) -> bool:
        ranges, starts = self._code_index()
        i = bisect.bisect_right(starts, addr) - 1
        return i >= 0 and addr < ranges[i][1]

    def c_string(self, addr: int, limit: int = 256) -> str | None:
        """A printable NUL-terminated string at addr in a non-executable section, else None (remembered:
        functions refer to the same strings again and again)."""
        key = (addr, limit)
        if key not in self._c_strings:
            self._c_strings[key] = self._read_c_string(addr, limit)
        return self._c_strings[key]

    def _read_c_string(self, addr: int, limit: int) -> str | None:
        sec = self.section_at(addr)
        if sec is None or sec.executable or sec.type == "SHT_NOBITS":
            return None
        raw = self.read(addr, limit + 1)
        end = raw.find(b"\0")
        if end < 0:
            return None
        raw = raw[:end]
        if not raw:
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not all(c.isprintable() or c in "\n\t\r" for c in text):
            return None
        return text

    @property
    def is_pie_or_shared(self) -> bool:
        return self.elf_type == "ET_DYN"

    def pointer_value(self, slot: int) -> int | None:
        """The address a pointer-sized data word holds: its relocation's in a position-independent file, the word
        itself in a fixed-address executable; None where neither says."""
        if slot in self.pointer_slots:
            return self.pointer_slots[slot]
        if slot in self.data_slots:
            return self.data_slots[slot]
        if self.elf_type != "ET_EXEC":
            return None
        raw = self.read(slot, 8)
        return int.from_bytes(raw, "little") if len(raw) == 8 else None

    def referenced_data(self, addr: int, size: int = 16) -> bytes | tuple[str, ...]:
        """What a function's reference to data at addr reads, as evidence of which data it is: `size` bytes there
        in a read-only section (.rodata), else the strings behind the object's first pointers (a descriptor's
        name: strings_behind); falsy for neither."""
        return self.read_only_data(addr, size) or self.strings_behind(addr)

    def strings_behind(self, addr: int, window: int = 64) -> tuple[str, ...]:
        """The strings that the pointer-sized words in the first `window` bytes at addr point to (a descriptor
        struct's name: OpenSSL's ASN1_ITEM, an ops table, a command table), in order; () for none."""
        first = (addr + 7) & ~7
        found = []
        for slot in range(first, addr + window, 8):
            value = self.pointer_value(slot)
            if value and (s := self.c_string(value)) is not None:
                found.append(s)
        return tuple(found)

    def pointer_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(slot addresses, the code they point to), sorted by slot: the relocated pointers into code, and in a
        fixed-address executable also the aligned data words that hold a code address (no relocation is left
        for them there; in a position-independent file such small values are more often plain numbers)."""
        if self._pointer_cache is None:
            slots = dict(self.pointer_slots)
            if self.elf_type == "ET_EXEC":
                for sec in self.sections:
                    if not sec.flags & SHF_ALLOC or sec.executable or sec.type != "SHT_PROGBITS" or sec.size < 8:
                        continue
                    first = (sec.addr + 7) & ~7
                    raw = self.read(first, sec.addr + sec.size - first)
                    words = np.frombuffer(raw, "<u8", count=len(raw) // 8)
                    for lo, hi in self.code_ranges:
                        at = np.flatnonzero((words >= lo) & (words < hi))
                        slots.update(zip((first + 8 * at).tolist(), words[at].tolist()))
            order = sorted(slots)
            self._pointer_cache = (np.array(order, np.uint64), np.array([slots[a] for a in order], np.uint64))
        return self._pointer_cache


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputFileError(f"{path}: no such file")
    if path.is_dir():
        raise InputFileError(f"{path}: is a directory, not a binary")
    if not os.access(path, os.R_OK):
        raise InputFileError(f"{path}: permission denied")
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(f"{path}: empty file")
    if size > MAX_FILE_SIZE:
        raise ResourceLimitError(f"{path}: {size} bytes is over the {MAX_FILE_SIZE >> 20} MiB limit")


def _check_magic(path: Path, data: bytes) -> None:
    if data[:4] != b"\x7fELF":
        kind = "not an ELF file"
        if data[:2] == b"MZ":
            kind = "a PE (Windows) file, not an ELF file; only x86-64 ELF is supported"
        elif data[:4] in (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe",
                          b"\xca\xfe\xba\xbe"):
            kind = "a Mach-O file, not an ELF file; only x86-64 ELF is supported"
        elif data[:2] == b"#!":
            kind = "a script, not an ELF file"
        elif data[:8] in ARCHIVE_MAGIC:
            kind = f"a static archive (.a), {REFERENCE_ONLY}"
        elif all(32 <= b < 127 or b in (9, 10, 13) for b in data[:512]):
            kind = "a text file, not an ELF file"
            group = re.search(rb"\b(?:GROUP|INPUT)\s*\(([^()]*)", data[:4096])
            if group:  # glibc's libm.a and libc.so are linker scripts naming the real files
                named = [n.decode(errors="replace") for n in group.group(1).split() if b"/" in n or b"." in n][:4]
                kind = ("a linker script, not an ELF file" + (f"; it names {', '.join(named)}: give one of those"
                                                              if named else ""))
        raise NotAnElfError(f"{path}: {kind}")
    if len(data) < 64:
        raise CorruptBinaryError(f"{path}: truncated ELF header ({len(data)} bytes)")
    if data[4] == 1:
        machine = struct.unpack_from("<H", data, 18)[0] if data[5] == 1 else struct.unpack_from(">H", data, 18)[0]
        raise UnsupportedArchitectureError(
            f"{path}: 32-bit ELF ({_MACHINES.get(machine, f'machine {machine}')}) is not supported; "
            "only x86-64 ELF is")
    if data[4] != 2:
        raise CorruptBinaryError(f"{path}: bad ELF class byte {data[4]}")
    if data[5] != 1:
        raise UnsupportedArchitectureError(f"{path}: big-endian ELF is not supported; only x86-64 ELF is")
    machine = struct.unpack_from("<H", data, 18)[0]
    if machine != 62:
        raise UnsupportedArchitectureError(
            f"{path}: ELF for {_MACHINES.get(machine, f'machine {machine}')} is not supported; only x86-64 is")


def load_image(path: str | os.PathLike, require_code: bool = True, link: bool = False) -> ElfImage:
    """Read and validate an ELF file. Raises a ``SymbridgeError`` subclass for bad input. With `link`, a static
    archive or relocatable object is first linked into one ELF (`elf.link`), which is what is read."""
    path = Path(path)
    _check_path(path)
    data = path.read_bytes()
    linked = link and linkable(data)
    if linked:
        data = linked_bytes(path, data)
        if len(data) > MAX_FILE_SIZE:
            raise ResourceLimitError(f"{path}: linked, {len(data)} bytes is over the {MAX_FILE_SIZE >> 20} MiB limit")
    try:
        return parse_image(path, data, require_code)
    except NoCodeError:
        if linked:
            raise NoCodeError(f"{path}: linked, it holds no machine code (an empty archive, or objects built with "
                              "-flto, which hold only the compiler's bytecode without -ffat-lto-objects)") from None
        raise


def parse_image(path: Path, data: bytes, require_code: bool = True) -> ElfImage:
    """The ElfImage of an ELF file's bytes (path: what messages call it), validated as load_image does."""
    _check_magic(path, data)
    try:
        return _parse(path, data, require_code)
    except (*_PARSE_ERRORS, RecursionError) as exc:
        raise CorruptBinaryError(f"{path}: malformed ELF ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    """A parser's complaint in one short line (pyelftools passes on construct's nested errors as the text
    of a tuple: its first part is the complaint)."""
    text = str(exc).strip()
    nested = re.match(r"^\('([^']*)',", text)
    if nested:
        text = nested.group(1)
    return text.splitlines()[0][:160] if text else type(exc).__name__


_PARSE_ERRORS = (ELFError, ConstructError, struct.error, ValueError, KeyError, IndexError, TypeError, AttributeError,
                 AssertionError, UnicodeDecodeError, OverflowError)


def _parse(path: Path, data: bytes, require_code: bool = True) -> ElfImage:
    """The image, or where the file's section headers cannot be read (garbled, or pointed past the end of the
    file to stop disassemblers; the loader reads only the program headers), the image of the file as sstrip
    would leave it, read from its program headers (elf.sectionless), with a warning: unless its loaded
    segments do not lie whole in the file (a truncated file), which stays an error."""
    try:
        return _parse_elf(path, data, require_code)
    except (CorruptBinaryError, ResourceLimitError, *_PARSE_ERRORS) as exc:
        if len(data) < 64 or not data[0x28:0x30].strip(b"\0"):  # no section headers to blame
            raise
        bare = data[:0x28] + bytes(8) + data[0x30:0x3C] + bytes(4) + data[0x40:]  # e_shoff, e_shnum, e_shstrndx
        try:
            img = _parse_elf(path, bare, require_code)
            whole = _segments_whole(ELFFile(io.BytesIO(bare)), len(bare))
        except (SymbridgeError, *_PARSE_ERRORS):
            raise exc from None
        if not whole:
            raise exc from None
        reason = str(exc) if isinstance(exc, SymbridgeError) else f"{path}: malformed section headers ({_reason(exc)})"
        warnings.warn(f"{reason}; read from its program headers instead, as the system loads it", InputWarning,
                      stacklevel=4)
        return img


def _parse_elf(path: Path, data: bytes, require_code: bool) -> ElfImage:
    elf = ELFFile(io.BytesIO(data))
    hdr = elf.header
    etype = hdr["e_type"]
    if etype not in ("ET_EXEC", "ET_DYN"):
        if etype == "ET_REL":
            raise UnsupportedArchitectureError(f"{path}: a relocatable object (.o), {REFERENCE_ONLY}")
        what = {"ET_CORE": "a core dump"}.get(etype, str(etype))
        raise UnsupportedArchitectureError(f"{path}: {what} is not supported; give a linked program or library")
    size = len(data)
    img = ElfImage(path=path, data=data, elf_type=etype, entry=hdr["e_entry"])
    if elf.header["e_shoff"] and elf.num_sections() > MAX_SECTIONS:  # e_shnum, or its extension in section 0
        raise ResourceLimitError(f"{path}: {elf.num_sections()} sections is over the limit of {MAX_SECTIONS}")
    img.segments = _segments(elf, size, path)
    img.sections = _sections(elf, size, path)
    if require_code and not img.code_ranges:
        raise NoCodeError(f"{path}: no executable code in this ELF")
    budget = _TableBudget(path, size)
    if img.sections:
        tables = _symbols(elf, img, path)
        _relocations(elf, img, budget, tables)
        _notes_and_links(elf, img, budget)
    else:  # no section headers: what they would have told, from the program headers
        from .sectionless import read_without_sections

        read_without_sections(elf, img, budget, path)
    return img


class _TableBudget:
    """Counts the bytes of the tables we parse; overlapping tables that add up to more than the file fail."""

    def __init__(self, path: Path, file_size: int):
        self.path = path
        self.left = MAX_TABLE_BYTES_FACTOR * file_size + 4096

    def take(self, what: str, nbytes: int) -> None:
        self.left -= max(nbytes, 0)
        if self.left < 0:
            raise CorruptBinaryError(f"{self.path}: {what} sections overlap other tables (more table bytes "
                                     "than the file holds)")


ADDRESS_END = 1 << 64  # an address range that runs past it wraps round: no loader maps such a segment


def _segments_whole(elf: ELFFile, size: int) -> bool:
    """Whether every loaded segment lies inside the file (a truncated file's do not)."""
    loads = [g for g in elf.iter_segments() if g["p_type"] == "PT_LOAD"]
    return bool(loads) and all(g["p_offset"] + g["p_filesz"] <= size for g in loads)


def _segments(elf: ELFFile, size: int, path: Path) -> list[Segment]:
    out = []
    if elf.header["e_phnum"] > MAX_SEGMENTS:
        raise ResourceLimitError(f"{path}: {elf.header['e_phnum']} program headers is over the limit of "
                                 f"{MAX_SEGMENTS}")
    for seg in elf.iter_segments():
        if seg["p_type"] != "PT_LOAD":
            continue
        off, filesz = seg["p_offset"], seg["p_filesz"]
        if off > size or seg["p_vaddr"] + max(seg["p_memsz"], filesz) > ADDRESS_END:  # no system maps it
            continue
        filesz = min(filesz, size - off)  # truncated files: keep the part that exists
        out.append(Segment(seg["p_vaddr"], seg["p_memsz"], off, filesz, seg["p_flags"]))
    return out


def _sections(elf: ELFFile, size: int, path: Path) -> list[Section]:
    out = []
    if elf.header["e_shoff"] == 0 or elf.header["e_shnum"] == 0:
        return out
    if elf.header["e_shoff"] + elf.header["e_shnum"] * 64 > size:
        raise CorruptBinaryError(f"{path}: section header table lies past the end of the file (truncated?)")
    if elf.header["e_shnum"] > MAX_SECTIONS:
        raise ResourceLimitError(f"{path}: {elf.header['e_shnum']} sections is over the limit of {MAX_SECTIONS}")
    for s in elf.iter_sections():
        typ = s["sh_type"]
        if s["sh_flags"] & SHF_ALLOC and s["sh_addr"] + s["sh_size"] > ADDRESS_END:
            if s["sh_flags"] & SHF_EXECINSTR:
                raise CorruptBinaryError(f"{path}: section {s.name or '?'} runs past the end of the address space")
            continue
        if typ != "SHT_NOBITS" and (s["sh_offset"] > size or s["sh_offset"] + s["sh_size"] > size):
            if s["sh_flags"] & SHF_EXECINSTR:
                raise CorruptBinaryError(f"{path}: section {s.name or '?'} lies past the end of the file "
                                         "(truncated?)")
            continue
        out.append(Section(s.name, str(typ), s["sh_flags"], s["sh_addr"], s["sh_offset"], s["sh_size"],
                           s["sh_entsize"]))
    return out


# Symbol and relocation tables are read as NumPy records: pyelftools parses them one entry at a time, which
# was a fifth of the time of analysing a small library. pyelftools still finds and checks the sections.
_SYM = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"), ("value", "<u8"),
                 ("size", "<u8")])
_RELA = np.dtype([("offset", "<u8"), ("info", "<u8"), ("addend", "<i8")])
# pyelftools' names, except that 10 is STT_GNU_IFUNC (its table says STT_LOOS, the same number)
_STT = {v: k for k, v in ENUM_ST_INFO_TYPE.items() if k != "_default_"} | {10: "STT_GNU_IFUNC"}
_STB = {v: k for k, v in ENUM_ST_INFO_BIND.items() if k != "_default_"}


def blanked(name: str) -> bool:
    """A name someone blanked rather than a name: nothing but spaces, or one character three times or more
    (`XXXXXXXX`, `________`, as a tool that hides a library's exported names may fill them in). No symbol of
    the libraries and programs of this project's machine reads so (nm over /usr/lib and /usr/bin)."""
    return not name.strip() or (len(name) >= 3 and name.count(name[0]) == len(name))


class _SymbolTable:
    """One symbol table's fields as lists (read through a NumPy view of the file); names decoded once, when
    first asked for."""

    def __init__(self, data: bytes, offset: int, n: int, strings: int, what: str, path: Path, entsize: int = 24):
        """n entries at file offset `offset`, their names in the string table at file offset `strings` (names
        past the end of the file read as none)."""
        if n > MAX_SYMBOLS:
            raise ResourceLimitError(f"{path}: {n} symbols in {what} is over the limit of {MAX_SYMBOLS}")
        if entsize != 24 or offset < 0 or offset + n * 24 > len(data):
            raise CorruptBinaryError(f"{path}: symbol table {what} is malformed or lies past the end of the file")
        rows = np.frombuffer(data, _SYM, count=n, offset=offset)
        self.info, self.shndx, self.value, self.size = (rows[k].tolist() for k in ("info", "shndx", "value", "size"))
        self._data, self._strings, self._name_offsets = data, strings, rows["name"].tolist()
        self._names: list[str] | None = None

    @classmethod
    def of_section(cls, data: bytes, sec, path: Path) -> _SymbolTable:
        return cls(data, sec["sh_offset"], sec["sh_size"] // 24, sec.stringtable["sh_offset"], sec.name, path,
                   sec["sh_entsize"])

    def __len__(self) -> int:
        return len(self.value)

    @property
    def names(self) -> list[str]:
        if self._names is None:
            data, out = self._data, []
            for off in self._name_offsets:
                start = self._strings + off
                end = data.find(b"\0", start)
                name = data[start:end].decode("utf-8", "replace") if end > start else ""
                out.append("" if name and blanked(name) else name)
            self._names = out
        return self._names


def _symbols(elf: ELFFile, img: ElfImage, path: Path) -> dict[int, _SymbolTable]:
    """Symbols of .symtab and .dynsym; returns their tables by file offset, for the relocations to reuse."""
    tables: dict[int, _SymbolTable] = {}
    for table in (".symtab", ".dynsym"):
        sec = elf.get_section_by_name(table)
        if sec is None or not hasattr(sec, "iter_symbols"):
            continue
        if sec["sh_type"] == "SHT_NOBITS":
            continue
        syms = tables[sec["sh_offset"]] = _SymbolTable.of_section(img.data, sec, path)
        _add_symbols(img, syms, table[1:])
    return tables


def _add_symbols(img: ElfImage, syms: _SymbolTable, table: str) -> None:
    """img.symbols gets the table's entries (table: "symtab" or "dynsym")."""
    hidden = _hidden_versions(img, len(syms)) if table == "dynsym" else None
    for i, (name, info, shndx, value, size) in enumerate(zip(syms.names, syms.info, syms.shndx, syms.value,
                                                             syms.size)):
        compat = hidden[i] if hidden is not None else ("@" in name and "@@" not in name)
        img.symbols.append(Symbol(
            name=name, address=value, size=size, kind=_STT.get(info & 0xF, str(info & 0xF)),
            bind=_STB.get(info >> 4, str(info >> 4)), defined=shndx != 0, table=table, compat=compat))


def _hidden_versions(img: ElfImage, count: int) -> list[bool] | None:
    """Whether each .dynsym entry's .gnu.version entry has the hidden bit (0x8000: a non-default version, which
    readelf writes with one `@`); None without a usable .gnu.version."""
    sec = next((s for s in img.sections if s.type == "SHT_GNU_versym"), None)
    if sec is None or sec.size < 2 * count or sec.offset + 2 * count > len(img.data):
        return None
    return (np.frombuffer(img.data, "<u2", count=count, offset=sec.offset) & 0x8000).astype(bool).tolist()


def _relocations(elf: ELFFile, img: ElfImage, budget: _TableBudget, tables: dict[int, _SymbolTable]) -> None:
    """GOT slots named by their imports, PLT stubs named NAME@plt, pointers into code. ``tables``: the symbol
    tables already read, by file offset."""
    from elftools.elf.relocation import RelocationSection

    count = 0
    for sec in elf.iter_sections():
        if not isinstance(sec, RelocationSection) or not (sec["sh_flags"] & SHF_ALLOC or
                                                          sec.name.startswith(".rela")):
            continue
        if sec["sh_type"] != "SHT_RELA":
            continue
        budget.take("relocation", sec["sh_size"])
        try:
            symtab = elf.get_section(sec["sh_link"]) if sec["sh_link"] else None
        except (ELFError, IndexError):
            symtab = None
        syms = None
        if hasattr(symtab, "iter_symbols"):
            syms = tables.get(symtab["sh_offset"])
            if syms is None:
                syms = _SymbolTable.of_section(img.data, symtab, img.path)
        n = sec["sh_size"] // 24
        if sec["sh_entsize"] != 24 or sec["sh_offset"] + n * 24 > len(img.data):
            raise CorruptBinaryError(f"{img.path}: relocation section {sec.name} is malformed or lies past the "
                                     "end of the file")
        count += n
        if count > MAX_RELOCATIONS:
            raise ResourceLimitError(f"{img.path}: more than {MAX_RELOCATIONS} relocations")
        _apply_relocations(img, np.frombuffer(img.data, _RELA, count=n, offset=sec["sh_offset"]), syms)
    _name_plt_stubs(img, budget)


def _apply_relocations(img: ElfImage, rel: np.ndarray, syms: _SymbolTable | None) -> None:
    """What one table of RELA entries tells (see _relocations); syms: the symbol table its entries index."""
    nsyms = len(syms) if syms is not None else 0
    rtypes, sidxs = rel["info"] & 0xFFFFFFFF, rel["info"] >> 32
    is_relative = (rtypes == R_X86_64_RELATIVE) | (rtypes == R_X86_64_IRELATIVE)
    relative, slots = rel["addend"][is_relative], rel["offset"][is_relative]
    in_code = np.zeros(len(relative), bool)
    for lo, hi in img.code_ranges:
        inside = (relative >= lo) & (relative < hi)
        in_code |= inside
        img.code_pointers.update(relative[inside].tolist())
        img.pointer_slots.update(zip(slots[inside].tolist(), relative[inside].tolist()))
    img.data_slots.update(zip(slots[~in_code].tolist(), relative[~in_code].tolist()))
    named = np.isin(rtypes, (R_X86_64_JUMP_SLOT, R_X86_64_GLOB_DAT, R_X86_64_64)) & (sidxs > 0) & (sidxs < nsyms)
    for rtype, sidx, off, addend in zip(rtypes[named].tolist(), sidxs[named].tolist(),
                                        rel["offset"][named].tolist(), rel["addend"][named].tolist()):
        name, shndx, value = syms.names[sidx], syms.shndx[sidx], syms.value[sidx]
        if rtype != R_X86_64_64:
            if name and shndx == 0:
                img.got[off] = name
            elif rtype == R_X86_64_JUMP_SLOT:
                if name:
                    img.got[off] = name
                if shndx != 0 and img.is_code(value):
                    # an exported function called through the PLT (semantic interposition): the calls
                    # go to this file's own function, whether or not its name was stripped
                    img.got_local[off] = value
            elif rtype == R_X86_64_GLOB_DAT and shndx != 0 and value:
                # the address of an exported function or object, loaded from the GOT (PIC code)
                (img.got_code if img.is_code(value) else img.got_data)[off] = value
        elif shndx != 0 and img.is_code(value + addend):
            img.code_pointers.add(value + addend)
            img.pointer_slots[off] = value + addend


def _name_plt_stubs(img: ElfImage, budget: _TableBudget) -> None:
    from ..analysis.disasm import decode_range

    if not img.got and not img.got_local:
        return
    for sec in img.sections:
        if not sec.executable or not sec.name.startswith(".plt"):
            continue
        entry = sec.entsize if sec.entsize in (8, 16) else 16
        budget.take("PLT", sec.size)
        for ins in decode_range(img, sec.addr, sec.addr + sec.size):
            if ins.is_jmp_near_indirect and ins.is_ip_rel_memory_operand:
                slot = ins.ip_rel_memory_address
                start = sec.addr + (ins.ip - sec.addr) // entry * entry
                if img.got.get(slot):
                    img.plt.setdefault(start, img.got[slot])
                if slot in img.got_local:
                    img.plt_local.setdefault(start, img.got_local[slot])


def _notes_and_links(elf: ELFFile, img: ElfImage, budget: _TableBudget) -> None:
    for sec in elf.iter_sections():
        if sec["sh_type"] == "SHT_NOTE" and sec["sh_size"] < 1 << 16:
            budget.take("note", sec["sh_size"])
            for note in sec.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    img.build_id = str(note["n_desc"])
        elif sec.name == ".gnu_debuglink" and sec["sh_size"] < 4096:
            raw = sec.data()
            img.debuglink = raw[: raw.find(b"\0")].decode("utf-8", "replace") or None
        elif sec.name == ".debug_info" and sec["sh_type"] != "SHT_NOBITS":
            img.has_dwarf = True
        elif sec["sh_type"] == "SHT_DYNAMIC" and sec["sh_size"] < 1 << 20:
            budget.take("dynamic", sec["sh_size"])
            for tag in sec.iter_tags():
                if tag.entry.d_tag == "DT_NEEDED":
                    img.needed.append(tag.needed)
