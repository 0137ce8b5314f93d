"""The command line: parses arguments, calls the Python API, prints. Exit 0 ok, 2 bad input, 1 internal."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
from rich.text import Text

from .errors import SymbridgeError, UsageError
from .model.parallel import MAX_WORKERS, MIN_FUNCTIONS

# markdown: a docstring's paragraphs are reflowed to the terminal (rich mode kept each source line break)
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode="markdown",
                  help="Name the functions of stripped x86-64 ELF binaries from a reference that has symbols.\n\n"
                       "Start with `symbridge demo`, then `symbridge transfer REFERENCE TARGET -o NAMED`.\n\n"
                       f"Binaries of {MIN_FUNCTIONS:,} functions or more are lifted and matched on up to "
                       f"{MAX_WORKERS} CPU cores; SYMBRIDGE_WORKERS=N sets how many (1 keeps one).")
index_app = typer.Typer(no_args_is_help=True, rich_markup_mode="markdown",
                        help="A library of known functions (SQLite + vector index).")
app.add_typer(index_app, name="index")

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
STATE = {"quiet": False, "debug": False}

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or chatter.")]


def _probability(value: float | None) -> float | None:
    """--min-confidence's check: a callback, not FloatRange, whose "[0.0<=x<=1.0]" in the help crowds the option
    names out of an 80-column terminal."""
    if value is not None and not 0.0 <= value <= 1.0:
        raise typer.BadParameter(f"{value} is not between 0 and 1")
    return value


MinConfidence = Annotated[Optional[float], typer.Option("--min-confidence", metavar="<float>", callback=_probability,
                                                        help="Name only matches at or above this confidence, 0 to 1 "
                                                             "(default: calibrated).")]
PairConfidence = Annotated[Optional[float], typer.Option("--min-confidence", metavar="<float>", callback=_probability,
                                                         help="Pair only matches at or above this confidence, 0 "
                                                              "to 1 (default: calibrated).")]
ModelOpt = Annotated[Optional[Path], typer.Option("--model", help="Model file (.safetensors/.npz) instead of the "
                                                               "shipped one.")]
TargetFunctions = Annotated[Optional[Path], typer.Option("--target-functions", help="Function starts for TARGET "
                                                        "from a disassembler export.")]
Demangle = Annotated[bool, typer.Option("-C", "--demangle", help="Print C++ and Rust names demangled, as `nm -C` "
                                                                "does (JSON and written files keep them as they are).")]


def parse_address(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise UsageError(f"bad address {text!r}: use 0x... or decimal") from None
    if value < 0 or value >= 1 << 64:
        raise UsageError(f"bad address {text!r}: out of range")
    return value


def load_model(path: Path | None):
    from .model.model import Model

    return Model.load(path) if path else Model.default()


class Clock(ProgressColumn):
    """The time since the bar started; it runs on once the bar is full (Rich's TimeElapsedColumn stops there,
    and the steps after embedding are shown on a full bar)."""

    def render(self, task) -> Text:
        if task.start_time is None:
            return Text("-:--:--", style="progress.elapsed")
        return Text(str(timedelta(seconds=int(task.get_time() - task.start_time))), style="progress.elapsed")


@contextmanager
def progress(label: str, total: int | None = None):
    """A Rich progress bar on a terminal; nothing when piped or --quiet. Yields tick(n=1), which advances it;
    tick.stage(text) relabels it for a step that follows (the bar stays full, the clock runs on)."""
    def quiet_tick(n: int = 1) -> None:
        return None
    if STATE["quiet"] or not err.is_terminal:
        quiet_tick.stage = lambda text: None  # type: ignore[attr-defined]
        yield quiet_tick
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Clock(),
                  console=err, transient=True) as bar:
        task = bar.add_task(label, total=total)

        def tick(n: int = 1) -> None:
            bar.advance(task, n)
        def stage(text: str) -> None:  # the first step is done: its bar full (PLT stubs are counted, not embedded)
            bar.update(task, description=f"{label} done, {text}", completed=total)
        tick.stage = stage  # type: ignore[attr-defined]
        yield tick


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    check_output(path)
    from .export._atomic import atomic_write

    atomic_write(path, text.encode())


def check_output(*paths: Path | None, target: Path | None = None, inputs: tuple = ()) -> None:
    """Refuse, before any analysis, an output file that could not be written at the end (its folder missing
    or not writable, a folder in its place) or that would overwrite the target, another input of the command
    (the reference, the library, the result read) or another output (None and "-", stdout, pass)."""
    seen: set[Path] = set()
    for path in paths:
        if path is None or str(path) == "-":
            continue
        path = Path(path)
        if path.is_dir():
            raise UsageError(f"{path}: is a directory")
        folder = path.parent
        if not folder.is_dir():
            raise UsageError(f"{folder}: no such directory")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"{path}: cannot write in {folder}: permission denied")
        where = path.resolve()
        if target is not None and where == Path(target).resolve():
            raise UsageError(f"{path}: refusing to overwrite the target; give another output path")
        if any(x is not None and where == Path(x).resolve() for x in inputs):
            raise UsageError(f"{path}: refusing to overwrite an input of this command; give another output path")
        if where in seen:
            raise UsageError(f"{path}: given for two outputs; give each its own path")
        seen.add(where)


def emit_json(data: dict, dest: Path | None) -> None:
    text = json.dumps(data, indent=1) + "\n"
    if dest is None or str(dest) == "-":
        sys.stdout.write(text)
    else:
        write_atomic(dest, text)


BIG_FILE = 16 << 20  # bytes: from here on a terminal shows what is going on while the functions are found


def open_binary(path: Path, **kw):
    """The Binary at path; on a terminal a spinner while a large one's functions are found (Chromium's 697,000:
    two minutes)."""
    from .binary import Binary

    try:
        size = path.stat().st_size
    except OSError:  # Binary says what is wrong with it
        size = 0
    if STATE["quiet"] or not err.is_terminal or size < BIG_FILE:
        return Binary(path, **kw)
    with err.status(f"finding the functions of {path.name} ({size / 2**20:,.0f} MB)"):
        return Binary(path, **kw)


def _warn_if_few_names(reference) -> None:
    """A warning where fewer than a tenth of the reference's functions have names (a stripped reference
    names little but its exports)."""
    code = reference.code_functions
    named = sum(1 for f in code if f.name)
    if code and named < 0.1 * len(code) and not STATE["quiet"]:
        err.print(f"warning: {reference.path}: only {named:,} of its {len(code):,} functions have names (stripped?); "
                  "names come from its symbols, a debug file (--debug-file) or --reference-names", highlight=False)


# memory one function takes, measured on this project's machine: transfer, the functions of both binaries
# (libcrypto's 26,500 took 1.35 GB, libLLVM's 193,000 8.7 GB); embedding alone (Chromium's 697,000 took 13.8 GB)
TRANSFER_BYTES = 52 << 10
EMBED_BYTES = 20 << 10


def _warn_if_memory_short(functions: int, each: int, what: str) -> None:
    """A warning where `functions` functions at `each` bytes may need more memory than is available."""
    from .model.parallel import memory_available

    need, avail = functions * each, memory_available()
    if avail is not None and need > avail and not STATE["quiet"]:
        err.print(f"warning: {what} of {functions:,} functions needs about {need / 2**30:.1f} GB of memory and "
                  f"{avail / 2**30:.1f} GB are available: the system may stop it", highlight=False)


def write_named(target, result: dict, dest: Path) -> list[str]:
    from .export.elf_symtab import write_named_elf

    check_output(dest, target=target.path)
    syms = [(f["name"], f["address"], f["size"]) for f in result["functions"]
            if f["name"] and "import" not in f["via"] and "target-symbol" not in f["via"]]
    return write_named_elf(Path(target.path), Path(dest), syms)


# ---------------------------------------------------------------------- commands
def _show_version(value: bool) -> None:
    if value:
        from . import __version__
        from .model.model import Model

        out.print(f"symbridge {__version__}, model {Model.default().name}", highlight=False)
        raise typer.Exit()


@app.callback()
def main_options(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
                 quiet: Quiet = False,
                 version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                                       help="Show the version and the shipped model, and exit.")]
                 = False) -> None:
    STATE["debug"] = debug
    STATE["quiet"] = quiet


@app.command()
def functions(binary: Path, json_out: Annotated[Optional[Path], typer.Option("--json", help="Write JSON here.")] = None,
              ignore_symbols: Annotated[bool, typer.Option("--ignore-symbols", help="Find functions as if stripped.")]
              = False, debug_file: Annotated[Optional[Path], typer.Option(
                  "--debug-file", help="Separate debug file of BINARY (names).")] = None,
              demangle: Demangle = False, quiet: Quiet = False) -> None:
    """List every function found in BINARY, with where its boundary came from.

    A static archive (.a) or object file (.o) is listed as gcc links it (addresses of that linked copy).

    Example: symbridge functions /usr/bin/ls --json ls.json"""
    STATE["quiet"] |= quiet
    check_output(json_out, inputs=(binary, debug_file))
    b = open_binary(binary, ignore_symbols=ignore_symbols, debug_file=debug_file, link=True)
    data = {"binary": str(binary), "functions": [
        {"address": f.address, "size": f.size, "name": f.name, "source": f.source} for f in b.functions]}
    if json_out is not None:
        emit_json(data, json_out)
        return
    shown = _readable([f.name for f in b.functions], demangle)
    for f in b.functions:
        out.print(f"{f.address:#010x} {f.size:7d}  {shown(f.name) or '-':40s} {','.join(f.source)}", highlight=False)
    if not STATE["quiet"]:
        err.print(f"{len(b.functions)} functions in {binary}")


@app.command()
def transfer(reference: Path, target: Path,
             json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the result JSON here.")] = None,
             output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write a copy of TARGET with the "
                                                             "names in .symtab.")] = None,
             ignore_target_symbols: Annotated[bool, typer.Option("--ignore-target-symbols",
                                                                 help="Treat TARGET as stripped.")] = False,
             min_confidence: MinConfidence = None,
             debug_file: Annotated[Optional[Path], typer.Option("--debug-file", help="Separate debug file of "
                                                                  "REFERENCE.")] = None,
             reference_names: Annotated[Optional[Path], typer.Option("--reference-names", help="Names for REFERENCE "
                                                                     "(IDA/Ghidra/r2/CSV export, nm output).")] = None,
             target_functions: TargetFunctions = None,
             model: ModelOpt = None, quiet: Quiet = False, demangle: Demangle = False) -> None:
    """Transfer function names from REFERENCE (with symbols) to TARGET (stripped).

    REFERENCE may be a static archive (.a, as -dev packages ship them) or an object file (.o): it is linked
    with gcc first, and its internal functions' names come along.

    Example: symbridge transfer libfoo.so.1 libfoo-stripped.so --json out.json -o libfoo-named.so

    Example: symbridge transfer /usr/lib/x86_64-linux-gnu/libc.a ./static-stripped -o static-named"""
    from .match.transfer import transfer as run_transfer

    STATE["quiet"] |= quiet
    check_output(json_out, output, target=target, inputs=(reference, debug_file, reference_names, target_functions))
    names = _read_names(reference_names) if reference_names else None
    starts = _function_starts(target_functions)
    S = open_binary(reference, debug_file=debug_file, link=True,
                    extra_names={a: n for n, a in names} if names else None)
    # The target's own symbols count (seeds for a target that is not stripped); its separate debug file, which
    # /usr/lib/debug may hold for a stripped system binary, does not: it would answer the question asked.
    P = open_binary(target, ignore_symbols=ignore_target_symbols, extra_starts=starts, use_debug_files=False)
    _warn_if_few_names(S)
    _warn_if_memory_short(len(S.code_functions) + len(P.code_functions), TRANSFER_BYTES, "matching")
    m = load_model(model)
    with progress("embedding", len(S.code_functions) + len(P.code_functions)) as tick:
        result = run_transfer(S, P, m, min_confidence=min_confidence, progress=tick, stage=tick.stage)
    if output is not None:
        for w in write_named(P, result, output):
            if not STATE["quiet"]:
                err.print(f"warning: {w}", highlight=False)
    if json_out is not None or output is None:
        if json_out is not None:
            emit_json(result, json_out)
        else:
            _print_table(result, demangle)
    _summary(result, target, output)


HINT_FLOOR = 0.3  # matches from here up to the threshold are worth a look: the summary counts them


def _summary(result: dict, target: Path, output: Path | None) -> None:
    """One line on stderr: how many of the target's functions got a name, how many of those names their
    confidence expects to be right (its mean: the confidence is calibrated), and what was written; and, when
    there are any, how many more are matched to a named reference function with a confidence between
    HINT_FLOOR and the threshold (a library's shared build against a static program often leaves right names
    there)."""
    if not STATE["quiet"]:
        funcs = [f for f in result["functions"] if "import" not in f["via"]]
        named = sum(1 for f in funcs if f["name"])
        below = sum(1 for f in funcs if not f["name"] and f["confidence"] >= HINT_FLOOR and _named_match(f))
        # the confidence is calibrated: its mean over the names given estimates the share of them that is right
        judged = [f["confidence"] for f in funcs if f["name"] and "target-symbol" not in f["via"]]
        share = 100 * sum(judged) / len(judged) if judged else 0.0
        expect = f"; by their confidence about {share:.1f} % of the names transferred are right" if judged else ""
        err.print(f"named {named} of {len(funcs)} functions of {target} (min confidence {result['min_confidence']:g}"
                  f"{expect})" + (f"; wrote {output}" if output else ""), highlight=False)
        if below:
            err.print(f"{below} more matched with confidence {HINT_FLOOR:g} to {result['min_confidence']:g}: "
                      f"--min-confidence {HINT_FLOOR:g} names them too (the JSON keeps every candidate)",
                      highlight=False)


def _named_match(f: dict) -> bool:
    """The function's match is a reference function with a name (not sub_...)."""
    name = next((c["name"] for c in f["candidates"] if c["address"] == f["reference_address"]), None)
    return bool(name) and not name.startswith("sub_")


def _read_names(path: Path) -> list[tuple[str, int]]:
    from .export import read_names

    if not Path(path).is_file():
        raise UsageError(f"{path}: no such file")
    return read_names(Path(path))


def _function_starts(path: Path | None) -> dict[int, str] | None:
    """Function starts from a disassembler export (--target-functions), as Binary's extra_starts."""
    return {a: "names-file" for _, a in _read_names(path)} if path else None


def _library_files(db: str) -> tuple[Path, ...]:
    """The library DB and its vector index's files: inputs no output of a command may overwrite."""
    from .store.ann import index_paths

    return Path(db), *index_paths(Path(db))


def _readable(names, demangle: bool):
    """name -> the name to print: demangled (C++, Rust) when asked for and c++filt can, else as it is."""
    from .demangle import demangle as run

    table = run(names) if demangle else {}
    return lambda n: table.get(n, n) if n else n


def _print_table(result: dict, demangle: bool = False) -> None:
    from rich.table import Table

    funcs = [f for f in result["functions"] if "import" not in f["via"]]
    shown = _readable([f["name"] for f in funcs] + [f["candidates"][0]["name"] for f in funcs if f["candidates"]],
                      demangle)
    t = Table(show_edge=False, header_style="bold")
    for col in ("address", "name", "confidence", "via", "best candidate"):
        t.add_column(col)
    for f in funcs:
        best = shown(f["candidates"][0]["name"]) if f["candidates"] else ""
        t.add_row(f"{f['address']:#x}", shown(f["name"]) or "-", f"{f['confidence']:.2f}", ",".join(f["via"]), best)
    out.print(t)


@app.command()
def diff(old: Path, new: Path,
         json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the whole diff as JSON here (report "
                                                                 "and export read it too).")] = None,
         limit: Annotated[int, typer.Option("--limit", min=0, help="Rows a table shows (0: all).")] = 40,
         min_confidence: PairConfidence = None, model: ModelOpt = None, quiet: Quiet = False,
         demangle: Demangle = False) -> None:
    """Patch diff: the functions of OLD that NEW changed, those only NEW has and those gone from it.

    The two builds are matched as transfer matches them (OLD's names; NEW may be stripped); a matched pair is
    unchanged where its code, imports, strings and constants are the same. Changed pairs come least similar
    first. Meant for two builds made alike (a point release, a security fix): across compilers or releases
    most functions differ. OLD and NEW may be static archives (.a): they are linked first.

    Example: symbridge diff libfoo.so.1.2.0 libfoo.so.1.2.1

    Example: symbridge diff old-app new-app --json diff.json --limit 0

    The two functions of a pair side by side: symbridge diff OLD NEW --json d.json, then symbridge report d.json
    -o d.html."""
    from .match.diff import diff as run_diff

    STATE["quiet"] |= quiet
    check_output(json_out, target=new, inputs=(old,))
    before = open_binary(old, link=True)
    after = open_binary(new, use_debug_files=False, link=True)  # two versions of a static archive diff too
    _warn_if_memory_short(len(before.code_functions) + len(after.code_functions), TRANSFER_BYTES, "matching")
    m = load_model(model)
    with progress("embedding", len(before.code_functions) + len(after.code_functions)) as tick:
        res = run_diff(before, after, m, min_confidence=min_confidence, progress=tick, stage=tick.stage)
    if json_out is not None:
        emit_json(res, json_out)
    else:
        _print_diff(res, limit, demangle)
    if not STATE["quiet"]:
        err.print(f"{old.name} -> {new.name}: {len(res['unchanged'])} unchanged, {len(res['changed'])} changed, "
                  f"{len(res['added'])} only in the new build, {len(res['removed'])} gone from it (matched at "
                  f"confidence {res['min_confidence']:g} or more)", highlight=False)


def _print_diff(res: dict, limit: int, demangle: bool) -> None:
    from rich.table import Table

    names = [p["name"] for p in res["changed"]] + [f["name"] for f in res["removed"]] + [
        f["name"] for f in res["added"]] + [f["best_candidate"]["name"] for f in res["added"] if f["best_candidate"]]
    shown = _readable(names, demangle)

    def table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
        if not rows:
            out.print(f"{title}: none", highlight=False)
            return
        t = Table(title=f"{title} ({len(rows)})", title_justify="left", show_edge=False, header_style="bold")
        for col in columns:
            t.add_column(col)
        for r in rows[:limit or None]:
            t.add_row(*r)
        out.print(t)
        if limit and len(rows) > limit:
            out.print(f"... and {len(rows) - limit} more (--limit 0 shows all; --json writes all)", highlight=False)

    def sim(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    table("changed, least similar first", ("name", "old", "new", "size", "similarity", "confidence"),
          [(shown(p["name"]), f"{p['old_address']:#x}", f"{p['new_address']:#x}",
            f"{p['old_size']} -> {p['new_size']}", sim(p["similarity"]), f"{p['confidence']:.2f}")
           for p in res["changed"]])
    table("only in the new build", ("address", "name", "size", "nearest in the old build", "score"),
          [(f"{f['address']:#x}", shown(f["name"]) or "-", str(f["size"]),
            shown(f["best_candidate"]["name"]) if f["best_candidate"] else "-",
            sim(f["best_candidate"]["score"]) if f["best_candidate"] else "-") for f in res["added"]])
    table("gone from the new build", ("name", "address", "size"),
          [(shown(f["name"]), f"{f['address']:#x}", str(f["size"])) for f in res["removed"]])


@app.command()
def analogy(reference: Path, target: Path,
            anchor: Annotated[list[str], typer.Option(
                "--anchor", metavar="NAME=ADDR", help="A function known in both; ADDR is its address in TARGET. "
                                                      "Repeat it to average the shift over several anchors.")],
            query: Annotated[str, typer.Option("--query", help="Name (in REFERENCE) of the function to find.")],
            top: Annotated[int, typer.Option("--top", min=1, help="How many results.")] = 10,
            raw_shift: Annotated[bool, typer.Option(
                "--raw-shift", help="Add the anchors' shift as it is, without the model's filter.")] = False,
            json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the results as JSON here.")] = None,
            model: ModelOpt = None, demangle: Demangle = False, quiet: Quiet = False) -> None:
    """The seed's analogy: emb_S(query) - emb_S(anchor) + emb_P(anchor), cosine nearest in TARGET.

    Example: symbridge analogy miredo fdupes --anchor md5_init=0x7c00 --query md5_process

    Several --anchor options use the mean of their shifts (emb_P(anchor) - emb_S(anchor)). The shift passes
    through the shipped model's filter, which keeps the part that tells how the whole target was built and
    drops what is the anchor's own (fitted on train pairs: one anchor's own part moves the query away from
    its answer); --raw-shift adds it unfiltered, as the seed wrote it."""
    from .match.transfer import analogy as run_analogy

    STATE["quiet"] |= quiet
    pairs = []
    for a in anchor:
        if "=" not in a:
            raise UsageError(f"--anchor {a!r}: expected NAME=ADDR")
        name, addr = a.split("=", 1)
        pairs.append((name.strip(), parse_address(addr.strip())))
    check_output(json_out, target=target, inputs=(reference,))
    S = open_binary(reference, link=True)
    P = open_binary(target, ignore_symbols=True)
    _warn_if_memory_short(len(S.code_functions) + len(P.code_functions), EMBED_BYTES, "embedding")
    (first, first_addr), *more = pairs
    res = run_analogy(S, P, first, first_addr, query, load_model(model), top, more_anchors=more,
                      raw_shift=raw_shift)
    if res["shift"] == "raw" and not raw_shift:
        err.print("warning: no shift filter was fitted for this model: the anchors' shift is added as it is "
                  "(python -m symbridge.train.fit_analogy --model MODEL fits one)", highlight=False)
    if json_out is not None:
        emit_json(res, json_out)
        return
    shown = _readable([r["name"] for r in res["results"]], demangle)
    if not STATE["quiet"]:
        used = ", ".join(f"{a['name']} = {a['address']:#x}" for a in res["anchors"])
        err.print(f"{query} of {reference.name}, nearest in {target.name} after the {res['shift']} shift of "
                  f"{len(res['anchors'])} anchor{'s' if len(res['anchors']) > 1 else ''} ({used}):",
                  highlight=False)
    for r in res["results"]:
        out.print(f"{r['address']:#x}  {r['score']:.4f}  {shown(r['name']) or ''}", highlight=False)
    near = res["nearest"]
    if not STATE["quiet"] and near is not None and res["results"]:
        same = near["address"] == res["results"][0]["address"]
        err.print("plain nearest neighbour (no shift): " + ("the same function" if same else
                  f"{near['address']:#x}  {near['score']:.4f}  {shown(near['name']) or ''}".rstrip()), highlight=False)


@app.command()
def embed(binary: Path, output: Annotated[Path, typer.Option("-o", "--output", help="The .npz to write.")],
          ignore_symbols: Annotated[bool, typer.Option("--ignore-symbols", help="Leave BINARY's own names out of "
                                                                                  "the file.")] = False,
          model: ModelOpt = None, quiet: Quiet = False) -> None:
    """Write the embedding of every function of BINARY to an .npz (addresses, names, vectors).

    Each vector is unit length: the function's own code first (own_dim columns), then its context (the
    functions it calls, the read-only data it reads, the functions that call it), as nearest-neighbour
    search and `analogy` use it.

    Example: symbridge embed /usr/bin/ls -o ls.npz"""
    import numpy as np

    STATE["quiet"] |= quiet
    if output.suffix != ".npz":
        raise UsageError(f"{output}: the output must end in .npz")
    check_output(output, inputs=(binary,))
    b = open_binary(binary, ignore_symbols=ignore_symbols, link=True)
    m = load_model(model)
    code = b.code_functions
    _warn_if_memory_short(len(code), EMBED_BYTES, "embedding")
    with progress("embedding", len(code)) as tick:
        # not transfer.embed_binary, which keeps the own vectors on the binary for the matcher: nothing here
        # needs them once the context is added (Chromium's 695,000 functions: 3.2 GB of own vectors)
        x = m.add_context(m.embed_own(code, progress=tick), code)
    tmp = output.with_name(f".{output.name}.tmp.npz")
    try:
        np.savez(tmp, addresses=np.array([f.address for f in code], np.uint64),
                 names=np.array([f.name or "" for f in code], dtype=str), vectors=x.astype(np.float32, copy=False),
                 own_dim=np.array(m.own_dim))
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    if not STATE["quiet"]:
        err.print(f"wrote {len(code)} vectors of dimension {x.shape[1]} to {output}")


@app.command()
def export(result: Path, fmt: Annotated[str, typer.Option("--format", help="ida, ghidra, ghidra-symbols, r2 or csv")],
           output: Annotated[Path, typer.Option("-o", "--output")], quiet: Quiet = False) -> None:
    """Turn a transfer/identify RESULT.json into a script for IDA, Ghidra, radare2, or CSV.

    Example: symbridge export out.json --format ida -o names.py"""
    from .export import FORMATS, export_result

    STATE["quiet"] |= quiet
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    check_output(output, inputs=(result,))
    export_result(_load_result(result), fmt, output)


def _load_result(path: Path) -> dict:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a symbridge result JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("functions"), list):
        raise UsageError(f"{path}: not a symbridge result JSON (no 'functions' list)")
    return data


@app.command()
def report(result: Path, output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")],
           quiet: Quiet = False) -> None:
    """Write a self-contained HTML report of a transfer/identify RESULT.json.

    Example: symbridge report out.json -o report.html

    The binaries the result names are read again for the disassembly and the embedding map: relative paths
    from the working directory, else from RESULT.json's folder. C++ and Rust names are shown demangled."""
    from .export.report import write_report

    STATE["quiet"] |= quiet
    check_output(output, inputs=(result,))
    data = _load_result(result)
    rows = data.get("functions") if isinstance(data.get("functions"), list) else []
    with progress("disassembling", len(rows)) as tick:
        write_report(data, output, base=Path(result).resolve().parent, progress=tick, stage=tick.stage)


@app.command()
def demo(quiet: Quiet = False) -> None:
    """Run the whole job on two small binaries shipped with symbridge and show what it found."""
    from .demo import run_demo

    STATE["quiet"] |= quiet
    run_demo(out, err)


@index_app.command("add")
def index_add(db: str, binaries: list[Path], model: ModelOpt = None, quiet: Quiet = False) -> None:
    """Add the functions of BINARIES to the library DB (a file path, created if missing): their names come from
    the binaries' symbols, and the functions without a name are kept for the call graph around the named ones.

    Static archives (.a) and object files (.o) are linked with gcc first. A file that cannot be read is left
    out with a warning and the others are added (the exit status is then 2).

    Example: symbridge index add known.db /usr/lib/x86_64-linux-gnu/libz.so.1 /usr/lib/x86_64-linux-gnu/libc.a"""
    from .store import open_store

    STATE["quiet"] |= quiet
    left_out = []
    with open_store(db, load_model(model)) as store:
        for b in binaries:
            try:
                added = store.add(b, save_index=len(binaries) == 1)  # the index is written once, at the end
            except SymbridgeError as exc:
                if len(binaries) == 1:
                    raise
                left_out.append(b)  # one bad file among many (glibc's empty libdl.a in *.a): the others go in
                err.print(f"warning: {exc}: left out", highlight=False)
                continue
            if STATE["quiet"]:
                continue
            if not added:
                err.print(f"{b}: already in the library")
                continue
            named = next((r["named"] for r in reversed(store.binaries()) if r["path"] == os.path.abspath(b)), None)
            err.print(f"{b}: added {added} functions" + (f", {named} of them named" if named is not None else ""))
    if left_out:
        raise UsageError(f"{len(left_out)} of {len(binaries)} files left out (see the warnings above); the others "
                         f"are in {db}")


@index_app.command("upgrade")
def index_upgrade(db: str, quiet: Quiet = False) -> None:
    """Fill in what the binaries a library got from an earlier symbridge lack (which functions are thunks or
    short wrappers, where each function puts callbacks, the tables of code pointers, code keys that ignore
    CET's endbr64, the struct fields each function accesses, for identify's matching),
    reading each again from its path; no embedding is redone.

    Example: symbridge index upgrade known.db"""
    from .store import open_store

    STATE["quiet"] |= quiet

    def say(path: str, what: str) -> None:
        if not STATE["quiet"]:
            err.print(f"{path}: {what}", highlight=False)

    with open_store(db, None, create=False) as store:
        done = store.fill_outdated(say)
    if not done and not STATE["quiet"]:
        err.print(f"{db}: nothing to upgrade")


@index_app.command("list")
def index_list(db: str, json_out: Annotated[Optional[Path], typer.Option(
        "--json", help="Write the list as JSON here (- for stdout): every binary's path, sha256, build-id, "
                       "functions, named, model and when it was added.")] = None,
               quiet: Quiet = False) -> None:
    """List the binaries in the library DB: sha256 (first 12 digits), functions, of them named, path.

    Example: symbridge index list known.db --json - | jq '.binaries[].path'"""
    from .store import open_store

    STATE["quiet"] |= quiet
    check_output(json_out, inputs=_library_files(db))
    with open_store(db, None, create=False) as store:
        rows = list(store.binaries())
    if json_out is not None:
        emit_json({"library": db, "binaries": [{k: v for k, v in r.items() if k != "id"} for r in rows]}, json_out)
        return
    for row in rows:
        out.print(f"{row['sha256'][:12]}  {row['functions']:6d}  {row['named']:6d}  {row['path']}", highlight=False)
    if not STATE["quiet"]:  # on stderr: stdout keeps one line a binary, for scripts
        functions, named = sum(r["functions"] for r in rows), sum(r["named"] for r in rows)
        err.print(f"{len(rows)} binar{'y' if len(rows) == 1 else 'ies'}, {functions:,} functions, {named:,} of them "
                  f"named (columns: sha256, functions, named, path)", highlight=False)


@app.command()
def identify(db: str, target: Path,
             json_out: Annotated[Optional[Path], typer.Option(
                 "--json", help="Write the result JSON here (each name tagged with the binary it came from).")] = None,
             output: Annotated[Optional[Path], typer.Option(
                 "-o", "--output", help="Write a copy of TARGET with the names in .symtab.")] = None,
             min_confidence: MinConfidence = None, target_functions: TargetFunctions = None,
             model: ModelOpt = None, quiet: Quiet = False, demangle: Demangle = False) -> None:
    """Name the functions of TARGET from every binary in the library DB.

    Example: symbridge identify known.db ./stripped --json out.json -o named"""
    from .store import open_store

    STATE["quiet"] |= quiet
    check_output(json_out, output, target=target, inputs=(*_library_files(db), target_functions))
    P = open_binary(target, ignore_symbols=True, extra_starts=_function_starts(target_functions))
    _warn_if_memory_short(len(P.code_functions), TRANSFER_BYTES, "identifying")  # the library's side comes on top
    with open_store(db, load_model(model), create=False) as store:
        old = store.outdated()
        if old and not STATE["quiet"]:
            err.print(f"warning: {db}: {old} of its binaries were added by an earlier symbridge; `symbridge index "
                      f"upgrade {db}` lets identify compare their wrappers by where they jump, pair callbacks "
                      f"by the struct fields and tables they are put in, see identical code with or without "
                      f"CET's endbr64, and pair the accessors of a struct whose fields moved", highlight=False)
        with progress("embedding", len(P.code_functions)) as tick:
            result = store.identify(P, min_confidence=min_confidence, progress=tick, stage=tick.stage)
    if output is not None:
        write_named(P, result, output)
    if json_out is not None or output is None:
        emit_json(result, json_out) if json_out is not None else _print_table(result, demangle)
    _summary(result, target, output)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if not STATE["quiet"]:
        sys.stderr.write(f"symbridge: warning: {' '.join(str(message).split())}\n")


def _usage_errors() -> tuple[type, ...]:
    """Click's exception class for usage errors: typer's own copy of click (typer 0.29 carries one) and
    click's, where click is installed."""
    found = [c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"]
    try:
        import click

        found.append(click.ClickException)
    except ImportError:
        pass
    return tuple(found)


def main() -> None:
    """Entry point: one line on stderr and exit 2 for bad input, 1 for internal errors."""
    import warnings

    warnings.showwarning = _one_line_warning
    try:
        code = app(standalone_mode=False)
        # typer (0.29 here) turns Ctrl-C into Exit(130) and, without standalone mode, returns an Exit's code
        if isinstance(code, int) and code:
            if code == 130:
                err.print("symbridge: interrupted")
            sys.exit(code)
    except SymbridgeError as exc:
        sys.stderr.write(f"symbridge: error: {' '.join(str(exc).split())}\n")
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("symbridge: aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("symbridge: interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code
        if isinstance(exc, _usage_errors()):
            exc.show()
            sys.exit(exc.exit_code)
        if STATE["debug"] or "--debug" in sys.argv:
            raise
        msg = " ".join(str(exc).split())
        sys.stderr.write(f"symbridge: internal error: {type(exc).__name__}: {msg} (run with --debug for details)\n")
        sys.exit(1)
