"""The fuzz target shared by the Hypothesis smoke test, the regression test and ``benchmarks/fuzz_target.py``.

One input: bytes -> a temporary file -> ``Binary(path, ignore_symbols=...)`` -> every function's ``facts`` ->
``featurize`` -> ``Model.projection().forward``. A ``SymbridgeError`` subclass is a clean rejection; any
other exception is a crash; more than ``HANG_SECONDS`` for one input is a hang.
"""

from __future__ import annotations

import os
import struct
import tempfile
import time
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS_DIR = HERE / "corpus"
REGRESSIONS_DIR = HERE / "regressions"
HANG_SECONDS = 10.0


@lru_cache(maxsize=1)
def _model():
    from symbridge.model.model import Model

    return Model.projection()


def analyse(path: str | os.PathLike, ignore_symbols: bool) -> int:
    """The whole pipeline on one file; returns the number of functions. Raises what symbridge raises."""
    from symbridge.binary import Binary
    from symbridge.model.features import featurize

    b = Binary(path, ignore_symbols=ignore_symbols)
    bags = [featurize(f.facts) for f in b.functions]
    for f in b.functions[:50]:
        f.disassembly(limit=200)
    vecs = _model().forward(bags)
    assert vecs.shape[0] == len(b.functions)
    return len(b.functions)


def run_bytes(data: bytes, ignore_symbols: bool, workdir: str | os.PathLike | None = None) -> str:
    """Run one input; returns "ok" or the name of the SymbridgeError raised. Crashes propagate."""
    from symbridge.errors import SymbridgeError

    with tempfile.TemporaryDirectory(dir=workdir, prefix="symbridge-fuzz-") as tmp:
        path = Path(tmp) / "input.elf"
        path.write_bytes(data)
        try:
            analyse(path, ignore_symbols)
        except SymbridgeError as exc:
            msg = str(exc)
            assert "\n" not in msg.strip(), f"multi-line error message: {msg!r}"
            assert str(path) in msg, f"error message does not name the file: {msg!r}"
            return type(exc).__name__
    return "ok"


def timed(data: bytes, ignore_symbols: bool) -> tuple[str, float]:
    t0 = time.monotonic()
    result = run_bytes(data, ignore_symbols)
    return result, time.monotonic() - t0


def seeds() -> list[Path]:
    return sorted(p for p in CORPUS_DIR.iterdir() if p.is_file())


# ---------------------------------------------------------------------------------------------- ELF structure
# Offsets of the fields a structure-aware mutation picks from (ELF64, little-endian).

EHDR_FIELDS = {  # name: (offset, struct format)
    "e_type": (16, "<H"), "e_machine": (18, "<H"), "e_entry": (24, "<Q"), "e_phoff": (32, "<Q"),
    "e_shoff": (40, "<Q"), "e_phentsize": (54, "<H"), "e_phnum": (56, "<H"), "e_shentsize": (58, "<H"),
    "e_shnum": (60, "<H"), "e_shstrndx": (62, "<H"),
}
SHDR_FIELDS = {"sh_name": (0, "<I"), "sh_type": (4, "<I"), "sh_flags": (8, "<Q"), "sh_addr": (16, "<Q"),
               "sh_offset": (24, "<Q"), "sh_size": (32, "<Q"), "sh_link": (40, "<I"), "sh_info": (44, "<I"),
               "sh_addralign": (48, "<Q"), "sh_entsize": (56, "<Q")}
PHDR_FIELDS = {"p_type": (0, "<I"), "p_flags": (4, "<I"), "p_offset": (8, "<Q"), "p_vaddr": (16, "<Q"),
               "p_paddr": (24, "<Q"), "p_filesz": (32, "<Q"), "p_memsz": (40, "<Q"), "p_align": (48, "<Q")}
SYM_FIELDS = {"st_name": (0, "<I"), "st_info": (4, "<B"), "st_other": (5, "<B"), "st_shndx": (6, "<H"),
              "st_value": (8, "<Q"), "st_size": (16, "<Q")}
RELA_FIELDS = {"r_offset": (0, "<Q"), "r_info": (8, "<Q"), "r_addend": (16, "<q")}
DYN_FIELDS = {"d_tag": (0, "<q"), "d_val": (8, "<Q")}

INTERESTING = [0, 1, 2, 7, 8, 15, 16, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF]


def _fits(fmt: str, value: int) -> int:
    bits = struct.calcsize(fmt) * 8
    value &= (1 << bits) - 1
    if fmt[-1].islower() and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


class ElfLayout:
    """Where the tables of a (well-formed enough) ELF64 file are, to aim mutations at their fields."""

    def __init__(self, data: bytes):
        self.regions: list[tuple[str, int, int, dict]] = []  # (kind, offset, entsize, fields)
        self.blobs: list[tuple[str, int, int]] = []  # (section name, offset, size) of raw section bytes
        if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2:
            return
        self.regions.append(("ehdr", 0, 0, EHDR_FIELDS))
        phoff, shoff = struct.unpack_from("<QQ", data, 32)
        phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHH", data, 56)
        for i in range(min(phnum, 64)):
            off = phoff + 56 * i
            if off + 56 <= len(data):
                self.regions.append(("phdr", off, 0, PHDR_FIELDS))
        shdrs = []
        for i in range(min(shnum, 256)):
            off = shoff + 64 * i
            if off + 64 > len(data):
                break
            self.regions.append(("shdr", off, 0, SHDR_FIELDS))
            shdrs.append(struct.unpack_from("<IIQQQQIIQQ", data, off))
        names = b""
        if shstrndx < len(shdrs):
            s = shdrs[shstrndx]
            names = data[s[4]: s[4] + s[5]]
        for sh_name, sh_type, _f, _a, off, size, _l, _i, _al, _es in shdrs:
            end = names.find(b"\0", sh_name)
            name = names[sh_name:end].decode("latin-1") if 0 <= sh_name < len(names) and end >= 0 else "?"
            if sh_type == 8 or off + size > len(data) or size == 0:  # NOBITS or out of the file
                continue
            self.blobs.append((name, off, size))
            table = {2: SYM_FIELDS, 11: SYM_FIELDS, 4: RELA_FIELDS, 6: DYN_FIELDS}.get(sh_type)
            step = {2: 24, 11: 24, 4: 24, 6: 16}.get(sh_type)
            if table and step:
                for k in range(min(size // step, 512)):
                    self.regions.append((name, off + k * step, step, table))

    def blob(self, name: str) -> tuple[int, int] | None:
        for n, off, size in self.blobs:
            if n == name:
                return off, size
        return None


def set_field(data: bytearray, offset: int, fmt: str, value: int) -> None:
    if offset + struct.calcsize(fmt) <= len(data):
        struct.pack_into(fmt, data, offset, _fits(fmt, value))


def get_field(data: bytes, offset: int, fmt: str) -> int:
    return struct.unpack_from(fmt, data, offset)[0] if offset + struct.calcsize(fmt) <= len(data) else 0


# ---------------------------------------------------------------------------------------------- mutations
# A mutation is a tuple of small ints (kind, a, b, c), read modulo whatever it indexes, so that Hypothesis can
# draw them and shrink them and the atheris target can make them from a random source.

BLOB_NAMES = (".eh_frame", ".text", ".rela.dyn", ".rela.plt", ".dynamic", ".symtab", ".dynsym", ".strtab",
              ".dynstr", ".init_array", ".plt", ".plt.sec", ".debug_info", ".debug_abbrev", ".note.gnu.build-id",
              ".gnu_debuglink", ".eh_frame_hdr", ".rodata", ".shstrtab", ".got")

# Code that jumps into itself, calls itself, loops, or looks like a switch through a bogus table.
CODE_PATTERNS = (
    bytes.fromhex("ebfe"),  # jmp $
    bytes.fromhex("e8fbffffff"),  # call $
    bytes.fromhex("e9fbffffff"),  # jmp $ (rel32)
    bytes.fromhex("74fe75fc"),  # je $; jne $-2
    bytes.fromhex("ff2425") + b"\x00\x00\x00\x00",  # jmp [table*1] (absolute)
    bytes.fromhex("83ff0f7708488d05f9ffffff48630c"),  # cmp edi,15; ja; lea rax,[rip-7]; movsxd ...
    bytes.fromhex("4883fe7f488d0500000000ff24f0"),  # cmp; lea rax,[rip]; jmp [rax+rsi*8]
    bytes.fromhex("ff24c5") + b"\x00\x10\x40\x00",  # jmp [rax*8+0x401000]
    bytes.fromhex("e8") + b"\x00\x00\x00\x80",  # call far away
    bytes.fromhex("0f0b"),  # ud2
    bytes.fromhex("c3"),  # ret
    bytes.fromhex("f4"),  # hlt
    b"\x66" * 14 + b"\x90",  # over-long prefixes
    b"\xcc" * 16,  # int3 padding
    b"\x00" * 32,  # add [rax],al padding
)

N_KINDS = 8


def apply_ops(seed: bytes, ops: list[tuple[int, int, int, int]]) -> bytes:
    """Apply mutations to a seed ELF, re-reading its layout after each (so later ones see earlier ones)."""
    data = bytearray(seed)
    for kind, a, b, c in ops:
        if not data:
            break
        kind %= N_KINDS
        lay = ElfLayout(bytes(data))
        if kind in (0, 1) and lay.regions:  # set a table field to an interesting value / add a delta
            _name, off, _step, fields = lay.regions[a % len(lay.regions)]
            fname = list(fields)[b % len(fields)]
            foff, fmt = fields[fname]
            if kind == 0:
                value = INTERESTING[c % len(INTERESTING)] if c < 1 << 16 else c
            else:
                value = get_field(bytes(data), off + foff, fmt) + (c % 4097) - 2048
            set_field(data, off + foff, fmt, value)
        elif kind == 2:  # overwrite bytes inside a named section (eh_frame, relocations, symbols, code, ...)
            blob = lay.blob(BLOB_NAMES[a % len(BLOB_NAMES)])
            if blob:
                off, size = blob
                p = off + b % size
                data[p: p + 4] = struct.pack("<I", c & 0xFFFFFFFF)[: max(0, min(4, off + size - p))]
        elif kind == 3:  # plant code that jumps or calls into itself, or a bogus switch
            blob = lay.blob(".text") or (0, len(data))
            off, size = blob
            pat = CODE_PATTERNS[a % len(CODE_PATTERNS)]
            p = off + b % max(1, size - len(pat))
            data[p: p + len(pat)] = pat[: max(0, len(data) - p)]
        elif kind == 4:  # truncate
            del data[max(1, a % (len(data) + 1)):]
        elif kind == 5:  # copy a chunk over another (overlapping tables)
            n = 1 + c % 512
            src, dst = a % len(data), b % len(data)
            chunk = data[src: src + n]
            data[dst: dst + len(chunk)] = chunk
        elif kind == 6:  # a random byte anywhere, biased to the first 4 KB where the tables usually are
            p = a % (len(data) if b & 1 else min(len(data), 4096))
            data[p] = c & 0xFF
        elif kind == 7:  # point a section at another section's bytes / give it a huge size
            shdrs = [r for r in lay.regions if r[0] == "shdr"]
            if shdrs:
                off = shdrs[a % len(shdrs)][1]
                other = shdrs[b % len(shdrs)][1]
                if c & 1:
                    for fname in ("sh_offset", "sh_size"):
                        foff, fmt = SHDR_FIELDS[fname]
                        set_field(data, off + foff, fmt, get_field(bytes(data), other + foff, fmt))
                else:
                    foff, fmt = SHDR_FIELDS["sh_size"]
                    set_field(data, off + foff, fmt, get_field(bytes(data), off + foff, fmt) * (2 + c % 1000))
    return bytes(data)


def random_ops(rng, n: int) -> list[tuple[int, int, int, int]]:
    """n random mutations from a ``random.Random``."""
    out = []
    for _ in range(n):
        kind = rng.randrange(N_KINDS)
        c = rng.choice((rng.randrange(1 << 16), rng.getrandbits(64)))
        out.append((kind, rng.getrandbits(32), rng.getrandbits(32), c))
    return out
