"""``faceprint embed``: the templates it prints are the ones enrolment stores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceprint.gallery.sqlite import SQLiteStore

from .conftest import DEMO, faceprint

BIDEN = DEMO / "gallery" / "biden"
TWO = DEMO / "photos" / "two_people.jpg"


def records(stdout: str) -> dict[str, dict]:
    return {r["image"]: r for r in map(json.loads, stdout.splitlines())}


@pytest.mark.parametrize("flip", ["--flip", "--no-flip"])
def test_embed_prints_exactly_what_enrolment_stores(tmp_path: Path, flip: str) -> None:
    gallery = tmp_path / "g.db"
    faceprint(gallery, flip, "enroll", "--name", "biden", str(BIDEN), check=True)
    proc = faceprint(gallery, flip, "embed", "--json", str(BIDEN), check=True)
    printed = records(proc.stdout)
    stored = SQLiteStore(gallery, create=False).templates("biden")
    assert len(stored) == 2 == len(printed)
    for t in stored:
        (face,) = printed[t.source]["faces"]  # DEMO paths are absolute, as stored
        assert face["model"] == t.model and t.model.endswith("+flip") == (flip == "--flip")
        assert tuple(face["box"]) == tuple(t.box)
        # bit for bit: the JSON floats read back to the stored float32 values
        assert np.array_equal(np.asarray(face["embedding"], np.float32), t.embedding)


def test_embed_every_face_bad_files_and_text(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    proc = faceprint(tmp_path / "unused.db", "embed", "--json", str(TWO), str(bad), str(BIDEN))
    assert proc.returncode == 1  # the batch went on past the bad file
    printed = records(proc.stdout)
    assert set(printed) == {str(TWO), str(bad), str(BIDEN / "biden.jpg"), str(BIDEN / "biden2.jpg")}
    assert printed[str(bad)]["faces"] == [] and "broken.jpg" in printed[str(bad)]["error"]
    faces = printed[str(TWO)]["faces"]
    assert len(faces) == 2 and printed[str(TWO)]["error"] is None
    for face in faces:
        vector = np.asarray(face["embedding"])
        assert vector.shape == (128,) and abs(np.linalg.norm(vector) - 1) < 1e-3
    assert not (tmp_path / "unused.db").exists()  # embedding needs no gallery and makes none

    text = faceprint(tmp_path / "unused.db", "embed", str(TWO))
    assert text.returncode == 0
    assert f"{TWO}: 2 face(s), 128-d templates of" in text.stdout
