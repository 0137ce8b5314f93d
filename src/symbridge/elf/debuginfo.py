"""Names from a separate debug file (Debian's -dbgsym layout) and from DWARF subprograms."""

from __future__ import annotations

import io
import lzma
import struct
import warnings
from pathlib import Path

from elftools.common.exceptions import DWARFError, ELFCompressionError, ELFError
from elftools.construct.core import ConstructError
from elftools.elf.elffile import ELFFile

from ..errors import InputWarning, SymbridgeError
from .image import ElfImage, parse_image

DEBUG_ROOT = Path("/usr/lib/debug")
MAX_DIES = 5_000_000
MAX_MINI_DEBUGINFO = 64 << 20  # bytes a .gnu_debugdata section may inflate to (a bound against bombs)


def find_debug_file(img: ElfImage, root: Path = DEBUG_ROOT) -> Path | None:
    """The separate debug file of img: by build-id, then by .gnu_debuglink, as gdb looks for them."""
    candidates: list[Path] = []
    # Both names come from the file: use them only when they look like what gdb would look up.
    if img.build_id and 2 < len(img.build_id) <= 128 and all(c in "0123456789abcdef" for c in img.build_id):
        candidates.append(root / ".build-id" / img.build_id[:2] / f"{img.build_id[2:]}.debug")
    if img.debuglink and "/" not in img.debuglink and len(img.debuglink) <= 255 and img.debuglink not in (".", ".."):
        here = img.path.resolve().parent
        candidates += [here / img.debuglink, here / ".debug" / img.debuglink,
                       root / here.relative_to("/") / img.debuglink]
    for c in candidates:
        try:
            if c.is_file() and c.resolve() != img.path.resolve():
                return c
        except (OSError, ValueError):  # a name the file system refuses (too long, NUL, ...)
            continue
    return None


def mini_debuginfo(img: ElfImage) -> ElfImage | None:
    """The ELF file in img's `.gnu_debugdata` section (MiniDebugInfo, as Fedora and its kin ship binaries: an
    xz-compressed `.symtab` of the functions `.dynsym` leaves out, which gdb reads), or None where there is
    none. One that cannot be read is left out with a warning: the binary itself is fine."""
    sec = img.section(".gnu_debugdata")
    if sec is None or sec.type == "SHT_NOBITS" or not sec.size:
        return None
    label = Path(f"{img.path}[.gnu_debugdata]")
    try:
        dec = lzma.LZMADecompressor()
        data = dec.decompress(img.data[sec.offset:sec.offset + sec.size], max_length=MAX_MINI_DEBUGINFO)
        if not dec.eof:
            raise lzma.LZMAError(f"inflates past {MAX_MINI_DEBUGINFO >> 20} MiB" if not dec.needs_input
                                 else "truncated")
        return parse_image(label, data, require_code=False)
    except (lzma.LZMAError, SymbridgeError) as exc:
        reason = str(exc).removeprefix(f"{label}: ")
        warnings.warn(f"{img.path}: its .gnu_debugdata (MiniDebugInfo) cannot be read ({reason}); its names are "
                      "left out", InputWarning, stacklevel=2)
        return None


def dwarf_functions(path: Path, data: bytes | None = None) -> dict[int, str]:
    """address -> name of every DW_TAG_subprogram with a low_pc (empty when there is no DWARF)."""
    out: dict[int, str] = {}
    try:
        elf = ELFFile(io.BytesIO(data if data is not None else path.read_bytes()))
        if not elf.has_dwarf_info():
            return out
        dwarf = elf.get_dwarf_info()
        seen = 0
        for cu in dwarf.iter_CUs():
            for die in cu.iter_DIEs():
                seen += 1
                if seen > MAX_DIES:
                    return out
                if die.tag != "DW_TAG_subprogram":
                    continue
                low = die.attributes.get("DW_AT_low_pc")
                name = die.attributes.get("DW_AT_linkage_name") or die.attributes.get("DW_AT_name")
                if low is None or name is None or not isinstance(low.value, int) or not low.value:
                    continue
                val = name.value
                out.setdefault(low.value, val.decode("utf-8", "replace") if isinstance(val, bytes) else str(val))
    except ELFCompressionError as exc:  # zstd (ELFCOMPRESS_ZSTD), which pyelftools 0.33 does not inflate
        warnings.warn(f"{path}: its DWARF is compressed in a way symbridge cannot read ({exc}); its names are left "
                      "out (objcopy --decompress-debug-sections makes a copy it reads)", InputWarning, stacklevel=2)
    except (ELFError, DWARFError, ConstructError, KeyError, ValueError, IndexError, AttributeError, TypeError,
            UnicodeError, AssertionError, RecursionError, OverflowError, struct.error):
        return out
    return out
