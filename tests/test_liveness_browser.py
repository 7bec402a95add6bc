"""The liveness challenge in the web page, end to end: ``faceprint serve --liveness-actions turn_right
--require-liveness``, Debian's Chromium driven by Playwright, its fake camera fed from a .y4m file.

The camera shows a real recording that turns its head (a SimpleFR clip segment, framed as a webcam
would see the face, played forward then back so that the loop Chromium plays has no jump), or a
constructed printed-photo replay (an LFW photo on a card swung +-35 degrees). The first must pass,
the second fail. Files are made at test time from ../shared/data; skips without it or Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
from playwright import sync_api

from .liveness_clips import TURN_RIGHT, card_replay, frame_on_face, palindrome, read_segment, write_y4m
from .test_server_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, live_server, new_page, sign_in

expect = sync_api.expect
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, admin key) of ``faceprint serve`` asking every challenge for a right turn, and
    requiring a passed one for identify and enrol."""
    args = ("--liveness-actions", "turn_right", "--require-liveness")
    with live_server(tmp_path_factory.mktemp("liveness"), "liveness-test", *args) as running:
        yield running


@pytest.fixture()
def camera_page() -> Iterator[Any]:
    """``camera_page(y4m)``: a page whose fake camera plays that file (a browser per file: the
    camera is a launch flag)."""
    with sync_api.sync_playwright() as pw:
        browsers: list[Any] = []

        def open_page(y4m: Path) -> Any:
            args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={y4m}"]
            browsers.append(pw.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True))
            return new_page(browsers[-1])

        yield open_page
        for browser in browsers:
            browser.close()


def run_check(p: Any, server: tuple[str, str]) -> Any:
    sign_in(p, server)
    p.click("#tab-btn-liveness")
    expect(p.locator("#liveness-required-note")).to_be_visible()
    p.click("#liveness-start")
    verdict = p.locator("#liveness-view-verdict")
    expect(verdict).not_to_be_empty(timeout=60_000)
    return verdict


def test_real_head_turn_passes_and_unlocks_identify(
    server: tuple[str, str], camera_page: Any, data_dir: Path, tmp_path: Path
) -> None:
    frames, fps = read_segment(data_dir, TURN_RIGHT)
    p = camera_page(write_y4m(tmp_path / "turn.y4m", palindrome(frame_on_face(frames, TURN_RIGHT.box)), fps))
    verdict = run_check(p, server)
    expect(verdict).to_contain_text("Passed")
    expect(p.locator("#liveness-view-actions li")).to_contain_text("turn right (done)")
    p.screenshot(path=str(ARTIFACTS / "liveness_browser_passed.png"), full_page=True)

    # identify from the camera on a server that requires liveness: the challenge runs first
    p.click("#tab-btn-identify")
    p.click("#identify-camera-open")
    video = p.locator("#identify-camera video")
    p.wait_for_function("v => v.readyState >= 2 && v.videoWidth > 0", arg=video.element_handle(), timeout=30_000)
    p.click("#identify-camera-capture")
    expect(p.locator("#identify-challenge-verdict")).to_contain_text("Passed", timeout=60_000)
    expect(p.locator("#identify-status")).to_contain_text("1 face(s)", timeout=60_000)
    assert not p.problems, p.problems


def test_printed_photo_replay_fails(server: tuple[str, str], camera_page: Any, data_dir: Path, tmp_path: Path) -> None:
    frames, fps = card_replay(data_dir, tmp_path)
    p = camera_page(write_y4m(tmp_path / "card.y4m", palindrome(frames), fps))
    verdict = run_check(p, server)
    expect(verdict).to_contain_text("Failed: turn_right not done within 6 s")
    expect(verdict).to_contain_text("the passive model judged the face a spoof")
    p.screenshot(path=str(ARTIFACTS / "liveness_browser_replay.png"), full_page=True)
    # without a passed session the server identifies nothing, not even a frame of the replay
    base, key = server
    photo = cv2.imencode(".jpg", frames[0])[1].tobytes()
    r = httpx.post(f"{base}/v1/identify", headers={"X-API-Key": key}, files={"image": ("x.jpg", photo)}, timeout=60)
    assert r.status_code == 403 and r.json()["error"]["code"] == "liveness_required"
    assert not p.problems, p.problems
