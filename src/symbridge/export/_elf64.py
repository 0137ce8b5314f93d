"""Minimal, bounds-checked reader of ELF64 little-endian x86-64 headers (untrusted input)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from symbridge.errors import (
    CorruptBinaryError,
    InputFileError,
    NotAnElfError,
    UnsupportedArchitectureError,
    UsageError,
)

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
SHDR = struct.Struct("<IIQQQQIIQQ")
PHDR = struct.Struct("<IIQQQQQQ")
SYM = struct.Struct("<IBBHQQ")

ET_EXEC, ET_DYN = 2, 3
EM_X86_64 = 62
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS, SHT_SYMTAB_SHNDX = 1, 2, 3, 8, 18
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
PF_X, PF_W = 0x1, 0x2
SHN_LORESERVE, SHN_XINDEX = 0xFF00, 0xFFFF
PT_LOAD = 1


@dataclass
class Section:
    name: int
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int

    def pack(self) -> bytes:
        return SHDR.pack(self.name, self.type, self.flags, self.addr, self.offset, self.size,
                         self.link, self.info, self.addralign, self.entsize)


@dataclass
class Elf:
    path: Path
    data: bytes
    e_type: int
    sections: list[Section]
    shstrndx: int  # 0 when there is no section name table
    min_load_vaddr: int | None
    # the names of sections made from the program headers (sections_from_segments), else None
    made_names: list[bytes] | None = None
    # the PT_LOAD program headers: (type, flags, offset, vaddr, paddr, filesz, memsz, align)
    loads: list[tuple] = field(default_factory=list)

    def fail(self, what: str) -> CorruptBinaryError:
        return CorruptBinaryError(f"{self.path}: corrupt ELF: {what}")

    def section_bytes(self, index: int) -> bytes:
        s = self.sections[index]
        if s.type == SHT_NOBITS:
            return b""
        if s.offset + s.size > len(self.data):
            raise self.fail(f"section {index} extends past the end of the file")
        return self.data[s.offset:s.offset + s.size]

    def cstring(self, table: bytes, offset: int, what: str) -> bytes:
        end = table.find(b"\0", offset) if offset < len(table) else -1
        if end < 0:
            raise self.fail(f"{what} name offset {offset} out of bounds")
        return table[offset:end]

    def section_name(self, index: int) -> bytes:
        if self.made_names is not None:
            return self.made_names[index]
        if not self.shstrndx:
            return b""
        return self.cstring(self.section_bytes(self.shstrndx), self.sections[index].name, "section")


def read_file(path: Path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a directory") from None
    except OSError as e:
        raise InputFileError(f"{path}: cannot read: {e.strerror or e}") from None
    if not data:
        raise InputFileError(f"{path}: empty file")
    return data


def parse(path: Path, data: bytes) -> Elf:
    """Check the ELF header and read section and program headers (all bounds-checked)."""
    if len(data) < 4 or data[:4] != b"\x7fELF":
        raise NotAnElfError(f"{path}: not an ELF file")
    if len(data) < EHDR.size:
        raise CorruptBinaryError(f"{path}: corrupt ELF: truncated header")
    (ident, e_type, machine, _ver, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
     shentsize, shnum, shstrndx) = EHDR.unpack_from(data)
    if ident[4] != 2 or ident[5] != 1 or machine != EM_X86_64:
        raise UnsupportedArchitectureError(f"{path}: only ELF64 little-endian x86-64 is supported")
    if e_type not in (ET_EXEC, ET_DYN):
        raise UsageError(f"{path}: ELF type {e_type} is not an executable or shared object")
    elf = Elf(Path(path), data, e_type, [], 0, None)
    try:
        elf.sections = _sections(elf, shoff, shentsize, shnum)
    except CorruptBinaryError:
        elf.sections = []  # unreadable section headers: the reader set them aside too (elf.image)
    if elf.sections and (elf.sections[0].type or elf.sections[0].addr or elf.sections[0].offset):
        elf.sections = []  # a table whose first entry is not the null section is no section table
    if elf.sections:
        if shstrndx == SHN_XINDEX:
            shstrndx = elf.sections[0].link
        if shstrndx >= len(elf.sections) or elf.sections[shstrndx].type != SHT_STRTAB:
            shstrndx = 0  # no usable name table: names are rebuilt
        elf.shstrndx = shstrndx
    elf.loads = _loads(elf, phoff, phentsize, phnum)
    vaddrs = [p[3] for p in elf.loads]
    elf.min_load_vaddr = min(vaddrs) & ~0xFFF if vaddrs else None
    return elf


def _sections(elf: Elf, shoff: int, shentsize: int, shnum: int) -> list[Section]:
    if shoff == 0:
        return []
    if shentsize != SHDR.size:
        raise elf.fail(f"section header size {shentsize}")
    if shoff + SHDR.size > len(elf.data):
        raise elf.fail("section header table past the end of the file")
    if shnum == 0:  # extended numbering: the count lives in section 0
        shnum = SHDR.unpack_from(elf.data, shoff)[5]
    if shnum > (len(elf.data) - shoff) // SHDR.size:
        raise elf.fail("section header table past the end of the file")
    return [Section(*SHDR.unpack_from(elf.data, shoff + i * SHDR.size)) for i in range(shnum)]


def _loads(elf: Elf, phoff: int, phentsize: int, phnum: int) -> list[tuple]:
    """The PT_LOAD program headers: (type, flags, offset, vaddr, paddr, filesz, memsz, align)."""
    if phoff == 0 or phnum == 0:
        return []
    if phentsize != PHDR.size or phoff + phnum * PHDR.size > len(elf.data):
        raise elf.fail("program header table out of bounds")
    loads = [PHDR.unpack_from(elf.data, phoff + i * PHDR.size) for i in range(phnum)]
    return [p for p in loads if p[0] == PT_LOAD]


def sections_from_segments(elf: Elf) -> None:
    """Sections for a file without usable section headers, one for each loaded segment's file part (.text,
    .rodata or .data by its flags) and a .bss for the rest of a writable one's memory, after the null section:
    what a symbol table needs to place its functions (nm, gdb and disassemblers read them)."""
    secs, names, seen = [Section(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)], [b""], {}

    def add(name: bytes, *fields) -> None:
        seen[name] = seen.get(name, -1) + 1
        names.append(name + (b".%d" % seen[name] if seen[name] else b""))
        secs.append(Section(0, *fields))

    for _, flags, offset, vaddr, _, filesz, memsz, _ in elf.loads:
        if offset + filesz > len(elf.data):
            raise elf.fail("truncated: a loaded segment ends past the end of the file")
        kind = (SHF_ALLOC | (SHF_EXECINSTR if flags & PF_X else 0) | (SHF_WRITE if flags & PF_W else 0))
        name = b".text" if flags & PF_X else b".data" if flags & PF_W else b".rodata"
        if filesz:
            add(name, SHT_PROGBITS, kind, vaddr, offset, filesz, 0, 0, 16 if flags & PF_X else 8, 0)
        if memsz > filesz and flags & PF_W:
            add(b".bss", SHT_NOBITS, kind, vaddr + filesz, offset + filesz, memsz - filesz, 0, 0, 8, 0)
    elf.sections, elf.made_names, elf.shstrndx = secs, names, 0


def load(path: Path) -> Elf:
    return parse(Path(path), read_file(path))
