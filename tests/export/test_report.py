"""The HTML report: self-contained, escaped, and working in a headless Chromium (skipped when absent)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from symbridge import Binary, transfer
from symbridge.demo import demo_files
from symbridge.export.report import write_report

ARTIFACTS = Path(__file__).parent / "artifacts"
HOSTILE = "<script>alert(1)</script>&\"'\u2028</b>"
MANGLED, DEMANGLED = "_ZN4demo5parseEPKc", "demo::parse(char const*)"


@pytest.fixture(scope="module")
def demo_result() -> dict:
    ref, tgt, _ = demo_files()
    return transfer(Binary(ref), Binary(tgt, ignore_symbols=True))


def hostile(result: dict) -> dict:
    r = copy.deepcopy(result)
    row = next(f for f in r["functions"] if f["name"] and "import" not in f["via"])
    row["name"] = HOSTILE
    row["candidates"][0]["name"] = HOSTILE + "-cand"
    # a C++ name, which the page shows demangled
    row = next(f for f in reversed(r["functions"]) if f["name"] and "import" not in f["via"]
               and not f["name"].startswith("cmd_"))
    row["name"] = MANGLED
    return r


@pytest.fixture(scope="module")
def report(demo_result, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    write_report(hostile(demo_result), out)
    return out


def test_self_contained(report):
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>")
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", text, re.IGNORECASE)
    assert not [u for u in refs if u.lower().startswith(("http:", "https:", "//"))]
    assert not re.search(r"<(link|script)[^>]+(src|href)=[\"']?(https?:)?//", text, re.IGNORECASE)
    assert "@import" not in text and "url(http" not in text
    assert "Content-Security-Policy" in text


def test_hostile_names_escaped(report):
    text = report.read_text()
    assert "<script>alert(1)" not in text
    assert "</b>" not in text and "\u2028" not in text
    # the JSON blocks decode back to the exact hostile name
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text,
                                re.DOTALL).group(1))
    assert any(r["n"] == HOSTILE for r in data["rows"])
    assert text.count("<script") == 3  # two JSON blocks and the page's own code


def test_summary_counts(demo_result, report):
    text = report.read_text()
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', text, re.DOTALL).group(1))
    s = data["summary"]
    code = [f for f in demo_result["functions"] if "import" not in f["via"]]
    assert s["functions"] == len(demo_result["functions"])
    assert s["code"] == len(code)
    assert s["named"] == sum(1 for f in code if f["name"])
    assert sum(n for _, n in s["bands"]) == len(code)
    assert data["plot"].get("ref") and data["plot"]["links"]
    dis = json.loads(re.search(r'id="report-disasm">(.*?)</script>', text, re.DOTALL).group(1))
    assert dis["tgt"] and dis["ref"]
    assert all(len(d.get("t", [])) <= 400 for d in dis["tgt"].values())


def test_relative_paths_found_from_the_result_folder(demo_result, tmp_path, monkeypatch):
    """A result written with relative paths, reported from another directory: the binaries are looked for
    from the result file's folder (base), so the map and the disassembly are there."""
    r = copy.deepcopy(demo_result)
    (tmp_path / "bins").mkdir()
    for side in ("reference", "target"):
        shutil.copy(r[side], tmp_path / "bins" / Path(r[side]).name)
        r[side] = Path(r[side]).name
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    def data_of(**kw):
        write_report(r, tmp_path / "r.html", **kw)
        return json.loads(re.search(r'id="report-data">(.*?)</script>', (tmp_path / "r.html").read_text(),
                                    re.DOTALL).group(1))

    assert "binary not available" in data_of()["plot"]["note"]
    found = data_of(base=tmp_path / "bins")
    assert found["plot"].get("ref") and found["tgt_error"] is None and not found["binary_errors"]


@pytest.mark.skipif(shutil.which("c++filt") is None, reason="c++filt (binutils) is not installed")
def test_mangled_names_shown_demangled(report):
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', report.read_text(), re.DOTALL).group(1))
    assert any(row["n"] == MANGLED for row in data["rows"])  # the data keeps the name as written
    assert data["dm"][MANGLED] == DEMANGLED and HOSTILE not in data["dm"]


def test_progress_counts_every_row_then_names_the_steps_after(demo_result, tmp_path):
    ticks, stages = [], []
    write_report(demo_result, tmp_path / "r.html", progress=ticks.append, stage=stages.append)
    assert sum(ticks) == len(demo_result["functions"])
    assert stages == ["drawing the embedding map", "writing the page"]


def test_the_map_embeds_only_the_points_it_draws(demo_result, tmp_path, monkeypatch):
    """Over MAX_POINTS functions, the map draws a sample, and only the sample is embedded (node's report took
    3.4 minutes and 7.5 GB when every function of both sides was)."""
    import symbridge.export.report as report_module
    from symbridge.model.model import Model

    embedded = []
    real = Model.embed_own

    def counting(self, functions, *a, **kw):
        embedded.append(len(functions))
        return real(self, functions, *a, **kw)

    monkeypatch.setattr(Model, "embed_own", counting)
    monkeypatch.setattr(report_module, "MAX_POINTS", 60)
    write_report(demo_result, tmp_path / "r.html")
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', (tmp_path / "r.html").read_text(),
                                re.DOTALL).group(1))
    plot = data["plot"]
    assert sum(embedded) == len(plot["ref"]["x"]) + len(plot["tgt"]["x"]) <= 60
    assert plot["links"] and all(t < len(plot["tgt"]["x"]) and r < len(plot["ref"]["x"]) for t, r, _ in plot["links"])
    assert "of" in plot["note"] and "own-code" in plot["note"]


def test_missing_binaries_and_cap(demo_result, tmp_path):
    r = copy.deepcopy(demo_result)
    r["reference"] = str(tmp_path / "gone-ref")
    out = tmp_path / "r.html"
    write_report(r, out, max_disasm=3)
    text = out.read_text()
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', text, re.DOTALL).group(1))
    dis = json.loads(re.search(r'id="report-disasm">(.*?)</script>', text, re.DOTALL).group(1))
    assert "binary not available" in data["plot"]["note"] and "ref" not in data["plot"]
    assert all(d["error"].startswith("binary not available") for d in dis["ref"].values())
    assert all(len(d["t"]) <= 3 for d in dis["tgt"].values())
    r["target"] = str(tmp_path / "gone-tgt")
    write_report(r, out)
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', out.read_text(), re.DOTALL).group(1))
    assert data["tgt_error"].startswith("binary not available")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temp file left behind


def test_a_large_result_holds_disassembly_up_to_its_budget_the_named_functions_first(demo_result, tmp_path):
    out = tmp_path / "r.html"
    write_report(demo_result, out)
    whole = json.loads(re.search(r'id="report-disasm">(.*?)</script>', out.read_text(), re.DOTALL).group(1))
    assert not any("error" in d for side in whole.values() for d in side.values())
    named = {f"{f['address']:x}" for f in demo_result["functions"] if f["name"]}  # the page's keys
    budget = sum(len(d["o"]) for a, d in whole["tgt"].items() if a in named) // 2
    assert budget > 1000
    write_report(demo_result, out, budget=budget)
    dis = json.loads(re.search(r'id="report-disasm">(.*?)</script>', out.read_text(), re.DOTALL).group(1))
    left_out = [a for a, d in dis["tgt"].items() if "error" in d]
    assert left_out and all(d["error"].startswith("disassembly left out") for d in dis["tgt"].values() if "error" in d)
    assert set(left_out) >= {a for a in dis["tgt"] if a not in named}  # the unnamed ones went without first
    assert all(dis["tgt"][a] == whole["tgt"][a] for a in dis["tgt"] if a not in left_out)
    shown = sum(len(d.get("o", ())) for side in dis.values() for d in side.values())
    assert budget <= shown <= budget + 2 * 400  # the one that crossed it is whole


# ----------------------------------------------------------------------------------------- browser
def _driver():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium)")
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_bin = shutil.which("chromedriver")
    if not chrome or not driver_bin:
        pytest.skip("chromium/chromedriver not installed (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="symbridge-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1900"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        drv = webdriver.Chrome(service=Service(driver_bin), options=opts)
    except Exception as exc:  # noqa: BLE001 - a browser that will not start is an environment problem
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"chromium would not start: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    return drv, profile


def test_in_browser(report):
    from selenium.webdriver.common.by import By

    drv, profile = _driver()
    try:
        drv.get(report.resolve().as_uri())
        body_rows = drv.find_elements(By.CSS_SELECTOR, "#rows tr.fn")
        assert body_rows, "the table is empty"
        # the hostile name is shown as text, and no script ran from it
        assert drv.execute_script("return window.alert.toString().indexOf('native') >= 0")
        cells = [td.text for td in drv.find_elements(By.CSS_SELECTOR, "#rows tr.fn td:nth-child(2)")]
        assert any("<script>alert(1)</script>" in c for c in cells)
        if shutil.which("c++filt"):  # shown demangled, the mangled name in the tooltip, found by either
            drv.find_element(By.ID, "filter").send_keys("demo::parse")
            time.sleep(0.4)
            cell = drv.find_element(By.CSS_SELECTOR, "#rows tr.fn td:nth-child(2)")
            assert (cell.text, cell.get_attribute("title")) == (DEMANGLED, MANGLED)
            drv.execute_script("document.getElementById('filter').value='';"
                               "document.getElementById('filter').dispatchEvent(new Event('input'))")
            time.sleep(0.4)

        def confidences():
            return [float(td.get_attribute("data-value"))
                    for td in drv.find_elements(By.CSS_SELECTOR, "#rows tr.fn td:nth-child(3)")]

        before = confidences()
        assert before != sorted(before), "the demo's address order happens to be sorted by confidence"
        drv.find_element(By.CSS_SELECTOR, "#functions th[data-key=c]").click()
        after = confidences()
        assert after == sorted(after) and after != before
        drv.find_element(By.CSS_SELECTOR, "#functions th[data-key=c]").click()
        desc = confidences()
        assert desc == sorted(desc, reverse=True)

        # the filter box narrows the table
        box = drv.find_element(By.ID, "filter")
        box.send_keys("cmd_")
        deadline = time.time() + 5
        while time.time() < deadline:
            names = drv.execute_script(
                "return Array.from(document.querySelectorAll('#rows tr.fn'), tr => tr.textContent)")
            if names and all("cmd_" in n for n in names):
                break
            time.sleep(0.1)
        assert names and all("cmd_" in n for n in names)
        drv.execute_script("document.getElementById('filter').value='';"
                           "document.getElementById('filter').dispatchEvent(new Event('input'))")
        time.sleep(0.4)

        # the plot has pixels drawn
        painted = drv.execute_script("""
            var c = document.getElementById('plot'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            var n = 0; for (var i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;""")
        assert painted > 500

        # expand a matched row: candidates and both disassemblies
        drv.find_element(By.CSS_SELECTOR, "#functions th[data-key=a]").click()
        row = next(tr for tr in drv.find_elements(By.CSS_SELECTOR, "#rows tr.fn")
                   if tr.find_elements(By.CSS_SELECTOR, "td:nth-child(5)")[0].text and "embedding" not in tr.text
                   and "import" not in tr.text and "callgraph" in tr.text)
        row.click()
        pres = drv.find_elements(By.CSS_SELECTOR, "#rows td.detail .disasm pre")
        assert len(pres) == 2
        assert all(re.search(r"\b(ret|jmp|call|push|mov)\b", p.text) for p in pres)
        assert drv.find_elements(By.CSS_SELECTOR, "#rows td.detail table.cands tr")
        drv.execute_script("arguments[0].scrollIntoView({block:'center'})", pres[0])

        severe = [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
        assert not severe, severe

        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / ".gitignore").write_text("*\n")
        drv.execute_script("window.scrollTo(0, 0)")
        drv.save_screenshot(str(ARTIFACTS / "report.png"))
        drv.execute_script("document.querySelector('#rows tr.fn.open').scrollIntoView({block:'center'})")
        drv.save_screenshot(str(ARTIFACTS / "report-detail.png"))
        assert (ARTIFACTS / "report.png").stat().st_size > 10_000
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
