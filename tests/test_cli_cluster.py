"""``faceprint cluster``: faces grouped by person, then named and enrolled."""

from __future__ import annotations

import json
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from .conftest import FIXTURES, faceprint

LFW = FIXTURES / "lfw"


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    work = tmp_path_factory.mktemp("cluster")
    proc = faceprint(work / "unused.db", "cluster", "--json", "--out", str(work / "people"), str(LFW))
    assert proc.returncode == 0, proc.stderr
    return work, [json.loads(line) for line in proc.stdout.splitlines()]


def central(records: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    """Each LFW image's face nearest the middle of the 250x250 crop: its subject."""
    best: dict[str, dict[str, object]] = {}
    for r in records:
        left, top, right, bottom = r["box"]  # type: ignore[misc]
        offset = abs((left + right) / 2 - 125) + abs((top + bottom) / 2 - 125)
        if r["image"] not in best or offset < best[r["image"]]["_offset"]:  # type: ignore[operator]
            best[r["image"]] = {**r, "_offset": offset}  # type: ignore[index]
    return best


def test_json_lines_group_each_person(clustered: tuple[Path, list[dict[str, object]]]) -> None:
    _, records = clustered
    assert all(set(r) == {"image", "box", "cluster", "score"} for r in records)
    by_person: dict[str, Counter[object]] = defaultdict(Counter)
    for image, r in central(records).items():
        by_person[Path(image).parent.name][r["cluster"]] += 1
    assert len(by_person) == 10
    clusters_of = {person: counts.most_common(1)[0][0] for person, counts in by_person.items()}
    # most people have all three photos in one group; never two people in one group
    assert sum(counts.most_common(1)[0][1] == 3 for counts in by_person.values()) >= 8
    assert len(set(clusters_of.values())) == 10


def test_out_then_rename_then_enroll(clustered: tuple[Path, list[dict[str, object]]], tmp_path: Path) -> None:
    work, records = clustered
    sharon = central(records)[str(LFW / "Ariel_Sharon" / "Ariel_Sharon_0001.jpg")]["cluster"]
    people = tmp_path / "people"
    shutil.copytree(work / "people" / f"person-{sharon}", people / "ariel sharon")
    assert len(list((people / "ariel sharon").iterdir())) >= 2
    gallery = tmp_path / "g.db"
    faceprint(gallery, "enroll", str(people), check=True)
    proc = faceprint(gallery, "identify", "--json", str(LFW / "Ariel_Sharon" / "Ariel_Sharon_0003.jpg"), check=True)
    assert "ariel sharon" in {f["identity"] for f in json.loads(proc.stdout)["faces"]}


def test_min_size_and_bad_files(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(LFW / "Colin_Powell", folder)
    shutil.copy(LFW / "Tony_Blair" / "Tony_Blair_0002.jpg", folder)
    (folder / "broken.jpg").write_bytes(b"not an image")
    html = tmp_path / "report.html"
    proc = faceprint(tmp_path / "g.db", "cluster", "--json", "--min-size", "2", "--html", str(html), str(folder))
    assert proc.returncode == 1 and "broken.jpg" in proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    powell = {r["cluster"] for r in central(records).values() if "Powell" in str(r["image"])}
    blair = [r for r in central(records).values() if "Blair" in str(r["image"])]
    assert powell == {0} and blair[0]["cluster"] is None  # alone: below --min-size
    page = html.read_text()
    assert page.count("<section>") == 1 and "data:image/jpeg;base64," in page


def test_outputs_never_overwrite_an_input(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    shutil.copy(LFW / "Tony_Blair" / "Tony_Blair_0001.jpg", photo)
    before = photo.read_bytes()
    proc = faceprint(tmp_path / "g.db", "cluster", "--html", str(photo), str(photo))
    assert proc.returncode == 2 and "not overwriting" in proc.stderr
    assert photo.read_bytes() == before


def test_a_video_track_joins_the_photos_of_its_person(tmp_path: Path) -> None:
    clip = FIXTURES / "video" / "hamilton_120-199.mp4"
    photo = FIXTURES / "video" / "lin-manuel-miranda.png"
    proc = faceprint(tmp_path / "g.db", "cluster", "--json", "--out", str(tmp_path / "out"), str(clip), str(photo))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    (track,) = [r for r in records if r["image"] == str(clip)]
    assert track["track"] >= 1 and 0 <= track["start_s"] < track["end_s"]
    (still,) = [r for r in records if r["image"] == str(photo)]
    assert track["cluster"] == still["cluster"]  # Lin-Manuel Miranda, on stage and in his photo
    crops = sorted(p.name for p in (tmp_path / "out" / f"person-{still['cluster']}").iterdir())
    assert crops == ["hamilton_120-199-track1.jpg", "lin-manuel-miranda.jpg"]
