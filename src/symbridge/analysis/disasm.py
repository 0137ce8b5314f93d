"""x86-64 decoding with iced-x86 and the tables that turn instructions into normalised tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import iced_x86 as ix

if TYPE_CHECKING:
    from ..elf.image import ElfImage

MNEMONIC: dict[int, str] = {v: k.lower() for k, v in vars(ix.Mnemonic).items()
                            if isinstance(v, int) and not k.startswith("_")}
_REGNAME: dict[int, str] = {v: k.lower() for k, v in vars(ix.Register).items()
                            if isinstance(v, int) and not k.startswith("_")}


def _reg_class(name: str) -> str:
    if name in ("rsp", "esp", "sp", "spl"):
        return "sp"
    if name in ("rbp", "ebp", "bp", "bpl"):
        return "bp"
    if name in ("rip", "eip"):
        return "ip"
    if name in ("rax", "eax", "ax", "al"):
        return {"rax": "ax64", "eax": "ax32", "ax": "ax16", "al": "ax8"}[name]
    for prefix in ("xmm", "ymm", "zmm", "st", "mm", "cr", "dr", "tr", "tmm", "k"):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return prefix
    if name in ("es", "cs", "ss", "ds", "fs", "gs"):
        return name
    if name.startswith("r") and (name[1:].isdigit() or name[1:] in ("bx", "cx", "dx", "si", "di")):
        return "r64"
    if name.startswith("r") and name[-1] == "d":
        return "r32"
    if name.startswith("r") and name[-1] == "w":
        return "r16"
    if name.startswith("r") and name[-1] in "bl" and name[1:-1].isdigit():
        return "r8"
    if name.startswith("e"):
        return "r32"
    if len(name) == 2 and name[1] in "lh":
        return "r8"
    if name in ("sil", "dil"):
        return "r8"
    if len(name) == 2:
        return "r16"
    return name


REGCLASS: dict[int, str] = {k: _reg_class(v) for k, v in _REGNAME.items()}
REGCLASS[ix.Register.NONE] = ""
REGNAME = _REGNAME

FC_NEXT = ix.FlowControl.NEXT
FC_JMP = ix.FlowControl.UNCONDITIONAL_BRANCH
FC_IJMP = ix.FlowControl.INDIRECT_BRANCH
FC_JCC = ix.FlowControl.CONDITIONAL_BRANCH
FC_RET = ix.FlowControl.RETURN
FC_CALL = ix.FlowControl.CALL
FC_ICALL = ix.FlowControl.INDIRECT_CALL
FC_INT = ix.FlowControl.INTERRUPT
FC_EXC = ix.FlowControl.EXCEPTION

OK_REGISTER = ix.OpKind.REGISTER
OK_MEMORY = ix.OpKind.MEMORY
OK_NEAR = (ix.OpKind.NEAR_BRANCH16, ix.OpKind.NEAR_BRANCH32, ix.OpKind.NEAR_BRANCH64)
OK_IMM = frozenset(getattr(ix.OpKind, k) for k in dir(ix.OpKind) if k.startswith("IMMEDIATE"))
M_INVALID = ix.Mnemonic.INVALID
M_NOP = ix.Mnemonic.NOP
M_INT3 = ix.Mnemonic.INT3
M_LEA = ix.Mnemonic.LEA
M_ENDBR64 = ix.Mnemonic.ENDBR64
M_UD2 = ix.Mnemonic.UD2
M_HLT = ix.Mnemonic.HLT
M_MOVSXD = ix.Mnemonic.MOVSXD
M_ADD = ix.Mnemonic.ADD
M_CMP = ix.Mnemonic.CMP
PADDING = frozenset({M_NOP, M_INT3, ix.Mnemonic.XCHG})  # xchg ax,ax is a 2-byte nop


def decode_range(img: ElfImage, start: int, end: int) -> Iterator[ix.Instruction]:
    """Linear decode of [start, end); stops at the end of file-backed bytes."""
    if end <= start:
        return iter(())
    data = img.read(start, end - start)
    return iter(ix.Decoder(64, data, ip=start))


def decoder_at(img: ElfImage, addr: int, limit: int = 1 << 16) -> ix.Decoder | None:
    data = img.read(addr, limit)
    return ix.Decoder(64, data, ip=addr) if data else None


def imm_bucket(value: int) -> str:
    """Immediates by magnitude: the exact value matters only for a few small ones."""
    if value >= 1 << 63:
        value -= 1 << 64
    if -2 <= value <= 8:
        return str(value)
    a = abs(value)
    if a & (a - 1) == 0:
        return "pow2"
    if a < 256:
        return "i8"
    if a < 65536:
        return "i16"
    return "i32" if a < 1 << 32 else "i64"


_FORMATTER = ix.Formatter(ix.FormatterSyntax.INTEL)
_FORMATTER.first_operand_char_index = 0


def format_instruction(ins: ix.Instruction) -> str:
    return _FORMATTER.format(ins)
