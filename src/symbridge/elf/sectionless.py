"""ELF files without section headers: `sstrip` removes them, and some malware drops or garbles them to hinder
analysis (the kernel and the dynamic linker read only the program headers). What the sections would have
told is read from the program headers instead: the loaded segments stand in for sections (code, read-only
data, data), `PT_GNU_EH_FRAME` leads to `.eh_frame`, the dynamic table to the dynamic symbols, the
relocations (imports), the init arrays and the needed libraries, and `PT_NOTE` to the build-id. PLT stubs
are the `jmp [rip+slot]` whose slot the relocations name."""

from __future__ import annotations

import bisect
import re
import struct
from pathlib import Path

import numpy as np
from elftools.elf.elffile import ELFFile

from ..errors import CorruptBinaryError, ResourceLimitError
from .image import (_RELA, MAX_RELOCATIONS, MAX_SYMBOLS, PF_W, PF_X, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, ElfImage,
                    Section, _add_symbols, _apply_relocations, _SymbolTable, _TableBudget)

MAX_DYNAMIC = 4096  # entries of the dynamic table read
DT = {"NEEDED": 1, "PLTRELSZ": 2, "PLTGOT": 3, "HASH": 4, "STRTAB": 5, "SYMTAB": 6, "RELA": 7, "RELASZ": 8, "STRSZ": 10,
      "INIT": 12, "FINI": 13, "PLTREL": 20, "JMPREL": 23, "INIT_ARRAY": 25, "FINI_ARRAY": 26,
      "INIT_ARRAYSZ": 27, "FINI_ARRAYSZ": 28, "PREINIT_ARRAY": 32, "PREINIT_ARRAYSZ": 33,
      "GNU_HASH": 0x6FFFFEF5, "VERSYM": 0x6FFFFFF0}
PT_DYNAMIC, PT_NOTE, PT_GNU_EH_FRAME = 2, 4, 0x6474E550
NT_GNU_BUILD_ID = 3
ENDBR64 = b"\xf3\x0f\x1e\xfa"
_JMP_SLOT = re.compile(rb"\xff\x25", re.DOTALL)  # jmp qword [rip+disp32]
_PUSH_SLOT = re.compile(rb"\xff\x35", re.DOTALL)  # push qword [rip+disp32]
# a CIE: its length (4 bytes, aligned), CIE id 0, version 1, an augmentation string that begins with "z"
_CIE = re.compile(rb"(?=[\x10-\xff][\x00-\xff]\x00\x00\x00\x00\x00\x00\x01z[A-Za-z]{0,6}\x00)", re.DOTALL)
# the stubs of a static program's PLT: jmp qword [rip+disp32]; xchg ax, ax
MIN_STUBS = 2
_STATIC_STUBS = re.compile(rb"(?:\xff\x25[\x00-\xff]{4}\x66\x90){%d,}" % MIN_STUBS, re.DOTALL)
MAX_CIE_TRIES = 64
EDGE_SLACK = 64  # bytes of code kept before and after what the unwind tables show (_code_bounds)
FINI_BYTES = 16  # .fini's few instructions after the address DT_FINI gives
MIN_FDES = 4


def read_without_sections(elf: ELFFile, img: ElfImage, budget: _TableBudget, path: Path) -> None:
    """Fill img (whose file has no section headers) from its program headers, as the sections would have."""
    segments = list(elf.iter_segments())
    img.sections = _load_sections(img)
    for seg in segments:
        if seg["p_type"] == "PT_GNU_EH_FRAME":
            if (sec := _eh_frame(img, seg["p_vaddr"], seg["p_offset"], seg["p_filesz"])) is not None:
                img.sections.insert(0, sec)
        elif seg["p_type"] == "PT_NOTE" and seg["p_filesz"] < 1 << 16:
            budget.take("note", seg["p_filesz"])
            img.build_id = img.build_id or _build_id(img.data, seg["p_offset"], seg["p_filesz"])
    if img.section(".eh_frame") is None and (sec := _find_eh_frame(img)) is not None:
        img.sections.insert(0, sec)  # a static program has no .eh_frame_hdr to lead to it
    dyn = next((s for s in segments if s["p_type"] == "PT_DYNAMIC"), None)
    if dyn is not None:
        tags = _dynamic_tags(img.data, dyn["p_offset"], dyn["p_filesz"])
        budget.take("dynamic", 16 * sum(len(v) for v in tags.values()))
        _dynamic(img, tags, budget, path)
    else:
        _static_plt(img)
    _code_bounds(img)


def _code_bounds(img: ElfImage) -> None:
    """Each executable segment's section cut to the code that the unwind tables, the PLT, DT_INIT, DT_FINI (and
    FINI_BYTES after it) and the entry point show, with EDGE_SLACK bytes before (a static program's .init, or a
    library's whose DT_INIT names another function) and after where no DT_FINI is known (a static program's
    .fini): in a file laid out as linkers did before 2018, or as lld does, the code's segment holds the ELF
    header, the dynamic symbols and read-only data too, which would otherwise be searched for functions."""
    from .ehframe import fde_ranges

    ranges = fde_ranges(img)
    if not ranges:
        return
    told = [s.addr for s in img.sections if s.name in (".init", ".fini")]  # the dynamic table's DT_INIT, DT_FINI
    marks = [a for a, _ in ranges] + [a + n for a, n in ranges] + [img.entry] * bool(img.entry) + told + [
        s.addr + FINI_BYTES for s in img.sections if s.name == ".fini"] + [
        x for s in img.sections if s.name == ".plt" for x in (s.addr, s.addr + s.size)]
    # after the code, read-only data may follow at once: the slack only where DT_FINI does not tell the end
    lo = min(marks) - EDGE_SLACK
    hi = max(marks) + (0 if any(s.name == ".fini" for s in img.sections) else EDGE_SLACK)
    cut = []
    for s in img.sections:
        if _is_code_segment(s):
            a, b = max(s.addr, lo), min(s.addr + s.size, hi)
            if a < b:
                s = Section(s.name, s.type, s.flags, a, s.offset + a - s.addr, b - a, s.entsize)
        cut.append(s)
    img.sections = cut  # a new list: the image's caches of its code ranges key on it


def _static_plt(img: ElfImage) -> None:
    """A static program's PLT, whose stubs jump through the slots its IRELATIVE relocations fill (the ifuncs
    of its libc: memcpy, strlen...), without a dynamic table to name them: the first run of at least
    MIN_STUBS stubs `jmp [rip+slot]; xchg ax, ax` (8 bytes each) whose slots follow one another too."""
    for sec, code in _code_segments(img):
        for m in _STATIC_STUBS.finditer(code):
            first, n = m.start(), (m.end() - m.start()) // 8
            slots = [sec.addr + first + 8 * k + 6 + struct.unpack_from("<i", code, first + 8 * k + 2)[0]
                     for k in range(n)]
            if all(b - a == 8 for a, b in zip(slots, slots[1:])):
                img.sections.insert(0, Section(".plt", "SHT_PROGBITS", SHF_ALLOC | SHF_EXECINSTR, sec.addr + first,
                                               0, 8 * n, 8))
                return


def _load_sections(img: ElfImage) -> list[Section]:
    """One section for the file-backed part of each loaded segment (code, read-only data or data, by its
    flags), and one without contents for the rest of its memory (.bss)."""
    out = []
    for k, g in enumerate(img.segments):
        flags = SHF_ALLOC | (SHF_EXECINSTR if g.flags & PF_X else 0) | (SHF_WRITE if g.flags & PF_W else 0)
        if g.filesz:
            out.append(Section(f"[segment {k}]", "SHT_PROGBITS", flags, g.vaddr, g.offset, g.filesz, 0))
        if g.memsz > g.filesz:
            out.append(Section(f"[segment {k} bss]", "SHT_NOBITS", flags, g.vaddr + g.filesz, g.offset + g.filesz,
                               g.memsz - g.filesz, 0))
    return out


def _is_code_segment(sec: Section) -> bool:
    """Whether sec is the file part of an executable segment (_load_sections): where code is searched."""
    return sec.name.startswith("[segment") and sec.executable and sec.type != "SHT_NOBITS" and sec.size > 0


def _code_segments(img: ElfImage) -> list[tuple[Section, bytes]]:
    """Each executable segment's section with its bytes (a list: the searches add sections as they go)."""
    return [(s, img.data[s.offset:s.offset + s.size]) for s in img.sections if _is_code_segment(s)]


def _offset(img: ElfImage, addr: int, size: int = 1) -> int | None:
    """The file offset of [addr, addr + size) where one segment's file part holds all of it, else None."""
    for g in img.segments:
        if g.vaddr <= addr and addr + size <= g.vaddr + g.filesz:
            return g.offset + addr - g.vaddr
    return None


def _eh_frame(img: ElfImage, hdr_addr: int, hdr_offset: int, hdr_size: int) -> Section | None:
    """.eh_frame from .eh_frame_hdr (PT_GNU_EH_FRAME): the address its eh_frame_ptr holds, up to the end of
    its segment's file part (the scan of its records stops at their zero terminator)."""
    from .ehframe import _read_encoded

    buf = img.data[hdr_offset:hdr_offset + min(hdr_size, 64)]
    if len(buf) < 8 or buf[0] != 1:
        return None
    try:
        addr, _ = _read_encoded(buf, 4, buf[1], hdr_addr + 4)
    except (ValueError, struct.error, IndexError):
        return None
    seg = next((g for g in img.segments if g.vaddr <= addr < g.vaddr + g.filesz), None)
    if seg is None:
        return None
    return Section(".eh_frame", "SHT_PROGBITS", SHF_ALLOC, addr, seg.offset + addr - seg.vaddr,
                   seg.vaddr + seg.filesz - addr, 0)


def _find_eh_frame(img: ElfImage) -> Section | None:
    """.eh_frame found by its first record, in a read-only segment: a CIE (CIE id 0, version 1, augmentation
    "z..."), from which the records read as FDEs of functions in the code (at least MIN_FDES of them)."""
    from .ehframe import fde_entries

    for g in img.segments:
        if g.flags & (PF_X | PF_W) or not g.filesz:
            continue
        data = img.data[g.offset:g.offset + g.filesz]
        for k, m in enumerate(_CIE.finditer(data)):
            if k >= MAX_CIE_TRIES:
                break
            at = m.start()
            sec = Section(".eh_frame", "SHT_PROGBITS", SHF_ALLOC, g.vaddr + at, g.offset + at, g.filesz - at, 0)
            probe = ElfImage(img.path, img.data, img.elf_type, img.entry, [sec], img.segments)
            if len(fde_entries(probe)) >= MIN_FDES:
                return sec
    return None


def _build_id(data: bytes, offset: int, size: int) -> str | None:
    pos, end = offset, min(offset + size, len(data))
    while pos + 12 <= end:
        namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
        name_at = pos + 12
        desc_at = name_at + (namesz + 3) // 4 * 4
        nxt = desc_at + (descsz + 3) // 4 * 4
        if nxt > end:
            return None
        if ntype == NT_GNU_BUILD_ID and data[name_at:name_at + namesz].rstrip(b"\0") == b"GNU":
            return data[desc_at:desc_at + descsz].hex()
        pos = nxt
    return None


def _dynamic_tags(data: bytes, offset: int, size: int) -> dict[int, list[int]]:
    """The dynamic table's entries up to DT_NULL: tag -> values, in order."""
    n = min(max(min(size, len(data) - offset), 0) // 16, MAX_DYNAMIC)
    out: dict[int, list[int]] = {}
    for tag, value in np.frombuffer(data, "<i8,<u8", count=n, offset=offset).tolist() if n else []:
        if tag == 0:
            break
        out.setdefault(tag, []).append(value)
    return out


def _symbol_count(img: ElfImage, tags: dict[int, list[int]]) -> int:
    """How many dynamic symbols there are: DT_HASH's chain count, else the highest index DT_GNU_HASH reaches,
    else the symbols up to the string table where it follows them (as linkers lay them out)."""
    def u32s(addr: int, n: int) -> np.ndarray | None:
        off = _offset(img, addr, 4 * n)
        return None if off is None else np.frombuffer(img.data, "<u4", count=n, offset=off)

    if DT["HASH"] in tags and (head := u32s(tags[DT["HASH"]][0], 2)) is not None:
        return int(head[1])
    if DT["GNU_HASH"] in tags and (head := u32s(addr := tags[DT["GNU_HASH"]][0], 4)) is not None:
        nbuckets, symoffset, bloom = (int(x) for x in head[:3])
        buckets_at = addr + 16 + 8 * bloom
        buckets = u32s(buckets_at, nbuckets) if nbuckets < 1 << 24 else None
        if buckets is not None:
            last = int(buckets.max()) if nbuckets else 0
            if last < symoffset:
                return symoffset
            chain_at = buckets_at + 4 * nbuckets
            while (word := u32s(chain_at + 4 * (last - symoffset), 1)) is not None and not word[0] & 1 \
                    and last < MAX_SYMBOLS:
                last += 1
            return last + 1
    sym, strtab = tags.get(DT["SYMTAB"], [0])[0], tags.get(DT["STRTAB"], [0])[0]
    return (strtab - sym) // 24 if strtab > sym else 0


def _dynamic(img: ElfImage, tags: dict[int, list[int]], budget: _TableBudget, path: Path) -> None:
    """Dynamic symbols, relocations (imports and pointers), PLT stubs, init arrays and needed libraries."""
    strtab = _offset(img, tags[DT["STRTAB"]][0]) if DT["STRTAB"] in tags else None
    if strtab is not None:
        end = strtab + tags.get(DT["STRSZ"], [0])[0]
        for name_at in tags.get(DT["NEEDED"], []):
            raw = img.data[strtab + name_at:min(end, strtab + name_at + 4096)]
            if name := raw.split(b"\0", 1)[0].decode("utf-8", "replace"):
                img.needed.append(name)
    syms = None
    if strtab is not None and DT["SYMTAB"] in tags:
        n = _symbol_count(img, tags)
        at = tags[DT["SYMTAB"]][0]
        off = _offset(img, at, 24 * n) if n else None
        if off is not None:
            budget.take("symbol", 24 * n)
            syms = _SymbolTable(img.data, off, n, strtab, "the dynamic symbol table", path)
            img.sections.insert(0, Section(".dynsym", "SHT_DYNSYM", SHF_ALLOC, at, off, 24 * n, 24))
            if DT["VERSYM"] in tags and (v := _offset(img, tags[DT["VERSYM"]][0], 2 * n)) is not None:
                img.sections.insert(0, Section(".gnu.version", "SHT_GNU_versym", SHF_ALLOC, tags[DT["VERSYM"]][0],
                                               v, 2 * n, 2))
            _add_symbols(img, syms, "dynsym")
    count = 0
    plt_slots: set[int] = set()  # the GOT slots of the PLT's own relocations (ifuncs' IRELATIVE ones too)
    for at_tag, size_tag in (("RELA", "RELASZ"), ("JMPREL", "PLTRELSZ")):
        if DT[at_tag] not in tags or (at_tag == "JMPREL" and tags.get(DT["PLTREL"], [7])[0] != 7):
            continue
        at, size = tags[DT[at_tag]][0], tags.get(DT[size_tag], [0])[0]
        off = _offset(img, at, size)
        if off is None:
            raise CorruptBinaryError(f"{path}: the relocations the dynamic table points to lie outside the file")
        budget.take("relocation", size)
        count += size // 24
        if count > MAX_RELOCATIONS:
            raise ResourceLimitError(f"{path}: more than {MAX_RELOCATIONS} relocations")
        rel = np.frombuffer(img.data, _RELA, count=size // 24, offset=off)
        _apply_relocations(img, rel, syms)
        if at_tag == "JMPREL":
            plt_slots.update(rel["offset"].tolist())
    for name, at_tag, size_tag in ((".init_array", "INIT_ARRAY", "INIT_ARRAYSZ"),
                                   (".fini_array", "FINI_ARRAY", "FINI_ARRAYSZ"),
                                   (".preinit_array", "PREINIT_ARRAY", "PREINIT_ARRAYSZ")):
        if DT[at_tag] in tags:
            at, size = tags[DT[at_tag]][0], tags.get(DT[size_tag], [0])[0]
            if (off := _offset(img, at, size)) is not None:
                img.sections.insert(0, Section(name, "SHT_INIT_ARRAY", SHF_ALLOC | SHF_WRITE, at, off, size, 8))
    for name, tag in ((".init", "INIT"), (".fini", "FINI")):
        if DT[tag] in tags and img.is_code(tags[DT[tag]][0]):
            img.sections.insert(0, Section(name, "SHT_PROGBITS", SHF_ALLOC | SHF_EXECINSTR, tags[DT[tag]][0], 0, 0, 0))
    _plt_stubs(img, budget, plt_slots)
    if DT["PLTGOT"] in tags:
        _lazy_plt_header(img, tags[DT["PLTGOT"]][0])


def _lazy_plt_header(img: ElfImage, got: int) -> None:
    """The lazy PLT's first entry where no stub follows it to find it by (a library that calls nothing through
    its PLT): `push [rip+GOT+8]; jmp [rip+GOT+16]`, 16 bytes, which DT_PLTGOT's address tells apart."""
    for sec, code in _code_segments(img):
        for m in _PUSH_SLOT.finditer(code):
            pos, at = m.start(), sec.addr + m.start()
            if at % 16 or pos + 12 > len(code) or (img.section_at(at) or sec).name == ".plt":
                continue
            bnd = code[pos + 6] == 0xF2  # bnd jmp, with CET
            if pos + 12 + bnd > len(code):
                continue
            push = at + 6 + struct.unpack_from("<i", code, pos + 2)[0]
            jump = at + 12 + bnd + struct.unpack_from("<i", code, pos + 8 + bnd)[0]
            if push == got + 8 and code[pos + 6 + bnd:pos + 8 + bnd] == b"\xff\x25" and jump == got + 16:
                img.sections.insert(0, Section(".plt", "SHT_PROGBITS", SHF_ALLOC | SHF_EXECINSTR, at, 0, 16, 16))
                return


# what follows a PLT stub's jmp, and the size of its entries: the lazy PLT's push, .plt.got's two-byte nop, the
# five-byte nop of .plt.sec (and of .plt.got with CET)
_AFTER_JMP = ((b"\x68", 16), (b"\x66\x90", 8), (b"\x0f\x1f\x44\x00\x00", 16))


def _drop_inside_functions(img: ElfImage, starts: dict[int, tuple[int, int]]) -> None:
    """Leave out the stubs that the unwind tables show inside a function, or as a function of their own: a
    PLT's unwind record covers its entries from a PLT entry on; Rust's tail calls through the GOT (aligned and
    padded with a two-byte nop, as .plt.got's entries are) lie in a function's record, or are one of 6 bytes."""
    from .ehframe import fde_ranges

    ranges = sorted(fde_ranges(img))
    if not ranges:
        return
    at = [a for a, _ in ranges]
    for stub, (_, entry) in list(starts.items()):
        k = bisect.bisect_right(at, stub) - 1
        if k < 0 or stub >= at[k] + ranges[k][1]:
            continue  # no unwind record covers it
        first, size = ranges[k]
        if size < entry or not _plt_like(img.read(first, 7)):
            del starts[stub]


def _plt_like(code: bytes) -> bool:
    """Whether code begins as a PLT entry does: `jmp [rip+x]` or the lazy header's `push [rip+x]`, after
    `endbr64` and `bnd` where it has them."""
    code = code[4:] if code.startswith(ENDBR64) else code
    code = code[1:] if code[:1] == b"\xf2" else code
    return code[:2] in (b"\xff\x25", b"\xff\x35")


def _plt_stubs(img: ElfImage, budget: _TableBudget, plt_slots: set[int]) -> None:
    """PLT stubs: each `jmp qword [rip+slot]` in the code whose slot a relocation names (an import, a function of
    this file called through the GOT, a slot of the PLT's relocations: `plt_slots`), with the bytes a PLT entry
    has after it and at an entry's alignment, counted from its `bnd` prefix and `endbr64` where it has them
    (.plt.sec); each run of stubs becomes a `.plt` section, as the discovery knows them (a jmp through the GOT
    inside a function, as -fno-plt code tail-calls, is no stub: other bytes follow it, or it is not aligned)."""
    slots = img.got.keys() | img.got_local.keys() | img.got_code.keys() | plt_slots
    if not slots:
        return
    starts: dict[int, tuple[int, int]] = {}  # stub start -> (its slot, its entry's size)
    for sec, code in _code_segments(img):
        budget.take("PLT", sec.size)
        for m in _JMP_SLOT.finditer(code):
            pos = m.start()
            if pos + 6 > len(code):
                break
            slot = sec.addr + pos + 6 + struct.unpack_from("<i", code, pos + 2)[0]
            entry = next((size for after, size in _AFTER_JMP if code.startswith(after, pos + 6)), 0)
            if slot not in slots or not entry:
                continue
            if pos >= 1 and code[pos - 1] == 0xF2:  # bnd jmp
                pos -= 1
            if pos >= 4 and code[pos - 4:pos] == ENDBR64:
                pos -= 4
            if (sec.addr + pos) % entry == 0:
                starts[sec.addr + pos] = (slot, entry)
    _drop_inside_functions(img, starts)
    runs: list[list[int]] = []  # stubs one after the other, of one size
    for a in sorted(starts):
        if runs and a - runs[-1][-1] == starts[a][1] == starts[runs[-1][-1]][1]:
            runs[-1].append(a)
        else:
            runs.append([a])
    for run in runs:
        entry, first = starts[run[0]][1], run[0]
        head = img.read(first - 16, 6)  # the lazy PLT's header: push [rip+x]; jmp [rip+y] (after endbr64)
        if entry == 16 and (head[:2] == b"\xff\x35" or head == ENDBR64 + b"\xff\x35"):
            first -= 16
        img.sections.insert(0, Section(".plt", "SHT_PROGBITS", SHF_ALLOC | SHF_EXECINSTR, first, 0,
                                       run[-1] + entry - first, entry))
    for a, (slot, _) in starts.items():
        if img.got.get(slot):
            img.plt[a] = img.got[slot]
        if slot in img.got_local:
            img.plt_local[a] = img.got_local[slot]
