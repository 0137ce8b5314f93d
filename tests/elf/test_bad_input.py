"""Bad input: one line on stderr naming the file and the problem, exit 2, no traceback, no output file."""

import shutil
import subprocess

import pytest

from tests.conftest import run_cli
from tests.fixtures.build import build, debug_split


def _patched(tmp_path, name, offset, value):
    src = build("hello_plt.c")
    data = bytearray(src.read_bytes())
    data[offset:offset + len(value)] = value
    p = tmp_path / name
    p.write_bytes(bytes(data))
    return p


def _text_at_the_end_of_the_address_space(tmp_path):
    """hello_plt with its .text section moved to 0xffffffffffffff00, where its bytes run past 2^64."""
    import struct

    from elftools.elf.elffile import ELFFile

    src = build("hello_plt.c")
    with open(src, "rb") as fh:
        elf = ELFFile(fh)
        index = next(k for k, sec in enumerate(elf.iter_sections()) if sec.name == ".text")
        shoff = elf.header["e_shoff"]
    return _patched(tmp_path, "text-wraps", shoff + 64 * index + 16, struct.pack("<Q", 0xFFFFFFFFFFFFFF00))


def bad_inputs(tmp_path):
    src = build("hello_plt.c")
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is text\n")
    empty = tmp_path / "empty"
    empty.touch()
    trunc = tmp_path / "truncated"
    trunc.write_bytes(src.read_bytes()[:200])
    trunc2 = tmp_path / "truncated-late"
    trunc2.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    _, debugfile = debug_split(build("prog_big.c", extra=("-g",)))
    nocode = tmp_path / "nocode.debug"
    shutil.copy(debugfile, nocode)
    pe = tmp_path / "prog.exe"
    pe.write_bytes(b"MZ" + b"\0" * 200)
    script = tmp_path / "libm.a"  # as glibc ships it
    script.write_text("/* GNU ld script\n*/\nOUTPUT_FORMAT(elf64-x86-64)\n"
                      "GROUP ( /usr/lib/x86_64-linux-gnu/libm-2.36.a /usr/lib/x86_64-linux-gnu/libmvec.a )\n")
    return {
        "missing": (tmp_path / "nope", "no such file"),
        "directory": (tmp_path, "directory"),
        "empty": (empty, "empty"),
        "text": (text, "text file"),
        "truncated header": (trunc, "truncated"),
        "truncated body": (trunc2, "truncated"),
        "32-bit": (_patched(tmp_path, "elf32", 4, b"\x01"), "32-bit"),
        "arm64": (_patched(tmp_path, "arm64", 18, b"\xb7\x00"), "AArch64"),
        "no code": (nocode, "no executable code"),
        "pe": (pe, "PE"),
        "linker script": (script, "linker script, not an ELF file; it names /usr/lib/x86_64-linux-gnu/libm-2.36.a"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "text", "truncated header", "truncated body",
                                  "32-bit", "arm64", "no code", "pe", "linker script"])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, case):
    path, words = bad_inputs(tmp_path)[case]
    r = run_cli("functions", path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(path) in lines[0] and words.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in r.stderr


def test_code_said_to_run_past_the_end_of_the_address_space_is_read_as_the_system_loads_it(tmp_path):
    """An executable section whose range wraps past 2^64 makes the section headers garbled: one warning, and the
    functions come from the program headers, as from the file with its headers intact."""
    path = _text_at_the_end_of_the_address_space(tmp_path)
    r = run_cli("functions", path)
    assert r.returncode == 0, r.stderr
    assert "runs past the end of the address space" in r.stderr and "Traceback" not in r.stderr
    from symbridge import Binary

    found = {int(line.split()[0], 16) for line in r.stdout.splitlines()}
    assert found == {f.address for f in Binary(build("hello_plt.c"), ignore_symbols=True).functions}


@pytest.mark.parametrize("case", ["text", "truncated body", "arm64"])
def test_bad_target_leaves_no_output_file(tmp_path, case):
    path, _ = bad_inputs(tmp_path)[case]
    out, js = tmp_path / "named", tmp_path / "out.json"
    r = run_cli("transfer", build("hello_plt.c"), path, "-o", out, "--json", js)
    assert r.returncode == 2
    assert not out.exists() and not js.exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_bad_address_and_unknown_name_are_usage_errors(tmp_path):
    ref = build("prog_big.c")
    r = run_cli("analogy", ref, ref, "--anchor", "md5_init=zz", "--query", "md5_process")
    assert r.returncode == 2 and "bad address" in r.stderr
    r = run_cli("analogy", ref, ref, "--anchor", "nosuch=0x10", "--query", "md5_process")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_the_analysed_binary_is_never_executed(tmp_path):
    # A binary whose execution would leave a marker file; analysing it must not create the marker.
    src = tmp_path / "m.c"
    marker = tmp_path / "RAN"
    src.write_text(f'#include <stdio.h>\nint main(void){{FILE*f=fopen("{marker}","w");if(f)fclose(f);return 0;}}\n')
    exe = tmp_path / "m"
    subprocess.run(["gcc", "-o", str(exe), str(src)], check=True)
    assert run_cli("transfer", exe, exe, "--json", tmp_path / "r.json").returncode == 0
    assert not marker.exists()


def test_ctrl_c_gives_one_line_exit_130_and_no_output_file(tmp_path):
    """SIGINT (Ctrl-C) while transfer works: one line, exit 130, nothing half-written."""
    import os
    import signal
    import sys
    import time

    ref = build("prog_big.c", opt="-O2")
    tgt = build("prog_big.c", opt="-O3")
    out = tmp_path / "out" / "named"
    out.parent.mkdir()
    hook = tmp_path / "sitecustomize.py"  # holds the matching long enough to be interrupted in it
    marker = tmp_path / "matching"  # written when the matching starts: the signal comes then, not at a guess
    hook.write_text("import pathlib, time\nimport symbridge.match.transfer as t\nreal = t.match_binaries\n"
                    f"def slow(*a, **k):\n    pathlib.Path({str(marker)!r}).touch()\n    time.sleep(120)\n"
                    "    return real(*a, **k)\nt.match_binaries = slow\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.Popen([sys.executable, "-c", "from symbridge.cli import main; main()", "transfer", str(ref),
                          str(tgt), "-o", str(out), "--json", str(out) + ".json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         # a shell's background job (CI) ignores SIGINT, and a child would inherit that
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), "transfer never reached the matching"
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["symbridge: interrupted"]
    assert list(out.parent.iterdir()) == []


def test_nested_parser_complaint_is_reported_as_its_first_part():
    from elftools.common.exceptions import ELFParseError

    from symbridge.elf.image import _reason

    nested = ELFParseError("('expected 3338666001, found 37596', FieldError(FieldError('expected 4, found 0')))")
    assert _reason(nested) == "expected 3338666001, found 37596"
    assert _reason(ELFParseError("Reading section 0 at offset 149360 past EOF 3000")) == \
        "Reading section 0 at offset 149360 past EOF 3000"
    assert _reason(KeyError()) == "KeyError"
