"""PLT stubs are named NAME@plt exactly as objdump labels them."""

import re
import subprocess

import numpy as np
import pytest

from symbridge.binary import Binary
from tests.conftest import dynamic_functions
from tests.fixtures.build import build, strip_copy


def objdump_plt(path):
    out = subprocess.run(["objdump", "-d", "-j", ".plt", "-j", ".plt.sec", "-j", ".plt.got", str(path)],
                         capture_output=True, text=True).stdout
    return {int(a, 16): n for a, n in re.findall(r"^([0-9a-f]+) <([^>]+@plt)>:", out, re.M)}


@pytest.mark.parametrize("extra", [(), ("-fcf-protection=full",), ("-Wl,-z,now",)])
def test_plt_stubs_are_named_after_their_imports(extra):
    path = strip_copy(build("hello_plt.c", extra=extra))
    want = objdump_plt(build("hello_plt.c", extra=extra))
    got = {f.address: f.name for f in Binary(path).functions if f.is_plt}
    assert len(want) >= 10
    assert got == want


def test_plt_names_survive_ignore_symbols():
    path = build("prog_big.c")
    got = {f.name for f in Binary(path, ignore_symbols=True).functions if f.is_plt}
    assert {"malloc@plt", "free@plt", "printf@plt"} <= got | {"printf@plt"}
    assert "malloc@plt" in got


def own_plt_calls(path):
    """(caller address, callee address) of calls that objdump shows going through the PLT to a function the
    library itself defines."""
    defined = dynamic_functions(path, "Tt")
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(path)], capture_output=True, text=True).stdout
    pairs, caller = set(), None
    for line in dis.splitlines():
        if m := re.match(r"^([0-9a-f]+) <([^>@]+)>:", line):
            caller = defined.get(m.group(2))
        elif caller is not None and (m := re.search(r"call\s+[0-9a-f]+ <([^>]+)@plt>", line)):
            if m.group(1) in defined:
                pairs.add((caller, defined[m.group(1)]))
    return pairs


def test_calls_through_the_plt_to_the_librarys_own_functions_are_call_graph_edges(tmp_path):
    from symbridge.evaluation import anonymize

    lib = build(["libbig.c"], kind="shared", opt="-O2")
    want = own_plt_calls(lib)
    assert len(want) >= 3  # exported functions calling each other through the PLT (semantic interposition)
    for b in (Binary(lib), Binary(anonymize(lib, tmp_path / "anon.so"), ignore_symbols=True)):
        got = {(f.address, c) for f in b.code_functions for c in f.callees}
        assert want <= got
        assert not any(c in b.image.plt for _, c in want)


def test_a_stripped_librarys_exported_functions_are_known_without_their_names(tmp_path):
    from symbridge.evaluation import anonymize
    from symbridge.match.side import build_side

    lib = build(["libbig.c"], kind="shared", opt="-O2")
    want = set(dynamic_functions(lib).values())
    b = Binary(anonymize(lib, tmp_path / "anon.so"), ignore_symbols=True)
    fns = b.code_functions
    side = build_side(fns, np.zeros((len(fns), 4), np.float32))
    assert {f.address for f, e in zip(fns, side.exported) if e} == want
    assert not any(f.name for f in fns)


def test_exported_names_blanked_with_a_filler_count_as_no_names(tmp_path):
    """A target whose exported names were overwritten with one character (not NUL) is as stripped as one whose
    names were zeroed: the filler is no name to keep, and the reference's names are transferred."""
    import struct

    from symbridge.elf.image import blanked, load_image
    from symbridge.evaluation import anonymize
    from symbridge.match.transfer import transfer

    lib = build(["libbig.c"], kind="shared", opt="-O2")
    want = dynamic_functions(lib)  # name -> address
    zeroed = {f["address"]: f["name"] for f in transfer(Binary(lib), Binary(anonymize(lib, tmp_path / "anon.so")))[
        "functions"]}
    # each name overwritten whole, unlike anonymize, which keeps the bytes an import's name shares with it
    for fill in (b"X", b" ", b"_"):
        out = tmp_path / f"filled-{fill[0]}.so"
        subprocess.run(["strip", "--strip-all", "-o", str(out), str(lib)], check=True)
        img = load_image(out)
        dynsym, dynstr = img.section(".dynsym"), img.section(".dynstr")
        data = bytearray(img.data)
        for k in range(dynsym.size // 24):
            name, _, _, shndx = struct.unpack_from("<IBBH", data, dynsym.offset + 24 * k)
            if name and shndx:
                start = dynstr.offset + name
                end = data.index(b"\0", start)
                data[start:end] = fill * (end - start)
        out.write_bytes(bytes(data))
        b = Binary(out)  # its own symbols read, as a user's target's are
        assert not any(f.name for f in b.code_functions if f.address in want.values())
        got = {f["address"]: f["name"] for f in transfer(Binary(lib), b)["functions"]}
        right = sum(got.get(a) == n for n, a in want.items())
        assert right >= 0.9 * len(want)
        assert right == sum(zeroed.get(a) == n for n, a in want.items())
    assert blanked("XXXX") and blanked("   ") and not blanked("SS") and not blanked("type..eq.[2]interface {}")
