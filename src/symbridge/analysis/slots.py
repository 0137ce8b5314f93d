"""Where a function puts each function pointer it takes: the struct field it stores it into (`p->read_op =
pcap_read_not_initialized`) or the argument of the call it passes it to (`archive_read_set_close_callback(a,
file_close)`). Look-alike callbacks (the same code under several names) that neither their code nor address
order tells apart are told apart by that slot, which stays put between builds of the same source."""

from __future__ import annotations

from collections.abc import Container

import iced_x86 as ix

from ..elf.image import ElfImage

_R = ix.Register
_M = ix.Mnemonic
_OK = ix.OpKind
# registers a call leaves as they were (System V): a pointer held there is still held after it
_KEPT = {int(r) for r in (_R.RBX, _R.RBP, _R.R12, _R.R13, _R.R14, _R.R15, _R.RSP)}
_ARGS = {int(r): k for k, r in enumerate((_R.RDI, _R.RSI, _R.RDX, _R.RCX, _R.R8, _R.R9))}
_NEAR = {int(_OK.NEAR_BRANCH64), int(_OK.NEAR_BRANCH32)}
Slot = int | tuple[int, int]  # a struct field's offset, or (callee address, argument index)
_IMM = {int(k) for k in (_OK.IMMEDIATE32TO64, _OK.IMMEDIATE32, _OK.IMMEDIATE64)}
_VECTOR_MOVES = {int(m) for m in (_M.MOVUPS, _M.MOVAPS, _M.MOVDQU, _M.MOVDQA, _M.VMOVUPS, _M.VMOVAPS,
                                   _M.VMOVDQU, _M.VMOVDQA)}
_LOW_MOVES = {int(m) for m in (_M.MOVQ, _M.VMOVQ)}
_UNPACK = {int(m) for m in (_M.PUNPCKLQDQ, _M.MOVLHPS)}
_FLOW_END = {int(f) for f in (ix.FlowControl.UNCONDITIONAL_BRANCH, ix.FlowControl.INDIRECT_BRANCH,
                              ix.FlowControl.RETURN, ix.FlowControl.INTERRUPT)}
# what may put a function's address in a register
_LOADS = {int(_M.LEA), int(_M.MOV), int(_M.MOVHPS), int(_M.MOVHPD)} | _LOW_MOVES | _VECTOR_MOVES
_CALLS = {int(ix.FlowControl.CALL), int(ix.FlowControl.INDIRECT_CALL)}
_INFO = ix.InstructionInfoFactory()
_WRITES = {int(ix.OpAccess.WRITE), int(ix.OpAccess.READ_WRITE), int(ix.OpAccess.COND_WRITE),
           int(ix.OpAccess.READ_COND_WRITE)}


def _full(reg: int) -> int:
    return int(ix.RegisterExt.full_register(reg))


def stored_pointer_groups(img: ElfImage, start: int, size: int, starts: Container[int]) -> list[dict[Slot, int]]:
    """Slot -> the function (an address in `starts`) that this function's code puts there: a field offset
    (int) for a pointer stored into a struct (`mov [reg+off], reg` after the register was loaded with the
    function's address, `mov qword [reg+off], imm`, or two pointers packed into an SSE register and stored at
    once, as gcc 12 and later write them), and (callee address, argument 0-5) for one passed to a direct call
    (`signal(SIGINT, on_interrupt)`, `qsort(..., by_name)`). Slots that get two different functions, and
    stores to the stack, are left out. A linear sweep: what a register holds is forgotten at jumps, returns
    and any other write to it.

    The first dict holds the whole function's slots; the others, one for each run of code between two
    jumps, those runs' slots where the function puts different functions in one slot (a switch whose cases
    each set a struct's callbacks: libsndfile's `psf->read_short = pcm_read_sc2s` in one case,
    `pcm_read_uc2s` in the next), leaving out runs that add nothing to the first."""
    data = img.read(start, size)
    if not data:
        return [{}]
    gpr: dict[int, int] = {}  # full register -> function address it holds
    vec: dict[int, tuple[int | None, int | None]] = {}  # full vector register -> (low, high) quadwords
    runs: list[dict[Slot, set[int]]] = [{}]  # slot -> the functions put there, for each run of code between jumps

    def code(v: int | None) -> int | None:
        return v if v is not None and v in starts else None

    def loaded(ins: ix.Instruction) -> int | None:
        """The function address a memory operand holds (a GOT slot or a constant in data), if any."""
        if not ins.is_ip_rel_memory_operand:
            return None
        a = ins.ip_rel_memory_address
        return code(img.got_code.get(a)) or code(img.pointer_value(a))

    def store(off: Slot, v: int | None) -> None:
        if v is not None:
            runs[-1].setdefault(off, set()).add(v)

    dec = ix.Decoder(64, data, ip=start)
    ins = ix.Instruction()
    while dec.can_decode:
        dec.decode_out(ins)
        mn, n = int(ins.mnemonic), ins.op_count
        k0 = int(ins.op0_kind) if n else -1
        if not gpr and not vec and n == 2 and not (mn in _LOADS and k0 == _OK.REGISTER) and \
                not (mn == _M.MOV and k0 == _OK.MEMORY):
            continue  # nothing held, and this neither loads a pointer nor stores a constant
        if k0 == _OK.MEMORY and n == 2 and not ins.is_ip_rel_memory_operand:
            base = _full(ins.memory_base)
            if base != _R.RSP and ins.memory_index == _R.NONE:
                off = ins.memory_displacement
                off = off - (1 << 64) if off >= 1 << 63 else off
                k1 = int(ins.op1_kind)
                if mn == _M.MOV and k1 == _OK.REGISTER and ix.RegisterExt.size(ins.op1_register) == 8:
                    store(off, gpr.get(_full(ins.op1_register)))
                elif mn == _M.MOV and k1 in _IMM and ins.memory_size == ix.MemorySize.UINT64:
                    store(off, code(ins.immediate(1)))
                elif k1 == _OK.REGISTER and ix.RegisterExt.is_xmm(ins.op1_register):
                    low, high = vec.get(_full(ins.op1_register), (None, None))
                    if mn in _VECTOR_MOVES:
                        store(off, low)
                        store(off + 8, high)
                    elif mn in _LOW_MOVES:
                        store(off, low)
                    elif mn in (_M.MOVHPS, _M.MOVHPD):
                        store(off, high)
            continue
        if k0 != _OK.REGISTER:
            flow = int(ins.flow_control)
            if k0 in _NEAR and (flow == ix.FlowControl.CALL or (flow == ix.FlowControl.UNCONDITIONAL_BRANCH and not
                                                                  start <= ins.near_branch_target < start + size)):
                callee = ins.near_branch_target  # a call, or a jump to another function (a tail call)
                for r, v in gpr.items():
                    if r in _ARGS:
                        store((callee, _ARGS[r]), v)
            if flow in _CALLS:
                gpr = {r: v for r, v in gpr.items() if r in _KEPT}
                vec.clear()
            elif flow in _FLOW_END:
                gpr.clear()
                vec.clear()
            if (flow in _FLOW_END or flow == ix.FlowControl.CONDITIONAL_BRANCH) and runs[-1]:
                runs.append({})
            continue
        dest = _full(ins.op0_register)
        k1 = int(ins.op1_kind) if n > 1 else -1
        value: int | None = None
        if ix.RegisterExt.is_gpr64(ins.op0_register) or ix.RegisterExt.is_gpr32(ins.op0_register):
            wide = ix.RegisterExt.is_gpr64(ins.op0_register)  # a 32-bit mov of an address: a fixed-address build
            if not wide:
                value = code(ins.immediate(1)) if mn == _M.MOV and k1 in _IMM else None
            elif mn == _M.LEA and ins.is_ip_rel_memory_operand:
                value = code(ins.ip_rel_memory_address)
            elif mn == _M.MOV and k1 in _IMM:
                value = code(ins.immediate(1))
            elif mn == _M.MOV and k1 == _OK.MEMORY:
                value = loaded(ins)
            elif mn == _M.MOV and k1 == _OK.REGISTER:
                value = gpr.get(_full(ins.op1_register))
            gpr.pop(dest, None)
            if value is not None:
                gpr[dest] = value
            continue
        if ix.RegisterExt.is_xmm(ins.op0_register):
            pair: tuple[int | None, int | None] | None = None
            if mn in _LOW_MOVES and k1 == _OK.REGISTER and ix.RegisterExt.is_gpr64(ins.op1_register):
                pair = (gpr.get(_full(ins.op1_register)), None)
            elif mn in _LOW_MOVES and k1 == _OK.MEMORY:
                pair = (loaded(ins), None)
            elif mn in (_M.MOVHPS, _M.MOVHPD) and k1 == _OK.MEMORY:  # the high quadword from memory
                pair = (vec.get(dest, (None, None))[0], loaded(ins))
            elif mn == _M.PINSRQ and k1 == _OK.REGISTER and n == 3 and ins.immediate(2) == 1:
                pair = (vec.get(dest, (None, None))[0], gpr.get(_full(ins.op1_register)))
            elif mn in _UNPACK and k1 == _OK.REGISTER:
                pair = (vec.get(dest, (None, None))[0], vec.get(_full(ins.op1_register), (None, None))[0])
            elif mn in _VECTOR_MOVES and k1 == _OK.MEMORY and ins.is_ip_rel_memory_operand:
                a = ins.ip_rel_memory_address
                pair = (code(img.pointer_value(a)), code(img.pointer_value(a + 8)))
            elif mn in _VECTOR_MOVES and k1 == _OK.REGISTER:
                pair = vec.get(_full(ins.op1_register))
            vec.pop(dest, None)
            if pair is not None and pair != (None, None):
                vec[dest] = pair
            continue
        for u in _INFO.info(ins).used_registers():  # anything else that writes a register forgets it
            if int(u.access) in _WRITES:
                gpr.pop(_full(u.register), None)
                vec.pop(_full(u.register), None)
    found: dict[Slot, set[int]] = {}  # the whole function's
    for run in runs:
        for off, fs in run.items():
            found.setdefault(off, set()).update(fs)
    whole = {off: next(iter(fs)) for off, fs in found.items() if len(fs) == 1}
    out = [whole]
    if len(whole) < len(found):  # some slot gets two functions: the runs tell them apart
        for run in runs:
            slots = {off: next(iter(fs)) for off, fs in run.items() if len(fs) == 1}
            if any(off not in whole for off in slots):
                out.append(slots)
    return out
