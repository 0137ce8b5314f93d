"""Function ranges from ``.eh_frame`` FDE headers, and which of them begin inside a frame: of each FDE's CFI program
only the part before its first instruction is read."""

from __future__ import annotations

import struct

from .image import ElfImage

MAX_RECORDS = 1_000_000


def _uleb(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("bad LEB128")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, pos


def _sleb(buf: bytes, pos: int) -> tuple[int, int]:
    start = pos
    value, pos = _uleb(buf, pos)
    bits = 7 * (pos - start)
    if value & (1 << (bits - 1)):
        value -= 1 << bits
    return value, pos


_FIXED = {0x00: "<Q", 0x02: "<H", 0x03: "<I", 0x04: "<Q", 0x0A: "<h", 0x0B: "<i", 0x0C: "<q"}


def _read_encoded(buf: bytes, pos: int, enc: int, field_addr: int, relative: bool = True) -> tuple[int, int]:
    fmt = enc & 0x0F
    if fmt == 0x01:
        value, pos = _uleb(buf, pos)
    elif fmt == 0x09:
        value, pos = _sleb(buf, pos)
    elif fmt in _FIXED:
        f = _FIXED[fmt]
        value = struct.unpack_from(f, buf, pos)[0]
        pos += struct.calcsize(f)
    else:
        raise ValueError(f"unsupported pointer encoding {enc:#x}")
    if relative and (enc & 0x70) == 0x10:  # pcrel
        value += field_addr
    return value & 0xFFFFFFFFFFFFFFFF, pos


def _parse_cie(buf: bytes, pos: int, end: int) -> tuple[int, bool, bool]:
    """(FDE pointer encoding, whether FDEs carry augmentation data, whether they describe signal frames) of the
    CIE whose body starts at pos."""
    version = buf[pos]
    pos += 1
    nul = buf.index(b"\0", pos, end)
    aug = buf[pos:nul].decode("ascii", "replace")
    pos = nul + 1
    if "eh" in aug:
        pos += 8
    _, pos = _uleb(buf, pos)
    _, pos = _sleb(buf, pos)
    if version == 1:
        pos += 1
    else:
        _, pos = _uleb(buf, pos)
    enc = 0x00
    if aug.startswith("z"):
        _, pos = _uleb(buf, pos)
        for ch in aug[1:]:
            if ch == "R":
                enc = buf[pos]
                pos += 1
            elif ch == "P":
                penc = buf[pos]
                _, pos = _read_encoded(buf, pos + 1, penc, 0)
            elif ch == "L":
                pos += 1
            elif ch in "SB":
                continue
            else:
                break
    return enc, aug.startswith("z"), "S" in aug


# DW_CFA opcodes read at an FDE's first instruction
_ADVANCE = (0x01, 0x02, 0x03, 0x04)  # set_loc, advance_loc1/2/4 (and 0x40|delta): the first instruction is passed
_DEF_CFA, _DEF_CFA_OFFSET, _GNU_ARGS_SIZE = 0x0C, 0x0E, 0x2E
_SAVED = (0x05, 0x11)  # offset_extended, offset_extended_sf (and 0x80|reg: offset)
RETURN_ADDRESS = 16  # x86-64 DWARF register of the return address
RSP = 7


def _begins_mid_frame(buf: bytes, pos: int, end: int) -> bool:
    """Whether an FDE's CFI program (pos..end) says, before its first instruction runs, that the stack holds more
    than the return address: a CFA other than rsp + 8, or a register already saved. Code entered by a call
    never does; a part that gcc split off a function (``foo.cold``), entered by a jump from inside foo's frame,
    does. Anything unusual (expressions, remember_state) reads as False."""
    while pos < end:
        op = buf[pos]
        pos += 1
        high = op & 0xC0
        if high == 0x40 or op in _ADVANCE:
            return False
        if high == 0x80:  # offset: a register saved (where the return address is, every entry says alike)
            if (op & 0x3F) != RETURN_ADDRESS:
                return True
            _, pos = _uleb(buf, pos)
            continue
        if high == 0xC0 or op == 0x00:  # restore, nop
            continue
        if op == _DEF_CFA_OFFSET:
            return _uleb(buf, pos)[0] != 8
        if op == _DEF_CFA:
            reg, pos = _uleb(buf, pos)
            return reg != RSP or _uleb(buf, pos)[0] != 8
        if op in _SAVED:
            reg, pos = _uleb(buf, pos)
            if reg != RETURN_ADDRESS:
                return True
            _, pos = _uleb(buf, pos) if op == 0x05 else _sleb(buf, pos)
            continue
        if op == _GNU_ARGS_SIZE:
            _, pos = _uleb(buf, pos)
            continue
        return False
    return False


def fde_ranges(img: ElfImage) -> list[tuple[int, int]]:
    """(start, size) of every FDE in ``.eh_frame``; malformed records end the scan quietly."""
    return [(start, size) for start, size, _ in fde_entries(img)]


def fde_entries(img: ElfImage) -> list[tuple[int, int, bool]]:
    """(start, size, begins mid-frame: see _begins_mid_frame) of every FDE in ``.eh_frame``; malformed records
    end the scan quietly."""
    sec = img.section(".eh_frame")
    if sec is None or sec.type == "SHT_NOBITS" or sec.size == 0:
        return []
    buf = img.data[sec.offset: sec.offset + sec.size]
    out: list[tuple[int, int, bool]] = []
    cies: dict[int, tuple[int, bool, bool]] = {}
    pos = 0
    try:
        for _ in range(MAX_RECORDS):
            if pos + 4 > len(buf):
                break
            length = struct.unpack_from("<I", buf, pos)[0]
            if length == 0:
                break
            hdr = 4
            if length == 0xFFFFFFFF:
                length = struct.unpack_from("<Q", buf, pos + 4)[0]
                hdr = 12
            body = pos + hdr
            end = body + length
            if end > len(buf) or length < 4:
                break
            cie_id = struct.unpack_from("<I", buf, body)[0]
            if cie_id == 0:
                cies[pos] = _parse_cie(buf, body + 4, end)
            else:
                cie_pos = body - cie_id
                if cie_pos not in cies:
                    if 0 <= cie_pos < len(buf):
                        cie_len = struct.unpack_from("<I", buf, cie_pos)[0]
                        cies[cie_pos] = _parse_cie(buf, cie_pos + 8, min(len(buf), cie_pos + 4 + cie_len))
                    else:
                        pos = end
                        continue
                enc, has_data, signal = cies[cie_pos]
                field = body + 4
                start, p2 = _read_encoded(buf, field, enc, sec.addr + field)
                size, p3 = _read_encoded(buf, p2, enc & 0x0F, 0, relative=False)
                if size and img.is_code(start):
                    mid = False
                    if not signal:
                        try:
                            if has_data:
                                skip, p3 = _uleb(buf, p3)
                                p3 += skip
                            mid = _begins_mid_frame(buf, p3, end)
                        except (ValueError, IndexError):  # this FDE's program only: its range stands
                            mid = False
                    out.append((start, size, mid))
            pos = end
    except (ValueError, struct.error, IndexError):
        pass
    return out
