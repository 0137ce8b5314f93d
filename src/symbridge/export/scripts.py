"""Transfer results as IDA / Ghidra / radare2 scripts, Ghidra symbol lists and CSV; and back.

Addresses are the ELF's own virtual addresses (as ``nm``/``readelf`` print them). IDA keeps them by
default. Ghidra loads a PIE linked at 0 at image base 0x100000 by default, so the IDA and Ghidra
scripts shift every address by (the tool's image base - ``ELF_BASE``); ``ghidra-symbols`` files
(for Ghidra's ImportSymbolsScript.py) cannot, and hold the ELF addresses unchanged: import a PIE
with image base 0 (or rebase the program to 0) before using them. radare2 keeps the ELF's base.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from symbridge.errors import SymbridgeError, UsageError
from symbridge.export import _elf64
from symbridge.export._atomic import atomic_write
from symbridge.export._readers import read_names

FORMATS = ("ida", "ghidra", "ghidra-symbols", "r2", "csv")
CSV_HEADER = ("address", "size", "name", "confidence", "reference_address", "via")
CSV_GUARD = "=+-@\t\r'"  # a leading character spreadsheets treat as a formula gets a "'" first

_BAD = {
    "ida": re.compile(r"[^A-Za-z0-9_$?@.]"),
    "ghidra": re.compile(r"[^\x21-\x7e]"),
    "r2": re.compile(r"[^A-Za-z0-9_.]"),
}
_MAX_LEN = {"ida": 500, "ghidra": 2000, "r2": 250}

__all__ = ["FORMATS", "export_result", "read_names", "sanitize"]


@dataclass
class _Fn:
    address: int
    size: int
    name: str
    confidence: float
    reference_address: int | None
    via: list[str] = field(default_factory=list)


def sanitize(name: str, fmt: str) -> str:
    """The name as ``fmt`` can hold it: refused characters become ``_`` (CSV keeps everything)."""
    kind = {"ghidra-symbols": "ghidra"}.get(fmt, fmt)
    if kind == "csv":
        return name
    if kind not in _BAD:
        raise UsageError(f"unknown export format {fmt!r} (expected one of {', '.join(FORMATS)})")
    out = _BAD[kind].sub("_", name)[: _MAX_LEN[kind]]
    if kind != "ghidra" and out[:1].isdigit():
        out = "_" + out
    if kind == "ghidra" and out.startswith(("#", "//")):
        out = "_" + out[1:]  # would read back as a comment line
    return out


def export_result(result: dict, fmt: str, out: Path, *, elf_base: int | None = None) -> None:
    """Write the named functions of a transfer ``result`` to ``out`` in format ``fmt``.

    ``elf_base`` is the target's lowest PT_LOAD address (page-aligned); by default it is read from
    ``result["target"]`` when that file exists, else guessed (0 when code starts below 0x100000).
    """
    out = Path(out)
    if fmt not in FORMATS:
        raise UsageError(f"{out}: unknown export format {fmt!r} (expected one of {', '.join(FORMATS)})")
    fns = _functions(result, out)
    if fmt == "csv":
        text = _csv(fns)
    else:
        names = _tool_names(fns, fmt)
        if fmt in ("ida", "ghidra"):
            base = elf_base if elf_base is not None else _guess_base(result)
            text = (_ida if fmt == "ida" else _ghidra)(fns, names, base)
        elif fmt == "ghidra-symbols":
            text = "".join(f"{n} {f.address:#x} f\n" for f, n in zip(fns, names))
        else:
            text = "".join(f"af @ {f.address:#x}\nafn {n} {f.address:#x}\nf sym.{n} {max(f.size, 1)} "
                           f"@ {f.address:#x}\n" for f, n in zip(fns, names))
    atomic_write(out, text.encode("utf-8"))


def _functions(result: dict, out: Path) -> list[_Fn]:
    def bad(i: int, what: str) -> UsageError:
        return UsageError(f"{out}: bad transfer result: functions[{i}]: {what}")

    fns = result.get("functions") if isinstance(result, Mapping) else None
    if not isinstance(fns, list):
        raise UsageError(f"{out}: bad transfer result: no 'functions' list")
    named = []
    for i, f in enumerate(fns):
        if not isinstance(f, Mapping):
            raise bad(i, "not an object")
        name = f.get("name")
        if name is None or name == "":
            continue
        if not isinstance(name, str) or "\0" in name:
            raise bad(i, "name must be a string without NUL")
        addr, size, ref = f.get("address"), f.get("size", 0), f.get("reference_address")
        if not _is_u64(addr) or not _is_u64(size) or not (ref is None or _is_u64(ref)):
            raise bad(i, "address, size and reference_address must be integers in [0, 2**64)")
        conf = f.get("confidence", 0.0)
        if isinstance(conf, bool) or not isinstance(conf, int | float) or not math.isfinite(conf):
            raise bad(i, "confidence must be a finite number")
        via = f.get("via") or []
        if not isinstance(via, list) or not all(isinstance(v, str) for v in via):
            raise bad(i, "via must be a list of strings")
        named.append(_Fn(addr, size, name, float(conf), ref, via))
    return sorted(named, key=lambda f: f.address)


def _is_u64(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 64


def _tool_names(fns: list[_Fn], fmt: str) -> list[str]:
    """Sanitised names, made unique with an ``_<hex address>`` suffix where they collide."""
    used: set[str] = set()
    names = []
    for f in fns:
        n = sanitize(f.name, fmt)
        k = 0
        while n in used:
            k += 1
            n = sanitize(f.name, fmt) + f"_{f.address:x}" + (f"_{k}" if k > 1 else "")
        used.add(n)
        names.append(n)
    return names


def _guess_base(result: Mapping) -> int | None:
    target = result.get("target")
    if isinstance(target, str) and target:
        try:
            base = _elf64.load(Path(target)).min_load_vaddr
            if base is not None:
                return base
        except (SymbridgeError, OSError):
            pass
    addrs = [f.get("address") for f in result.get("functions", []) if isinstance(f, Mapping)]
    addrs = [a for a in addrs if _is_u64(a)]
    return 0 if addrs and min(addrs) < 0x100000 else None


def _table(fns: list[_Fn], names: list[str], base: int | None) -> str:
    rows = "".join(f"    ({f.address:#x}, {f.size}, {n!r}, {f.confidence!r}),\n" for f, n in zip(fns, names))
    base_text = "None" if base is None else f"{base:#x}"
    return f"ELF_BASE = {base_text}\nSYMBRIDGE_FUNCTIONS = [\n{rows}]\n"


def _ida(fns: list[_Fn], names: list[str], base: int | None) -> str:
    return f'''# symbridge: function names for IDA (File > Script file...). Generated file.
# Addresses are the ELF's; they move by IDA's image base minus ELF_BASE (None: no shift).
import ida_bytes
import ida_funcs
import ida_nalt
import ida_name

{_table(fns, names, base)}

def symbridge_apply():
    delta = 0 if ELF_BASE is None else ida_nalt.get_imagebase() - ELF_BASE
    done = 0
    for address, _size, name, confidence in SYMBRIDGE_FUNCTIONS:
        ea = address + delta
        if ida_funcs.get_func(ea) is None:
            ida_funcs.add_func(ea)
        if not ida_name.set_name(ea, name, ida_name.SN_NOWARN | ida_name.SN_FORCE):
            print("symbridge: could not name 0x%x %s" % (ea, name))
            continue
        comment = "symbridge confidence %.3f" % confidence
        pfn = ida_funcs.get_func(ea)
        if pfn is not None and pfn.start_ea == ea:
            ida_funcs.set_func_cmt(pfn, comment, True)
        else:
            ida_bytes.set_cmt(ea, comment, True)
        done += 1
    print("symbridge: named %d of %d functions" % (done, len(SYMBRIDGE_FUNCTIONS)))


symbridge_apply()
'''


def _ghidra(fns: list[_Fn], names: list[str], base: int | None) -> str:
    return f'''# symbridge: function names for Ghidra (Script Manager, Jython). Generated file.
# Addresses are the ELF's; they move by the program's image base minus ELF_BASE (None: no shift),
# since Ghidra loads a PIE linked at 0 at 0x100000 by default.
#@category symbridge
#@runtime Jython
from ghidra.program.model.symbol import SourceType

{_table(fns, names, base)}

def symbridge_apply():
    delta = 0
    if ELF_BASE is not None:
        delta = currentProgram.getImageBase().getOffset() - ELF_BASE
    memory = currentProgram.getMemory()
    done = 0
    for address, _size, name, confidence in SYMBRIDGE_FUNCTIONS:
        addr = toAddr("0x%x" % (address + delta))
        if addr is None or not memory.contains(addr):
            print("symbridge: 0x%x %s is not in memory, skipped" % (address + delta, name))
            continue
        func = getFunctionAt(addr)
        if func is None:
            func = createFunction(addr, name)
        if func is None:
            print("symbridge: could not create a function at %s for %s" % (addr, name))
            continue
        try:
            func.setName(name, SourceType.IMPORTED)
        except Exception as e:
            print("symbridge: could not name %s %s: %s" % (addr, name, e))
            continue
        func.setRepeatableComment("symbridge confidence %.3f" % confidence)
        done += 1
    print("symbridge: named %d of %d functions" % (done, len(SYMBRIDGE_FUNCTIONS)))


symbridge_apply()
'''


def _csv(fns: list[_Fn]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)  # "\r\n" ends rows, so a "\r" or "\n" inside a name gets quoted
    w.writerow(CSV_HEADER)
    for f in fns:
        name = "'" + f.name if f.name[:1] in CSV_GUARD and f.name else f.name
        ref = "" if f.reference_address is None else f"{f.reference_address:#x}"
        w.writerow([f"{f.address:#x}", f.size, name, repr(f.confidence), ref, ";".join(f.via)])
    return buf.getvalue()
