"""``faceprint audit attributes``: the transforms, the identity-subspace alignment, and the command
end to end on the bundled LFW fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from faceprint.audit import transforms as tf
from faceprint.audit.attributes import TAR_KEY, audit_image
from faceprint.audit.subspace import identity_subspace
from faceprint.cli import app
from faceprint.engine import FaceEngine
from faceprint.evaluate.extract import TemplateExtractor
from faceprint.image import load_image

from .conftest import FIXTURES

LFW = FIXTURES / "lfw"
PEOPLE = sorted(p.name for p in LFW.iterdir() if p.is_dir())
runner = CliRunner()

#: 5 points (dlib order) of a face in the middle of a 250 x 250 image
LANDMARKS = np.array([[155.0, 112.0], [138.0, 113.0], [95.0, 113.0], [112.0, 113.0], [125.0, 146.0]])


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A textured synthetic 250 x 250 RGB image (detail at every scale, mid grey on average)."""
    rng = np.random.default_rng(0)
    layers = [cv2.resize(rng.uniform(0, 1, (s, s, 3)).astype(np.float32), (250, 250)) for s in (8, 32, 125, 250)]
    img = sum(layers) / len(layers)
    return np.clip((img - img.mean()) / img.std() * 45 + 128, 0, 255).astype(np.uint8)


def _laplacian_var(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def _strengths(name: str) -> tuple[float, ...]:
    return tf.ATTRIBUTES[name].strengths


def test_blur_and_resolution_remove_detail_monotonically(photo: np.ndarray) -> None:
    for name in ("blur", "resolution"):
        detail = [_laplacian_var(tf.ATTRIBUTES[name].transform(photo, LANDMARKS, s, 0)[0]) for s in _strengths(name)]
        assert detail[0] < _laplacian_var(photo), name
        assert all(a > b for a, b in zip(detail, detail[1:])), (name, detail)


def test_jpeg_and_noise_errors_grow_with_strength(photo: np.ndarray) -> None:
    def error(img: np.ndarray) -> float:
        return float(np.abs(img.astype(np.float64) - photo).mean())

    jpeg = [error(tf.jpeg(photo, LANDMARKS, q)[0]) for q in _strengths("jpeg")]  # quality 90 -> 5
    noise = [error(tf.noise(photo, LANDMARKS, s, seed=1)[0]) for s in _strengths("noise")]
    assert all(a < b for a, b in zip(jpeg, jpeg[1:])), jpeg
    assert all(a < b for a, b in zip(noise, noise[1:])), noise
    # seeded: the same noise twice, another seed another noise
    assert np.array_equal(tf.noise(photo, LANDMARKS, 10, 3)[0], tf.noise(photo, LANDMARKS, 10, 3)[0])
    assert not np.array_equal(tf.noise(photo, LANDMARKS, 10, 3)[0], tf.noise(photo, LANDMARKS, 10, 4)[0])


def test_brightness_and_contrast_scale_the_grey_levels(photo: np.ndarray) -> None:
    means = [tf.brightness(photo, LANDMARKS, g)[0].mean() for g in _strengths("brightness")]
    assert all(a < b for a, b in zip(means, means[1:]))
    assert means[0] == pytest.approx(photo.mean() * 0.25, rel=0.02)
    spreads = [tf.contrast(photo, LANDMARKS, f)[0].std() for f in _strengths("contrast")]
    assert all(a < b for a, b in zip(spreads, spreads[1:]))
    assert spreads[1] == pytest.approx(photo.std() * 0.5, rel=0.05)


def test_rotation_keeps_landmarks_and_grows_with_the_angle(photo: np.ndarray) -> None:
    moved = []
    for degrees in _strengths("rotation"):
        img, pts = tf.rotation(photo, LANDMARKS, degrees)
        assert np.array_equal(pts, LANDMARKS)  # the chip is cut where the face was: it shows the roll
        moved.append(float(np.abs(img.astype(np.float64) - photo).mean()))
    assert all(a < b for a, b in zip(moved, moved[1:])), moved
    assert np.abs(tf.rotation(photo, LANDMARKS, 0)[0].astype(int) - photo).max() <= 1


def test_flip_mirrors_image_and_landmarks(photo: np.ndarray) -> None:
    img, pts = tf.flip(photo, LANDMARKS)
    assert np.array_equal(img, photo[:, ::-1])
    # the eye on the image's right is still first in dlib's order
    assert pts[0, 0] > pts[2, 0] and pts[4, 0] == pytest.approx(249 - LANDMARKS[4, 0])
    back_img, back_pts = tf.flip(img, pts)
    assert np.array_equal(back_img, photo) and np.allclose(back_pts, LANDMARKS)


@pytest.mark.parametrize("name", ["occlusion_eyes", "occlusion_mouth"])
def test_occlusion_covers_its_feature_more_with_strength(photo: np.ndarray, name: str) -> None:
    left, right = tf.eye_centres(LANDMARKS)
    target = (left + right) / 2 if name == "occlusion_eyes" else tf.mouth_centre(LANDMARKS)
    other = tf.mouth_centre(LANDMARKS) if name == "occlusion_eyes" else (left + right) / 2
    covered = []
    for s in _strengths(name):
        img, pts = tf.ATTRIBUTES[name].transform(photo, LANDMARKS, s, 0)
        x, y = np.rint(target).astype(int)
        ox, oy = np.rint(other).astype(int)
        assert (img[y, x] == 0).all()  # black on the feature
        assert np.array_equal(img[oy, ox], photo[oy, ox])  # the other feature untouched
        assert np.array_equal(pts, LANDMARKS)
        covered.append(int((img != photo).any(axis=2).sum()))
    assert all(a < b for a, b in zip(covered, covered[1:])), covered
    # the mouth sits below the nose, the nose below the eyes
    assert tf.mouth_centre(LANDMARKS)[1] > LANDMARKS[4, 1] > left[1]


def test_conditions_and_unknown_attribute() -> None:
    every = tf.conditions()
    assert len(every) == sum(len(a.strengths) for a in tf.ATTRIBUTES.values())
    assert len({c.key for c in every}) == len(every)
    assert [c.key for c in tf.conditions(["flip", "blur"])] == ["blur=1", "blur=2", "blur=4", "blur=8", "flip=1"]
    with pytest.raises(ValueError, match="unknown attribute 'sharpen'"):
        tf.conditions(["sharpen"])


def test_alignment_of_shifts_along_and_across_identity_directions() -> None:
    """People differ along the first 4 axes only; a person's photos vary along the other 12. A shift
    along an identity axis lies in the subspace, one along a nuisance axis does not."""
    rng = np.random.default_rng(0)
    d, people, per = 16, 60, 8
    centres = np.zeros((people, d))
    centres[:, :4] = rng.normal(0, 1.0, (people, 4))
    x = np.repeat(centres, per, axis=0)
    x[:, 4:] += rng.normal(0, 1.0, (people * per, d - 4))
    x[:, :4] += rng.normal(0, 0.05, (people * per, 4))
    labels = np.repeat(np.arange(people), per).astype(str)
    sub = identity_subspace(x, labels, k=4)
    assert sub.k == 4 and sub.chance == pytest.approx(0.25)
    assert np.all(sub.ratios > 10)  # people differ far more than a person varies along them
    along = np.zeros((20, d))
    along[:, 0] = 1.0
    across = np.zeros((20, d))
    across[:, 7] = rng.normal(0, 1.0, 20)
    assert sub.alignment(along) > 0.99
    assert sub.alignment(across) < 0.01
    isotropic = rng.normal(0, 1.0, (4000, d))
    assert sub.alignment(isotropic) == pytest.approx(sub.chance, abs=0.02)
    assert np.isnan(sub.alignment(np.zeros((3, d))))
    # k is capped at identities - 1
    assert identity_subspace(x[: 3 * per], labels[: 3 * per], k=8).k == 2


def test_audit_image_matches_the_evaluation_template(engine: FaceEngine) -> None:
    """The untouched template is the one `faceprint evaluate lfw` computes; a condition that changes
    nothing (blur 0) gives the same template, a real one moves it."""
    extractor = TemplateExtractor(engine, quality=True)
    image = load_image(LFW / PEOPLE[0] / f"{PEOPLE[0]}_0001.jpg").pixels
    none = tf.Condition(tf.ATTRIBUTES["blur"], 0)
    strong = tf.Condition(tf.ATTRIBUTES["blur"], 8)
    base, (same, blurred) = audit_image(extractor, [none, strong], image)
    reference = TemplateExtractor(engine, quality=True)(image)
    assert base.measures is not None and base.status == reference.status
    assert np.allclose(base.embedding, reference.embedding, atol=1e-5)
    assert np.allclose(same.embedding, base.embedding, atol=1e-5)
    assert np.linalg.norm(blurred.embedding - base.embedding) > 0.2


def _pairs_file(path: Path, people: list[str]) -> Path:
    """One set: a same-person pair and a different-person pair per person (3 photos each)."""
    n = len(people)
    same = [f"{p}\t1\t2" for p in people]
    diff = [f"{people[i]}\t3\t{people[(i + 1) % n]}\t3" for i in range(n)]
    path.write_text("\n".join([str(n), *same, *diff]) + "\n")
    return path


def test_cli_json_html_plots_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_EMBEDDING_CACHE", str(tmp_path / "cache.sqlite3"))
    audited = _pairs_file(tmp_path / "test.txt", PEOPLE[:5])
    basis = _pairs_file(tmp_path / "train.txt", PEOPLE[5:])
    args = ["audit", "attributes", "--root", str(LFW), "--pairs", str(audited), "--basis-pairs", str(basis)]
    args += ["-a", "blur", "-a", "flip", "--workers", "1", "--json"]
    html, plots = tmp_path / "report.html", tmp_path / "plots"
    result = runner.invoke(app, [*args, "--html", str(html), "--plots", str(plots)])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["attributes"]) == {"blur", "flip"}
    rows = report["attributes"]["blur"]
    assert [r["strength"] for r in rows] == [1.0, 2.0, 4.0, 8.0]
    for r in rows + report["attributes"]["flip"]:
        assert set(r) >= {"strength", "shift", "alignment", TAR_KEY}
        assert 0 <= r["alignment"] <= 1 and 0 <= r[TAR_KEY] <= 1 and r["shift"] >= 0
    # physics: more blur moves templates further and verifies no better
    shifts = [r["shift"] for r in rows]
    assert all(a < b for a, b in zip(shifts, shifts[1:])), shifts
    assert rows[-1][TAR_KEY] <= rows[0][TAR_KEY]
    # flip-averaged templates barely move under a mirror
    assert report["attributes"]["flip"][0]["shift"] < rows[0]["shift"]
    sub = report["subspace"]
    assert sub["identities"] == 5 and sub["k"] == 4 and sub["chance_alignment"] == pytest.approx(4 / 128)
    base = report["baseline"]
    assert base["impostor_trials"] == 15 * 14 // 2 - 5 * 3  # 15 photos of 5 people: cross-identity pairs
    assert 0 <= base["alignment_same_person"] <= 1 and 0 <= base["alignment_different_people"] <= 1
    assert report["images"] == 15 and report["images_computed"] == 15
    assert {"pose", "sharpness", "exposure"} <= set(report["conditions"])
    for factor in ("pose", "sharpness", "exposure"):
        assert sum(r["pairs"] for r in report["conditions"][factor]) == 10
    page = html.read_text()
    assert page.count("data:image/png;base64,") == 2 and "blur" in page
    assert sorted(p.name for p in plots.iterdir()) == ["blur.png", "flip.png"]
    # second run: everything from the cache, same figures; the human table names each attribute
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    second = json.loads(again.stdout)
    assert second["images_computed"] == 0 and second["attributes"] == report["attributes"]
    table = runner.invoke(app, args[:-1])
    assert table.exit_code == 0 and "blur" in table.stdout and "TAR@1e-3" in table.stdout


def test_cli_usage_errors(tmp_path: Path) -> None:
    audited = _pairs_file(tmp_path / "test.txt", PEOPLE[:5])
    base = ["audit", "attributes", "--root", str(LFW), "--pairs", str(audited)]
    result = runner.invoke(app, [*base, "--basis-pairs", str(audited), "-a", "sharpen"])
    assert result.exit_code == 2 and "unknown attribute 'sharpen'" in result.stderr
    result = runner.invoke(app, base)  # the fixture folder has no pairsDevTrain.txt
    assert result.exit_code == 2 and "pairsDevTrain.txt: pairs file not found" in " ".join(result.stderr.split())
    bad = tmp_path / "bad.txt"
    bad.write_text("1\nAriel_Sharon 1 two\nAriel_Sharon 1 Colin_Powell 1\n")
    result = runner.invoke(app, ["audit", "attributes", "--root", str(LFW), "--pairs", str(bad)])
    assert result.exit_code == 2 and f"{bad}:2:" in " ".join(result.stderr.split())


def test_blur_on_real_lfw_moves_templates_the_way_physics_says(data_dir: Path, tmp_path: Path) -> None:
    """The issue's done-when on a slice of DevTest: more blur, larger shift and lower TAR."""
    lfw = data_dir / "lfw"
    args = ["audit", "attributes", "--root", str(lfw), "--limit", "20", "-a", "blur", "-a", "jpeg", "-w", "1"]
    result = runner.invoke(app, [*args, "--json", "--no-cache"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pairs"] == 20 and report["pairs_file"].endswith("pairsDevTest.txt")
    assert report["subspace"]["pairs_file"].endswith("pairsDevTrain.txt")
    for name in ("blur", "jpeg"):  # jpeg strengths go from quality 90 down to 5
        rows = report["attributes"][name]
        shifts = [r["shift"] for r in rows]
        assert all(a < b for a, b in zip(shifts, shifts[1:])), (name, shifts)
        assert rows[-1][TAR_KEY] < rows[0][TAR_KEY], name
    assert report["attributes"]["blur"][-1][TAR_KEY] < 0.5 * report["baseline"][TAR_KEY]
