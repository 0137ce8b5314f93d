"""Write a copy of an ELF with a ``.symtab``/``.strtab`` naming its functions.

New symbol data, a rebuilt ``.shstrtab`` and a new section header table are appended at the end of
the copy; the ELF header is pointed at the new table. Nothing that is loaded at run time moves.
"""

from __future__ import annotations

import bisect
import logging
import os
import stat
from pathlib import Path

from symbridge.errors import UsageError
from symbridge.export import _elf64 as E
from symbridge.export._atomic import atomic_write

log = logging.getLogger(__name__)

STB_LOCAL, STB_GLOBAL = 0, 1
STT_FUNC, STT_GNU_IFUNC = 2, 10
FUNC_GLOBAL = (STB_GLOBAL << 4) | STT_FUNC


def write_named_elf(src: Path, dst: Path, symbols: list[tuple[str, int, int]]) -> list[str]:
    """Copy ELF ``src`` to ``dst`` with ``symbols`` (name, address, size) as FUNC GLOBAL symbols.

    Existing ``.symtab`` entries are kept; for an address (or a global name) given here the new
    name wins. Returns warnings for symbols that were skipped or clamped (logged at debug level;
    the caller decides how to show them).
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise UsageError(f"{dst}: output would overwrite the input")
    elf = E.load(src)
    if not elf.sections:  # none, or unreadable: made from the program headers, as the analysis read the file
        E.sections_from_segments(elf)
    warnings: list[str] = []
    new = _check_symbols(elf, symbols, warnings)
    out = _build(elf, new, warnings)
    atomic_write(dst, out, stat.S_IMODE(os.stat(src).st_mode))
    for w in warnings:
        log.debug("%s", w)
    return warnings


def _check_symbols(elf: E.Elf, symbols, warnings: list[str]) -> list[tuple[bytes, int, int, int]]:
    """Validate (name, address, size); return (name, address, size, section index) sorted."""
    execs = sorted((s.addr, s.addr + s.size, i) for i, s in enumerate(elf.sections)
                   if s.flags & E.SHF_ALLOC and s.flags & E.SHF_EXECINSTR
                   and s.type != E.SHT_NOBITS and s.size > 0)
    starts = [e[0] for e in execs]
    out, seen = [], set()
    for item in symbols:
        try:
            name, addr, size = item
        except (TypeError, ValueError):
            raise UsageError(f"{elf.path}: symbol {item!r} is not (name, address, size)") from None
        if not isinstance(name, str) or not name or "\0" in name:
            raise UsageError(f"{elf.path}: bad symbol name {name!r}")
        for v in (addr, size):
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 64:
                raise UsageError(f"{elf.path}: bad address or size {v!r} for {name!r}")
        try:
            raw = name.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"{elf.path}: symbol name {name!r} is not valid UTF-8") from None
        k = bisect.bisect_right(starts, addr) - 1
        if k < 0 or not execs[k][0] <= addr < execs[k][1]:
            warnings.append(f"{name} at {addr:#x}: not inside an executable section, skipped")
            continue
        _, hi, shndx = execs[k]
        if shndx >= E.SHN_LORESERVE:
            warnings.append(f"{name} at {addr:#x}: section index {shndx} too large, skipped")
            continue
        if raw in seen:
            warnings.append(f"{name} at {addr:#x}: duplicate name, skipped")
            continue
        if addr + size > hi:
            warnings.append(f"{name} at {addr:#x}: size {size} clamped to its section")
            size = hi - addr
        seen.add(raw)
        out.append((raw, addr, size, shndx))
    return sorted(out, key=lambda s: (s[1], s[0]))


def _old_symbols(elf: E.Elf, si: int | None, warnings: list[str]) -> list[tuple[bytes, tuple]]:
    """The existing ``.symtab`` entries (without the null symbol) as (name, fields)."""
    if si is None:
        return []
    sec = elf.sections[si]
    if sec.entsize != E.SYM.size or sec.size % E.SYM.size:
        raise elf.fail(".symtab entry size")
    if not 0 < sec.link < len(elf.sections) or elf.sections[sec.link].type != E.SHT_STRTAB:
        raise elf.fail(".symtab sh_link is not a string table")
    table, names = elf.section_bytes(si), elf.section_bytes(sec.link)
    out = []
    for fields in list(E.SYM.iter_unpack(table))[1:]:
        if fields[3] == E.SHN_XINDEX:
            warnings.append("dropped an existing symbol with an extended section index")
            continue
        out.append((elf.cstring(names, fields[0], "symbol") if fields[0] else b"", fields))
    return out


def _merge(old, new) -> tuple[list[tuple[bytes, tuple]], int]:
    """Order: null, old locals, old globals, new globals; return (symbols, sh_info)."""
    addrs = {a for _, a, _, _ in new}
    names = {n for n, _, _, _ in new}

    def replaced(name: bytes, f: tuple) -> bool:
        if f[1] & 0xF not in (STT_FUNC, STT_GNU_IFUNC):
            return False
        return f[4] in addrs or (f[1] >> 4 != STB_LOCAL and name in names)

    kept = [(n, f) for n, f in old if not replaced(n, f)]
    local = [s for s in kept if s[1][1] >> 4 == STB_LOCAL]
    glob = [s for s in kept if s[1][1] >> 4 != STB_LOCAL]
    glob += [(n, (0, FUNC_GLOBAL, 0, shndx, a, size)) for n, a, size, shndx in new]
    return [(b"", (0, 0, 0, 0, 0, 0))] + local + glob, 1 + len(local)


def _strtab(names) -> tuple[bytes, dict[bytes, int]]:
    blob, offs = bytearray(b"\0"), {b"": 0}
    for n in names:
        if n not in offs:
            offs[n] = len(blob)
            blob += n + b"\0"
    return bytes(blob), offs


def _build(elf: E.Elf, new, warnings: list[str]) -> bytes:
    secs = [E.Section(**vars(s)) for s in elf.sections]
    symtabs = [i for i, s in enumerate(secs) if s.type == E.SHT_SYMTAB]
    if any(s.type == E.SHT_SYMTAB_SHNDX for s in secs):
        raise UsageError(f"{elf.path}: SHT_SYMTAB_SHNDX sections are not supported")
    si = symtabs[0] if symtabs else None
    syms, first_global = _merge(_old_symbols(elf, si, warnings), new)
    strtab, offs = _strtab(n for n, _ in syms)
    symtab = b"".join(E.SYM.pack(offs[n], *f[1:]) for n, f in syms)

    names = [elf.section_name(i) for i in range(len(secs))]
    if si is None:
        si = _append(secs, names, b".symtab")
    ti = secs[si].link
    others = [i for i, s in enumerate(secs) if i != si and s.link == ti]
    if not 0 < ti < len(secs) or ti == elf.shstrndx or others or secs[ti].type != E.SHT_STRTAB:
        ti = _append(secs, names, b".strtab")
    shi = elf.shstrndx or _append(secs, names, b".shstrtab")
    shstrtab, name_offs = _strtab(names[1:])

    data = bytearray(elf.data)
    data += bytes(-len(data) % 8)
    placed = {}
    for idx, blob, align in ((si, symtab, 8), (ti, strtab, 1), (shi, shstrtab, 1)):
        placed[idx] = (len(data), len(blob), align)
        data += blob
    data += bytes(-len(data) % 8)
    shoff = len(data)

    secs[si].type, secs[si].link, secs[si].info, secs[si].entsize = E.SHT_SYMTAB, ti, first_global, 24
    secs[ti].type = secs[shi].type = E.SHT_STRTAB
    secs[ti].entsize = secs[shi].entsize = 0
    for idx, (off, size, align) in placed.items():
        s = secs[idx]
        s.offset, s.size, s.addralign, s.flags, s.addr = off, size, align, 0, 0
    for i, s in enumerate(secs[1:], 1):
        s.name = name_offs[names[i]]
    e_shnum, e_shstrndx = _extended(secs, shi)
    data += b"".join(s.pack() for s in secs)
    data[0x28:0x30] = shoff.to_bytes(8, "little")
    data[0x3C:0x3E] = e_shnum.to_bytes(2, "little")
    data[0x3E:0x40] = e_shstrndx.to_bytes(2, "little")
    return bytes(data)


def _append(secs: list[E.Section], names: list[bytes], name: bytes) -> int:
    secs.append(E.Section(0, E.SHT_STRTAB, 0, 0, 0, 0, 0, 0, 1, 0))
    names.append(name)
    return len(secs) - 1


def _extended(secs: list[E.Section], shi: int) -> tuple[int, int]:
    """ELF extended numbering for 0xff00 sections or more: counts move into section 0."""
    many = len(secs) >= E.SHN_LORESERVE
    secs[0].size = len(secs) if many else 0
    secs[0].link = shi if shi >= E.SHN_LORESERVE else 0
    return (0 if many else len(secs)), (E.SHN_XINDEX if shi >= E.SHN_LORESERVE else shi)
