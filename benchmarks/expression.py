"""The built-in expression model, measured the way ``faceprint analyze`` runs it.

- face-api.js's 7 expression photos (one per class): is each called its own class?
- LFW photos labelled by eye as a clear smile or not smiling (``benchmarks/data/lfw_smiles.txt``,
  measure only; ``lfw_smiles_dev.txt``, a disjoint second set, is where the crop was chosen): is
  "happy" called exactly on the smiles? The face is the one nearest the photo's centre (LFW's subject);
  the largest face gives the same answer on these sets unless said.

    python benchmarks/expression.py [--crop 1.25] [--sets lfw_smiles.txt lfw_smiles_dev.txt]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from faceprint import FaceEngine, load_image  # noqa: E402
from faceprint.analyze import face_crop  # noqa: E402
from faceprint.analyze.expression import FerExpressionClassifier  # noqa: E402
from faceprint.evaluate.extract import nearest_centre  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: face-api.js file name -> the model's label
FACE_API = {
    "angry.jpg": "angry",
    "disgusted.jpg": "disgust",
    "fearful.jpg": "fear",
    "happy.jpg": "happy",
    "neutral.jpg": "neutral",
    "sad.jpg": "sad",
    "surprised.jpg": "surprise",
}


def read_labels(path: Path) -> list[tuple[str, str]]:
    rows = [line.split("\t") for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return [(name, label) for name, label in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = Path(os.environ.get("FACEPRINT_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--crop", type=float, default=None, help="face box scale of the crop (default: analyze's)")
    parser.add_argument("--sets", nargs="+", default=["lfw_smiles.txt", "lfw_smiles_dev.txt"])
    args = parser.parse_args()
    engine, model = FaceEngine(), FerExpressionClassifier()
    crop = {"size": model.input_size, **({} if args.crop is None else {"scale": args.crop})}

    right = 0
    for name, want in FACE_API.items():
        image = load_image(args.data / "face_api_js_bbt" / "expressions" / name).pixels
        faces = engine.detect(image)
        got = model.classify(face_crop(image, faces[0], **crop)) if faces else None
        label = got.label if got else "no face"
        right += label == want
        print(f"face-api.js {name:14s} {label:9s} {'ok' if label == want else 'WRONG (' + want + ')'}")
    print(f"face-api.js: {right}/{len(FACE_API)} right")

    for labels in args.sets:
        rows = read_labels(REPO / "benchmarks" / "data" / labels)
        hits = smiles = misses_smile = false_happy = disagree = 0
        for name, label in rows:
            image = load_image(args.data / "lfw" / name).pixels
            faces = engine.detect(image)
            h, w = image.shape[:2]
            centre, largest = nearest_centre(faces, w, h), faces[0]
            happy = model.classify(face_crop(image, centre, **crop)).label == "happy"
            if largest is not centre:
                disagree += (model.classify(face_crop(image, largest, **crop)).label == "happy") != happy
            smile = label == "smile"
            smiles += smile
            hits += happy == smile
            misses_smile += smile and not happy
            false_happy += happy and not smile
        print(
            f"{labels}: 'happy' right on {hits}/{len(rows)} = {100 * hits / len(rows):.1f}% "
            f"({smiles} smiles: {misses_smile} not called happy; {len(rows) - smiles} not smiling: "
            f"{false_happy} called happy); the largest face answers differently on {disagree}"
        )


if __name__ == "__main__":
    main()
