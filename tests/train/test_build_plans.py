"""Rebuilds try the source's own configure first, then regenerate it (autoreconf) when it will not run."""

from symbridge.train.corpus import build_plans


def test_a_shipped_configure_is_tried_first_and_autoreconf_after(tmp_path):
    (tmp_path / "configure").write_text("#!/bin/sh\n")
    (tmp_path / "configure.ac").write_text("AC_INIT\n")
    plans = build_plans(tmp_path, "gcc", "-O2")
    assert plans[0][0].startswith("./configure")
    assert plans[1][0] == "autoreconf -fi" and plans[1][1].startswith("./configure")


def test_without_configure_autoreconf_comes_first(tmp_path):
    (tmp_path / "configure.ac").write_text("AC_INIT\n")
    assert build_plans(tmp_path, "clang", "-O0")[0][0] == "autoreconf -fi"


def test_openssls_own_configure_is_tried_and_builds_the_libraries_only(tmp_path):
    (tmp_path / "Configure").write_text("#!/usr/bin/env perl\n")
    (tmp_path / "crypto").mkdir()
    (tmp_path / "Makefile").write_text("all:\n")
    plans = build_plans(tmp_path, "clang", "-O3")
    assert plans[0] == ["./Configure linux-x86_64 shared no-tests", "make -j2 build_libs"]


def test_openssls_top_dir_is_the_build_dir_not_a_demo_with_a_makefile(tmp_path):
    from symbridge.train.corpus import build_dir

    (tmp_path / "Configure").write_text("#!/usr/bin/env perl\n")
    (tmp_path / "demos" / "bio").mkdir(parents=True)
    (tmp_path / "demos" / "bio" / "Makefile").write_text("all:\n")
    assert build_dir(tmp_path) == tmp_path
