from __future__ import annotations

import shutil

import pytest

from symbridge import demangle as dm

needs_cxxfilt = pytest.mark.skipif(shutil.which("c++filt") is None, reason="c++filt (binutils) is not installed")

RUST_V0 = "_RNvNtNtCs8NwYtU1Mohg_4core3str8converts9from_utf8"
RUST_LEGACY = "_ZN4core3ptr42drop_in_place$LT$std..io..error..Error$GT$17ha66bb24d40f80be5E"


@needs_cxxfilt
def test_cpp_and_rust_names_demangled():
    got = dm.demangle(["_Z3fooi", RUST_V0, RUST_LEGACY, "main", None, "_ZN3foo3barEv.isra.0"])
    assert got["_Z3fooi"] == "foo(int)"
    assert got[RUST_V0] == "core::str::converts::from_utf8"  # without the crate's [hash]
    # legacy Rust keeps its hash, as nm -C prints it: it tells instances of one generic function apart
    assert got[RUST_LEGACY] == "core::ptr::drop_in_place<std::io::error::Error>::ha66bb24d40f80be5"
    assert got["_ZN3foo3barEv.isra.0"].startswith("foo::bar()")
    assert "main" not in got


@needs_cxxfilt
def test_names_c_filt_cannot_read_one_a_line_are_left_out():
    """A name with a line break would shift every answer after it; such names are not sent at all."""
    got = dm.demangle(["_Z3fooi\n_Z3bari", "_Z3bazv", "_Znot a name", "_Zgarbage"])
    assert got == {"_Z3bazv": "baz()"}


def test_without_cxxfilt_names_stay(monkeypatch):
    monkeypatch.setattr(dm.shutil, "which", lambda _: None)
    assert dm.demangle(["_Z3fooi", RUST_V0]) == {}
