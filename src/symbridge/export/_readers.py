"""``read_names``: names and addresses back from any file ``export_result`` writes, Ghidra
``name address`` lines or ``nm`` output; the format is detected from the content."""

from __future__ import annotations

import ast
import csv
import io
import re
from pathlib import Path

from symbridge.errors import InputFileError, UsageError

_MAX_BYTES = 256 << 20
_R2_AFN = re.compile(r"afn (\S+) 0x([0-9a-fA-F]+)")
_R2_FLAG = re.compile(r"f sym\.(\S+) \d+ @ 0x([0-9a-fA-F]+)")
_R2_OTHER = re.compile(r"af @ 0x[0-9a-fA-F]+|#.*")
_NM = re.compile(r"([0-9a-fA-F]+)\s+(?:[0-9a-fA-F]+\s+)?([A-Za-z?-])\s+(.+)")
_NM_UNDEF = re.compile(r"[A-Za-z]\s+\S+")
_NM_CODE = set("TtWwIi")
_GHIDRA = re.compile(r"(\S+)\s+(?:[\w.]+:)?(?:0[xX])?([0-9a-fA-F]+)(?:\s+[fl])?")


def read_names(path: Path) -> list[tuple[str, int]]:
    """(name, address) pairs from an IDA/Ghidra/r2 script, CSV, Ghidra symbol list or nm output."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputFileError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(raw) > _MAX_BYTES:
        raise UsageError(f"{path}: names file larger than {_MAX_BYTES >> 20} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: names file is not UTF-8 text") from None
    lines = [ln.strip() for ln in text.splitlines()]
    first = next((ln for ln in lines if ln and not ln.startswith(("#", "//"))), "")
    if "SYMBRIDGE_FUNCTIONS" in text and ("import ida_name" in text or "from ghidra" in text):
        return _python(path, text)
    if first.startswith("address,size,name"):
        return _csv(path, text)
    if first.startswith(("af ", "afn ", "f sym.")):
        return _r2(path, lines)
    nm = bool(_NM.fullmatch(first)) or not _GHIDRA.fullmatch(first) and bool(_NM_UNDEF.fullmatch(first))
    return _lines(path, lines, nm)


def _bad(path: Path, where: object, what: str = "unrecognised line") -> UsageError:
    return UsageError(f"{path}:{where}: {what}")


def _python(path: Path, text: str) -> list[tuple[str, int]]:
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise _bad(path, e.lineno, "not a valid Python script") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "SYMBRIDGE_FUNCTIONS" for t in node.targets):
            try:
                rows = ast.literal_eval(node.value)
            except ValueError:
                raise _bad(path, node.lineno, "SYMBRIDGE_FUNCTIONS is not a literal") from None
            out = []
            for row in rows if isinstance(rows, list) else [None]:
                if not (isinstance(row, tuple) and len(row) == 4 and isinstance(row[0], int)
                        and isinstance(row[2], str)):
                    raise _bad(path, node.lineno, "bad SYMBRIDGE_FUNCTIONS entry")
                out.append((row[2], row[0]))
            return out
    raise _bad(path, 1, "no SYMBRIDGE_FUNCTIONS table")


def _csv(path: Path, text: str) -> list[tuple[str, int]]:
    out = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for row in reader:
        name, addr = row.get("name"), row.get("address")
        if not name or not addr:
            raise _bad(path, reader.line_num, "row without name or address")
        out.append((name.removeprefix("'"), _int(path, reader.line_num, addr)))
    return out


def _r2(path: Path, lines: list[str]) -> list[tuple[str, int]]:
    afn, flags = [], []
    for i, ln in enumerate(lines, 1):
        if m := _R2_AFN.fullmatch(ln):
            afn.append((m[1], int(m[2], 16)))
        elif m := _R2_FLAG.fullmatch(ln):
            flags.append((m[1], int(m[2], 16)))
        elif ln and not _R2_OTHER.fullmatch(ln):
            raise _bad(path, i)
    return afn or flags


def _lines(path: Path, lines: list[str], nm: bool) -> list[tuple[str, int]]:
    out = []
    for i, ln in enumerate(lines, 1):
        if not ln or ln.startswith(("#", "//")):
            continue
        if nm:
            if m := _NM.fullmatch(ln):
                if m[2] in _NM_CODE:
                    out.append((m[3], int(m[1], 16)))
            elif not _NM_UNDEF.fullmatch(ln) and not ln.endswith(":"):
                raise _bad(path, i)
        elif m := _GHIDRA.fullmatch(ln):
            out.append((m[1], int(m[2], 16)))
        else:
            raise _bad(path, i)
    return out


def _int(path: Path, where: object, text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise _bad(path, where, f"bad address {text!r}") from None
