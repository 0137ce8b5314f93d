"""The calibration model: NumPy trees reproduce sklearn's, and a saved calibration loads back the same."""

import numpy as np
import pytest

from symbridge.match.confidence import FEATURES, Calibrator, match_features, signature_agreement, tree_scores

sklearn = pytest.importorskip("sklearn")


def fitted_trees(n=600, seed=0):
    from symbridge.train.fit_matcher import classifier, to_calibrator

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    y = (X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=n) > 0).astype(float)
    clf = classifier("trees").set_params(max_iter=30).fit(X, y)
    return clf, to_calibrator(clf, X), X


def test_numpy_trees_give_sklearn_decision_function():
    clf, cal, X = fitted_trees()
    Xn = np.random.default_rng(1).normal(size=(200, len(FEATURES)))  # rows the fit never saw
    assert np.allclose(cal.raw(Xn), clf.decision_function(Xn), atol=1e-9)


def test_calibration_with_trees_round_trips_through_json(tmp_path):
    _, cal, X = fitted_trees()
    cal.iso_x, cal.iso_y, cal.threshold = [0.0, 0.5, 1.0], [0.0, 0.4, 1.0], 0.9
    cal.save(tmp_path / "c.json")
    back = Calibrator.load(tmp_path / "c.json")
    assert np.array_equal(back.probability(X), cal.probability(X))
    assert back.threshold == 0.9


def test_calibration_of_another_feature_list_is_refused(tmp_path):
    Calibrator().save(tmp_path / "c.json")
    text = (tmp_path / "c.json").read_text().replace('"n_close"', '"something_else"')
    (tmp_path / "c.json").write_text(text)
    with pytest.raises(ValueError):
        Calibrator.load(tmp_path / "c.json")


def test_more_similarity_never_lowers_the_confidence():
    """The trees are held to confidence.MONOTONE: raising `sim` alone cannot lower the score."""
    from symbridge.match.confidence import MONOTONE

    assert MONOTONE["sim"] == 1
    _, cal, X = fitted_trees()
    k = FEATURES.index("sim")
    for delta in (0.1, 1.0, 5.0):
        up = X.copy()
        up[:, k] += delta
        assert np.all(cal.raw(up) >= cal.raw(X) - 1e-12)


def test_a_single_leaf_tree_is_a_constant():
    tree = {"feature": [-2], "threshold": [-2.0], "left": [-1], "right": [-1], "value": [0.25]}
    assert np.allclose(tree_scores([tree], np.zeros((3, 2))), 0.25)


def test_match_features_match_the_feature_list():
    x = match_features(0.9, 0.1, 2, 100, 120, ["embedding"], caller_diff=3, n_close=2)
    assert len(x) == len(FEATURES)
    assert len(Calibrator().coef) == len(FEATURES)  # the hand-set fallback reads the same rows
    assert 0.0 < float(Calibrator().probability(np.array([x]))[0]) < 1.0


def test_the_size_of_identical_code_is_evidence_only_for_identical_matches():
    k = FEATURES.index("identical_size")
    assert match_features(1.0, 0.5, 0, 1024, 1024, ["identical"])[k] == 10.0
    assert match_features(1.0, 0.5, 0, 1024, 1024, ["embedding"])[k] == 0.0


def test_a_logistic_calibration_reproduces_its_decision_function():
    from sklearn.linear_model import LogisticRegression

    from symbridge.train.fit_matcher import to_calibrator

    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, len(FEATURES)))
    y = (X[:, 0] > 0).astype(float)
    clf = LogisticRegression(max_iter=2000).fit(X, y)
    assert np.allclose(to_calibrator(clf, X).raw(X), clf.decision_function(X))


def test_signature_agreement_weighs_parameters_and_returns():
    from symbridge.analysis.lift import Facts

    f = Facts(params=[(0, 8), (1, 4)], returns=[4, -1])
    assert signature_agreement(f, Facts(params=[(1, 4), (0, 8)], returns=[4])) == 1.0  # order does not matter
    assert signature_agreement(f, Facts(params=[(0, 8)], returns=[4])) == 0.5  # one parameter fewer
    assert signature_agreement(f, Facts(params=[(0, 4)], returns=[0])) == 0.0
    assert signature_agreement(Facts(), Facts()) == 1.0  # no parameters, no ret (a tail call) on both sides
