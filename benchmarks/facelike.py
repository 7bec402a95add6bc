"""Face-likeness (``faceprint.analyze.facelike``): fit on LFW View 1 training people, measure on the rest.

    python benchmarks/facelike.py --fit      # refit src/faceprint/analyze/data/facelike.json (training data only)
    python benchmarks/facelike.py            # the measurements below (3-6 min on 2 shared cores)
    python benchmarks/facelike.py --json     # the same as one JSON object

Templates of real faces are LFW's (the face nearest the centre of each image, BlazeFace + dlib 5-point
alignment + the ResNet with flip averaging, cached by the evaluation cache). A crop that is not a face
needs 5 landmarks to be aligned and embedded; it gets them the way a detector's false positive does:
dlib's 5-point predictor run on its box (every detector in faceprint ends in that predictor).

Non-face crops, all from images or people disjoint from the training ones. "Hits" are low-threshold
detections of three miners (MINERS): BlazeFace full-range at 0.05 (tiles 0.1), BlazeFace back-camera
at 0.3 (which takes the cat's face for a face) and dlib HOG at -0.5 (dlib's adjust_threshold).
  lfw background   square patches (40-110 px) of LFW View 1 *test* images with one detected face,
                   overlapping that face's box by at most 15% of the patch (background, clothes, hair)
  lfw hits         hits on the same test images, away from the face and under each miner's default
                   threshold (some may be faces of people in the background: an upper bound on what
                   gets through)
  no_faces patches square patches of the 14 no_faces/ images (48 px to half the short side)
  no_faces hits    hits on no_faces/ (a cat's face, bricks, text, a rocket, a star field ...)
  group hits       hits on group_photos/ away from every annotated face (hands, shirts, shelves)
Faces: LFW View 1 test people (peopleDevTest.txt), disjoint from the training people.

Detection precision / recall, with and without the gate (``is_face_like``), BlazeFace at its default
thresholds (0.4, tiles 0.7) and lower ones: a detection is right when its box holds an annotated nose
point not already taken by a higher-scoring detection (so a duplicate box is a false positive); a box
holding only an "ignore" point (a face turned away) counts neither way. Noses: compreface's
annotations.json, and GROUP_NOSES below for group_photos/. The dense crowd photo has no count: there,
only the faces the default detector finds (CROWD_FACES) are listed, to see how many of them the gate keeps.

``--fit`` uses LFW View 1 *training* data only: the face templates of peopleDevTrain.txt (5 folds by
person for the out-of-fold calibration), and, to choose the number of minor axes, background patches and
low-threshold hits made from training images the same way as the test ones above.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
try:  # run from a checkout without installing: use the repo's src/
    import faceprint  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))

from faceprint.analyze.facelike import (  # noqa: E402
    FACE_LIKE_MIN,
    PARAMS_FILE,
    FaceLikeModel,
    face_like_model,
    face_likeness,
    fit_model,
    is_face_like,
)
from faceprint.detect import get_detector  # noqa: E402
from faceprint.detect.dlib_detectors import Landmarker5  # noqa: E402
from faceprint.engine import FaceEngine  # noqa: E402
from faceprint.evaluate.cache import EmbeddingCache  # noqa: E402
from faceprint.evaluate.extract import TemplateExtractor, compute_templates  # noqa: E402
from faceprint.evaluate.metrics import roc_auc  # noqa: E402
from faceprint.image import load_image  # noqa: E402
from faceprint.pipeline import EngineSpec  # noqa: E402
from faceprint.types import Face  # noqa: E402

PARAMS_PATH = REPO / "src" / "faceprint" / "analyze" / "data" / PARAMS_FILE
Box = tuple[int, int, int, int]
Point = tuple[int, int]

#: nose tips of every face in group_photos/ (the crowd photo aside), in the file's upright pixels.
#: Made here by eye over BlazeFace hits drawn at a 0.1 threshold: a hit judged a face gave its nose
#: keypoint (scaled back to the full image); the two faces cut by the frame in the selfie that no hit
#: covered were placed by eye.
GROUP_NOSES: dict[str, list[Point]] = {
    "deepface_couple.jpg": [(807, 1029), (1826, 773)],
    "deepface_selfie-many-people.jpg": [
        *[(585, 444), (381, 218), (175, 381), (260, 203), (34, 307)],
        *[(40, 505), (587, 160)],  # cut by the frame, placed by eye
    ],
    "faceapijs_bbt1.jpg": [(1043, 156), (259, 206), (772, 204), (517, 213)],
    "faceapijs_bbt2.jpg": [(391, 183), (166, 178), (37, 131)],
    "faceapijs_bbt3.jpg": [(517, 142), (66, 73), (388, 148), (185, 130), (280, 139)],
    "faceapijs_bbt4.jpg": [(99, 335), (498, 251), (274, 114), (135, 89), (293, 300), (621, 133)],
    "faceapijs_bbt5.jpg": [(144, 230), (761, 164), (481, 225), (600, 104), (254, 90)],
    "facenet_pytorch_multiface.jpg": [(892, 514), (268, 311), (595, 114), (756, 533), (655, 260), (474, 201)],
}
#: heads that are there but turned away: a box on one is neither right nor wrong
GROUP_IGNORE: dict[str, list[Point]] = {"faceapijs_bbt2.jpg": [(226, 157)]}

#: the dense crowd photo has no count. These are the 13 faces BlazeFace finds there at its default
#: thresholds (all judged faces by eye; a point inside each): what the gate costs on hard faces
CROWD = "retinaface_crowd_test.jpg"
CROWD_FACES: list[Point] = [
    *[(129, 480), (139, 283), (172, 360), (257, 46), (333, 437), (403, 126), (413, 257)],
    *[(549, 381), (624, 257), (680, 137), (721, 423), (780, 277), (858, 189)],
]

#: BlazeFace (min_score, tile_min_score) settings for the precision / recall table
DETECTION_SETTINGS: dict[str, tuple[float, float]] = {"default": (0.4, 0.7), "low": (0.2, 0.4), "lower": (0.1, 0.2)}
#: the detectors that mine false positives, at low thresholds: (options, the score from which the
#: detector's default setting reports a face). "back" at 0.3 takes the cat for a face (0.71).
MINERS: dict[str, tuple[dict[str, object], float]] = {
    "blazeface": ({"min_score": 0.05, "tile_min_score": 0.1}, 0.4),
    "blazeface back": ({"model": "back", "min_score": 0.3}, 0.65),
    "hog": ({"min_score": -0.5}, 0.0),
}
MINOR_AXES = range(1, 13)  # the choices --fit tries


def data_dir(arg: str | None) -> Path:
    for candidate in (arg, os.environ.get("FACEPRINT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "lfw").is_dir():
            return Path(candidate)
    sys.exit("data not found: pass --data DIR (holding lfw/) or set FACEPRINT_DATA")


# --------------------------------------------------------------------------- LFW faces
def lfw_images(data: Path, people_file: str) -> tuple[list[Path], np.ndarray]:
    """Every image of the people in ``people_file``, and each one's person index (file order)."""
    paths, person = [], []
    rows = [line.split("\t") for line in (data / "lfw" / people_file).read_text().splitlines()[1:]]
    for i, (name, count) in enumerate(row for row in rows if len(row) == 2):
        for k in range(1, int(count) + 1):
            paths.append(data / "lfw" / name / f"{name}_{k:04d}.jpg")
            person.append(i)
    return paths, np.array(person)


@dataclass
class LfwFaces:
    paths: list[Path]  # images where a face was found, in file order
    templates: np.ndarray  # (n, 128)
    person: np.ndarray  # (n,) person index
    boxes: list[Box]  # the face used
    alone: list[bool]  # True where the detector found only that face


def lfw_faces(data: Path, people_file: str) -> LfwFaces:
    """The LFW evaluation's templates (the face nearest the centre; none where no face was found)."""
    paths, person = lfw_images(data, people_file)
    found, _ = compute_templates(paths, TemplateExtractor(EngineSpec(), "none"), EmbeddingCache())
    keep = [i for i, p in enumerate(paths) if found[paths[i]].embedding is not None]
    return LfwFaces(
        paths=[paths[i] for i in keep],
        templates=np.stack([found[paths[i]].embedding for i in keep]).astype(np.float32),
        person=person[keep],
        boxes=[tuple(found[paths[i]].box) for i in keep],  # type: ignore[misc]
        alone=[found[paths[i]].faces == 1 for i in keep],
    )


# --------------------------------------------------------------------------- crops that are not faces
class CropEmbedder:
    """Templates of arbitrary boxes and of detector hits, aligned as a detector's hit would be."""

    def __init__(self) -> None:
        self.engine = FaceEngine()
        self.landmarks = Landmarker5()
        self._engines: dict[tuple[float, float], FaceEngine] = {}
        self._miners = {
            name: (FaceEngine(get_detector(name.split()[0], **options), self.engine.embedder), default)
            for name, (options, default) in MINERS.items()
        }

    def boxes(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        # dlib's predictor takes inclusive corners, as the detectors hand it their boxes
        faces = [
            Face(box=b, score=0.0, landmarks=self.landmarks(image, (b[0], b[1], b[2] - 1, b[3] - 1))) for b in boxes
        ]
        return self.faces(image, faces)

    def faces(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        return self.engine.embed_chips(self.engine.chips(image, faces)) if faces else np.zeros((0, 128), np.float32)

    def detect(self, image: np.ndarray, thresholds: tuple[float, float]) -> list[Face]:
        """BlazeFace at these (min_score, tile_min_score), as FaceEngine.detect runs it (downscaled)."""
        if thresholds not in self._engines:
            detector = get_detector("blazeface", min_score=thresholds[0], tile_min_score=thresholds[1])
            self._engines[thresholds] = FaceEngine(detector, self.engine.embedder)
        return self._engines[thresholds].detect(image)

    def mine(self, image: np.ndarray, below_default: bool = False) -> list[Face]:
        """Every low-threshold hit of every miner (``below_default``: only those its default would not report)."""
        hits = []
        for engine, default in self._miners.values():
            hits += [f for f in engine.detect(image) if not below_default or f.score < default]
        return hits


def overlap_share(a: Box, b: Box) -> float:
    """Area of a ∩ b over the area of a."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0) / max((a[2] - a[0]) * (a[3] - a[1]), 1)


def random_patches(
    rng: random.Random, width: int, height: int, count: int, sides: tuple[int, int], avoid: Sequence[Box] = ()
) -> list[Box]:
    """Up to ``count`` random squares with sides in ``sides``, each covering at most 15% of itself
    with any box in ``avoid``."""
    out: list[Box] = []
    for _ in range(count * 20):
        side = rng.randint(sides[0], min(sides[1], width, height))
        x, y = rng.randint(0, width - side), rng.randint(0, height - side)
        box = (x, y, x + side, y + side)
        if all(overlap_share(box, a) <= 0.15 for a in avoid):
            out.append(box)
            if len(out) == count:
                break
    return out


def near(face: Face, points: Iterable[Point], margin: float = 0.5) -> bool:
    """True if a point lies in the face's box grown by ``margin`` of its size on every side."""
    left, top, right, bottom = face.box
    mx, my = margin * (right - left), margin * (bottom - top)
    return any(left - mx <= x <= right + mx and top - my <= y <= bottom + my for x, y in points)


def lfw_negatives(crops: CropEmbedder, faces: LfwFaces, images: int, seed: int) -> dict[str, np.ndarray]:
    """Background patches and low-threshold hits from ``images`` LFW images with one detected face."""
    rng = random.Random(seed)
    chosen = sorted(rng.sample([i for i, alone in enumerate(faces.alone) if alone], images))
    patches, hits = [], []
    for i in chosen:
        pixels = load_image(faces.paths[i]).pixels
        h, w = pixels.shape[:2]
        box = faces.boxes[i]
        patches.append(crops.boxes(pixels, random_patches(rng, w, h, 2, (40, 110), [box])))
        centre = [((box[0] + box[2]) // 2, (box[1] + box[3]) // 2)]
        hits.append(crops.faces(pixels, [f for f in crops.mine(pixels, below_default=True) if not near(f, centre)]))
    return {"lfw background": np.concatenate(patches), "lfw hits": np.concatenate(hits)}


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png"))


def no_face_negatives(crops: CropEmbedder, data: Path, seed: int) -> dict[str, np.ndarray]:
    rng = random.Random(seed)
    patches, hits = [], []
    for path in image_files(data / "no_faces"):
        pixels = load_image(path).pixels
        h, w = pixels.shape[:2]
        patches.append(crops.boxes(pixels, random_patches(rng, w, h, 40, (48, min(h, w) // 2))))
        hits.append(crops.faces(pixels, crops.mine(pixels)))
    return {"no_faces patches": np.concatenate(patches), "no_faces hits": np.concatenate(hits)}


def group_negatives(crops: CropEmbedder, data: Path) -> np.ndarray:
    out = []
    for name, noses in sorted(GROUP_NOSES.items()):
        pixels = load_image(data / "group_photos" / name).pixels
        known = noses + GROUP_IGNORE.get(name, [])
        out.append(crops.faces(pixels, [f for f in crops.mine(pixels) if not near(f, known)]))
    return np.concatenate(out)


# --------------------------------------------------------------------------- fit
def fit(args: argparse.Namespace) -> None:
    data = data_dir(args.data)
    t0 = time.perf_counter()
    train = lfw_faces(data, "peopleDevTrain.txt")
    folds = train.person % 5
    crops = CropEmbedder()
    negatives = lfw_negatives(crops, train, args.images, seed=0)
    pooled = np.concatenate(list(negatives.values()))
    model_id = EngineSpec().template_model
    source = f"LFW View 1 training people (peopleDevTrain.txt): {len(train.templates)} face templates"
    print(f"training faces: {len(train.templates)} templates of {len(np.unique(train.person))} people")
    print(f"training non-faces: {', '.join(f'{len(v)} {k}' for k, v in negatives.items())}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    print(f"\n{'axes':>4} {'faces kept (oof)':>17} {'negatives passed':>17} {'AUROC':>7}")
    best: tuple[float, int, FaceLikeModel, np.ndarray] | None = None
    for m in MINOR_AXES:
        model, oof = fit_model(train.templates, folds, m, model_id, source)
        kept = float(np.mean(model.score_distance2(oof) >= FACE_LIKE_MIN))
        passed = float(np.mean(model.score(pooled) >= FACE_LIKE_MIN))
        labels = np.r_[np.ones(len(oof)), np.zeros(len(pooled))]
        auc = roc_auc(-np.r_[oof, model.distance2(pooled)], labels)
        print(f"{m:4d} {kept:17.4f} {passed:17.4f} {auc:7.4f}")
        if best is None or passed <= best[0]:  # ties go to more axes (a steadier distance)
            best = (passed, m, model, oof)
    assert best is not None
    passed, m, model, oof = best
    PARAMS_PATH.parent.mkdir(parents=True, exist_ok=True)
    PARAMS_PATH.write_text(model.to_json(), "utf-8")
    print(f"\nchose {m} minor axes: {passed:.2%} of training negatives pass at FACE_LIKE_MIN = {FACE_LIKE_MIN}")
    print(f"median out-of-fold training face scores {float(np.median(model.score_distance2(oof))):.3f}")
    print(f"wrote {PARAMS_PATH} ({PARAMS_PATH.stat().st_size:,} bytes)")


# --------------------------------------------------------------------------- measure
def match(faces: Sequence[Face], noses: Sequence[Point], ignore: Sequence[Point]) -> tuple[int, int, int]:
    """(right, wrong, missed): best score first, each detection takes the nearest free nose in its box."""
    free = list(noses)
    right = wrong = 0
    for face in sorted(faces, key=lambda f: -f.score):
        left, top, r, b = face.box
        inside = [p for p in free if left <= p[0] < r and top <= p[1] < b]
        if inside:
            cx, cy = (left + r) / 2, (top + b) / 2
            free.remove(min(inside, key=lambda p: (p[0] - cx) ** 2 + (p[1] - cy) ** 2))
            right += 1
        elif not any(left <= x < r and top <= y < b for x, y in ignore):
            wrong += 1
    return right, wrong, len(free)


def annotated_images(data: Path) -> dict[str, list[tuple[Path, list[Point], list[Point]]]]:
    folder = data / "compreface_sample_images"
    compreface = json.loads((folder / "annotations.json").read_text())["images"]
    return {
        "group_photos": [
            (data / "group_photos" / n, p, GROUP_IGNORE.get(n, [])) for n, p in sorted(GROUP_NOSES.items())
        ],
        "compreface": [(folder / n, [tuple(p) for p in v["noses"]], []) for n, v in sorted(compreface.items())],
    }


def detection_table(crops: CropEmbedder, data: Path) -> list[dict[str, object]]:
    counts: dict[tuple[str, str, bool], list[int]] = {}
    for dataset, images in annotated_images(data).items():
        for path, noses, ignore in images:
            loaded = load_image(path, max_side=2400)  # the 7360 px phone photos: their faces are large
            sx, sy = loaded.scale
            noses_px = [(round(x / sx), round(y / sy)) for x, y in noses]
            ignore_px = [(round(x / sx), round(y / sy)) for x, y in ignore]
            for setting, thresholds in DETECTION_SETTINGS.items():
                faces = crops.detect(loaded.pixels, thresholds)
                gated = [f for f, ok in zip(faces, is_face_like(crops.faces(loaded.pixels, faces))) if ok]
                for gate, kept in ((False, faces), (True, gated)):
                    row = counts.setdefault((dataset, setting, gate), [0, 0, 0])
                    for k, v in enumerate(match(kept, noses_px, ignore_px)):
                        row[k] += v
    rows = []
    for (dataset, setting, gate), (right, wrong, missed) in counts.items():
        rows.append(
            {
                "data": dataset,
                "detector": f"blazeface {setting} {DETECTION_SETTINGS[setting]}",
                "gate": gate,
                "right": right,
                "wrong": wrong,
                "missed": missed,
                "precision": right / max(right + wrong, 1),
                "recall": right / max(right + missed, 1),
            }
        )
    return rows


def crowd_check(crops: CropEmbedder, data: Path) -> dict[str, object]:
    """The crowd photo at the default thresholds: how many of the faces found the gate keeps."""
    pixels = load_image(data / "group_photos" / CROWD).pixels
    faces = crops.detect(pixels, DETECTION_SETTINGS["default"])
    scores = face_likeness(crops.faces(pixels, faces))
    right, wrong, missed = match(faces, CROWD_FACES, [])
    kept = [f for f, score in zip(faces, scores) if score >= FACE_LIKE_MIN]
    return {
        "detections": len(faces),
        "listed_faces_found": right,
        "kept_by_gate": match(kept, CROWD_FACES, [])[0],
        "scores": sorted(round(float(v), 4) for v in scores),
    }


def measure(args: argparse.Namespace) -> dict[str, object]:
    data = data_dir(args.data)
    model = face_like_model()
    train = lfw_faces(data, "peopleDevTrain.txt")
    test = lfw_faces(data, "peopleDevTest.txt")
    crops = CropEmbedder()
    negatives = {
        **lfw_negatives(crops, test, args.images, seed=1),
        **no_face_negatives(crops, data, seed=2),
        "group hits": group_negatives(crops, data),
    }
    negatives["all non-faces"] = np.concatenate(list(negatives.values()))
    d_faces = model.distance2(test.templates)
    faces_kept = float(np.mean(model.score_distance2(d_faces) >= FACE_LIKE_MIN))
    sets = []
    for name, templates in negatives.items():
        d = model.distance2(templates)
        scores = model.score_distance2(d)
        # AUROC on the distance: the same order as the score, without the score's underflow ties
        auc = roc_auc(-np.r_[d_faces, d], np.r_[np.ones(len(d_faces)), np.zeros(len(d))])
        sets.append(
            {
                "set": name,
                "crops": len(templates),
                "auroc": auc,
                "passed": float(np.mean(scores >= FACE_LIKE_MIN)),
                "median_score": float(np.median(scores)),
                "max_score": float(scores.max()),
            }
        )
    return {
        "model": {"axes": model.axes.shape[1], "template_model": model.template_model, "source": model.source},
        "threshold": FACE_LIKE_MIN,
        "faces": {
            "devtrain_kept": float(np.mean(model.score(train.templates) >= FACE_LIKE_MIN)),
            "devtest_templates": len(d_faces),
            "devtest_kept": faces_kept,
            "devtest_median_score": float(np.median(model.score_distance2(d_faces))),
        },
        "non_faces": sets,
        "detection": detection_table(crops, data),
        "crowd": crowd_check(crops, data),
    }


def print_report(report: dict[str, object]) -> None:
    faces = report["faces"]
    assert isinstance(faces, dict)
    print(f"model: {report['model']}")
    print(f"gate: face_likeness >= {report['threshold']}")
    print(
        f"faces kept: LFW DevTrain {faces['devtrain_kept']:.4f} (in sample); DevTest {faces['devtest_kept']:.4f} "
        f"of {faces['devtest_templates']} (median score {faces['devtest_median_score']:.3f})"
    )
    table(
        "\nface crops (LFW DevTest) against non-face crops",
        report["non_faces"],
        [("set", "{:<17}"), ("crops", "{:>6}"), ("auroc", "{:>7.4f}"), ("passed", "{:>7.4f}")]
        + [("max_score", "{:>9.4f}")],
    )
    table(
        "\ndetection: right = box holds an annotated nose; precision = right / boxes, recall = right / faces",
        report["detection"],
        [
            ("data", "{:<13}"),
            ("detector", "{:<29}"),
            ("gate", "{!s:<5}"),
            ("right", "{:>5}"),
            ("wrong", "{:>5}"),
            ("missed", "{:>6}"),
            ("precision", "{:>9.3f}"),
            ("recall", "{:>6.3f}"),
        ],
    )
    crowd = report["crowd"]
    assert isinstance(crowd, dict)
    print_crowd(crowd)


def print_crowd(crowd: dict[str, object]) -> None:
    print(
        f"\n{CROWD} (no count), BlazeFace default: {crowd['detections']} detections, "
        f"{crowd['listed_faces_found']} of them faces listed in CROWD_FACES; the gate keeps {crowd['kept_by_gate']}"
    )
    print(f"  their face-likeness: {crowd['scores']}")


def table(title: str, rows: object, columns: list[tuple[str, str]]) -> None:
    assert isinstance(rows, list)
    print(title)
    widths = [len(fmt.format(rows[0][key])) if rows else len(key) for key, fmt in columns]
    print("  ".join(key.rjust(w) if ">" in fmt else key.ljust(w) for (key, fmt), w in zip(columns, widths)))
    for row in rows:
        print("  ".join(fmt.format(row[key]) for key, fmt in columns))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="folder holding lfw/, no_faces/, ... (default: FACEPRINT_DATA or ../shared/data)")
    ap.add_argument("--fit", action="store_true", help=f"refit {PARAMS_FILE} on LFW View 1 training data")
    ap.add_argument("--images", type=int, default=1000, help="LFW images for background patches and hits")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if args.fit:
        fit(args)
        return
    started = time.perf_counter()
    report = measure(args)
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
        print(f"\n{report['seconds']} s")


if __name__ == "__main__":
    main()
