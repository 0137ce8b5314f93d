"""ElfImage's reading of data: the strings that a descriptor's pointers lead to, relocated or not."""

import subprocess

import pytest

from symbridge.binary import Binary
from tests.fixtures.build import build


def symbol_address(path, name):
    out = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True).stdout
    return next(int(line.split()[0], 16) for line in out.splitlines() if line.endswith(" " + name))


@pytest.mark.parametrize("kind", ["shared", "pie", "nopie"])
def test_strings_behind_a_descriptor_follow_its_name_pointer(kind):
    """The name pointer of a struct in writable data is a relocation in a position-independent build and the
    address itself in a fixed-address one; both read as the string it points to."""
    path = build("twins.c", opt="-O2", kind=kind)
    img = Binary(path).image
    assert img.strings_behind(symbol_address(path, "header_item"), window=24) == ("HEADER",)
    assert img.strings_behind(symbol_address(path, "trailer_item"), window=24) == ("TRAILER",)
    assert img.strings_behind(symbol_address(path, "header_item"), window=8) == ()  # type only: no pointer
