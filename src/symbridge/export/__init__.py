"""Export stage: names written into an ELF ``.symtab`` or as scripts for IDA, Ghidra, radare2, CSV."""

from symbridge.export.elf_symtab import write_named_elf
from symbridge.export.scripts import FORMATS, export_result, read_names

__all__ = ["FORMATS", "export_result", "read_names", "write_named_elf"]
