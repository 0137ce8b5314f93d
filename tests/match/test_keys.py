"""What functions are keyed by apart from their vectors (match.keys)."""


def test_code_keys_are_the_same_in_every_process():
    """The library stores code keys that another process compares: Python's hash() of a str would differ."""
    import subprocess
    import sys

    from symbridge.match.keys import stable_hash

    value = (("mov r64, [r64+F8]", "ret"), ("free",), ("a string",))
    code = f"from symbridge.match.keys import stable_hash; print(stable_hash({value!r}))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert runs == {str(stable_hash(value))}
    assert 0 <= stable_hash(value) < 2**63 and stable_hash(value) != stable_hash(value[:2])


def test_cet_blind_code_keys_see_identical_code_whether_or_not_it_begins_with_endbr64():
    from symbridge.binary import Binary
    from symbridge.match.keys import code_keys
    from tests.fixtures.build import build

    cet = Binary(build("prog_big.c", extra=("-fcf-protection=full",))).code_functions
    plain = Binary(build("prog_big.c", extra=("-fcf-protection=none",))).code_functions
    both = sorted({f.name for f in cet if f.name} & {f.name for f in plain if f.name})
    a, b = ({f.name: f for f in fs} for fs in (cet, plain))
    fa, fb = [a[n] for n in both], [b[n] for n in both]
    # (the C runtime's own functions, _start and the like, begin with it in both)
    assert sum(f.facts.tokens[:1] == ["endbr64"] for f in fa) > 100 > 10 > sum(
        f.facts.tokens[:1] == ["endbr64"] for f in fb)
    same = sum(x == y for x, y in zip(code_keys(fa), code_keys(fb)))
    blind = sum(x == y for x, y in zip(code_keys(fa, cet_blind=True), code_keys(fb, cet_blind=True)))
    assert same < 0.2 * len(both) < 0.6 * len(both) < blind, (same, blind, len(both))  # 17 and 113 of 164
    bare = [f for f in fb if f.facts.tokens[:1] != ["endbr64"]]
    assert code_keys(bare, cet_blind=True) == code_keys(bare)  # code without endbr64 keeps its key
