"""Which .eh_frame entries begin inside a frame: read from the CFI before an entry's first instruction."""

import pytest

from symbridge.elf.ehframe import _begins_mid_frame


@pytest.mark.parametrize("program, mid", [
    (b"", False),  # a leaf: the CIE's rsp + 8 holds
    (b"\x41\x0e\x10\x86\x02", False),  # push rbp after 1 byte: the frame grows only after the first instruction
    (b"\x0e\x10", True),  # CFA rsp + 16 at the first instruction: something was pushed before it was entered
    (b"\x0e\x08", False),
    (b"\x00\x0e\x30\x83\x03", True),  # nop, then CFA rsp + 48
    (b"\x83\x03", True),  # rbx already saved
    (b"\x90\x01", False),  # only the return address, where every call leaves it
    (b"\x90\x01\x0e\x10", True),  # the return address, then CFA rsp + 16
    (b"\x0c\x07\x08", False),  # def_cfa rsp + 8
    (b"\x0c\x06\x10", True),  # def_cfa rbp + 16: inside a frame-pointer frame
    (b"\x2e\x00\x0e\x20", True),  # GNU_args_size 0, then CFA rsp + 32
    (b"\x0f\x02\x77\x08", False),  # an expression: left alone
])
def test_cfi_before_the_first_instruction_says_whether_an_entry_begins_inside_a_frame(program, mid):
    assert _begins_mid_frame(program, 0, len(program)) is mid
