"""Ground truth from symbols and the scores benchmarks and tests share."""

from __future__ import annotations

from .elf.image import ElfImage


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
