"""The training corpus keeps to the data rules: train packages only, no evaluation code, no seed binaries."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "corpus"  # the project's lists; the repository commits copies (corpus/)
LISTS = ("train-sources.txt", "dev-eval-sources.txt")


def listed(name):
    return {line.split("#")[0].strip() for line in (ROOT / "corpus" / name).read_text().splitlines()} - {""}


def manifest(split):
    return [json.loads(line) for line in (ROOT / "corpus" / f"manifest-{split}.jsonl").read_text().splitlines()]


def test_training_manifest_holds_only_train_sources():
    train, dev = listed("train-sources.txt"), listed("dev-eval-sources.txt")
    rows = manifest("train")
    assert rows
    pkgs = {r["source_package"] for r in rows}
    assert pkgs <= train
    assert not pkgs & dev
    assert all(r["split"] == "train" for r in rows)


@pytest.mark.parametrize("name", LISTS)
def test_committed_source_lists_are_the_projects(name):
    if not (SHARED / name).exists():
        pytest.skip(f"{SHARED / name} not here (a clone outside the project's tree)")
    assert (ROOT / "corpus" / name).read_text() == (SHARED / name).read_text()


def test_source_lists_are_disjoint_and_keep_out_the_seed():
    train, dev = listed("train-sources.txt"), listed("dev-eval-sources.txt")
    assert len(train) > 50 and len(dev) > 5
    assert not train & dev
    assert not (train | dev) & {"miredo", "fdupes"}


def test_model_packages_and_crossfit_folds_are_train_sources_and_the_folds_disjoint():
    train = listed("train-sources.txt")
    model, a, b = (listed(n) for n in ("model-train-packages.txt", "crossfit-A.txt", "crossfit-B.txt"))
    assert model <= train and a and b
    assert a <= model and b <= model  # each fold model trains on the model's packages but its fold's
    assert not a & b


def test_no_seed_binary_in_any_manifest():
    for split in ("train", "dev-eval"):
        for r in manifest(split):
            assert "miredo" not in r["relpath"] and "fdupes" not in r["relpath"]
            assert r["source_package"] not in ("miredo", "fdupes")


def test_evaluation_manifest_holds_only_dev_eval_sources():
    dev = listed("dev-eval-sources.txt")
    assert {r["source_package"] for r in manifest("dev-eval")} <= dev


def test_manifest_rows_are_complete():
    for r in manifest("train"):
        assert {"source_package", "version", "suite", "origin", "compiler", "flags", "relpath", "sha256"} <= set(r)
        assert len(r["sha256"]) == 64


def test_field_benchmark_packages_are_in_neither_list():
    import importlib.util
    import sys

    train, dev = listed("train-sources.txt"), listed("dev-eval-sources.txt")
    bench = ROOT / "benchmarks"
    sys.path.insert(0, str(bench))  # field_release imports accuracy beside it
    try:
        spec = importlib.util.spec_from_file_location("field_release", bench / "field_release.py")
        field = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(field)
    finally:
        sys.path.remove(str(bench))
    assert set(field.REBUILD_PACKAGES) <= set(field.PACKAGES)
    assert not set(field.PACKAGES) & (train | dev | {"miredo", "fdupes"})
