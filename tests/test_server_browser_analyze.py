"""The web page shows each identified face's analysis (expression, quality, head pose, eyes, mouth):
a real ``faceprint serve``, Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import DEMO
from .test_server_browser import ARTIFACTS, CHROMIUM, browser, expect, page, server, sign_in  # noqa: F401

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def test_identify_shows_each_faces_analysis(server: tuple[str, str], page: Any) -> None:  # noqa: F811
    p = page
    sign_in(p, server)
    p.click("#tab-btn-identify")
    p.set_input_files("#identify-file", str(DEMO / "photos" / "two_people.jpg"))
    expect(p.locator("#identify-boxes .face-box")).to_have_count(2, timeout=90_000)
    analyses = p.locator("#identify-list li .analysis")
    expect(analyses).to_have_count(2, timeout=90_000)
    for i in range(2):
        text = analyses.nth(i).inner_text()
        assert "expression: " in text and "quality " in text and "yaw " in text and "eyes open " in text, text
        assert 0.0 <= float(analyses.nth(i).get_attribute("data-quality") or "nan") <= 1.0
    ARTIFACTS.mkdir(exist_ok=True)
    p.screenshot(path=str(ARTIFACTS / "server_browser_analysis.png"), full_page=True)
    # the strict CSP held: no script errors, nothing blocked
    assert not p.problems, p.problems
