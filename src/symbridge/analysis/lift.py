"""Lifting: per-function facts from its instructions (tokens, blocks, calls, strings, constants)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import iced_x86 as ix

from ..elf.image import ElfImage
from . import disasm as d

MAX_INSTRUCTIONS = 200_000  # per function; longer ones are truncated (noted in `truncated`)
MEMO_MAX = 1 << 20  # instruction encodings a memo keeps (about 150 MB at most)
PARAM_SCAN = 64  # instructions from the entry searched for parameters read before written
_R = ix.Register
_PARAM_REGS = {int(r): k for k, r in enumerate((_R.RDI, _R.RSI, _R.RDX, _R.RCX, _R.R8, _R.R9, _R.ZMM0, _R.ZMM1,
                                                 _R.ZMM2, _R.ZMM3, _R.ZMM4, _R.ZMM5, _R.ZMM6, _R.ZMM7, _R.RAX))}
_RAX, _XMM0 = 14, 6  # the registers that return a value: written last before a ret
_READS = {int(ix.OpAccess.READ), int(ix.OpAccess.COND_READ), int(ix.OpAccess.READ_WRITE),
          int(ix.OpAccess.READ_COND_WRITE)}
_WRITES = {int(ix.OpAccess.WRITE), int(ix.OpAccess.READ_WRITE)}
_INFO = ix.InstructionInfoFactory()
_PARAM_USE: dict[bytes, tuple] = {}  # instruction bytes -> ((register index, read?, written?, bytes), ...)
RETURN_SCAN = 4  # instructions before a ret searched for the write of its value


@dataclass(slots=True)
class Facts:
    """What the model and the matcher know about one function."""

    tokens: list[str] = field(default_factory=list)  # normalised instructions
    mnemonics: list[str] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)  # direct call/tail-call targets, in order
    imports: list[str] = field(default_factory=list)  # imported functions called, in order
    strings: list[str] = field(default_factory=list)
    constants: list[int] = field(default_factory=list)
    data_refs: list[int] = field(default_factory=list)  # RIP-relative data addresses (not strings)
    code_refs: list[int] = field(default_factory=list)  # addresses of functions taken (pointers)
    far_jumps: list[int] = field(default_factory=list)  # conditional jumps out of the function (to a cold part)
    object_refs: list[int] = field(default_factory=list)  # every data address referred to, strings included
    offsets: list[int] = field(default_factory=list)  # displacements off a pointer register (struct fields)
    small: list[int] = field(default_factory=list)  # exact small immediates (9 <= |v| < 256), e.g. characters
    params: list[tuple[int, int]] = field(default_factory=list)  # (register 0-5 int, 6-13 xmm; width) read first
    widths: list[int] = field(default_factory=list)  # bytes accessed at each of `offsets` (0 for lea)
    returns: list[int] = field(default_factory=list)  # each ret: width of rax written before it, 16 xmm0, -1 call
    n_blocks: int = 0
    n_edges: int = 0
    truncated: bool = False


def _mem_token(ins: ix.Instruction, img: ElfImage, facts: Facts) -> str:
    if ins.is_ip_rel_memory_operand:
        target = ins.ip_rel_memory_address
        if target in img.got:
            facts.imports.append(img.got[target])
            return "[got]"
        if img.is_code(target):
            facts.code_refs.append(target)
            return "[code]"
        if target in img.got_code:  # a pointer to this file's own function (a fixed-address build has it inline)
            facts.code_refs.append(img.got_code[target])
            return "[data]"
        if target in img.got_data:  # and to its own object (an ops struct whose callbacks join the call graph)
            facts.object_refs.append(img.got_data[target])
            return "[data]"
        facts.object_refs.append(target)
        s = img.c_string(target)
        if s is not None:
            facts.strings.append(s)
            return "[str]"
        facts.data_refs.append(target)
        return "[data]"
    base = d.REGCLASS.get(ins.memory_base, "")
    tok = "[" + base
    if ins.memory_index != ix.Register.NONE:
        tok += "+i*" + str(ins.memory_index_scale)
    disp = ins.memory_displacement
    if disp:
        if disp >= 1 << 63:
            disp -= 1 << 64
        tok += "+d" if -128 <= disp < 128 else "+D"
        if base and base != "sp" and (base != "bp" or disp > 0) and -4096 < disp < 4096:
            facts.offsets.append(disp)  # a field of a struct (not a stack slot) keeps its offset at any -O
            facts.widths.append(ix.MemorySizeExt.size(ins.memory_size))
        if not base and disp > 0x1000 and ins.memory_index == ix.Register.NONE:
            if img.is_code(disp):
                facts.code_refs.append(disp)
            else:
                facts.object_refs.append(disp)
                s = img.c_string(disp)
                if s is not None:
                    facts.strings.append(s)
                else:
                    facts.data_refs.append(disp)
    return tok + "]"


def _param_use(ins: ix.Instruction, raw: bytes) -> tuple:
    """How one instruction uses the registers that pass parameters and rax, stored in _PARAM_USE under its
    bytes (callers look there first)."""
    out = []
    # a 32-bit write shows as one of the whole register (it clears the upper half): op0 tells the width
    op0 = ins.op0_register if ins.op_count and ins.op_kind(0) == d.OK_REGISTER else _R.NONE
    # cvtsi2sd and the like keep the upper lanes of their destination: a write of the value all the same
    merge = op0 != _R.NONE and d.MNEMONIC.get(ins.mnemonic, "").startswith("cvt")
    dest = ix.RegisterExt.full_register(op0) if merge else None
    for u in _INFO.info(ins).used_registers():
        full = ix.RegisterExt.full_register(u.register)
        k = _PARAM_REGS.get(int(full))
        if k is None or not (u.access in _READS or u.access in _WRITES):
            continue
        read, write = u.access in _READS and full != dest, u.access in _WRITES
        width = ix.RegisterExt.size(op0 if write and ix.RegisterExt.full_register(op0) == full else u.register)
        out.append((k, read, write, width))
    use = tuple(sorted(out, key=lambda u: not u[1]))  # reads first: `mov rdi, [rdi]` reads rdi
    if len(_PARAM_USE) < MEMO_MAX:
        _PARAM_USE[raw] = use
    return use


def _return_width(recent: deque[tuple[bytes, object]]) -> int:
    """What the instructions before a ret (latest last) put in the return registers: the width of rax's last
    write, 16 for xmm0, -1 for a call (its value passes through), 0 for nothing (a void function)."""
    for raw, fc in reversed(recent):
        if fc == d.FC_CALL or fc == d.FC_ICALL:
            return -1
        use = _PARAM_USE.get(raw)
        if use is None:
            use = _param_use(ix.Decoder(64, raw).decode(), raw)
        for k, _, write, width in use:
            if write and k in (_RAX, _XMM0):
                return 16 if k == _XMM0 else width
    return 0


def lift(img: ElfImage, start: int, size: int, plt: dict[int, str], names: dict[int, str] | None = None,
         max_instructions: int = MAX_INSTRUCTIONS, memo: dict[bytes, tuple[str, str]] | None = None) -> Facts:
    """Facts of the function at [start, start+size). `plt` maps stub addresses to import names.

    At most ``max_instructions`` (and never more than ``MAX_INSTRUCTIONS``) are lifted; ``truncated`` says so.
    ``memo`` (instruction bytes -> token and mnemonic), shared by the functions of one file, skips the operand
    work for encodings seen before whose token depends on their bytes alone and which record nothing else."""
    max_instructions = min(max_instructions, MAX_INSTRUCTIONS)
    facts = Facts()
    data = img.read(start, size)
    if not data:
        return facts
    end = start + len(data)
    leaders = {start}
    n_edges = 0
    is_exec = img.elf_type == "ET_EXEC"
    toks = facts.tokens
    mns = facts.mnemonics
    regclass, mnemonic, ok_reg, ok_mem, ok_imm, ok_near = d.REGCLASS, d.MNEMONIC, d.OK_REGISTER, d.OK_MEMORY, \
        d.OK_IMM, d.OK_NEAR
    fc_next, fc_call, fc_icall, fc_jmp, fc_jcc, m_invalid = d.FC_NEXT, d.FC_CALL, d.FC_ICALL, d.FC_JMP, d.FC_JCC, \
        d.M_INVALID
    memo = {} if memo is None else memo
    reg_none = ix.Register.NONE
    dec = ix.Decoder(64, data, ip=start)
    ins = ix.Instruction()  # decoded into in place: no new object per instruction
    count = 0
    param_memo = _PARAM_USE
    seen_params: set[int] = set()  # parameter registers read or written so far (the scan stops at a call)
    scan = True
    recent: deque[tuple[bytes, object]] = deque(maxlen=RETURN_SCAN)  # the last instructions (bytes, flow control)
    fc_ret = d.FC_RET
    while dec.can_decode:
        if count >= max_instructions:
            facts.truncated = True
            break
        count += 1
        dec.decode_out(ins)
        off = ins.ip - start
        raw = data[off:off + ins.len]
        flow = ins.flow_control
        if scan:
            use = param_memo.get(raw)
            for k, read, _, width in _param_use(ins, raw) if use is None else use:
                if k not in seen_params and k != _RAX:
                    seen_params.add(k)
                    if read:
                        facts.params.append((k, width))
            scan = count < PARAM_SCAN and flow != fc_call and flow != fc_icall
        if flow == fc_ret:
            facts.returns.append(_return_width(recent))
        recent.append((raw, flow))
        hit = memo.get(raw)
        if hit is not None:
            toks.append(hit[0])
            mns.append(hit[1])
            if hit[2]:
                facts.offsets.extend(hit[2][0])
                facts.small.extend(hit[2][1])
                facts.widths.extend(hit[2][2])
            continue
        if ins.mnemonic == m_invalid:
            toks.append("invalid")
            mns.append("invalid")
            continue
        mn = mnemonic.get(ins.mnemonic, "?")
        n_off, n_small = len(facts.offsets), len(facts.small)
        ops = []
        fc = ins.flow_control
        pure = fc == fc_next  # the token depends on the bytes alone and nothing is recorded
        for i in range(ins.op_count):
            kind = ins.op_kind(i)
            if kind == ok_reg:
                ops.append(regclass.get(ins.op_register(i), "r"))
            elif kind == ok_mem:
                ops.append(_mem_token(ins, img, facts))
                if ins.is_ip_rel_memory_operand or ins.memory_base == reg_none:
                    pure = False
            elif kind in ok_imm:
                v = ins.immediate(i)
                ops.append(d.imm_bucket(v))
                if v >= 1 << 63:
                    v -= 1 << 64
                if 9 <= abs(v) < 0x100:
                    facts.small.append(v)
                if abs(v) >= 0x100 and fc == fc_next:
                    if is_exec and v > 0x1000 and img.is_code(v):
                        facts.code_refs.append(v)
                    elif is_exec and v > 0x1000 and (s := img.c_string(v)) is not None:
                        facts.strings.append(s)
                        facts.object_refs.append(v)
                    else:
                        facts.constants.append(v & 0xFFFFFFFFFFFFFFFF)
                        if is_exec and v > 0x1000 and img.section_at(v) is not None:
                            facts.object_refs.append(v)
                    pure = False
            elif kind in ok_near:
                pure = False
                t = ins.near_branch_target
                if fc == fc_call or (fc == fc_jmp and not start <= t < end):
                    if t in plt:
                        facts.imports.append(plt[t])
                        ops.append("imp")
                    else:
                        facts.calls.append(t)
                        ops.append("fn")
                else:
                    ops.append("loc")
                    if start <= t < end:
                        leaders.add(t)
                    elif fc == fc_jcc:
                        facts.far_jumps.append(t)
            else:
                ops.append("o")
        if fc != fc_next and fc != fc_call and fc != fc_icall:
            leaders.add(ins.next_ip)
            n_edges += 2 if fc == fc_jcc else 1
        tok = mn + " " + ",".join(ops) if ops else mn
        toks.append(tok)
        mns.append(mn)
        if pure and len(memo) < MEMO_MAX:
            extra = (tuple(facts.offsets[n_off:]), tuple(facts.small[n_small:]), tuple(facts.widths[n_off:]))
            memo[raw] = (tok, mn, extra if extra[0] or extra[1] else None)
    facts.n_blocks = len([a for a in leaders if start <= a < end])
    facts.n_edges = n_edges
    return facts
