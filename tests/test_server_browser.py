"""The web page, end to end: a real ``faceprint serve`` process, Debian's Chromium driven by
Playwright, the real engine on the demo photos.

Never downloads a browser: it uses /usr/bin/chromium (apt-get install chromium) and skips, saying
so, where that is missing. The camera is Chromium's fake one, showing a frame made from a demo photo.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from playwright import sync_api

from .conftest import DEMO, FIXTURES, REPO, shared_data_dir

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
    # a camera without a person at the keyboard: permission granted, frames from a file
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
expect = sync_api.expect

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def _faceprint() -> list[str]:
    script = Path(sys.executable).with_name("faceprint")
    return [str(script)] if script.exists() else [sys.executable, "-m", "faceprint.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(folder: Path, name: str, *serve_args: str) -> Iterator[tuple[str, str]]:
    """(base URL, admin key) of a ``faceprint serve *serve_args`` process over an empty gallery in
    ``folder``, once it answers /v1/health; its log goes to ``folder/serve.log``. Stopped on exit."""
    env = {**os.environ, "FACEPRINT_GALLERY": str(folder / "gallery.db")}
    created = subprocess.run(
        [*_faceprint(), "keys", "create", "--role", "admin", "--name", name],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("fpk_"), created.stdout
    port = _free_port()
    log = (folder / "serve.log").open("w")
    proc = subprocess.Popen(
        [*_faceprint(), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *serve_args],
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


def new_page(browser: Any) -> Any:
    """A page in a fresh context (its own session storage); ``page.problems`` collects script errors,
    failed loads and CSP refusals, which every test expects to stay empty."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(60_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    return page


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, admin key) of a live ``faceprint serve`` over an empty gallery."""
    with live_server(tmp_path_factory.mktemp("browser"), "browser-test") as running:
        yield running


def write_y4m(path: Path, photo: Path, size: tuple[int, int] = (640, 480)) -> Path:
    """A one-frame YUV4MPEG2 video of ``photo`` letterboxed to ``size`` (Chromium's fake camera
    loops it): a text header, then each frame as "FRAME" and its I420 planes."""
    w, h = size
    image = cv2.imread(str(photo))
    scale = min(w / image.shape[1], h / image.shape[0])
    fitted = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    frame = np.zeros((h, w, 3), np.uint8)
    top, left = (h - fitted.shape[0]) // 2, (w - fitted.shape[1]) // 2
    frame[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    i420 = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
    path.write_bytes(f"YUV4MPEG2 W{w} H{h} F15:1 Ip A1:1 C420jpeg\n".encode() + b"FRAME\n" + i420.tobytes())
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    camera = write_y4m(tmp_path_factory.mktemp("camera") / "kit.y4m", DEMO / "photos" / "johnsnow_test1.jpg")
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera}"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (see :func:`new_page`) that accepts every confirm dialog."""
    page = new_page(browser)
    page.on("dialog", lambda d: d.accept())
    yield page
    page.context.close()


def sign_in(p: Any, server: tuple[str, str]) -> None:
    base, key = server
    p.goto(base + "/")
    p.fill("#api-key", key)
    p.click("#signin-submit")
    expect(p.locator("#app")).to_be_visible()


def enrol(server: tuple[str, str], name: str, photos: list[Path]) -> None:
    """Through the API, as setup for a test of something else."""
    base, key = server
    files = [("files", (f.name, f.read_bytes(), "image/jpeg")) for f in photos]
    r = httpx.post(
        f"{base}/v1/identities/{name}/images",
        params={"create": True},
        files=files,
        headers={"X-API-Key": key},
        timeout=120,
    )
    assert r.status_code == 200 and r.json()["failed"] == 0, r.text


def api_get(server: tuple[str, str], path: str) -> Any:
    base, key = server
    r = httpx.get(base + path, headers={"X-API-Key": key}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_enrol_identify_browse_remove(server: tuple[str, str], page: Any) -> None:
    base, key = server
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
    listed = [i["name"] for i in api_get(server, "/v1/identities")["identities"]]
    assert "barack obama" in listed and "biden" not in listed

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


# ------------------------------------------------------------------------------- /docs
def test_docs_render_the_schema_offline(server: tuple[str, str], page: Any) -> None:
    """/docs renders the service's OpenAPI 3.1 document (Swagger UI 4 could not) from files the
    service serves itself: every request the page makes goes to the service."""
    base, _ = server
    p = page
    requests: list[str] = []
    p.on("request", lambda r: requests.append(r.url))
    p.goto(base + "/docs")
    identify = p.locator(".opblock-post", has_text="/v1/identify").first
    expect(identify).to_be_visible(timeout=20_000)
    expect(identify).to_contain_text("POST")
    expect(p.locator(".opblock-delete", has_text="/v1/identities/{name}/photos/{photo_id}")).to_be_visible()
    expect(p.get_by_text("Unable to render this definition")).to_have_count(0)
    # opening an operation shows its parameters (the spec was resolved, not only listed)
    identify.locator(".opblock-summary").click()
    expect(p.locator(".opblock-post.is-open")).to_contain_text("top_k")
    p.screenshot(path=str(ARTIFACTS / "server_docs.png"))
    assert requests and all(u.startswith(base + "/") or u.startswith("data:") for u in requests), requests
    assert not p.problems, p.problems


# ------------------------------------------------------------------------ crowd labels
def crowd_mosaic(path: Path, rows: int = 4, cols: int = 5, tile: int = 96) -> Path:
    """Faces packed edge to edge: LFW portraits cropped close and tiled (20 faces of ~60 px)."""
    photos = sorted((FIXTURES / "lfw").glob("*/*.jpg"))
    mosaic = np.zeros((rows * tile, cols * tile, 3), np.uint8)
    for k in range(rows * cols):
        image = cv2.imread(str(photos[k % len(photos)]))
        o = (image.shape[0] - 160) // 2
        r, c = divmod(k, cols)
        mosaic[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = cv2.resize(
            image[o : o + 160, o : o + 160], (tile, tile), interpolation=cv2.INTER_AREA
        )
    cv2.imwrite(str(path), mosaic)
    return path


LONG_NAME = "Colin Luther Powell, sixty-fifth United States Secretary of State"


@pytest.mark.parametrize("photo", ["mosaic", "retinaface_crowd_test.jpg"])
def test_crowd_labels_do_not_overlap(
    server: tuple[str, str], page: Any, tmp_path: Path, photo: str, request: pytest.FixtureRequest
) -> None:
    """On a crowd, each label sits where it covers no other label and no other face's centre
    (above its box, else below, else inside); long names are cut, the tooltip has them whole."""
    if photo == "mosaic":
        path = crowd_mosaic(tmp_path / "mosaic.jpg")
        enrol(server, LONG_NAME, sorted((FIXTURES / "lfw" / "Colin_Powell").iterdir())[1:])
    else:
        data = shared_data_dir()
        path = (data or tmp_path) / "group_photos" / photo
        if not path.is_file():
            pytest.skip(f"{photo} is in the shared data set, which is not here")
    p = page
    sign_in(p, server)
    p.set_input_files("#identify-file", str(path))
    expect(p.locator("#identify-status")).to_contain_text("face(s)", timeout=90_000)
    faces = p.locator("#identify-boxes .face-box")
    labels = p.locator("#identify-boxes .face-label")
    n = faces.count()
    assert n >= 13
    expect(labels).to_have_count(n)
    p.screenshot(path=str(ARTIFACTS / f"server_browser_crowd_{request.node.callspec.id}.png"), full_page=True)
    boxes = [faces.nth(i).bounding_box() for i in range(n)]
    rects = [labels.nth(i).bounding_box() for i in range(n)]
    img = p.locator("#identify-img").bounding_box()
    assert img and all(boxes) and all(rects)

    def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
        eps = 0.5
        return (
            a["x"] + a["width"] - eps > b["x"]
            and b["x"] + b["width"] - eps > a["x"]
            and a["y"] + a["height"] - eps > b["y"]
            and b["y"] + b["height"] - eps > a["y"]
        )

    def covers(a: dict[str, float], x: float, y: float) -> bool:
        return a["x"] < x < a["x"] + a["width"] and a["y"] < y < a["y"] + a["height"]

    texts = labels.all_inner_texts()
    owner = [int(t.split(".")[0]) - 1 for t in texts]  # "3. name score": the third box's
    assert sorted(owner) == list(range(n)), texts
    inside = [img["x"] - 1 <= b["x"] and b["x"] + b["width"] <= img["x"] + img["width"] + 1 for b in boxes]
    assert all(inside), boxes  # the boxes are over the image, even one narrower than the column
    for i in range(n):
        r = rects[i]
        assert img["x"] - 1 <= r["x"] and r["x"] + r["width"] <= img["x"] + img["width"] + 1, (i, r, img)
        assert img["y"] - 1 <= r["y"] and r["y"] + r["height"] <= img["y"] + img["height"] + 1, (i, r, img)
        for j in range(i + 1, n):
            assert not overlap(r, rects[j]), (i, j, r, rects[j])
        for k, b in enumerate(boxes):
            if k != owner[i]:
                assert not covers(r, b["x"] + b["width"] / 2, b["y"] + b["height"] / 2), (i, k, r, b)
    # small faces get a smaller font than the page's usual 13.6 px
    sizes = labels.evaluate_all("els => els.map(e => parseFloat(getComputedStyle(e).fontSize))")
    assert max(sizes) < 13.6, sizes
    # every label carries its full text in a tooltip; the long name is cut on the label only
    titles = [labels.nth(i).get_attribute("title") or "" for i in range(n)]
    assert all(t.startswith(f"{owner[i] + 1}. ") for i, t in enumerate(titles)), titles
    if photo == "mosaic":
        long = [i for i, t in enumerate(titles) if LONG_NAME in t]
        assert long, titles
        assert all(LONG_NAME not in texts[i] and "…" in texts[i] for i in long), texts
    assert not p.problems, p.problems


# ---------------------------------------------------------------------- several faces
def test_several_faces_message_names_the_checkbox(server: tuple[str, str], page: Any) -> None:
    """The page's advice names its own control, not the command line's --largest nor the API's
    largest=true; with the box ticked the largest face is taken."""
    p = page
    sign_in(p, server)
    p.click("#tab-btn-enrol")
    p.fill("#enrol-name", "group photo person")
    p.set_input_files("#enrol-files", str(DEMO / "photos" / "two_people.jpg"))
    p.click("#enrol-submit")
    status = p.locator("#enrol-status")
    expect(status).to_contain_text("2 faces", timeout=90_000)
    shown = status.inner_text() + " " + p.locator("#enrol-results").inner_text()
    assert "tick" in shown and "Use the largest face" in shown, shown
    assert "--largest" not in shown and "largest=true" not in shown, shown
    expect(p.locator("label", has_text="Use the largest face")).to_be_visible()
    p.check("#enrol-largest")
    p.set_input_files("#enrol-files", str(DEMO / "photos" / "two_people.jpg"))
    p.click("#enrol-submit")
    expect(status).to_contain_text("group photo person: 1 added", timeout=90_000)
    p.problems[:] = [m for m in p.problems if "422" not in m]  # the refused enrolment, logged as it should be
    assert not p.problems, p.problems


# ------------------------------------------------------------------- one photo at a time
def test_person_photos_listed_and_deleted_one_at_a_time(server: tuple[str, str], page: Any) -> None:
    enrol(server, "photo person", sorted((DEMO / "gallery" / "obama").iterdir()))
    p = page
    sign_in(p, server)
    p.click("#tab-btn-people")
    card = p.locator('#people-grid .person[data-name="photo person"]')
    card.get_by_role("button", name="Photos", exact=True).click()
    panel = p.locator("#photos-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("h3")).to_contain_text("photo person")
    items = panel.locator("#photos-list li")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("obama.jpg")
    expect(items.nth(1)).to_contain_text("obama2.jpg")
    p.screenshot(path=str(ARTIFACTS / "server_browser_photos.png"), full_page=True)
    items.filter(has_text="obama2.jpg").locator("button", has_text="Delete").click()  # confirm() is accepted
    expect(items).to_have_count(1)
    expect(items.nth(0)).to_contain_text("obama.jpg")
    expect(p.locator("#photos-status")).to_contain_text("Deleted obama2.jpg")
    expect(card.locator(".count")).to_contain_text("1 photo")
    photos = api_get(server, "/v1/identities/photo person/photos")["photos"]
    assert [ph["source"] for ph in photos] == ["obama.jpg"]
    assert not p.problems, p.problems


# ------------------------------------------------------------------------------ verify
def test_verify_tab(server: tuple[str, str], page: Any) -> None:
    p = page
    sign_in(p, server)
    p.click("#tab-btn-verify")
    p.set_input_files("#verify-a", str(DEMO / "photos" / "obama1.jpg"))
    p.set_input_files("#verify-b", str(DEMO / "gallery" / "obama" / "obama.jpg"))
    p.click("#verify-submit")
    result = p.locator("#verify-result")
    expect(result).to_contain_text("Same person", timeout=90_000)
    expect(result).to_contain_text("threshold")
    score, threshold = (float(x) for x in p.locator("#verify-result .numbers").get_attribute("data-scores").split())
    assert score >= threshold > 0.5
    p.set_input_files("#verify-b", str(DEMO / "gallery" / "biden" / "biden.jpg"))
    p.click("#verify-submit")
    expect(result).to_contain_text("Different people", timeout=90_000)
    p.screenshot(path=str(ARTIFACTS / "server_browser_verify.png"), full_page=True)
    assert not p.problems, p.problems


# ------------------------------------------------------------------------------ camera
def capture(p: Any, prefix: str) -> None:
    p.click(f"#{prefix}-camera-open")
    video = p.locator(f"#{prefix}-camera video")
    expect(video).to_be_visible()
    p.wait_for_function(
        "v => v.readyState >= 2 && v.videoWidth > 0", arg=video.element_handle(), polling=100, timeout=30_000
    )
    p.click(f"#{prefix}-camera-capture")


def test_camera_identify_and_enrol(server: tuple[str, str], page: Any) -> None:
    """Chromium's fake camera shows a photo of Kit Harington: a captured frame is identified, and enrolled."""
    enrol(server, "camera kit", sorted((DEMO / "gallery" / "kit_harington").iterdir()))
    p = page
    sign_in(p, server)
    capture(p, "identify")
    expect(p.locator("#identify-status")).to_contain_text("1 recognised", timeout=90_000)
    expect(p.locator("#identify-boxes .face-label")).to_contain_text("camera kit")
    expect(p.locator("#identify-camera video")).to_be_hidden()  # the camera is off once a frame is taken
    p.screenshot(path=str(ARTIFACTS / "server_browser_camera.png"), full_page=True)

    p.click("#tab-btn-enrol")
    p.fill("#enrol-name", "enrolled by camera")
    capture(p, "enrol")
    expect(p.locator("#enrol-selected li")).to_have_count(1)
    expect(p.locator("#enrol-selected li")).to_contain_text("camera")
    p.click("#enrol-submit")
    expect(p.locator("#enrol-status")).to_contain_text("enrolled by camera: 1 added", timeout=90_000)
    assert api_get(server, "/v1/identities/enrolled by camera")["templates"] == 1
    assert not p.problems, p.problems


# ------------------------------------------------------------------------- many people
def test_people_grid_follows_the_pages(server: tuple[str, str], page: Any) -> None:
    """More people than one page of GET /v1/identities: the page counts and finds them all, and
    shows their cards a screenful at a time."""
    base, key = server
    names = [f"page person {k:03d}" for k in range(130)]
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
        for name in names:
            assert client.post("/v1/identities", json={"name": name}).status_code == 201
        total = client.get("/v1/identities", params={"limit": 1}).json()["total"]
        try:
            p = page
            sign_in(p, server)
            p.click("#tab-btn-people")
            expect(p.locator("#people-count")).to_have_text(f"({total})")
            cards = p.locator("#people-grid .person")
            expect(cards).to_have_count(60)
            p.click("#people-more")
            expect(cards).to_have_count(120)
            p.fill("#people-filter", "page person 129")  # on the second page of the API's list
            expect(cards).to_have_count(1)
            expect(p.locator("#people-more")).to_be_hidden()
            assert not p.problems, p.problems
        finally:
            for name in names:
                client.delete(f"/v1/identities/{name}")


# ------------------------------------------------------------- people in these photos
def test_people_in_these_photos_grouped_and_a_group_enrolled(server: tuple[str, str], page: Any) -> None:
    """Photos of three people, mixed: one row per person (and one for a bystander), each with its
    strip of faces; naming one group enrols its three photos, and the person is then listed with
    them and suggested for that group the next time."""
    lfw = FIXTURES / "lfw"
    people = ("Ariel_Sharon", "Colin_Powell", "George_W_Bush")
    # Sharon's photo with a bystander first: the page sends his one-face photos before it, so that
    # his face there is chosen by agreeing with them, not merely by its size
    photos = [str(lfw / who / f"{who}_{k:04d}.jpg") for k in (2, 1, 3) for who in people]
    p = page
    sign_in(p, server)
    p.click("#tab-btn-cluster")
    p.set_input_files("#cluster-files", photos)
    groups = p.locator("#cluster-groups .group")
    expect(groups).to_have_count(4, timeout=90_000)  # Ariel_Sharon_0002.jpg shows a bystander too
    expect(p.locator("#cluster-status")).to_contain_text("10 face(s) in 9 photo(s): 4 group(s)")
    assert [groups.nth(k).locator(".strip img").count() for k in range(4)] == [3, 3, 3, 1]
    for who in people:
        row = groups.filter(has=p.locator(f'img[alt="Face 1 of {who}_0001.jpg"]'))
        expect(row).to_have_count(1)
        expect(row.locator(f'.strip img[alt^="Face 1 of {who}_"]')).to_have_count(3)
        expect(row.locator(".group-head")).to_contain_text("3 face(s) in 3 photo(s)")
    p.screenshot(path=str(ARTIFACTS / "server_browser_cluster.png"), full_page=True)

    # name Sharon's group and enrol it: all three photos, his face in the one with a bystander
    sharon = groups.filter(has=p.locator('img[alt="Face 1 of Ariel_Sharon_0001.jpg"]'))
    sharon.locator(".group-name").fill("ariel sharon")
    sharon.get_by_role("button", name="Enrol this group").click()
    expect(sharon.locator(".group-status")).to_contain_text("ariel sharon: 3 added", timeout=90_000)
    lines = sharon.locator(".group-results li")
    expect(lines).to_have_count(3)
    expect(lines.filter(has_text="Ariel_Sharon_0002.jpg")).to_contain_text("agrees with the person's other photos")
    assert "not the face of this group" not in sharon.locator(".group-results").inner_text()
    expect(sharon.locator(".suggest")).to_have_text("enrolled as ariel sharon")
    p.screenshot(path=str(ARTIFACTS / "server_browser_cluster_enrolled.png"), full_page=True)

    # the person is in the gallery with those three photos
    p.click("#tab-btn-people")
    expect(p.locator('#people-grid .person[data-name="ariel sharon"] .count')).to_have_text("3 photo(s)")
    photos_api = api_get(server, "/v1/identities/ariel sharon/photos")["photos"]
    assert sorted(ph["source"] for ph in photos_api) == [f"Ariel_Sharon_000{k}.jpg" for k in (1, 2, 3)]

    # the same photos again: Sharon's group is now recognised, its name box filled in
    p.click("#tab-btn-cluster")
    p.set_input_files("#cluster-files", photos)
    expect(groups).to_have_count(4, timeout=90_000)
    expect(sharon.locator(".suggest")).to_contain_text("looks like ariel sharon")
    expect(sharon.locator(".group-name")).to_have_value("ariel sharon")
    assert not p.problems, p.problems
