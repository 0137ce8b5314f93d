"""Script exports: each format parses, applies the right names, and read_names round-trips."""

from __future__ import annotations

import ast
import csv
import re
import sys
import types
from pathlib import Path

import pytest

from symbridge.errors import SymbridgeError, UsageError
from symbridge.export import FORMATS, _atomic, export_result, read_names
from symbridge.export.scripts import sanitize

HOSTILE = [
    "it's", 'say "hi"', "new\nline", "with space", "back\\slash", "tab\there", "semi;colon@x|y~z>w",
    '"""triple', "'''", "#hash", "=1+2", "'quoted-first", "-neg", "1digit", "naïve", "cr\rlf",
    "x" * 3000, "${IFS}`id`$(id)", "\\n", "a\x7fb",
]
ORDINARY = ["main", "foo.constprop.0", "_ZN3foo3barEv", "bar.cold", "_start"]


def make_result(names: list[str], base: int = 0x1000) -> dict:
    fns = [{"address": base + 0x10 * i, "size": 8 + i, "name": n, "confidence": 0.5 + i / 1000,
            "reference_address": 0x9000 + i, "via": ["embedding", "string"],
            "candidates": [{"name": n, "address": 0x9000 + i, "score": 0.9}]} for i, n in enumerate(names)]
    fns.append({"address": base - 0x10, "size": 4, "name": None, "confidence": 0.1,
                "reference_address": None, "via": [], "candidates": []})
    return {"reference": "ref", "target": "missing-target", "functions": fns}


def expected(result: dict, fmt: str) -> list[tuple[str, int]]:
    """Names the tool will hold: sanitised, made unique with an _<address> suffix."""
    out, used = [], set()
    for f in sorted((f for f in result["functions"] if f["name"]), key=lambda f: f["address"]):
        n = sanitize(f["name"], fmt)
        if n in used:
            n += f"_{f['address']:x}"
        used.add(n)
        out.append((n, f["address"]))
    return out


ALL = make_result(ORDINARY + HOSTILE + ["main", "it's"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(fmt, tmp_path):
    out = tmp_path / f"names.{fmt}"
    export_result(ALL, fmt, out)
    got = read_names(out)
    if fmt == "csv":
        assert got == [(f["name"], f["address"]) for f in ALL["functions"] if f["name"]]
    else:
        assert got == expected(ALL, fmt)
    assert len(got) == len(ORDINARY) + len(HOSTILE) + 2  # unnamed one left out
    assert [n for n, _ in got[:len(ORDINARY)]] == ORDINARY  # ordinary names pass unchanged


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_result(fmt, tmp_path):
    out = tmp_path / "empty"
    export_result(make_result([]), fmt, out)
    assert read_names(out) == []


def test_sanitize_examples():
    assert sanitize("a'b\nc d", "r2") == "a_b_c_d"
    assert sanitize("1digit", "r2") == "_1digit"
    assert sanitize("1digit", "ida") == "_1digit"
    assert sanitize("puts@plt", "ida") == "puts@plt"
    assert sanitize("we ird\t", "ghidra-symbols") == "we_ird_"
    assert sanitize('q"\\', "ghidra") == 'q"\\'
    assert sanitize("x\ny", "csv") == "x\ny"
    assert sanitize("#x", "ghidra-symbols") == "_x"
    with pytest.raises(UsageError):
        sanitize("x", "bogus")


def _stub(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


def test_ida_script_runs(tmp_path, monkeypatch):
    out = tmp_path / "ida.py"
    export_result(ALL, "ida", out)
    text = out.read_text()
    ast.parse(text)
    assert "import ida_name" in text and "import ida_funcs" in text
    funcs, names, comments = set(), {}, {}

    class Func:
        def __init__(self, ea):
            self.start_ea = ea

    monkeypatch.setitem(sys.modules, "ida_funcs", _stub(
        "ida_funcs", get_func=lambda ea: Func(ea) if ea in funcs else None, add_func=funcs.add,
        set_func_cmt=lambda f, c, rep: comments.__setitem__(f.start_ea, (c, rep))))
    monkeypatch.setitem(sys.modules, "ida_name", _stub(
        "ida_name", SN_NOWARN=1, SN_FORCE=2,
        set_name=lambda ea, n, fl: fl == 3 and names.__setitem__(ea, n) is None))
    monkeypatch.setitem(sys.modules, "ida_nalt", _stub("ida_nalt", get_imagebase=lambda: 0))
    monkeypatch.setitem(sys.modules, "ida_bytes", _stub("ida_bytes", set_cmt=None))
    exec(compile(text, str(out), "exec"), {"__name__": "__main__", "print": lambda *a: None})  # noqa: S102 (the script under test, with stubs)
    assert sorted((n, a) for a, n in names.items()) == sorted(expected(ALL, "ida"))
    assert all(rep and c.startswith("symbridge confidence 0.") for c, rep in comments.values())
    assert funcs == set(names)


@pytest.mark.parametrize(("elf_base", "code", "image_base", "shift"), [
    (0, 0x1000, 0x100000, 0x100000),  # PIE: Ghidra's default image base 0x100000
    (None, 0x1000, 0x100000, 0x100000),  # PIE, base guessed from low addresses
    (None, 0x401000, 0x400000, 0),  # non-PIE: Ghidra keeps the ELF's addresses
    (0x400000, 0x401000, 0x500000, 0x100000),  # rebased by the user
])
def test_ghidra_script_runs(tmp_path, monkeypatch, elf_base, code, image_base, shift):
    result = make_result(ORDINARY + HOSTILE, base=code)
    out = tmp_path / "ghidra.py"
    export_result(result, "ghidra", out, elf_base=elf_base)
    text = out.read_text()
    ast.parse(text)
    assert "SourceType.IMPORTED" in text and "createFunction" in text and "toAddr(" in text
    named = {}

    class Func:
        def __init__(self, addr):
            self.addr = addr

        def setName(self, name, source):  # Ghidra API name
            assert source == "IMPORTED"
            named[self.addr] = name

        def setRepeatableComment(self, text):
            assert text.startswith("symbridge confidence")

    program = types.SimpleNamespace(
        getImageBase=lambda: types.SimpleNamespace(getOffset=lambda: image_base),
        getMemory=lambda: types.SimpleNamespace(contains=lambda a: a is not None))
    symbol = _stub("ghidra.program.model.symbol", SourceType=types.SimpleNamespace(IMPORTED="IMPORTED"))
    for mod in ("ghidra", "ghidra.program", "ghidra.program.model"):
        monkeypatch.setitem(sys.modules, mod, _stub(mod))
    monkeypatch.setitem(sys.modules, "ghidra.program.model.symbol", symbol)
    env = {"__name__": "__main__", "currentProgram": program, "print": lambda *a: None,
           "toAddr": lambda s: int(s, 16), "getFunctionAt": lambda a: None,
           "createFunction": lambda a, n: Func(a)}
    exec(compile(text, str(out), "exec"), env)  # noqa: S102 (the script under test, with stubs)
    assert sorted((n, a - shift) for a, n in named.items()) == sorted(expected(result, "ghidra"))


def test_ghidra_symbols_lines(tmp_path):
    out = tmp_path / "syms.txt"
    export_result(ALL, "ghidra-symbols", out)
    got = []
    for line in out.read_text().splitlines():
        assert re.fullmatch(r"[\x21-\x7e]+ 0x[0-9a-f]+ f", line), line
        pieces = line.split()  # as Ghidra's ImportSymbolsScript.py reads it
        got.append((pieces[0], int(pieces[1], 16)))
    assert got == expected(ALL, "ghidra-symbols")


R2_LINE = re.compile(r"af @ 0x[0-9a-f]+|afn [A-Za-z_.][A-Za-z0-9_.]* 0x[0-9a-f]+"
                     r"|f sym\.[A-Za-z0-9_.]+ [1-9]\d* @ 0x[0-9a-f]+")


def test_r2_lines(tmp_path):
    out = tmp_path / "names.r2"
    export_result(ALL, "r2", out)
    lines = out.read_text().splitlines()
    assert len(lines) == 3 * len(expected(ALL, "r2"))
    for line in lines:
        assert R2_LINE.fullmatch(line), line


def test_csv_cells(tmp_path):
    out = tmp_path / "names.csv"
    export_result(ALL, "csv", out)
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["address", "size", "name", "confidence", "reference_address", "via"]
    assert all(len(r) == 6 for r in rows)
    assert not any(r[2][:1] in "=+-@\t\r" for r in rows[1:])  # no spreadsheet formulas
    main = rows[1]
    assert main == ["0x1000", "8", "main", "0.5", "0x9000", "embedding;string"]


def test_read_plain_ghidra_and_nm(tmp_path):
    ghidra = tmp_path / "g.txt"
    ghidra.write_text("main 0x1139 f\nhelper 1150\nlabel 0X1160 l\n\nspaced ram:0x1170 f\n")
    assert read_names(ghidra) == [("main", 0x1139), ("helper", 0x1150), ("label", 0x1160), ("spaced", 0x1170)]
    nm = tmp_path / "nm.txt"
    nm.write_text("                 U puts@GLIBC_2.2.5\n"
                  "0000000000001139 T main\n"
                  "0000000000001150 0000000000000005 t helper\n"
                  "0000000000004010 D data_sym\n"
                  "0000000000001160 W weak_fn\n")
    assert read_names(nm) == [("main", 0x1139), ("helper", 0x1150), ("weak_fn", 0x1160)]


def test_errors(tmp_path):
    out = tmp_path / "x"
    with pytest.raises(UsageError, match="format"):
        export_result(ALL, "pdf", out)
    for bad in ({"functions": "no"}, {"functions": [{"address": "0x10", "name": "a"}]},
                {"functions": [{"address": 16, "name": 5}]},
                {"functions": [{"address": 16, "name": "a", "confidence": float("nan")}]}):
        with pytest.raises(UsageError, match=str(out)):
            export_result(bad, "csv", out)
    assert not out.exists()
    garbage = tmp_path / "garbage"
    garbage.write_text("this is not a names file at all\n")
    with pytest.raises(UsageError, match="garbage"):
        read_names(garbage)
    with pytest.raises(SymbridgeError):
        read_names(tmp_path / "missing")


def test_atomic_failure_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(_atomic.os, "replace", boom)
    with pytest.raises(OSError):
        export_result(ALL, "ida", tmp_path / "out.py")
    assert list(tmp_path.iterdir()) == []


def test_output_path_named_in_errors(tmp_path):
    with pytest.raises(UsageError, match="nodir"):
        export_result(ALL, "csv", tmp_path / "nodir" / "out.csv")


def test_target_base_read_from_elf(tmp_path):
    result = dict(ALL, target=str(Path(sys.executable).resolve()))
    out = tmp_path / "ida.py"
    export_result(result, "ida", out)
    assert re.search(r"^ELF_BASE = 0x[0-9a-f]+$", out.read_text(), re.MULTILINE)
