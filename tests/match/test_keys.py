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
