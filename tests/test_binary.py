"""Binary: the parts a compiler split off functions (cold parts) are found with their owners."""

from symbridge.binary import Binary, cold_parts
from tests.fixtures.build import cold_build


def test_cold_parts_are_found_with_their_owners():
    b = Binary(cold_build(opt="-O2"))
    fs = b.code_functions
    found = {(fs[c].name, fs[x].name) for c, x in cold_parts(fs)}
    assert ("checked_update.cold", "checked_update") in found
    assert all(part == owner + ".cold" for part, owner in found)


def test_functions_reached_from_one_place_are_no_cold_parts():
    """complain is called from checked_update.cold only and wrap_forward's address is taken by pick_forward
    only; neither returns (both end in a jump), but neither is entered by a branch that a cold part takes."""
    b = Binary(cold_build(opt="-O2"))
    fs = b.code_functions
    parts = {fs[c].name for c, _ in cold_parts(fs)}
    assert "checked_update.cold" in parts
    assert not parts & {"complain", "wrap_forward", "rounds_loop"}
