"""The corpus builder's manifest and pairs: cross-version rebuild pairs, rows kept for files not on disk."""

import json

from symbridge.train import corpus


def rebuild_row(suite, cc="gcc", opt="-O2", sha="a", name="libfoo.so.1.2"):
    return {"origin": "rebuild", "kind": "shared", "source_package": "foo", "suite": suite, "compiler": cc,
            "flags": f"{opt} -g0", "sha256": sha, "binary_package": "foo-rebuild",
            "relpath": f"train/foo/rebuild/{suite}/{cc}{opt}/lib/{name}"}


def test_one_build_of_bookworms_and_trixies_source_makes_a_cross_version_pair():
    rows = [rebuild_row("bookworm", sha="a"), rebuild_row("trixie", sha="b", name="libfoo.so.1.3"),
            rebuild_row("trixie", cc="clang", sha="c")]
    pairs = [p for p in corpus.train_pairs(rows) if p["kind"] == "cross-version"]
    assert [(p["reference"], p["target"]) for p in pairs] == [(rows[0]["relpath"], rows[1]["relpath"])]


def test_sid_stands_in_where_trixies_source_was_not_rebuilt():
    rows = [rebuild_row("bookworm", sha="a"), rebuild_row("sid", sha="b")]
    assert [p["target"] for p in corpus.train_pairs(rows) if p["kind"] == "cross-version"] == [rows[1]["relpath"]]


def test_the_same_code_in_both_suites_is_no_pair():
    rows = [rebuild_row("bookworm", sha="a"), rebuild_row("trixie", sha="a")]
    assert not [p for p in corpus.train_pairs(rows) if p["kind"] == "cross-version"]


def write_unit(out, row):
    unit = out / "train" / "foo" / "rebuild" / row["suite"] / "gcc-O2"
    unit.mkdir(parents=True, exist_ok=True)
    (out / row["relpath"]).parent.mkdir(parents=True, exist_ok=True)
    (out / row["relpath"]).write_bytes(b"\x7fELF")
    (unit / "records.jsonl").write_text(json.dumps(row) + "\n")
    (unit / ".done").write_text("")


def test_keep_missing_keeps_committed_rows_whose_files_are_elsewhere(tmp_path, monkeypatch):
    repo, out = tmp_path / "repo", tmp_path / "data"
    (repo / "corpus").mkdir(parents=True)
    monkeypatch.setattr(corpus, "REPO", repo)
    gone, here = rebuild_row("bookworm", sha="a"), rebuild_row("trixie", sha="b")
    (repo / "corpus" / "manifest-train.jsonl").write_text(json.dumps(gone) + "\n")
    write_unit(out, here)
    log = corpus.Log(tmp_path / "log")

    corpus.write_manifest("train", out, log)
    assert [json.loads(x)["relpath"] for x in (repo / "corpus" / "manifest-train.jsonl").read_text().splitlines()] \
        == [here["relpath"]]

    (repo / "corpus" / "manifest-train.jsonl").write_text(json.dumps(gone) + "\n")
    corpus.write_manifest("train", out, log, keep_missing=True)
    rows = [json.loads(x) for x in (repo / "corpus" / "manifest-train.jsonl").read_text().splitlines()]
    assert [r["relpath"] for r in rows] == [gone["relpath"], here["relpath"]]
    pairs = json.loads((repo / "corpus" / "pairs-train.json").read_text())
    assert [(p["kind"], p["reference"], p["target"]) for p in pairs] == \
        [("cross-version", gone["relpath"], here["relpath"])]


def test_leave_lists_builds_without_touching_the_committed_lists(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "corpus").mkdir(parents=True)
    monkeypatch.setattr(corpus, "REPO", repo)
    monkeypatch.setattr(corpus.Builder, "ensure_apt", lambda self: None)  # no archive: nothing to fetch here
    monkeypatch.setattr(corpus, "read_sources", lambda split: ["foo"])  # one package, fetched from nowhere
    args = ["--split", "train", "--only", "no-such-package", "--out", str(tmp_path / "data")]
    assert corpus.main(args + ["--leave-lists"]) == 0
    assert not (repo / "corpus" / "manifest-train.jsonl").exists()
    assert corpus.main(args) == 0
    assert (repo / "corpus" / "manifest-train.jsonl").exists() and (repo / "corpus" / "pairs-train.json").exists()
