"""Packed binaries: code kept compressed or encrypted in the file and unpacked by a stub when the program runs
(UPX and its kin, common in malware). symbridge never runs what it reads, so in such a file it finds a few
functions of the stub and nothing of the program: it says why instead of naming nothing without a word."""

from __future__ import annotations

import numpy as np

from .image import PF_X

UPX_MARK = b"UPX!"  # UPX's header (l_info) follows the program headers; its trailer ends the file
MARK_WINDOW = 4096
MIN_CODE_BYTES = 4096  # below that, entropy says little
MAX_SAMPLE = 16 << 20
# bits a byte: compressed or encrypted data has nearly 8; machine code far less (the executable segments of
# this machine's programs and libraries, 227 of more than 4 KB: 5.5 to 6.64; UPX's packed /bin/ls: 7.88)
PACKED_ENTROPY = 7.2


def entropy(data: bytes) -> float:
    """Shannon entropy of the bytes, in bits a byte (0 to 8)."""
    if not data:
        return 0.0
    p = np.bincount(np.frombuffer(data, np.uint8), minlength=256) / len(data)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def packing(img) -> str | None:
    """Why the ELF image looks packed, as a phrase for a warning, or None: UPX's mark near the start of the file,
    or executable bytes whose entropy only compressed or encrypted data reaches (any packer)."""
    if UPX_MARK in img.data[:MARK_WINDOW]:
        return "packed with UPX (`upx -d -o COPY FILE` unpacks a copy)"
    # the executable sections where there are any (a segment can hold read-only data too, in the layout linkers
    # used before 2018), else the executable segments (a packer's file often has no section headers)
    parts = [(s.offset, s.size) for s in img.sections if s.executable and s.type != "SHT_NOBITS"] or \
        [(s.offset, s.filesz) for s in img.segments if s.flags & PF_X]
    code = bytearray()
    for offset, size in parts:
        if len(code) < MAX_SAMPLE:
            code += img.data[offset:offset + min(size, MAX_SAMPLE - len(code))]
    if len(code) >= MIN_CODE_BYTES and (bits := entropy(bytes(code))) >= PACKED_ENTROPY:
        return (f"its code looks compressed or encrypted ({bits:.1f} bits of entropy a byte, where machine code "
                "has about 6): packed")
    return None
