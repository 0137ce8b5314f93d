"""Binary: names among aliases, and the parts a compiler split off functions (cold parts) found with their owners."""

import subprocess

from symbridge.binary import Binary, cold_parts, name_rank, part_name
from tests.fixtures.build import build, cold_build


def nm_names(path) -> dict[str, int]:
    out = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True).stdout
    return {p[2]: int(p[0], 16) for p in (line.split() for line in out.splitlines()) if len(p) == 3}


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


def test_a_function_with_aliases_is_named_by_its_public_name_and_its_cold_part_keeps_its_own():
    """glibc-style aliases: the weak exported name wins over the global `_IO_` one and the hidden `__GI_` one
    (a static copy of the code, the target, knows the public names and no `__GI_`); the cold part gcc split off
    keeps the name gcc gave it after the name the function was defined under, as every build of it does."""
    lib = build("aliases.c", opt="-O2", kind="shared")
    syms = nm_names(lib)
    addr = syms["_IO_sum_bytes"]
    assert syms["sum_bytes"] == addr == syms["__GI__IO_sum_bytes"]
    b = Binary(lib)
    assert b.function_at(addr).name == "sum_bytes"
    cold = syms.get("_IO_sum_bytes.cold")
    if cold is not None:  # the compiler split a cold part off
        assert b.function_at(cold).name == "_IO_sum_bytes.cold"
    assert not any(f.name and f.name.startswith("__GI_") for f in b.functions if f.name != "__GI_picked")


def test_a_function_known_by_its_internal_alias_alone_takes_the_name_it_stands_for():
    lib = build("aliases.c", opt="-O2", kind="shared")
    syms = nm_names(lib)
    b = Binary(lib)
    assert b.function_at(syms["__GI_hidden_scale"]).name == "hidden_scale"
    assert b.function_at(syms["__GI_picked"]).name == "__GI_picked"  # `picked` is another function
    assert b.function_at(syms["picked"]).name == "picked"


def test_a_part_of_a_shared_libc_is_named_without_the_internal_alias_prefix_a_static_libc_lacks():
    assert part_name("__GI__IO_fflush.cold") == "_IO_fflush.cold"
    assert part_name("__GI___getdelim.part.0") == "__getdelim.part.0"
    assert part_name("__GI_memcpy") == "__GI_memcpy"  # not a part: the name glibc's IFUNC symbol has elsewhere
    assert part_name("_IO_new_fclose.cold") == "_IO_new_fclose.cold"


def test_parts_are_based_on_the_alias_a_part_symbol_names_else_on_the_strong_one():
    from symbridge.binary import part_bases

    def names(**binds):
        return {n: (n.startswith("__GI_"), b != "STB_GLOBAL", name_rank(n, b, True)) for n, b in binds.items()}

    aliases = {0x10: names(fflush="STB_WEAK", _IO_fflush="STB_GLOBAL"),
               0x20: names(fclose="STB_GLOBAL", _IO_fclose="STB_GLOBAL", _IO_new_fclose="STB_LOCAL"),
               0x30: {"_IO_new_fclose.cold": (False, True, ())},
               0x40: names(alone="STB_GLOBAL")}
    chosen = {0x10: "fflush", 0x20: "fclose", 0x30: "_IO_new_fclose.cold", 0x40: "alone"}
    assert part_bases(aliases, chosen) == {0x10: "_IO_fflush", 0x20: "_IO_new_fclose"}


def test_name_rank_prefers_exported_then_plain_names():
    assert name_rank("abort", "STB_GLOBAL", True) < name_rank("__GI_abort", "STB_LOCAL", False)
    assert name_rank("____strtol_l_internal", "STB_GLOBAL", False) < name_rank("__GI_____strtol_l_internal",
                                                                                "STB_GLOBAL", False)
    assert name_rank("fflush", "STB_WEAK", True) < name_rank("_IO_fflush", "STB_GLOBAL", True)
    assert name_rank("printf", "STB_GLOBAL", True) < name_rank("_IO_printf", "STB_GLOBAL", True)
    assert name_rank("foo", "STB_GLOBAL", False) < name_rank("foo", "STB_LOCAL", False)
    # libnsl's internal aliases are __EI_ (every public name of libnsl.so.1 is an old version)
    assert name_rank("xdr_keydat", "STB_GLOBAL", True, compat=True) < name_rank("__EI_xdr_keydat", "STB_LOCAL", False)
    # g++ defines the base-object constructor and makes the complete-object one an alias of it
    assert name_rank("_ZNSt6localeC2Ev", "STB_GLOBAL", True) < name_rank("_ZNSt6localeC1Ev", "STB_GLOBAL", True)
    assert name_rank("_ZNSt8numpunctIcED2Ev", "STB_GLOBAL", True) < name_rank("_ZNSt8numpunctIcED1Ev", "STB_GLOBAL",
                                                                                True)


def test_functions_named_by_the_files_own_symbols_are_not_marked_as_found_in_debug_info():
    """`symbridge functions` reports where each start came from: the file's own symbols are "symbol", and
    "debug" only for what a debug file or DWARF names."""
    lib = build("aliases.c", opt="-O2", kind="shared")
    sources = {f.address: f.source for f in Binary(lib, use_debug_files=False).functions}
    addr = nm_names(lib)["_IO_sum_bytes"]
    assert "symbol" in sources[addr]
    assert not any("debug" in s for s in sources.values())


def test_a_part_that_a_landing_pad_jumps_to_is_a_cold_part_by_its_frame():
    """g++ -O2 moves main's exception clean-up into main.cold, entered by a plain jump from main's landing pad
    and ending in _Unwind_Resume: only its .eh_frame entry, which begins inside main's frame, tells it from a
    function main tail-calls."""
    import shutil

    import pytest

    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    b = Binary(build("landing_pad.cc", compiler="g++"))
    fs = b.code_functions
    if "main.cold" not in {f.name for f in fs}:
        pytest.skip("this compiler split no cold part off main")
    found = {(fs[c].name, fs[x].name) for c, x in cold_parts(fs)}
    assert ("main.cold", "main") in found
    assert all(part == owner + ".cold" for part, owner in found)
    assert b["main.cold"].address in b.mid_frame_starts and b["main"].address not in b.mid_frame_starts


def test_an_old_symbol_version_is_named_by_its_own_code_and_todays_version_keeps_the_public_name():
    """glibc's memcpy@GLIBC_2.2.5 is the code of __memmove_sse2_unaligned, memcpy@@GLIBC_2.14 today's memcpy: the
    old version (the hidden bit of .gnu.version, one `@` in .symtab) is named by its other names, if any."""
    from pathlib import Path

    script = Path(__file__).parent / "fixtures" / "src" / "versioned.map"
    lib = build("versioned.c", opt="-O2", kind="shared", extra=[f"-Wl,--version-script={script}"])
    syms = nm_names(lib)
    old, new = syms["scale_v1"], syms["scale_v2"]
    b = Binary(lib)
    compat = {(s.name, s.table) for s in b.image.symbols if s.compat}
    assert compat == {("scale", "dynsym"), ("scale@VERS_1", "symtab")}
    assert b.function_at(old).name == "scale_v1"
    assert b.function_at(new).name == "scale"
    assert name_rank("scale", "STB_GLOBAL", True, compat=True) > name_rank("scale_v1", "STB_LOCAL", False)
    assert name_rank("scale", "STB_GLOBAL", True, compat=True) < name_rank("__GI_scale", "STB_LOCAL", False)
