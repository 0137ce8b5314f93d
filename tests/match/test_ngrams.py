"""The TF-IDF view of mnemonic n-grams (the matcher's second view of the code)."""

from types import SimpleNamespace

import numpy as np

from symbridge.match.ngrams import ngram_counts, tfidf_vectors


def fn(*mnemonics):
    return SimpleNamespace(facts=SimpleNamespace(mnemonics=list(mnemonics)))


def test_counts_hold_every_one_two_and_three_gram_within_each_function():
    fs = [fn("push", "mov", "call", "pop", "ret"), fn("ret"), fn(), fn("mov", "mov")]
    c = ngram_counts(fs)
    # n mnemonics: n 1-grams, n-1 2-grams, n-2 3-grams; none runs across two functions
    assert c.sum(axis=1).tolist() == [5 + 4 + 3, 1, 0, 2 + 1]
    assert (c == ngram_counts(list(reversed(fs)))[::-1]).all()  # a function's counts do not hang on the others


def test_same_code_is_identical_and_order_matters_beyond_single_mnemonics():
    a = fn("push", "mov", "add", "imul", "pop", "ret")
    shuffled = fn("imul", "ret", "push", "add", "pop", "mov")
    other = fn("xor", "cmp", "jne", "lea", "ret")
    va, vb = tfidf_vectors([a, other], [fn(*a.facts.mnemonics), shuffled, other])
    assert np.allclose(np.linalg.norm(va, axis=1), 1.0) and np.allclose(np.linalg.norm(vb, axis=1), 1.0)
    assert va[0] @ vb[0] > 0.999  # the same code
    assert 0.2 < va[0] @ vb[1] < 0.9  # the same mnemonics in another order: the 1-grams alone agree
    assert va[0] @ vb[2] < va[0] @ vb[1]
    again = tfidf_vectors([a, other], [fn(*a.facts.mnemonics), shuffled, other])
    assert all((x == y).all() for x, y in zip((va, vb), again))  # deterministic


def test_no_functions_give_empty_vectors():
    va, vb = tfidf_vectors([], [fn("ret")])
    assert va.shape == (0, vb.shape[1]) and np.allclose(np.linalg.norm(vb, axis=1), 1.0)
