"""Readable names for C++ and Rust symbols, by GNU c++filt (binutils), for display only.

Names are stored and written (JSON, .symtab, scripts) as the binary spells them: disassemblers demangle
themselves. The report and the terminal show the demangled form. Without c++filt, names stay as they are.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable

# Itanium C++ (_Z), Rust legacy (_ZN...17h<hash>E) and Rust v0 (_R); names with spaces or control
# characters are left alone: c++filt reads one name a line
_MANGLED = re.compile(r"_{1,2}[ZR][!-~]*")
# the crate disambiguators of Rust v0 names (`core[667c7a611d73a360]::str::...`): they differ from build to
# build and tell the reader nothing. Legacy names keep their hash (`...::drop::h0123456789abcdef`), as `nm -C`
# shows it: it is what tells two instances of one generic function apart there.
_CRATE_HASH = re.compile(r"\[[0-9a-f]{1,16}\]")
TIMEOUT = 60


def demangle(names: Iterable[str | None]) -> dict[str, str]:
    """{mangled: readable} for the names c++filt can read (v0 Rust names without crate hashes); others are
    left out."""
    todo = sorted({n for n in names if n and _MANGLED.fullmatch(n)})
    exe = shutil.which("c++filt")
    if not todo or exe is None:
        return {}
    try:
        out = subprocess.run([exe], input="\n".join(todo) + "\n", capture_output=True, text=True,
                             timeout=TIMEOUT, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return {}
    if len(out) != len(todo):
        return {}
    found = {}
    for name, text in zip(todo, out):
        if text != name:
            found[name] = _CRATE_HASH.sub("", text) if name.lstrip("_").startswith("R") else text
    return found
