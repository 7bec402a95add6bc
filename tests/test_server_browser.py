"""The web page, end to end: a real ``faceprint serve`` process, Debian's Chromium driven by
Playwright, the real engine on the demo photos.

Never downloads a browser: it uses /usr/bin/chromium (apt-get install chromium) and skips, saying
so, where that is missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api

from .conftest import DEMO, REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def _faceprint() -> list[str]:
    script = Path(sys.executable).with_name("faceprint")
    return [str(script)] if script.exists() else [sys.executable, "-m", "faceprint.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, admin key) of a live ``faceprint serve`` over an empty gallery."""
    gallery = tmp_path_factory.mktemp("browser") / "gallery.db"
    env = {**os.environ, "FACEPRINT_GALLERY": str(gallery)}
    created = subprocess.run(
        [*_faceprint(), "keys", "create", "--role", "admin", "--name", "browser-test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("fpk_"), created.stdout
    port = _free_port()
    log = (tmp_path_factory.getbasetemp() / "serve.log").open("w")
    proc = subprocess.Popen(
        [*_faceprint(), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"faceprint serve exited with {proc.returncode}"
            try:
                if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "faceprint serve did not come up in 120 s"
            time.sleep(0.3)
        yield base, key
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def page(server: tuple[str, str]) -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: d.accept())
        page.problems = problems
        yield page
        context.close()
        browser.close()


def test_enrol_identify_browse_remove(server: tuple[str, str], page: Any) -> None:
    base, key = server
    expect = sync_api.expect
    p = page
    ARTIFACTS.mkdir(exist_ok=True)

    # sign in: a wrong key is refused, the right one opens the app
    p.goto(base + "/")
    p.fill("#api-key", "fpk_not-a-key")
    p.click("#signin-submit")
    expect(p.locator("#signin-error")).to_contain_text("not accepted")
    p.fill("#api-key", key)
    p.click("#signin-submit")
    expect(p.locator("#app")).to_be_visible()
    expect(p.locator("#whoami")).to_contain_text("admin")
    p.problems.clear()  # the refused key's 401 was logged to the console, as it should be

    # enrol two people through the form (file picker)
    for person in ("obama", "biden"):
        p.click("#tab-btn-enrol")
        p.fill("#enrol-name", person)
        p.set_input_files("#enrol-files", [str(f) for f in sorted((DEMO / "gallery" / person).iterdir())])
        expect(p.locator("#enrol-selected li")).to_have_count(2)
        p.click("#enrol-submit")
        expect(p.locator("#enrol-status")).to_contain_text(f"{person}: 2 added", timeout=90_000)

    # identify a photo of both: two boxes, labelled with their names and scores
    p.click("#tab-btn-identify")
    p.set_input_files("#identify-file", str(DEMO / "photos" / "two_people.jpg"))
    boxes = p.locator("#identify-boxes .face-box")
    expect(boxes).to_have_count(2, timeout=90_000)
    labels = p.locator("#identify-boxes .face-label").all_inner_texts()
    assert {lab.split()[1] for lab in labels} == {"obama", "biden"}, labels
    assert all(0.9 < float(lab.split()[2]) <= 1.0 for lab in labels), labels
    expect(p.locator("#identify-status")).to_contain_text("2 recognised")
    # the boxes sit over the image, inside it
    img = p.locator("#identify-img").bounding_box()
    for i in range(2):
        b = boxes.nth(i).bounding_box()
        assert img and b and img["x"] <= b["x"] and b["x"] + b["width"] <= img["x"] + img["width"] + 1
    p.screenshot(path=str(ARTIFACTS / "server_browser_identify.png"), full_page=True)

    # the gallery, with a thumbnail per person
    p.click("#tab-btn-people")
    expect(p.locator("#people-grid .person")).to_have_count(2)
    expect(p.locator("#people-grid .person .thumb img")).to_have_count(2)
    p.screenshot(path=str(ARTIFACTS / "server_browser_people.png"), full_page=True)

    # rename one in place
    p.locator('#people-grid .person[data-name="obama"] button', has_text="Rename").click()
    p.fill('#people-grid .person[data-name="obama"] input', "barack obama")
    p.locator('#people-grid .person[data-name="obama"] button', has_text="Save").click()
    expect(p.locator('#people-grid .person[data-name="barack obama"] .thumb img')).to_have_count(1)

    # remove a person (the confirm dialog is accepted)
    p.locator('#people-grid .person[data-name="biden"] button.danger').click()
    expect(p.locator("#people-grid .person")).to_have_count(1)
    expect(p.locator("#people-status")).to_contain_text("Removed biden")
    listed = httpx.get(f"{base}/v1/identities", headers={"X-API-Key": key}).json()
    assert [i["name"] for i in listed["identities"]] == ["barack obama"]

    # nothing went wrong in the page: no script errors, no blocked resources (CSP)
    assert not p.problems, p.problems


def test_page_is_self_contained(server: tuple[str, str]) -> None:
    """Works offline: the page and its assets come from the service, nothing from elsewhere."""
    base, _ = server
    html = httpx.get(base + "/").text
    assert "http://" not in html and "https://" not in html
    for asset in ("/static/app.js", "/static/style.css"):
        response = httpx.get(base + asset)
        assert response.status_code == 200 and "https://" not in response.text
