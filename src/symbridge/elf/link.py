"""Static archives (.a) and relocatable objects (.o) as references: linked by the system's gcc into one ELF.

An archive's code has no addresses and its calls no targets until it is linked. Every member is linked
(`--whole-archive`), undefined symbols left at 0, with no start files and no entry point, as the training
corpus links the static libraries of Debian's -dev packages. Linking reads the objects; nothing is run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import InputFileError

ARCHIVE_MAGIC = (b"!<arch>\n", b"!<thin>\n")  # thin archives name their members' files
TIMEOUT = 300
MAX_DEFSYMS = 32
_HIDDEN = re.compile(r"hidden symbol `([^'`\s]+)' isn't defined")


def linkable(data: bytes) -> bool:
    """A static archive, or a relocatable x86-64 ELF object."""
    if data[:8] in ARCHIVE_MAGIC:
        return True
    return (data[:4] == b"\x7fELF" and len(data) >= 20 and data[4] == 2 and data[5] == 1
            and int.from_bytes(data[16:18], "little") == 1 and int.from_bytes(data[18:20], "little") == 62)


def link_variants(inputs: list[Path], out: Path) -> list[list[str]]:
    """Ways to link whole archives or objects into one ELF with its .symtab, most faithful first."""
    base = ["gcc", "-nostdlib", "-fno-lto", "-o", str(out), "-Wl,--whole-archive", *map(str, inputs),
            "-Wl,--no-whole-archive", "-Wl,--unresolved-symbols=ignore-all", "-Wl,-e,0",
            "-Wl,--defsym=__dso_handle=0"]  # C++ archives refer to crtbegin's __dso_handle
    return [
        base[:3] + ["-static"] + base[3:],
        base[:3] + ["-static"] + base[3:] + ["-Wl,--allow-multiple-definition"],
        base[:3] + ["-shared"] + base[3:-1] + ["-Wl,--allow-multiple-definition"],
        base[:3] + ["-static", "-Wl,--noinhibit-exec"] + base[3:] + ["-Wl,--allow-multiple-definition"],
    ]


def linked_bytes(path: Path, data: bytes) -> bytes:
    """The ELF that linking the archive or object at path (its bytes: data) gives. InputFileError when it
    cannot be linked."""
    if shutil.which("gcc") is None:
        raise InputFileError(f"{path}: a static archive or object file is linked before it is read, and that "
                             "needs gcc (apt-get install gcc), which is not installed")
    last = ""
    src = path.resolve()  # absolute: a name starting with '-' is not taken for an option
    with tempfile.TemporaryDirectory(prefix="symbridge-link-") as tmp:
        out = Path(tmp) / "linked"
        for cmd in link_variants([src], out):
            defined: list[str] = []
            while True:
                try:
                    res = subprocess.run(cmd + [f"-Wl,--defsym={name}=0" for name in defined], capture_output=True,
                                         text=True, timeout=TIMEOUT, cwd=tmp)
                except subprocess.TimeoutExpired:
                    raise InputFileError(f"{path}: linking it took over {TIMEOUT} s") from None
                if res.returncode == 0 and out.is_file() and out.stat().st_size > 0:
                    return out.read_bytes()
                out.unlink(missing_ok=True)
                last = _complaint(res.stderr, str(src), str(path)) or f"exit status {res.returncode}"
                # a hidden symbol no member defines (libc.a's _init, _fini, _DYNAMIC, _start) stops the link
                # whatever --unresolved-symbols says: it is set to 0, like the others, and the link tried again
                hidden = _HIDDEN.search(res.stderr)
                if hidden is None or hidden.group(1) in defined or len(defined) >= MAX_DEFSYMS:
                    break
                defined.append(hidden.group(1))
    raise InputFileError(f"{path}: could not be linked: {last[:200]}")


def _complaint(stderr: str, linked: str, given: str) -> str:
    """The linker's first error line, without the linker's name, the input called by the name it was given."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("collect2")]
    first = next((ln for ln in lines if "error" in ln or "not recognized" in ln), lines[0] if lines else "")
    first = re.sub(r"^\S*\bld(?:\.\w+)?:\s*", "", first).replace(linked, given)
    return first.removeprefix(given + ":").strip()
