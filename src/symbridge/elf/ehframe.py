"""Function ranges from ``.eh_frame`` FDE headers (only the headers; CFI programs are skipped)."""

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


def _parse_cie(buf: bytes, pos: int, end: int) -> int:
    """Returns the FDE pointer encoding of the CIE whose body starts at pos."""
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
    return enc


def fde_ranges(img: ElfImage) -> list[tuple[int, int]]:
    """(start, size) of every FDE in ``.eh_frame``; malformed records end the scan quietly."""
    sec = img.section(".eh_frame")
    if sec is None or sec.type == "SHT_NOBITS" or sec.size == 0:
        return []
    buf = img.data[sec.offset: sec.offset + sec.size]
    out: list[tuple[int, int]] = []
    cies: dict[int, int] = {}
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
                enc = cies[cie_pos]
                field = body + 4
                start, p2 = _read_encoded(buf, field, enc, sec.addr + field)
                size, _ = _read_encoded(buf, p2, enc & 0x0F, 0, relative=False)
                if size and img.is_code(start):
                    out.append((start, size))
            pos = end
    except (ValueError, struct.error, IndexError):
        pass
    return out
