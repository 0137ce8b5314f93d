"""`Binary` and `Function`: the friendly face over loading, discovery and lifting."""

from __future__ import annotations

import bisect
import functools
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .analysis.discover import discover
from .analysis.disasm import decode_range, format_instruction
from .analysis.lift import Facts, lift
from .elf.debuginfo import dwarf_functions, find_debug_file, mini_debuginfo
from .elf.ehframe import fde_entries
from .elf.image import ElfImage, load_image
from .elf.packing import packing
from .errors import InputWarning, ResourceLimitWarning, UsageError
from .gcpause import gc_paused

# Instructions lifted in all for one binary, per byte of code plus a floor. Functions do not overlap in a
# well-formed binary, so it lifts at most about one instruction per byte; a crafted one whose functions all
# cover the same bytes would multiply the work. Past the budget each function's facts are cut short
# (``Facts.truncated``) and a ResourceLimitWarning is given once.
LIFT_BUDGET_PER_BYTE = 2
LIFT_BUDGET_MIN = 1_000_000


@dataclass(eq=False)
class Function:
    address: int
    size: int
    name: str | None
    source: list[str]
    binary: Binary = field(repr=False)
    _facts: Facts | None = field(default=None, repr=False)

    @property
    def facts(self) -> Facts:
        if self._facts is None:
            b = self.binary
            self._facts = lift(b.image, self.address, self.size, b.plt_names, max_instructions=b._lift_left,
                              memo=b._lift_memo)
            b.spend_lift_budget(len(self._facts.mnemonics))
            if b._lift_left == 0 and self._facts.truncated and not b._lift_warned:
                b._lift_warned = True
                warnings.warn(f"{b.path}: lifted {b._lift_budget} instructions, the limit for this file; the "
                              "facts of the remaining functions are truncated", ResourceLimitWarning, stacklevel=2)
        return self._facts

    @property
    def callees(self) -> list[int]:
        """Addresses this function calls, a call through the PLT to a function of this same file (an exported
        function of a shared library) resolved to that function."""
        local = self.binary.image.plt_local
        return [local.get(t, t) for t in self.facts.calls]

    @property
    def is_plt(self) -> bool:
        return "plt" in self.source

    def disassembly(self, limit: int = 2000) -> list[tuple[int, str]]:
        """(address, Intel-syntax text) of the function's instructions."""
        out = []
        for ins in decode_range(self.binary.image, self.address, self.address + self.size):
            out.append((ins.ip, format_instruction(ins)))
            if len(out) >= limit:
                break
        return out

    def __repr__(self) -> str:
        return f"Function({self.name or '?'} @ {self.address:#x}, {self.size} bytes)"


_COMPLETE_OBJECT = re.compile(r"[CD]1E")  # an Itanium C++ complete-object constructor or destructor (C1, D1)


def name_rank(name: str, bind: str, exported: bool, compat: bool = False) -> tuple:
    """Sort key of a function's names, best first: glibc's internal aliases (`__GI_abort`, and `__EI_` in
    libnsl) last; before them, an old symbol version kept for old programs (glibc's `memcpy@GLIBC_2.2.5` is the
    code of `__memmove_sse2_unaligned`, not today's `memcpy`); exported before not (the names its callers know);
    fewer leading underscores (`fflush`, a weak alias, before `_IO_fflush`), global before weak before local,
    shorter, a C++ base-object constructor or destructor (C2, D2) before the complete-object alias g++ makes of
    it (C1, D1: the code, and its cold part `...C2Ev.cold`, is the C2 one's), then alphabetical."""
    return (name.startswith(("__GI_", "__EI_")), compat, not exported, len(name) - len(name.lstrip("_")),
            {"STB_GLOBAL": 0, "STB_WEAK": 1}.get(bind, 2), len(name), bool(_COMPLETE_OBJECT.search(name)), name)


class Binary:
    """An x86-64 ELF file and its functions.

    >>> b = Binary("/usr/bin/ls", ignore_symbols=True)   # doctest: +SKIP
    >>> b.functions[0]                                   # doctest: +SKIP

    With `link`, a static archive (.a) or relocatable object (.o) is read as gcc links it (`elf.link`): a
    reference, whose addresses are those of that linked copy.
    """

    def __init__(self, path: str | os.PathLike, *, ignore_symbols: bool = False,
                 debug_file: str | os.PathLike | None = None, use_debug_files: bool = True,
                 extra_names: dict[int, str] | None = None, extra_starts: dict[int, str] | None = None,
                 link: bool = False):
        self.path = Path(path)
        self.image: ElfImage = load_image(self.path, link=link)
        if why := packing(self.image):
            warnings.warn(f"{self.path}: {why}; its code is unpacked only when it runs, which symbridge never does, "
                          "so few of its functions can be found until it is unpacked", InputWarning, stacklevel=2)
        self.ignore_symbols = ignore_symbols
        self._lift_budget = LIFT_BUDGET_PER_BYTE * sum(b - a for a, b in self.image.code_ranges) + LIFT_BUDGET_MIN
        self._lift_left = self._lift_budget
        self._lift_warned = False
        self._lift_memo: dict = {}  # instruction bytes -> token, shared by this file's functions
        names: dict[int, str] = {}
        extra = dict(extra_starts or {})
        # the name gcc gives a function's parts (foo.cold) where it is not the function's own name (part_bases)
        self.part_bases: dict[int, str] = {}
        if not ignore_symbols:
            names, from_debug, self.part_bases = self._symbol_names(debug_file, use_debug_files)
            for addr in from_debug:
                extra.setdefault(addr, "debug")
        if extra_names:
            for addr, name in extra_names.items():
                names[addr] = name
                self.part_bases.pop(addr, None)  # the analyst's name is the one its parts follow
                extra.setdefault(addr, "names-file")
        with gc_paused():
            found = discover(self.image, use_symbols=not ignore_symbols, extra_starts=extra)
        # calls through a stub to a function this file defines are calls, not imports: a stripped copy whose
        # exported names are gone sees the same (Function.callees resolves them)
        self.plt_names = {f.address: f.name[:-4] for f in found
                          if "plt" in f.sources and f.name and f.address not in self.image.plt_local}
        self.functions: list[Function] = []
        for f in found:
            name = f.name if "plt" in f.sources else names.get(f.address) or f.name
            if ignore_symbols and "plt" not in f.sources:
                name = names.get(f.address)
            self.functions.append(Function(f.address, f.size, name, sorted(f.sources), self))
        self.code_functions: list[Function] = [f for f in self.functions if not f.is_plt]  # PLT stubs left out
        self._addrs = [f.address for f in self.functions]
        self._by_name: dict[str, int] = {}
        for i, f in enumerate(self.functions):
            if f.name:
                self._by_name.setdefault(f.name, i)

    def _symbol_names(self, debug_file, use_debug_files: bool) -> tuple[dict[int, str], set[int], dict[int, str]]:
        """The name of each function with a symbol, in this file's symbol tables, its MiniDebugInfo's or a
        separate debug file's .symtab (name_rank picks among aliases), else from DWARF; the addresses that the
        debug file, MiniDebugInfo or DWARF name (function starts of source "debug"); and part_bases."""
        path = Path(debug_file) if debug_file else (find_debug_file(self.image) if use_debug_files else None)
        if debug_file and not path.is_file():
            raise UsageError(f"{path}: debug file not found")
        exported = {(s.address, s.name) for s in self.image.symbols
                    if s.table == "dynsym" and s.defined and s.bind != "STB_LOCAL"}
        dbg = load_image(path, require_code=False) if path is not None else None
        extra = [*(dbg.symbols if dbg else ()), *(mini.symbols if (mini := mini_debuginfo(self.image)) else ())]
        aliases: dict[int, dict[str, tuple]] = {}  # address -> name -> its best (a `__GI_` name, not global, rank)
        from_debug: set[int] = set()
        for sym in self.image.symbols + extra:
            if sym.defined and sym.kind in ("STT_FUNC", "STT_GNU_IFUNC") and sym.address and sym.name:
                key = (sym.name.startswith("__GI_"), sym.bind != "STB_GLOBAL",
                       name_rank(sym.name, sym.bind, (sym.address, sym.name) in exported, sym.compat))
                at = aliases.setdefault(sym.address, {})
                at[sym.name] = min(at.get(sym.name, key), key)
        chosen = {a: min(key[2] for key in at.values())[-1] for a, at in aliases.items()}
        from_debug.update(s.address for s in extra
                          if s.defined and s.kind in ("STT_FUNC", "STT_GNU_IFUNC") and s.address and s.name)
        # a part gcc split off keeps its own name (foo.cold after the name foo was defined under, not the public
        # alias its owner is named by), which other builds give it too; but not glibc's internal `__GI_` prefix,
        # which a shared libc's parts carry (__GI__IO_fflush.cold) and a static one's do not (_IO_fflush.cold)
        names = {a: part_name(name) for a, name in chosen.items()}
        # a function known by glibc's internal alias alone takes the name it stands for, where no other function
        # has it (ld.so's debug symbols have `__GI___tunable_set_val`, a static glibc `__tunable_set_val`; but a
        # shared libc's `__GI_memcpy` is one variant of the IFUNC `memcpy`, which is another function)
        known = {n for at in aliases.values() for n in at}
        names.update({a: n[5:] for a, n in names.items() if n.startswith("__GI_") and n[5:] not in known})
        dwarf = [(path, dbg.data)] if dbg else []
        if self.image.has_dwarf:
            dwarf.append((self.path, self.image.data))
        for where, data in dwarf:
            for addr, name in dwarf_functions(where, data).items():
                names.setdefault(addr, name)
                from_debug.add(addr)
        return ({a: n for a, n in names.items() if self.image.is_code(a)},
                {a for a in from_debug if self.image.is_code(a)}, part_bases(aliases, chosen))

    def spend_lift_budget(self, instructions: int) -> None:
        """Count lifted instructions against this file's budget (also those a helper process lifted)."""
        self._lift_left = max(self._lift_left - instructions, 0)

    @functools.cached_property
    def mid_frame_starts(self) -> frozenset[int]:
        """Starts of the .eh_frame entries that begin inside a frame (elf.ehframe.fde_entries): split-off parts."""
        return frozenset(start for start, _, mid in fde_entries(self.image) if mid)

    # ------------------------------------------------------------------ lookups
    @property
    def name(self) -> str:
        return self.path.name

    def __len__(self) -> int:
        return len(self.functions)

    def index(self, name: str) -> int:
        """Index of the function called name (raises UsageError when there is none)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UsageError(f"{self.path}: no function named {name!r}") from None

    def index_at(self, address: int) -> int:
        """Index of the function that contains address."""
        i = bisect.bisect_right(self._addrs, address) - 1
        if i < 0 or address >= self.functions[i].address + max(self.functions[i].size, 1):
            raise UsageError(f"{self.path}: no function at {address:#x}")
        return i

    def function_at(self, address: int) -> Function:
        return self.functions[self.index_at(address)]

    def __getitem__(self, name: str) -> Function:
        return self.functions[self.index(name)]

    def __repr__(self) -> str:
        return f"Binary({str(self.path)!r}, {len(self.functions)} functions)"


def part_bases(aliases: dict[int, dict[str, tuple]], chosen: dict[int, str]) -> dict[int, str]:
    """For each address with several names, the one gcc names the function's parts after (foo.cold), where it
    is not the chosen name: the name an existing part symbol is based on, else a strong (global) alias before a
    weak one, as glibc defines `_IO_fflush` and makes `fflush` a weak alias of it. aliases: address -> name ->
    (a `__GI_` name, not global, name_rank)."""
    with_parts = {n.partition(".")[0] for names in aliases.values() for n in names if "." in n.lstrip(".")}
    out = {}
    for a, names in aliases.items():
        if len(names) < 2:
            continue
        based = [n for n in names if n in with_parts and "." not in n]
        base = min(based or names, key=lambda n: names[n])
        if base != chosen.get(a):
            out[a] = base
    return out


def part_name(name: str) -> str:
    """A part's name (foo.cold, foo.part.0) without glibc's `__GI_` prefix; other names as they are."""
    if name.startswith("__GI_") and "." in name[5:].lstrip("."):
        return name[5:]
    return name


def cold_parts(functions: list[Function]) -> list[tuple[int, int]]:
    """(part, owner) indices of the functions that look like parts a compiler split off another function
    (gcc's ``foo.cold``: the rarely run branches, moved away from the rest): only the owner refers to the
    part, and either the part begins inside a frame (its ``.eh_frame`` entry says so: code that is called
    never does), or it goes back into the owner, or, entered by a conditional jump, it never returns. (Without
    the first, a part entered by a plain jump that ends in a call to abort looks too much like a function the
    owner tail-calls and that ends in ``call __stack_chk_fail``: those are left alone.)"""
    refs: dict[int, set[int]] = {}
    for i, f in enumerate(functions):
        fx = f.facts
        for t in (*fx.calls, *fx.far_jumps, *fx.code_refs):
            refs.setdefault(t, set()).add(i)
    mid_frame = functions[0].binary.mid_frame_starts if functions else frozenset()
    out = []
    for c, part in enumerate(functions):
        who = refs.get(part.address, set())
        if len(who) != 1 or part.is_plt:
            continue
        x = next(iter(who))
        owner = functions[x]
        if x == c or owner.is_plt:
            continue
        cx, ox = part.facts, owner.facts
        jumped_to = part.address in ox.calls or part.address in ox.far_jumps  # not only its address taken
        goes_back = any(owner.address < t < owner.address + owner.size for t in (*cx.calls, *cx.far_jumps))
        by_jcc = part.address in ox.far_jumps
        if (jumped_to and part.address in mid_frame) or goes_back or (by_jcc and "ret" not in cx.mnemonics):
            out.append((c, x))
    return out
