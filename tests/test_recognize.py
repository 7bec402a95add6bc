"""Enrolment, identification and verification on real faces, over each store (SQLite, PostgreSQL)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from faceprint import FaceEngine, Recognizer, load_image
from faceprint.errors import MultipleFacesError, NoFaceError, UnknownIdentityError
from faceprint.gallery import Gallery

from .conftest import DEMO, FIXTURES

PHOTOS = DEMO / "photos"
LFW = FIXTURES / "lfw"


@pytest.fixture()
def recognizer(gallery_url: str, engine: FaceEngine) -> Recognizer:
    """An empty gallery of each store (this module's tests run on both)."""
    return Recognizer(Gallery(gallery_url), engine)


def names(matches: list) -> set[str | None]:
    return {m.identity for m in matches}


def test_identify_known_people(demo_location: str, engine: FaceEngine) -> None:
    rec = Recognizer(Gallery(demo_location), engine)
    assert names(rec.identify(PHOTOS / "two_people.jpg")) == {"obama", "biden"}
    assert names(rec.identify(PHOTOS / "kit_with_rose.jpg")) == {"kit_harington", "rose_leslie"}
    (match,) = rec.identify(PHOTOS / "johnsnow_test1.jpg")
    assert match.identity == "kit_harington"
    assert match.candidates[0].identity == "kit_harington"
    assert match.score == match.candidates[0].score >= rec.identify_threshold
    assert [c.score for c in match.candidates] == sorted((c.score for c in match.candidates), reverse=True)


def test_views_scoring_names_the_demo_people_as_centroid_scoring_does(demo_location: str, engine: FaceEngine) -> None:
    """The demo people's photos agree with each other: each keeps one view, so nothing changes."""
    plain = Recognizer(Gallery(demo_location), engine)
    views = Recognizer(Gallery(demo_location, "views"), engine)
    for photo in ("two_people.jpg", "kit_with_rose.jpg", "johnsnow_test1.jpg"):
        faces = plain.faces(PHOTOS / photo)
        assert [(m.identity, m.candidates) for m in views.identify_faces(faces)] == [
            (m.identity, m.candidates) for m in plain.identify_faces(faces)
        ]


def test_strangers_are_unknown(demo_location: str, engine: FaceEngine) -> None:
    rec = Recognizer(Gallery(demo_location), engine)
    for person in sorted(LFW.iterdir())[:6]:
        photo = sorted(person.iterdir())[0]
        matches = rec.identify(photo)
        assert matches, photo
        assert all(m.identity is None for m in matches), (photo, matches[0].candidates)


def test_identify_with_unknowns_on_lfw_fixtures(recognizer: Recognizer) -> None:
    people = sorted(LFW.iterdir())
    enrolled, strangers = people[:5], people[5:]
    for person in enrolled:
        result = recognizer.enroll(person.name, sorted(person.iterdir())[:2], largest=True)
        assert len(result.added) == 2, result.errors
    for person in enrolled:
        probe = sorted(person.iterdir())[2]
        best = max(recognizer.identify(probe), key=lambda m: m.face.width)
        assert best.identity == person.name, (probe, best.candidates)
    for person in strangers:
        best = max(recognizer.identify(sorted(person.iterdir())[0]), key=lambda m: m.face.width)
        assert best.identity is None, (person.name, best.candidates)


def test_verify_pairs(recognizer: Recognizer) -> None:
    bush = sorted((LFW / "George_W_Bush").iterdir())
    blair = sorted((LFW / "Tony_Blair").iterdir())
    same = recognizer.verify(bush[0], bush[1])
    assert same.same and same.score >= same.threshold
    diff = recognizer.verify(bush[0], blair[0])
    assert not diff.same and diff.score < diff.threshold
    assert recognizer.verify(bush[0], bush[0]).score == pytest.approx(1.0, abs=1e-5)


def test_verify_against_identity(demo_location: str, engine: FaceEngine) -> None:
    rec = Recognizer(Gallery(demo_location), engine)
    assert rec.verify_identity(PHOTOS / "obama1.jpg", "obama").same
    assert not rec.verify_identity(PHOTOS / "obama1.jpg", "biden").same
    with pytest.raises(UnknownIdentityError, match="nobody"):
        rec.verify_identity(PHOTOS / "obama1.jpg", "nobody")


def test_enrol_rejects_ambiguous_group_photo_and_no_face(recognizer: Recognizer) -> None:
    result = recognizer.enroll(
        "rose", [PHOTOS / "kit_with_rose.jpg", FIXTURES / "no_faces" / "skimage_moon.png", PHOTOS / "obama1.jpg"]
    )
    assert result.added == [str(PHOTOS / "obama1.jpg")]  # the good photo still goes in
    messages = dict(result.errors)
    # neither face of the group photo agrees with the person's other photo, and neither dominates
    assert "2 faces and none is clearly the person" in messages[str(PHOTOS / "kit_with_rose.jpg")]
    assert "no face found" in messages[str(FIXTURES / "no_faces" / "skimage_moon.png")]
    with pytest.raises(MultipleFacesError):
        recognizer.single_face(PHOTOS / "two_people.jpg")
    with pytest.raises(NoFaceError):
        recognizer.single_face(FIXTURES / "no_faces" / "skimage_chelsea.png")  # a cat is not a face
    largest = recognizer.enroll("group", [PHOTOS / "two_people.jpg"], largest=True)
    assert len(largest.added) == 1


def test_reenrolling_the_same_image_does_not_duplicate(recognizer: Recognizer, tmp_path: Path) -> None:
    photo = PHOTOS / "obama1.jpg"
    copy = tmp_path / "renamed-copy.jpg"
    shutil.copy(photo, copy)
    assert len(recognizer.enroll("obama", [photo]).added) == 1
    again = recognizer.enroll("obama", [photo, copy])  # same bytes under another name, too
    assert again.added == [] and len(again.skipped) == 2
    assert recognizer.gallery.get_identity("obama").templates == 1
    # the same photo may still be enrolled for another person (the store keys on identity)
    assert len(recognizer.enroll("someone-else", [photo]).added) == 1


def test_templates_record_model_and_source(recognizer: Recognizer) -> None:
    recognizer.enroll("obama", [PHOTOS / "obama1.jpg"])
    (t,) = recognizer.gallery.templates("obama")
    assert t.model == recognizer.model == "dlib_face_recognition_resnet_model_v1+flip"
    assert t.source == str(PHOTOS / "obama1.jpg") and len(t.file_sha256) == 64
    assert t.box[2] > t.box[0] and t.box[3] > t.box[1]
    assert np.linalg.norm(t.embedding) == pytest.approx(1.0, abs=1e-5)
    assert t.created_at is not None


def test_flip_averaging_and_embedders_agree(engine: FaceEngine) -> None:
    """The dlib reference backend and the ONNX default give the same templates."""
    dlib_engine = FaceEngine(detector=engine.detector, embedder="dlib")
    img = load_image(PHOTOS / "obama1.jpg").pixels
    a = engine.analyze(img)[0].embedding
    b = dlib_engine.analyze(img)[0].embedding
    assert float(a @ b) > 0.9999


def test_worker_processes_give_the_same_answers(
    demo_location: str, engine: FaceEngine, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rec = Recognizer(Gallery(demo_location), engine)
    photos = sorted(PHOTOS.iterdir()) + [tmp_path / "missing.jpg"]
    one = list(rec.identify_many(photos, workers=1))
    two = list(rec.identify_many(photos, workers=2))
    assert [r.source for r, _ in two] == [str(p) for p in photos]  # input order kept
    assert two[-1][0].error is not None and "no such file" in two[-1][0].error
    for (r1, m1), (r2, m2) in zip(one, two):
        assert r1.error == r2.error
        assert [(m.identity, m.face.box) for m in m1] == [(m.identity, m.face.box) for m in m2]
        for a, b in zip(m1, m2):
            assert a.score == pytest.approx(b.score, abs=1e-5)
    # enrolment through workers stores the same number of templates as in-process
    fresh_location = request.getfixturevalue("pg_url") if "://" in demo_location else tmp_path / "g.db"
    fresh = Recognizer(Gallery(fresh_location), engine)
    jobs = [(p.name, sorted(p.iterdir())) for p in sorted((DEMO / "gallery").iterdir())]
    results = fresh.enroll_many(jobs, workers=2)
    assert sum(len(r.added) for r in results) == 9 and not any(r.errors for r in results)
