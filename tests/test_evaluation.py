"""How benchmarks judge a name: a compiler's copy of a source function is that function."""

from types import SimpleNamespace

from symbridge.evaluation import counterpart_queries, name_right, source_name


def test_source_name_drops_the_suffixes_of_compiler_copies():
    assert source_name("foo.isra.0") == "foo"
    assert source_name("foo.constprop.0.isra.0") == "foo"
    assert source_name("foo.part.0") == "foo" and source_name("foo.cold") == "foo"
    assert source_name("foo.llvm.1234567") == "foo"
    assert source_name("foo") == "foo"
    assert source_name("foo.bar") == "foo.bar"  # not a compiler's suffix
    assert source_name(".isra.0") == ".isra.0"  # nothing would be left
    assert source_name("MD5Update@LIBBSD_0.0") == "MD5Update" and source_name("f@@V_2") == "f"  # .symver


def test_a_copy_counts_as_its_source_function_and_a_look_alike_does_not():
    truth = {"foo", "foo.isra.0"}
    assert name_right("foo", truth) and name_right("foo.isra.0", truth)
    assert name_right("foo.constprop.1", {"foo"})
    assert not name_right("foo2", truth) and not name_right(None, truth) and not name_right("", truth)


def test_queries_pair_a_reference_function_with_its_copy_only_when_the_source_name_is_unique():
    fn = lambda name, addr=0: SimpleNamespace(name=name, address=addr)  # noqa: E731
    ref = [fn("foo.isra.0"), fn("bar"), fn("bar.part.0"), fn("baz")]
    tgt = [fn(None, 10), fn(None, 20), fn(None, 30)]
    truth = {10: {"foo"}, 20: {"bar"}, 30: {"baz.constprop.0", "baz"}}
    q, t = counterpart_queries(ref, tgt, truth)
    # foo.isra.0 -> foo; bar is left out (two reference functions share its source name); baz -> its copy
    assert sorted(zip(q, t)) == [(0, 0), (3, 2)]


def test_anonymize_of_a_file_strip_cannot_read_is_an_input_error_and_writes_nothing(tmp_path):
    import pytest

    from symbridge.errors import InputFileError
    from symbridge.evaluation import anonymize

    src = tmp_path / "notes.txt"
    src.write_text("not an ELF file\n")
    with pytest.raises(InputFileError, match="strip"):
        anonymize(src, tmp_path / "out" / "anon")
    assert list((tmp_path / "out").iterdir()) == []
