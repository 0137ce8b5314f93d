"""Ground truth from symbols and the scores benchmarks and tests share."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

from .demangle import demangle
from .elf.image import ElfImage
from .errors import InputFileError


# the suffixes compilers give copies and parts of one source function (gcc: foo.isra.0, foo.constprop.1,
# foo.part.0, foo.cold; clang's ThinLTO: foo.llvm.123): the copy is still that source function
_CLONE = re.compile(r"(?:\.(?:isra|constprop|part|cold|lto_priv|clone|localalias|llvm|specialized)(?:\.\d+)*)+$")


def source_name(name: str) -> str:
    """The name of the source function a symbol belongs to: `foo.constprop.0.isra.0` -> `foo`; a symbol version
    that `.symver` writes into a static archive's names goes too (`MD5Update@LIBBSD_0.0` -> `MD5Update`)."""
    base = _CLONE.sub("", name.partition("@")[0])
    return base or name


def name_right(name: str | None, names) -> bool:
    """A name given to a function is right when it is one of the function's names (see truth_names), or is a
    compiler's copy of one of them (`foo.isra.0` given to `foo`, or the other way round)."""
    return bool(name) and (name in names or source_name(name) in names)


def truth_starts(img: ElfImage) -> set[int]:
    """Start addresses of FUNC symbols with a size, in an executable section, from .symtab/.dynsym."""
    out = set()
    for sym in img.symbols:
        if sym.kind in ("STT_FUNC", "STT_GNU_IFUNC") and sym.defined and sym.size > 0:
            sec = img.section_at(sym.address)
            if sec is not None and sec.executable:
                out.add(sym.address)
    return out


def unsized_starts(img: ElfImage) -> set[int]:
    """Addresses that a symbol names without a size (_init, crt helpers): neither right nor wrong."""
    return {s.address for s in img.symbols if s.defined and s.size == 0 and s.address} - truth_starts(img)


def precision_recall(found: set[int], truth: set[int]) -> tuple[float, float]:
    tp = len(found & truth)
    return (tp / len(found) if found else 0.0, tp / len(truth) if truth else 0.0)


def anonymize(src: Path, dst: Path) -> Path:
    """A copy of src as benchmarks hand it to the tool: stripped (MiniDebugInfo too), and the names of its
    defined dynamic symbols blanked in .dynstr (imports keep theirs). Never touches src; InputFileError when
    strip fails."""
    import shutil
    import struct
    import subprocess
    import tempfile

    from .elf.image import load_image

    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, suffix=".tmp")
    os.close(fd)
    try:
        # strip keeps a MiniDebugInfo section (.gnu_debugdata: a compressed .symtab) unless asked
        res = subprocess.run(["strip", "--strip-all", "--remove-section=.gnu_debugdata", "-o", tmp, str(src)],
                             capture_output=True, text=True)
        if res.returncode:
            why = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
            raise InputFileError(f"{src}: strip cannot copy it ({why})")
        img = load_image(tmp)
        dynsym, dynstr = img.section(".dynsym"), img.section(".dynstr")
        data = bytearray(img.data)
        if dynsym is not None and dynstr is not None:
            spans: list[tuple[bool, int, int]] = []
            for k in range(dynsym.size // 24):
                name, _, _, shndx = struct.unpack_from("<IBBH", data, dynsym.offset + 24 * k)
                if name == 0 or name >= dynstr.size:
                    continue
                start = dynstr.offset + name
                end = data.index(b"\0", start, dynstr.offset + dynstr.size)
                spans.append((shndx != 0, start, end))
            keep = {i for defined, a, b in spans if not defined for i in range(a, b)}  # imports share tails
            for defined, a, b in spans:
                if defined:
                    for i in range(a, b):
                        if i not in keep:
                            data[i] = 0
        Path(tmp).write_bytes(bytes(data))
        shutil.copymode(src, tmp)
        os.replace(tmp, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dst


def demangled_bases(names: list[str]) -> dict[str, str]:
    """C++ names without their parameter lists (`_Z11lua_atpanicP9lua_State...` -> `lua_atpanic`), so that a
    library built as C in one release and as C++ in the other is judged by its function names."""
    return {m: d.split("(", 1)[0] for m, d in demangle([n for n in names if n.startswith("_Z")]).items()}


def truth_names(path: Path, link: bool = False) -> dict[int, set[str]]:
    """address -> every name a FUNC symbol gives it, from .symtab and .dynsym, plus its source names: C++ names
    without parameters, and names without the suffixes of a compiler's copies (`foo.isra.0` -> `foo`). With
    `link`, a static archive's or object's names, at the addresses of its linked copy (elf.link)."""
    from .binary import Binary

    return truth_names_of(Binary(path, use_debug_files=False, link=link))


def truth_names_of(b) -> dict[int, set[str]]:
    """truth_names of a Binary already loaded (without its debug files, as truth_names loads it)."""
    out: dict[int, set[str]] = defaultdict(set)
    for f in b.functions:
        if f.name and not f.is_plt:
            out[f.address].add(f.name)
    for s in b.image.symbols:
        if s.defined and s.name and s.kind in ("STT_FUNC", "STT_GNU_IFUNC"):
            out[s.address].add(s.name)
    bases = demangled_bases([n for ns in out.values() for n in ns])
    for ns in out.values():
        ns.update(bases[n] for n in list(ns) if n in bases)
        ns.update({source_name(n) for n in ns})
    return out


def counterpart_queries(ref_functions: list, tgt_functions: list,
                        truth: dict[int, set[str]]) -> tuple[list[int], list[int]]:
    """(reference rows, target rows) of the functions benchmarks query: a source name (see source_name) unique
    among the reference's functions that the target's truth gives to exactly one address, and that address
    one of the target's functions."""
    count: dict[str, int] = defaultdict(int)
    for f in ref_functions:
        if f.name:
            count[source_name(f.name)] += 1
    row = {f.address: i for i, f in enumerate(tgt_functions)}
    at: dict[str, list[int]] = defaultdict(list)
    for addr, names in truth.items():
        for n in names:
            at[n].append(addr)
    q, t = [], []
    for i, f in enumerate(ref_functions):
        if not f.name or count[source_name(f.name)] != 1:
            continue
        addrs = at.get(source_name(f.name), [])
        if len(addrs) == 1 and addrs[0] in row:
            q.append(i)
            t.append(row[addrs[0]])
    return q, t
