"""The report in a real browser: headless Chromium (the Debian ``chromium`` package, driven by Playwright with
``executable_path``; no browser download) opens ``index.html`` from ``file://`` and checks that it loads
with no console error and no request leaving ``file://``, that every image and SVG decodes, that the main
table shows the records' values, that the page fits 1280 px, and writes a screenshot and a print PDF.

Marked ``browser`` (``make test-browser``; ``.ci/run`` installs chromium when it is missing). Without a
Chromium binary the test fails with the command that installs one: it never skips.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench.store import RunStore
from reports.render import render
from tests.test_report_page import make_results

pytestmark = pytest.mark.browser


def chromium_path() -> str:
    """``$PLAYWRIGHT_CHROMIUM_EXECUTABLE``, else ``chromium`` / ``chromium-browser`` on PATH."""
    for cand in (os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE"), shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if cand and Path(cand).is_file():
            return cand
    pytest.fail("no Chromium: install it with `apt-get install -y chromium` (Debian) or set "
                "PLAYWRIGHT_CHROMIUM_EXECUTABLE to a Chromium binary")


def _expected(metric: str, value: float) -> str:
    return f"{100 * value:.1f}" if metric in ("miou", "accu") else f"{value:.2f}" if metric == "fid" else f"{value:.3f}"


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    make_results(tmp_path)
    html = render(tmp_path / "results", tmp_path / "report", style_grid=False)
    records = {r.run_id: r for r in RunStore(tmp_path / "results").all()}
    console, requests, failed = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning")
                    else None)
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(html.as_uri(), wait_until="load")
            page.wait_for_load_state("networkidle")

            assert console == []
            assert requests and all(u.startswith("file://") for u in requests), requests
            assert failed == []
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.getAttribute('src'), e.complete && e.naturalWidth > 0])")
            srcs = [s for s, _ in images]
            assert [s for s, ok in images if not ok] == []
            assert sum(s.endswith(".svg") for s in srcs) == 3 and sum(s.endswith(".png") for s in srcs) >= 16
            # the page fits 1280 px: wide tables scroll inside their own box, the page does not
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280

            # the main table's cells are the records' values (value ± half-width of the 95% interval)
            table = page.locator("table.main").first
            metrics = table.locator("th[data-metric]").evaluate_all("els => els.map(e => e.dataset.metric)")
            rows = table.locator("tr[data-run-ids]")
            assert rows.count() == 2
            for i in range(rows.count()):
                row = rows.nth(i)
                rec = records[row.get_attribute("data-run-ids")]
                texts = row.locator("td").all_inner_texts()[1:]
                for m, text in zip(metrics, texts):
                    value, _, pm = text.rstrip("≈*").partition(" ± ")
                    assert value == _expected(m, rec.metrics[m]), (m, text)
                    if m in rec.intervals:
                        iv = rec.intervals[m]
                        half = (iv["high"] - iv["low"]) / 2
                        assert pm == _expected(m, half), (m, text)

            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 20_000
            page.emulate_media(media="print")
            pdf = tmp_path / "report.pdf"
            page.pdf(path=str(pdf), format="A4", print_background=True)
            assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 20_000
            assert page.evaluate("getComputedStyle(document.querySelector('nav.toc')).display") == "none"
        finally:
            browser.close()
