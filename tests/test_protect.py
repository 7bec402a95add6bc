"""Protected templates: a gallery stores templates times its key's secret orthogonal matrix; scores
within it are unchanged, templates of two galleries under two keys cannot be compared, and the key is
checked (never stored)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import numpy as np
import pytest

from faceprint import FaceEngine, Recognizer
from faceprint.errors import ProtectionKeyError
from faceprint.gallery import Gallery
from faceprint.privacy.protect import (
    SETTING,
    TemplateProtection,
    key_fingerprint,
    orthogonal_matrix,
    protect_gallery,
)

from .conftest import DEMO, faceprint

KEY_A, KEY_B = bytes(range(32)), bytes(range(1, 33))
PROBES = [DEMO / "photos" / name for name in ("two_people.jpg", "kit_with_rose.jpg", "obama1.jpg")]


def test_matrix_is_orthogonal_and_a_function_of_the_key() -> None:
    q = orthogonal_matrix(KEY_A, 128)
    assert np.allclose(q @ q.T, np.eye(128), atol=1e-12)
    assert np.array_equal(q, orthogonal_matrix(KEY_A, 128))
    assert not np.allclose(q, orthogonal_matrix(KEY_B, 128))
    assert key_fingerprint(KEY_A) == key_fingerprint(KEY_A) != key_fingerprint(KEY_B)
    # a random rotation: the same vector under two keys has a cosine near 0 (sd 1/sqrt(128))
    x = np.random.default_rng(0).normal(size=(200, 128))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    a, b = TemplateProtection(KEY_A).apply(x), TemplateProtection(KEY_B).apply(x)
    cross = np.sum(a * b, axis=1)
    assert abs(cross.mean()) < 0.03 and cross.std() < 0.15
    assert np.allclose(a @ a.T, x @ x.T, atol=1e-5)  # within one key, every score is kept
    assert np.allclose(TemplateProtection(KEY_A).revert(a), x, atol=1e-6)
    assert "key" not in repr(TemplateProtection(KEY_A)).replace("fingerprint", "")


def enrol(location: Path, engine: FaceEngine, key: bytes | None) -> Recognizer:
    gallery = Gallery(location, protect_key=key)
    if key is not None:
        assert protect_gallery(gallery.store, key)
    rec = Recognizer(gallery, engine)
    for person in sorted((DEMO / "gallery").iterdir()):
        assert not rec.enroll(person.name, sorted(person.iterdir())).errors
    return rec


def test_scores_are_unchanged_and_stored_templates_unlinkable(tmp_path: Path, engine: FaceEngine) -> None:
    plain = enrol(tmp_path / "plain.db", engine, None)
    protected_a = enrol(tmp_path / "a.db", engine, KEY_A)
    protected_b = enrol(tmp_path / "b.db", engine, KEY_B)
    for probe in PROBES:
        want = plain.identify(probe)
        for rec in (protected_a, protected_b):
            got = rec.identify(probe)
            assert [m.identity for m in got] == [m.identity for m in want]
            for g, w in zip(got, want):
                assert [c.identity for c in g.candidates] == [c.identity for c in w.candidates]
                assert np.allclose([c.score for c in g.candidates], [c.score for c in w.candidates], atol=1e-5)
    assert protected_a.verify_identity(PROBES[2], "obama").score == pytest.approx(
        plain.verify_identity(PROBES[2], "obama").score, abs=1e-5
    )

    raw = {t.source: t.embedding for t in plain.gallery.templates()}
    in_a = {t.source: t.embedding for t in protected_a.gallery.templates()}
    in_b = {t.source: t.embedding for t in protected_b.gallery.templates()}
    assert raw.keys() == in_a.keys() == in_b.keys()
    for source, vector in raw.items():
        # what is stored is not the template, and the same photo in two galleries does not match
        assert float(vector @ in_a[source]) < 0.5 and abs(float(in_a[source] @ in_b[source])) < 0.5
        assert np.allclose(protected_a.gallery.unprotected(in_a[source]), vector, atol=1e-5)


def test_the_key_is_checked(tmp_path: Path, engine: FaceEngine) -> None:
    enrol(tmp_path / "a.db", engine, KEY_A).gallery.close()
    probe = np.ones(128, np.float32) / np.sqrt(128)
    with pytest.raises(ProtectionKeyError, match="stores protected templates: set its key"):
        Gallery(tmp_path / "a.db").search(probe, "m")
    with pytest.raises(ProtectionKeyError, match="not this gallery's"):
        Gallery(tmp_path / "a.db", protect_key=KEY_B).search(probe, "m")
    with pytest.raises(ProtectionKeyError, match="not this gallery's"):
        protect_gallery(Gallery(tmp_path / "a.db").store, KEY_B)
    assert not protect_gallery(Gallery(tmp_path / "a.db").store, KEY_A)  # already, with this key
    plain = enrol(tmp_path / "plain.db", engine, None)
    with pytest.raises(ProtectionKeyError, match="not protected"):
        Gallery(tmp_path / "plain.db", protect_key=KEY_A).search(probe, "m")
    with pytest.raises(ProtectionKeyError, match="already holds unprotected templates"):
        protect_gallery(plain.gallery.store, KEY_A)
    # listing and removing need no key
    assert len(Gallery(tmp_path / "a.db").identities()) == 5


def test_cli_protect_enrol_identify(tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    key = secrets.token_hex(32)
    env = {"FACEPRINT_PROTECT_KEY": key}
    assert faceprint(gallery, "gallery", "protect").returncode == 2  # no key set
    first = faceprint(gallery, "gallery", "protect", "--json", env=env, check=True)
    assert json.loads(first.stdout)["changed"] is True
    faceprint(gallery, "enroll", str(DEMO / "gallery"), env=env, check=True)
    found = faceprint(gallery, "identify", "--json", str(PROBES[0]), env=env, check=True)
    assert {f["identity"] for f in json.loads(found.stdout)["faces"]} == {"obama", "biden"}

    without = faceprint(gallery, "identify", str(PROBES[0]))
    assert without.returncode == 1 and "stores protected templates" in without.stderr
    assert "Traceback" not in without.stderr
    key_file = tmp_path / "other.key"
    key_file.write_text(secrets.token_hex(32))
    wrong = faceprint(gallery, "identify", str(PROBES[0]), env={"FACEPRINT_PROTECT_KEY_FILE": str(key_file)})
    assert wrong.returncode == 1 and "not this gallery's" in wrong.stderr
    # only the fingerprint is kept, never the key
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        assert bytes.fromhex(key) not in data and key.encode() not in data, path.name
    from faceprint.gallery.sqlite import SQLiteStore

    assert SQLiteStore(gallery).get_setting(SETTING)["fingerprint"] == key_fingerprint(bytes.fromhex(key))


def test_unlinkability_measure() -> None:
    from faceprint.privacy.protect import unlinkability

    rng = np.random.default_rng(0)
    same = rng.normal(0, 1, 20_000), rng.normal(0, 1, 200_000)
    apart = rng.normal(10, 1, 20_000), rng.normal(0, 1, 200_000)
    assert unlinkability(*same) < 0.05  # one distribution: nothing to link by
    assert unlinkability(*apart) > 0.99  # no overlap: every mated pair is linked
    half = unlinkability(rng.normal(1, 1, 20_000), rng.normal(0, 1, 200_000))
    assert 0.2 < half < 0.6


def test_group_photo_subject_is_chosen_against_protected_templates(tmp_path: Path, engine: FaceEngine) -> None:
    """The subject choice compares a group photo's faces with the person's stored templates: in a
    protected gallery those are read back through the key, so the same face is chosen."""
    group = DEMO / "photos" / "kit_with_rose.jpg"
    chosen = []
    for location, key in ((tmp_path / "plain.db", None), (tmp_path / "a.db", KEY_A)):
        gallery = Gallery(location, protect_key=key)
        if key is not None:
            protect_gallery(gallery.store, key)
        rec = Recognizer(gallery, engine)
        rec.enroll("rose_leslie", sorted((DEMO / "gallery" / "rose_leslie").iterdir()))
        result = rec.enroll("rose_leslie", [group])
        assert result.added == [str(group)], result.errors
        ((_, box, why),) = result.chosen
        assert "agrees with the person's other photos" in why
        chosen.append(box)
    assert chosen[0] == chosen[1]
