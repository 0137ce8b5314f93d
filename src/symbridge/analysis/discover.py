"""Function discovery without symbols.

Starts come from ``.eh_frame`` FDEs, a Go program's ``.gopclntab`` (with names), the entry point and the
argument it hands to ``__libc_start_main`` (main), ``.init_array``/``.fini_array``, exported symbols,
relocated code pointers, direct call targets found by recursive disassembly, RIP-relative ``lea`` of code,
tail-call and out-of-function jump targets, and finally code found in the gaps between functions.
Each function records every source that vouched for it.
"""

from __future__ import annotations

import bisect
import itertools
import struct
import warnings
from dataclasses import dataclass, field

import iced_x86 as ix

from ..elf.ehframe import fde_ranges
from ..elf.gopclntab import go_functions
from ..elf.image import ElfImage
from ..errors import ResourceLimitWarning
from . import disasm as d

# functions discovery keeps at most: this many, or one per CODE_BYTES_PER_FUNCTION bytes of code where that is
# more (Chromium's 236 MB of code hold 697,000 functions, 340 bytes each on average; a crafted file cannot make
# memory grow faster than its own size)
MAX_FUNCTIONS = 500_000
CODE_BYTES_PER_FUNCTION = 128
MAX_FUNCTION_BYTES = 1 << 20
MAX_JUMP_TABLE = 2048
# Instructions that discovery may decode in all, per byte of code plus a floor: each byte is decoded about
# once in a well-formed binary; overlapping or self-referencing functions of a crafted one would multiply it.
# Past the budget discovery stops exploring (sizes come from the next start) and warns.
DECODE_BUDGET_PER_BYTE = 4
DECODE_BUDGET_MIN = 1_000_000

NORETURN = frozenset({
    "exit", "_exit", "_Exit", "abort", "__stack_chk_fail", "__assert_fail", "err", "errx", "verr", "verrx",
    "__fortify_fail", "longjmp", "siglongjmp", "__longjmp_chk", "pthread_exit", "quick_exit", "__cxa_throw",
    "__cxa_rethrow", "_Unwind_Resume", "__libc_fatal", "__chk_fail", "__cxa_bad_cast", "thrd_exit",
    "__assert_perror_fail", "__libc_start_main",
})


def max_functions(code_bytes: int) -> int:
    """How many functions discovery keeps of a file with this many bytes of code."""
    return max(MAX_FUNCTIONS, code_bytes // CODE_BYTES_PER_FUNCTION)


_TRUSTED = frozenset({"eh_frame", "symbol", "plt", "pclntab"})
_SIZED = _TRUSTED | {"section"}  # sources whose size is the function's, whatever starts follow
_STRONG = frozenset({"eh_frame", "symbol", "plt", "pclntab", "export", "entry", "call", "init_array", "section",
                     "debug", "names-file"})


@dataclass
class Found:
    address: int
    size: int = 0
    sources: set[str] = field(default_factory=set)
    name: str | None = None


class _Discovery:
    def __init__(self, img: ElfImage, use_symbols: bool, extra_starts: dict[int, str] | None = None):
        self.img = img
        self.use_symbols = use_symbols
        self.found: dict[int, Found] = {}
        self.known_size: dict[int, int] = {}
        self.code = img.code_ranges
        self.code_starts = [a for a, _ in self.code]
        self.plt_ranges = [(s.addr, s.addr + s.size) for s in img.sections
                           if s.executable and s.name.startswith(".plt")]
        self.extra = extra_starts or {}
        self.noreturn: set[int] = set()
        code_bytes = sum(b - a for a, b in self.code)
        self.budget = DECODE_BUDGET_PER_BYTE * code_bytes + DECODE_BUDGET_MIN
        self.decoded = 0
        self.too_many = False
        self.max_functions = max_functions(code_bytes)

    # ------------------------------------------------------------------ helpers
    def in_code(self, addr: int) -> bool:
        i = bisect.bisect_right(self.code_starts, addr) - 1
        return i >= 0 and addr < self.code[i][1]

    def code_end(self, addr: int) -> int:
        i = bisect.bisect_right(self.code_starts, addr) - 1
        return self.code[i][1] if i >= 0 else addr

    def in_plt(self, addr: int) -> bool:
        return any(a <= addr < b for a, b in self.plt_ranges)

    def add(self, addr: int, source: str, size: int = 0, name: str | None = None) -> bool:
        if not self.in_code(addr):
            return False
        f = self.found.get(addr)
        new = f is None
        if new:
            if len(self.found) >= self.max_functions:
                if not self.too_many:
                    self.too_many = True
                    warnings.warn(f"{self.img.path}: more than {self.max_functions:,} functions; the rest are ignored",
                                  ResourceLimitWarning, stacklevel=2)
                return False
            f = self.found[addr] = Found(addr)
        f.sources.add(source)
        if size and addr not in self.known_size:
            self.known_size[addr] = min(size, MAX_FUNCTION_BYTES)
        if name and not f.name:
            f.name = name
        return new

    # ------------------------------------------------------------------ seeds
    def seed(self) -> None:
        img = self.img
        for addr, name in img.plt.items():
            entsize = next((s.entsize for s in img.sections if s.contains(addr)), 16) or 16
            self.add(addr, "plt", entsize if entsize in (8, 16) else 16, f"{name}@plt")
        for start, size in fde_ranges(img):
            if not self.in_plt(start):
                self.add(start, "eh_frame", size)
        for start, size, name in go_functions(img):  # Go's own table; its names are symbols
            body = len(img.read(start, size).rstrip(b"\xcc"))  # the linker pads with int3 to the next function
            self.add(start, "pclntab", max(body, 1), name if self.use_symbols else None)
        for sym in img.symbols:
            if not sym.defined or sym.kind not in ("STT_FUNC", "STT_GNU_IFUNC") or not sym.address:
                continue
            if self.in_plt(sym.address):
                continue
            if self.use_symbols:
                self.add(sym.address, "symbol", sym.size, sym.name or None)
            elif sym.table == "dynsym" and sym.bind != "STB_LOCAL":
                self.add(sym.address, "export", sym.size)
        for addr, source in self.extra.items():
            self.add(addr, source)
        if img.entry:
            self.add(img.entry, "entry")
        for name in (".init_array", ".fini_array", ".preinit_array"):
            sec = img.section(name)
            if sec is None or sec.type == "SHT_NOBITS" or sec.size > 1 << 20:
                continue
            raw = img.data[sec.offset: sec.offset + sec.size]
            for (ptr,) in struct.iter_unpack("<Q", raw[: len(raw) // 8 * 8]):
                self.add(ptr, "init_array")
        for sec_name in (".init", ".fini"):
            sec = img.section(sec_name)
            if sec is not None and sec.executable:
                self.add(sec.addr, "section", sec.size)
        for ptr in img.code_pointers:
            if not self.in_plt(ptr):
                self.add(ptr, "pointer")

    # ------------------------------------------------------------------ traversal
    def next_start_after(self, addr: int, starts: list[int]) -> int:
        i = bisect.bisect_right(starts, addr)
        return starts[i] if i < len(starts) else self.code_end(addr)

    def explore(self, start: int, limit: int, bounded: bool) -> tuple[int, list[tuple[int, str]]]:
        """Recursive descent inside [start, limit). Returns the extent reached and new starts found.

        Records in ``self.noreturn`` a function none of whose paths returns."""
        img = self.img
        if self.decoded >= self.budget:
            return 0, []
        data = img.read(start, min(limit - start, MAX_FUNCTION_BYTES))
        if not data:
            return 0, []
        decoded = 0
        dec = ix.Decoder(64, data, ip=start)
        ins = ix.Instruction()  # decoded into in place: no new object per instruction
        end_addr = start + len(data)
        todo = [start]
        seen_blocks: set[int] = set()
        visited: set[int] = set()  # instruction starts decoded so far: a block that reaches one has been followed
        found: list[tuple[int, str]] = []
        extent = start
        returns = False
        is_exec = img.elf_type == "ET_EXEC"
        m_invalid, m_cmp, m_lea, m_mov, ok_imm, ok_reg = d.M_INVALID, d.M_CMP, d.M_LEA, ix.Mnemonic.MOV, d.OK_IMM, \
            d.OK_REGISTER
        fc_next, fc_call, fc_icall, fc_ijmp = d.FC_NEXT, d.FC_CALL, d.FC_ICALL, d.FC_IJMP
        while todo:
            pc = todo.pop()
            if pc in seen_blocks or not start <= pc < end_addr:
                continue
            seen_blocks.add(pc)
            dec.ip = pc
            dec.position = pc - start
            recent_lea: list[int] = []
            bound: int | None = None
            ended = False
            cur = pc
            while dec.can_decode:
                if cur in visited:  # the rest of this path was decoded from an earlier block
                    ended = True
                    break
                visited.add(cur)
                dec.decode_out(ins)
                decoded += 1
                mn = ins.mnemonic
                if mn == m_invalid:
                    returns = ended = True
                    break
                nxt = cur = ins.next_ip
                if nxt > extent:
                    extent = nxt
                fc = ins.flow_control
                if mn == m_cmp and ins.op_count == 2 and ins.op1_kind in ok_imm:
                    bound = ins.immediate(1)
                if ins.is_ip_rel_memory_operand:
                    target = ins.ip_rel_memory_address
                    if mn == m_lea:
                        if self.in_code(target) and not start <= target < end_addr:
                            found.append((target, "lea"))
                        elif not self.in_code(target):
                            recent_lea.append(target)
                    if fc == fc_call or fc == fc_icall or fc == fc_ijmp:
                        if img.got.get(target) in NORETURN:
                            ended = True
                            break
                elif is_exec and mn == m_mov and ins.op_count == 2 and ins.op1_kind in ok_imm and \
                        ins.op0_kind == ok_reg:
                    v = ins.immediate(1)
                    if v > 0x1000 and self.in_code(v) and not start <= v < end_addr:
                        found.append((v, "imm"))
                if fc == fc_next:
                    continue
                if fc == d.FC_CALL:
                    t = ins.near_branch_target
                    if self.in_code(t):
                        found.append((t, "call"))
                        if img.plt.get(t) in NORETURN or t in self.noreturn:
                            ended = True
                            break
                    continue
                if fc == d.FC_JCC or fc == d.FC_JMP:
                    t = ins.near_branch_target
                    if ins.op0_kind not in d.OK_NEAR:
                        returns = ended = True
                        break
                    if (start < t < end_addr and t not in self.found) or t == start:
                        if t != start:
                            todo.append(t)
                    elif self.in_code(t):
                        if not self.in_plt(t):
                            found.append((t, "jump"))
                        if fc == d.FC_JMP and not (img.plt.get(t) in NORETURN or t in self.noreturn):
                            returns = True
                    if fc == d.FC_JMP:
                        ended = True
                        break
                    continue
                if fc == d.FC_IJMP:
                    targets = self.jump_table(ins, recent_lea, start, end_addr, bound)
                    todo.extend(targets)
                    if not targets:
                        returns = True  # an indirect tail call
                    ended = True
                    break
                if fc in (d.FC_ICALL, d.FC_INT, d.FC_EXC):
                    if ins.mnemonic in (d.M_UD2, d.M_HLT):
                        ended = True
                        break
                    continue
                returns = ended = True  # return, xbegin and the rest end the block
                break
            if not ended:
                returns = True  # ran off the end of what we may read: assume it returns
            if self.decoded + decoded >= self.budget:
                self.out_of_budget()
                returns = True
                break
        self.decoded += decoded
        if not returns:
            self.noreturn.add(start)
        if bounded:
            extent = min(extent, limit)
        return extent - start, found

    def out_of_budget(self) -> None:
        if self.decoded < self.budget:
            warnings.warn(f"{self.img.path}: discovery decoded {self.budget} instructions, its limit for this "
                          "file; stopped exploring, function sizes past this point come from the next start",
                          ResourceLimitWarning, stacklevel=3)
        self.decoded = self.budget

    def jump_table(self, ins: ix.Instruction, recent_lea: list[int], lo: int, hi: int,
                   bound: int | None) -> list[int]:
        """Targets of a switch jump table, within [lo, hi); `bound` is the compare that guards it."""
        img = self.img
        out: list[int] = []
        count = bound + 1 if bound is not None and 0 <= bound < MAX_JUMP_TABLE else 256
        if ins.op0_kind == d.OK_MEMORY and ins.memory_base == ix.Register.NONE and ins.memory_index_scale == 8:
            table = ins.memory_displacement
            for i in range(count):
                raw = img.read(table + 8 * i, 8)
                if len(raw) < 8:
                    break
                t = struct.unpack("<Q", raw)[0]
                if not lo <= t < hi:
                    break
                out.append(t)
        elif recent_lea:
            table = recent_lea[-1]
            for i in range(count):
                raw = img.read(table + 4 * i, 4)
                if len(raw) < 4:
                    break
                t = (table + struct.unpack("<i", raw)[0]) & 0xFFFFFFFFFFFFFFFF
                if not lo <= t < hi:
                    break
                out.append(t)
        return out

    def run(self) -> list[Found]:
        self.seed()
        done: set[int] = set()
        self.explore_pending(done)
        if self.noreturn:  # calls to functions found not to return may have been followed too far
            for addr in list(self.found):
                if not self.found[addr].sources & _TRUSTED:
                    done.discard(addr)
                    self.known_size.pop(addr, None)
        for _ in range(64):
            self.explore_pending(done)
            before = len(self.found)
            self.fill_gaps(done)
            if len(self.found) == before:
                break
        return self.finish()

    def explore_pending(self, done: set[int]) -> None:
        """Explore every function found and not done, then the ones that finds, round after round; a round's
        limits come from the starts known when it begins. What a round adds is the end of self.found (a dict
        keeps its order, and nothing leaves it here), so a round sorts and scans only what is new (it sorted and
        scanned every function found so far, Chromium's 697,000 among them)."""
        pending = sorted(a for a in self.found if a not in done)
        starts = sorted(self.found)
        known = len(starts)
        inside = self.inside_trusted()
        while pending:
            trusted_sized = False  # a trusted function got its size: inside_trusted must be made again
            for addr in pending:
                done.add(addr)
                if self.in_plt(addr):
                    continue
                end = inside(addr)
                if end:  # covered by the function around it, up to the next start
                    self.known_size.setdefault(addr, min(end, self.next_start_after(addr, starts)) - addr)
                    continue
                size = self.known_size.get(addr)
                limit = addr + size if size else self.next_start_after(addr, starts)
                extent, new = self.explore(addr, limit, bounded=True)
                if not size:
                    self.known_size[addr] = extent
                    trusted_sized |= bool(extent and self.found[addr].sources & _TRUSTED)
                for target, source in new:
                    if not self.in_plt(target):
                        self.add(target, source)
            added = sorted(itertools.islice(self.found, known, None))
            known += len(added)
            pending = [a for a in added if a not in done]
            starts = sorted(starts + added)  # two sorted runs: merged in one pass
            if trusted_sized:
                inside = self.inside_trusted()

    def inside_trusted(self):
        """A test for weak starts (jump, lea, imm, pointer targets) strictly inside a function of trusted
        extent: drop_interior removes them, and the function around them explores their code, so exploring
        them is wasted (a non-PIE program has tens of thousands)."""
        trusted = sorted((a, a + self.known_size[a]) for a, f in self.found.items()
                         if f.sources & _TRUSTED and self.known_size.get(a))
        los = [a for a, _ in trusted]

        def inside(addr: int) -> int:
            """The end of the trusted function addr is a weak start inside of, else 0."""
            if self.found[addr].sources & _STRONG:
                return 0
            i = bisect.bisect_left(los, addr) - 1
            return trusted[i][1] if i >= 0 and trusted[i][0] < addr < trusted[i][1] else 0
        return inside

    def fill_gaps(self, done: set[int]) -> None:
        """Code in the holes between known functions, past alignment padding, becomes a function (not inside
        a PLT, which a file without section headers has in the middle of its one range of code)."""
        plt_end = dict(self.plt_ranges)
        starts = sorted(self.found.keys() | plt_end.keys())
        for lo, hi in self.code:
            pos = max([lo] + [b for a, b in self.plt_ranges if a <= lo < b])  # past a PLT the range begins in
            i = bisect.bisect_left(starts, pos)
            while pos < hi:
                nxt = starts[i] if i < len(starts) and starts[i] < hi else hi
                if nxt > pos:
                    self.try_gap(pos, nxt, done)
                if nxt >= hi:
                    break
                pos = max(nxt + self.known_size.get(nxt, 0), plt_end.get(nxt, 0), nxt + 1)
                i += 1
                while i < len(starts) and starts[i] < pos:
                    i += 1

    def try_gap(self, lo: int, hi: int, done: set[int]) -> None:
        """Functions in the hole [lo, hi), one after the other, each past its alignment padding."""
        while hi - lo >= 4:
            data = self.img.read(lo, hi - lo)
            pad = 0
            for ins in ix.Decoder(64, data, ip=lo):
                if ins.mnemonic in d.PADDING or (ins.mnemonic == ix.Mnemonic.ADD and data[ins.ip - lo] == 0):
                    pad = ins.next_ip
                    continue
                break
            start = pad or lo
            if start >= hi or hi - start < 4:
                return
            size, new = self.explore(start, hi, bounded=True)
            if size < 4:
                return
            self.add(start, "gap")
            done.add(start)
            self.known_size[start] = size
            for target, source in new:
                if not self.in_plt(target):
                    self.add(target, source)
            lo = start + size

    def drop_interior(self) -> None:
        """Weak starts (jump, lea, pointer, gap) strictly inside a function of known extent go; inside a function
        of Go's table, which lists every Go function, so do call targets (calls into runtime.duffzero's
        middle)."""
        trusted = sorted((a, a + self.known_size[a], "pclntab" in f.sources) for a, f in self.found.items()
                         if f.sources & _TRUSTED and self.known_size.get(a))
        los = [a for a, _, _ in trusted]
        for addr in list(self.found):
            f = self.found[addr]
            if f.sources & _TRUSTED:
                continue
            i = bisect.bisect_left(los, addr) - 1
            if i >= 0 and trusted[i][0] < addr < trusted[i][1] and (trusted[i][2] or not f.sources & _STRONG):
                del self.found[addr]

    def finish(self) -> list[Found]:
        self.drop_interior()
        starts = sorted(self.found)
        out = []
        for i, addr in enumerate(starts):
            f = self.found[addr]
            size = self.known_size.get(addr, 0)
            nxt = starts[i + 1] if i + 1 < len(starts) else self.code_end(addr)
            if not size or not f.sources & _SIZED:
                size = min(size or nxt - addr, nxt - addr)
            f.size = max(size, 1)
            out.append(f)
        return out


def discover(img: ElfImage, use_symbols: bool = True, extra_starts: dict[int, str] | None = None) -> list[Found]:
    """Every function of the image, sorted by address."""
    return _Discovery(img, use_symbols, extra_starts).run()
