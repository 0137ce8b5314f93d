"""Coverage-guided fuzzing of loading, discovery, lifting and embedding with atheris (libFuzzer).

    python benchmarks/fuzz_target.py [libFuzzer flags] CORPUS_DIR [SEED_DIR ...]
    python benchmarks/fuzz_target.py --replay DIR...      # run every file once (for coverage.py)

``benchmarks/fuzz.sh`` drives it; the seed corpus is ``tests/fuzz/corpus/`` and the dictionary
``tests/fuzz/elf.dict``. The target (``tests/fuzz/harness.py``) writes the input to a temporary file and runs
``Binary(path, ignore_symbols=...)`` (``ignore_symbols`` is bit 0 of byte 15, the last padding byte of
``e_ident``, which the loader ignores), every function's facts, ``featurize`` and the projection model. A
``SymbridgeError`` is a clean rejection; any other exception is a crash; libFuzzer's ``-timeout`` turns an
input slower than that into a hang. Half the mutations are structure-aware (table fields, section bytes,
self-jumping code: ``harness.apply_ops``), half libFuzzer's own byte mutations.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

REPLAY = len(sys.argv) > 1 and sys.argv[1] == "--replay"
if REPLAY:  # plain Python, so that coverage.py measures it
    from tests.fuzz import harness
else:
    import atheris

    with atheris.instrument_imports(include=["symbridge", "elftools", "tests.fuzz.harness"]):
        import elftools.elf.elffile  # noqa: F401
        import symbridge.binary  # noqa: F401
        import symbridge.model.features  # noqa: F401
        from tests.fuzz import harness

harness._model()  # build the projection once, outside the timed inputs


def ignore_symbols_of(data: bytes) -> bool:
    return len(data) > 15 and bool(data[15] & 1)


def test_one_input(data: bytes) -> None:
    harness.run_bytes(data, ignore_symbols_of(data))


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if rng.random() < 0.5 and data[:4] == b"\x7fELF":
        out = harness.apply_ops(data, harness.random_ops(rng, rng.randint(1, 4)))
        if rng.random() < 0.5:
            out = out[:15] + bytes([out[15] ^ 1]) + out[16:] if len(out) > 15 else out
        return out[:max_size]
    return atheris.Mutate(data, max_size)


def replay(paths: list[str]) -> int:
    """Run every input once; exceptions other than SymbridgeError propagate (a crash)."""
    files = [f for p in paths for f in (sorted(Path(p).rglob("*")) if Path(p).is_dir() else [Path(p)])
             if f.is_file()]
    for f in files:
        data = f.read_bytes()
        harness.run_bytes(data, ignore_symbols_of(data))
        harness.run_bytes(data, not ignore_symbols_of(data))
    print(f"replayed {len(files)} inputs, both ways, no crash")
    return 0


if __name__ == "__main__":
    if REPLAY:
        sys.exit(replay(sys.argv[2:]))
    atheris.Setup(sys.argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
