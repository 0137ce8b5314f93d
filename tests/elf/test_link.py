"""Static archives and relocatable objects as references: linked by gcc (elf.link) before they are read."""

import shutil
import subprocess

import pytest

from symbridge.binary import Binary
from symbridge.elf import link
from symbridge.errors import InputFileError, NotAnElfError, UnsupportedArchitectureError
from symbridge.evaluation import anonymize, name_right, truth_names
from tests.conftest import run_cli
from tests.fixtures.build import SRC_DIR

pytestmark = pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("ar")), reason="gcc and ar are needed")

HIDDEN_CALL = """
extern void helper_nobody_defines(void) __attribute__((visibility("hidden")));
int calls_hidden(int x) { if (x > 3) helper_nobody_defines(); return x * 7; }
"""


@pytest.fixture(scope="module")
def libbig(tmp_path_factory):
    """libbig.c at -O2 as an object, as a static archive, and linked with a main into a static program."""
    d = tmp_path_factory.mktemp("archive")
    obj, archive = d / "libbig.o", d / "libbig.a"
    subprocess.run(["gcc", "-O2", "-c", str(SRC_DIR / "libbig.c"), "-o", str(obj)], check=True)
    subprocess.run(["ar", "rcs", str(archive), str(obj)], check=True)
    (d / "main.c").write_text("const char *lb_version(void);\nint main(void) { return lb_version()[0]; }\n")
    prog = d / "prog"
    subprocess.run(["gcc", "-O2", "-static", "-o", str(prog), str(d / "main.c"), str(archive), "-lm"], check=True)
    return obj, archive, prog


def test_an_archive_is_read_as_linked_with_its_names(libbig):
    obj, archive, _ = libbig
    b = Binary(archive, link=True)
    names = {f.name for f in b.code_functions}
    assert {"lb_version", "cfg_trim"} <= names
    assert {f.name for f in Binary(obj, link=True).code_functions} == names
    assert b.path == archive  # results name the archive, not its linked copy


def test_a_thin_archive_and_a_name_like_an_option(libbig, tmp_path, monkeypatch):
    """A thin archive names its members' files (relative to itself); a file named -x.a is no linker option."""
    obj, _, _ = libbig
    (tmp_path / "objs").mkdir()
    shutil.copy(obj, tmp_path / "objs" / "libbig.o")
    subprocess.run(["ar", "rcsT", "./-libbig.a", "objs/libbig.o"], check=True, cwd=tmp_path)
    monkeypatch.chdir(tmp_path)
    names = {f.name for f in Binary("-libbig.a", link=True).code_functions}
    assert names == {f.name for f in Binary(obj, link=True).code_functions}


def test_without_link_an_archive_or_object_is_refused_in_one_line(libbig):
    obj, archive, _ = libbig
    with pytest.raises(NotAnElfError, match="static archive .* can be a reference"):
        Binary(archive)
    with pytest.raises(UnsupportedArchitectureError, match="relocatable object .* can be a reference"):
        Binary(obj)


def test_a_hidden_symbol_no_member_defines_does_not_stop_the_link(tmp_path):
    """ld refuses an undefined hidden symbol whatever --unresolved-symbols says (libc.a's _init, _fini,
    _DYNAMIC): the link is tried again with it set to 0."""
    (tmp_path / "h.c").write_text(HIDDEN_CALL)
    subprocess.run(["gcc", "-O2", "-c", str(tmp_path / "h.c"), "-o", str(tmp_path / "h.o")], check=True)
    subprocess.run(["ar", "rcs", str(tmp_path / "libh.a"), str(tmp_path / "h.o")], check=True)
    plain = subprocess.run(link.link_variants([tmp_path / "libh.a"], tmp_path / "out")[0], capture_output=True,
                           text=True)
    assert plain.returncode != 0 and "helper_nobody_defines" in plain.stderr
    assert [f.name for f in Binary(tmp_path / "libh.a", link=True).code_functions] == ["calls_hidden"]


def test_no_gcc_says_so(libbig, monkeypatch):
    monkeypatch.setattr(link.shutil, "which", lambda _: None)
    with pytest.raises(InputFileError, match="needs gcc"):
        Binary(libbig[1], link=True)


def test_transfer_names_a_static_program_from_the_archive(libbig, tmp_path):
    _, archive, prog = libbig
    target = anonymize(prog, tmp_path / "prog.stripped")
    out = tmp_path / "r.json"
    res = run_cli("transfer", archive, target, "--json", out, "-q")
    assert res.returncode == 0, res.stderr
    import json

    r = json.loads(out.read_text())
    assert r["reference"] == str(archive)
    truth = truth_names(prog)
    lib = {f.name for f in Binary(archive, link=True).code_functions}
    named = [f for f in r["functions"] if f["name"] and "import" not in f["via"]]
    right = [f for f in named if name_right(f["name"], truth.get(f["address"], set()))]
    assert len(right) >= 0.95 * len(named)
    assert len({f["name"] for f in right} & lib) >= 0.9 * len(lib & {n for ns in truth.values() for n in ns})
    # an archive is no target
    bad = run_cli("transfer", prog, archive)
    assert bad.returncode == 2 and "not a target" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_a_corrupt_archive_says_what_the_linker_said_in_one_line(tmp_path):
    bad = tmp_path / "bad.a"
    bad.write_bytes(b"!<arch>\nxxxx")
    with pytest.raises(InputFileError, match="could not be linked") as err:
        Binary(bad, link=True)
    text = str(err.value)
    assert "\n" not in text and "symbridge-link-" not in text and "collect2" not in text


def test_bytecode_only_objects_say_there_is_no_machine_code(tmp_path):
    from symbridge.errors import NoCodeError

    (tmp_path / "h.c").write_text("int twice(int x) { return 2 * x; }\n")
    res = subprocess.run(["gcc", "-O2", "-flto", "-fno-fat-lto-objects", "-c", str(tmp_path / "h.c"), "-o",
                          str(tmp_path / "h.o")], capture_output=True)
    if res.returncode:
        pytest.skip("this gcc does not build LTO objects")
    subprocess.run(["ar", "rcs", str(tmp_path / "libh.a"), str(tmp_path / "h.o")], check=True)
    with pytest.raises(NoCodeError, match="no machine code.*-flto"):
        Binary(tmp_path / "libh.a", link=True)
