"""Where a function puts each function pointer (a struct field, a call's argument; case by case in a switch), as
the code of several compilers writes it."""

import pytest

from symbridge import Binary
from symbridge.analysis.slots import stored_pointer_groups
from tests.fixtures.build import build, have_clang

CALLBACKS = {0: "read_not_ready", 48: "write_not_ready", 56: "stats_not_ready", 64: "flush_not_ready",
             80: "close_not_ready", 88: "ioctl_not_ready", 96: "cleanup_common"}


def fields_set_by(path, function: str) -> dict:
    """The slots of a function: field offsets, and (callee's name, argument) for calls."""
    b = Binary(path)
    f = b[function]
    name = {g.address: g.name for g in b.functions}
    slots = stored_pointer_groups(b.image, f.address, f.size, name.keys())[0]  # the whole function's
    return {(name[k[0]], k[1]) if isinstance(k, tuple) else k: name[a] for k, a in slots.items()}


@pytest.mark.parametrize("compiler,kind,opt", [("gcc", "pie", "-O0"), ("gcc", "pie", "-O2"), ("gcc", "nopie", "-O2"),
                                               ("gcc", "static", "-O3"), ("clang", "pie", "-O2"),
                                               ("clang", "nopie", "-O3")])
def test_each_callback_is_found_at_the_offset_of_the_field_it_is_stored_into(compiler, kind, opt):
    """gcc -O2 stores two pointers at once from an SSE register, one half loaded from a constant in data in a
    fixed-address build; clang moves them one by one; -O0 goes through the stack and back."""
    if compiler == "clang" and not have_clang():
        pytest.skip("clang is not installed")
    extra = ("-fno-ipa-icf",) if compiler == "gcc" else ()  # gcc would fold the look-alikes into one
    path = build("field_ops.c", compiler=compiler, opt=opt, kind=kind, extra=extra)
    setter = "set_not_ready" if opt == "-O0" else "dev_create"  # inlined from -O1 on
    assert fields_set_by(path, setter) == CALLBACKS


@pytest.mark.parametrize("compiler,kind", [("gcc", "pie"), ("gcc", "nopie"), ("clang", "pie")])
def test_a_callback_passed_to_a_call_is_found_as_that_calls_argument(compiler, kind):
    if compiler == "clang" and not have_clang():
        pytest.skip("clang is not installed")
    extra = ("-fno-ipa-icf",) if compiler == "gcc" else ()
    path = build("field_ops.c", compiler=compiler, opt="-O2", kind=kind, extra=extra)
    assert fields_set_by(path, "install_hooks") == {("on_open", 0): "open_hook", ("on_seek", 0): "seek_hook",
                                                    ("on_error", 0): "error_hook", ("on_sync", 0): "sync_hook",
                                                    ("on_close", 0): "close_hook"}


def test_a_function_that_only_calls_stores_no_pointer():
    path = build("field_ops.c", opt="-O2", extra=("-fno-ipa-icf",))
    assert fields_set_by(path, "cleanup_common") == {}


@pytest.mark.parametrize("compiler,opt", [("gcc", "-O0"), ("gcc", "-O2"), ("clang", "-O2")])
def test_each_case_of_a_switch_keeps_the_callbacks_it_sets(compiler, opt):
    """Each field gets another function in each case: none is the whole function's, each case's run has its
    own."""
    if compiler == "clang" and not have_clang():
        pytest.skip("clang is not installed")
    extra = ("-fno-ipa-icf",) if compiler == "gcc" else ()
    b = Binary(build("field_ops.c", compiler=compiler, opt=opt, extra=extra))
    f = b["codec_init"]
    name = {g.address: g.name for g in b.functions}
    groups = [{k: name[a] for k, a in g.items()} for g in stored_pointer_groups(b.image, f.address, f.size, name)]
    assert groups[0] == {}
    assert sorted(groups[1:], key=str) == [{0: "sc2s", 8: "sc2i", 16: "sc2f", 24: "describe_signed"},
                                           {0: "uc2s", 8: "uc2i", 16: "uc2f", 24: "describe_unsigned"}]


def test_a_function_with_no_bytes_has_one_empty_group():
    b = Binary(build("field_ops.c", opt="-O2", extra=("-fno-ipa-icf",)))
    f = b["dev_create"]
    assert stored_pointer_groups(b.image, f.address, 0, {f.address}) == [{}]
